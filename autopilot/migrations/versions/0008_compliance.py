"""compliance autopilot: compliance contacts, tasks (one live task per obligation cycle) and
notices

Revision ID: 0008_compliance
Revises: 0007
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from autopilot.rls import protect

revision: str = "0008_compliance"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("compliance_contacts", "compliance_tasks", "compliance_notices")
LIVE = sa.text("status <> 'CANCELLED'")


def _key() -> list[sa.Column]:
    return [sa.Column("tenant_id", sa.String(64), nullable=False),
            sa.Column("id", sa.String(64), nullable=False)]


def upgrade() -> None:
    op.create_table(
        "compliance_contacts", *_key(),
        sa.Column("property_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("email", sa.String(200), nullable=False),
        sa.Column("phone", sa.String(40), nullable=False),
        sa.Column("preferred_channel", sa.String(10), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_compliance_contacts"),
        sa.CheckConstraint("role IN ('COMPLIANCE_COORDINATOR', 'SUPERINTENDENT', "
                           "'PROPERTY_MANAGER')", name="ck_compliance_contacts_role"),
    )
    op.create_index("ix_compliance_contacts_property", "compliance_contacts",
                    ["tenant_id", "property_id"])
    op.create_table(
        "compliance_tasks", *_key(),
        sa.Column("compliance_item_id", sa.String(64), nullable=True),
        sa.Column("pm_schedule_id", sa.String(64), nullable=True),
        sa.Column("property_id", sa.String(64), nullable=False),
        sa.Column("cycle_due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("assignee_id", sa.String(64), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("priority", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("work_order_id", sa.String(64), nullable=True),
        sa.Column("evidence_ref", sa.String(200), nullable=True),
        sa.Column("completed_by", sa.String(200), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("notes", sa.JSON(), nullable=False),
        sa.Column("source_thread_id", sa.String(80), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_compliance_tasks"),
        sa.CheckConstraint("status IN ('OPEN', 'IN_PROGRESS', 'DONE', 'CANCELLED')",
                           name="ck_compliance_tasks_status"),
        sa.CheckConstraint("priority IN ('ROUTINE', 'URGENT')",
                           name="ck_compliance_tasks_priority"),
        sa.CheckConstraint("(compliance_item_id IS NULL) <> (pm_schedule_id IS NULL)",
                           name="ck_compliance_tasks_one_obligation"),
        sa.CheckConstraint("status <> 'DONE' OR (completed_at IS NOT NULL AND "
                           "evidence_ref IS NOT NULL AND completed_by IS NOT NULL)",
                           name="ck_compliance_tasks_done_with_evidence"),
    )
    op.create_index("uq_compliance_tasks_live_item_cycle", "compliance_tasks",
                    ["tenant_id", "compliance_item_id", "cycle_due_at"], unique=True,
                    sqlite_where=LIVE, postgresql_where=LIVE)
    op.create_index("uq_compliance_tasks_live_pm_cycle", "compliance_tasks",
                    ["tenant_id", "pm_schedule_id", "cycle_due_at"], unique=True,
                    sqlite_where=LIVE, postgresql_where=LIVE)
    op.create_index("ix_compliance_tasks_status_due", "compliance_tasks", ["status", "due_at"])
    op.create_index("ix_compliance_tasks_work_order", "compliance_tasks",
                    ["tenant_id", "work_order_id"])
    op.create_table(
        "compliance_notices", *_key(),
        sa.Column("task_id", sa.String(64), nullable=False),
        sa.Column("contact_id", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_compliance_notices"),
        sa.CheckConstraint("channel IN ('in_app', 'email', 'sms')",
                           name="ck_compliance_notices_channel"),
    )
    op.create_index("ix_compliance_notices_task", "compliance_notices", ["tenant_id", "task_id"])
    for table in TABLES:
        protect(op, table)


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table)
