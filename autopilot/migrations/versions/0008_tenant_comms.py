"""tenant comms autopilot: conversation threads, policy documents / FAQ records, staff and
staff notifications

Revision ID: 0008_tenant_comms
Revises: 0007
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from autopilot.rls import protect

revision: str = "0008_tenant_comms"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("comms_threads", "comms_policy_docs", "comms_staff", "comms_staff_notifications")


def _keys() -> list[sa.Column]:
    return [sa.Column("tenant_id", sa.String(64), nullable=False),
            sa.Column("id", sa.String(64), nullable=False)]


def upgrade() -> None:
    op.create_table(
        "comms_threads", *_keys(),
        sa.Column("resident_id", sa.String(64), nullable=False),
        sa.Column("unit_id", sa.String(64), nullable=False),
        sa.Column("property_id", sa.String(64), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("intent", sa.String(32), nullable=True),
        sa.Column("topic", sa.String(32), nullable=True),
        sa.Column("assigned_staff_id", sa.String(64), nullable=True),
        sa.Column("handoff", sa.String(32), nullable=True),
        sa.Column("escalation_level", sa.Integer(), nullable=False),
        sa.Column("last_inbound_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_outbound_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reply_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_comms_threads"),
        sa.CheckConstraint("state IN ('open', 'awaiting_resident', 'awaiting_staff', "
                           "'closed')", name="ck_comms_threads_state"),
        sa.CheckConstraint("state IN ('open', 'awaiting_staff') OR reply_due_at IS NULL",
                           name="ck_comms_threads_due_only_when_owed"),
        sa.CheckConstraint("escalation_level >= 0", name="ck_comms_threads_escalation_level"),
    )
    op.create_index("ix_comms_threads_reply_due", "comms_threads", ["reply_due_at"])
    op.create_index("ix_comms_threads_resident", "comms_threads", ["tenant_id", "resident_id"],
                    unique=True)
    op.create_table(
        "comms_policy_docs", *_keys(),
        sa.Column("property_id", sa.String(64), nullable=True),
        sa.Column("topic", sa.String(32), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("keywords", sa.JSON(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_comms_policy_docs"),
        sa.CheckConstraint("version >= 1", name="ck_comms_policy_docs_version"),
    )
    op.create_index("ix_comms_policy_docs_topic", "comms_policy_docs",
                    ["tenant_id", "topic", "active"])
    op.create_table(
        "comms_staff", *_keys(),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("property_id", sa.String(64), nullable=True),
        sa.Column("email", sa.String(200), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_comms_staff"),
        sa.CheckConstraint("role IN ('PROPERTY_MANAGER', 'BILLING', 'LEASING', "
                           "'MAINTENANCE_COORDINATOR')", name="ck_comms_staff_role"),
    )
    op.create_table(
        "comms_staff_notifications", *_keys(),
        sa.Column("staff_id", sa.String(64), nullable=False),
        sa.Column("thread_id", sa.String(64), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("channels", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_comms_staff_notifications"),
        sa.CheckConstraint("severity IN ('LOW', 'MEDIUM', 'HIGH', 'CRITICAL')",
                           name="ck_comms_staff_notifications_severity"),
    )
    op.create_index("ix_comms_staff_notifications_thread", "comms_staff_notifications",
                    ["tenant_id", "thread_id"])
    for table in TABLES:
        protect(op, table)


def downgrade() -> None:
    op.drop_index("ix_comms_staff_notifications_thread", "comms_staff_notifications")
    op.drop_index("ix_comms_policy_docs_topic", "comms_policy_docs")
    op.drop_index("ix_comms_threads_resident", "comms_threads")
    op.drop_index("ix_comms_threads_reply_due", "comms_threads")
    for table in reversed(TABLES):
        op.drop_table(table)
