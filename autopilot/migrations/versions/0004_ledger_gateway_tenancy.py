"""audit ledger (append-only, hash-chained), evidence store, kill switch, gateway calls,
trace ids and reason codes on runs and tool calls

Revision ID: 0004
Revises: 0003
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from autopilot.models import UTCDateTime

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY = ("ledger_entries", "evidence")


def upgrade() -> None:
    op.create_table(
        "ledger_entries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("thread_id", sa.String(length=200), nullable=False),
        sa.Column("trace_id", sa.String(length=100), nullable=False),
        sa.Column("event_type", sa.String(length=24), nullable=False),
        sa.Column("event_key", sa.String(length=300), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_entries")),
        sa.UniqueConstraint("tenant_id", "seq", name="uq_ledger_entries_tenant_seq"),
        sa.UniqueConstraint("tenant_id", "event_key", name="uq_ledger_entries_tenant_event_key"),
    )
    op.create_index("ix_ledger_entries_thread", "ledger_entries", ["thread_id"])
    op.create_table(
        "evidence",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("id", sa.String(length=80), nullable=False),
        sa.Column("thread_id", sa.String(length=200), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("provenance", sa.JSON(), nullable=False),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("captured_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_evidence")),
    )
    op.create_table(
        "autonomy_switches",
        sa.Column("scope", sa.String(length=64), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("changed_by", sa.String(length=200), nullable=False),
        sa.Column("changed_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("scope", name=op.f("pk_autonomy_switches")),
    )
    op.create_table(
        "gateway_calls",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("principal", sa.String(length=120), nullable=False),
        sa.Column("tool", sa.String(length=80), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("cost_class", sa.String(length=8), nullable=False),
        sa.Column("thread_id", sa.String(length=200), nullable=False),
        sa.Column("action_id", sa.String(length=80), nullable=False),
        sa.Column("trace_id", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gateway_calls")),
    )
    op.create_index("ix_gateway_calls_budget", "gateway_calls",
                    ["tenant_id", "cost_class", "started_at"])
    with op.batch_alter_table("runs") as batch_op:
        batch_op.add_column(sa.Column("trace_id", sa.String(length=100), nullable=False,
                                      server_default=""))
    with op.batch_alter_table("tool_calls") as batch_op:
        batch_op.add_column(sa.Column("reason_code", sa.String(length=200), nullable=False,
                                      server_default=""))
        batch_op.add_column(sa.Column("principal", sa.String(length=120), nullable=False,
                                      server_default=""))
        batch_op.add_column(sa.Column("trace_id", sa.String(length=100), nullable=False,
                                      server_default=""))
    bind = op.get_bind()
    for table in APPEND_ONLY:
        if bind.dialect.name == "postgresql":
            op.execute(f"""
                CREATE FUNCTION {table}_append_only() RETURNS trigger AS $$
                BEGIN
                  RAISE EXCEPTION '{table} is append-only: % refused', TG_OP;
                END $$ LANGUAGE plpgsql""")
            op.execute(f"CREATE TRIGGER {table}_no_change BEFORE UPDATE OR DELETE ON {table} "
                       f"FOR EACH ROW EXECUTE FUNCTION {table}_append_only()")
            op.execute(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                       f"FOR EACH STATEMENT EXECUTE FUNCTION {table}_append_only()")
        else:
            for verb in ("UPDATE", "DELETE"):
                op.execute(f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                           f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: {verb} "
                           f"refused'); END")


def downgrade() -> None:
    bind = op.get_bind()
    for table in APPEND_ONLY:
        if bind.dialect.name == "postgresql":
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_change ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS {table}_append_only()")
    with op.batch_alter_table("tool_calls") as batch_op:
        batch_op.drop_column("trace_id")
        batch_op.drop_column("principal")
        batch_op.drop_column("reason_code")
    with op.batch_alter_table("runs") as batch_op:
        batch_op.drop_column("trace_id")
    op.drop_index("ix_gateway_calls_budget", table_name="gateway_calls")
    op.drop_table("gateway_calls")
    op.drop_table("autonomy_switches")
    op.drop_table("evidence")
    op.drop_index("ix_ledger_entries_thread", table_name="ledger_entries")
    op.drop_table("ledger_entries")
