"""policy scopes (portfolio, property), shadow versions, recorded policy decisions

Revision ID: 0003
Revises: 0002
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from autopilot.models import UTCDateTime

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("policy_versions") as batch_op:
        batch_op.add_column(sa.Column("tenant_id", sa.String(length=64), nullable=False,
                                      server_default=""))
        batch_op.add_column(sa.Column("shadow", sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.drop_constraint("uq_policy_versions_scope_number", type_="unique")
        batch_op.create_unique_constraint("uq_policy_versions_scope_number",
                                          ["scope_type", "tenant_id", "scope_id", "number"])
    op.execute("UPDATE policy_versions SET tenant_id = scope_id WHERE scope_type = 'tenant'")
    op.create_table(
        "policy_decisions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("graph", sa.String(length=64), nullable=False),
        sa.Column("thread_id", sa.String(length=200), nullable=False),
        sa.Column("action_id", sa.String(length=64), nullable=False),
        sa.Column("tool", sa.String(length=64), nullable=False),
        sa.Column("stage", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=24), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("policy_version", sa.String(length=120), nullable=False),
        sa.Column("errors", sa.JSON(), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("spend_cents", sa.Integer(), nullable=False),
        sa.Column("proceeds", sa.Boolean(), nullable=False),
        sa.Column("shadow_version", sa.String(length=120), nullable=True),
        sa.Column("shadow_outcome", sa.String(length=24), nullable=True),
        sa.Column("shadow_reasons", sa.JSON(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policy_decisions")),
    )
    op.create_index("ix_policy_decisions_tenant_time", "policy_decisions",
                    ["tenant_id", "created_at"])
    op.create_index("ix_policy_decisions_window", "policy_decisions",
                    ["tenant_id", "proceeds", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_policy_decisions_window", table_name="policy_decisions")
    op.drop_index("ix_policy_decisions_tenant_time", table_name="policy_decisions")
    op.drop_table("policy_decisions")
    with op.batch_alter_table("policy_versions") as batch_op:
        batch_op.drop_constraint("uq_policy_versions_scope_number", type_="unique")
        batch_op.create_unique_constraint("uq_policy_versions_scope_number",
                                          ["scope_type", "scope_id", "number"])
        batch_op.drop_column("shadow")
        batch_op.drop_column("tenant_id")
