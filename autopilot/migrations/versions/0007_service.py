"""the service: run outcome and error, approval expiry, exception inbox fields, hashed API
keys, and (Postgres) the procrastinate job queue schema

Revision ID: 0007
Revises: 0006
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CURRENT = "current_setting('app.tenant_id', true)"


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch_op:
        batch_op.add_column(sa.Column("outcome", sa.String(24), nullable=True))
        batch_op.add_column(sa.Column("error", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("replay_policy_version", sa.Integer(), nullable=True))
    # Finished runs used to carry their outcome in `status`; move it where it now belongs.
    op.execute("UPDATE runs SET outcome = status, status = 'completed' "
               "WHERE status IN ('rejected', 'nothing_to_do')")
    op.execute("UPDATE runs SET outcome = 'resolved' WHERE status = 'completed' "
               "AND outcome IS NULL")
    with op.batch_alter_table("approvals") as batch_op:
        batch_op.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("agent_exceptions") as batch_op:
        for name in ("acked_by", "resolved_by"):
            batch_op.add_column(sa.Column(name, sa.String(200), nullable=True))
        for name in ("acked_at", "resolved_at"):
            batch_op.add_column(sa.Column(name, sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("resolution", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("decision", sa.JSON(), nullable=True))
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
    )
    op.create_index("ix_api_keys_tenant_id", "api_keys", ["tenant_id"])
    op.create_index("ix_approvals_expires_at", "approvals", ["status", "expires_at"])
    if op.get_bind().dialect.name != "postgresql":
        return
    system = f"{CURRENT} = '*'"
    own = f"tenant_id = {CURRENT}"
    op.execute("ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE api_keys FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY tenant_all ON api_keys USING ({system} OR {own}) "
               f"WITH CHECK ({system} OR {own})")
    # The job queue's own tables and functions, as the installed procrastinate ships them.
    from procrastinate.schema import SchemaManager

    # Straight to the driver with no parameters, so its `%` and `:` are not placeholders.
    op.get_bind().connection.driver_connection.execute(SchemaManager.get_schema())


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TABLE IF EXISTS procrastinate_events, procrastinate_periodic_defers, "
                   "procrastinate_jobs, procrastinate_workers CASCADE")
    op.drop_index("ix_approvals_expires_at", "approvals")
    op.drop_table("api_keys")
    with op.batch_alter_table("agent_exceptions") as batch_op:
        for name in ("acked_by", "resolved_by", "acked_at", "resolved_at", "resolution",
                     "decision"):
            batch_op.drop_column(name)
    with op.batch_alter_table("approvals") as batch_op:
        batch_op.drop_column("expires_at")
    with op.batch_alter_table("runs") as batch_op:
        batch_op.drop_column("outcome")
        batch_op.drop_column("error")
        batch_op.drop_column("replay_policy_version")
