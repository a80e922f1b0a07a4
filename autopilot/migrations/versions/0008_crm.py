"""crm autopilot: accounts, contacts, leads, deals with change history, activities and the
suggestion queue (one pending suggestion per record and action)

Revision ID: 0008_crm
Revises: 0007
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from autopilot.rls import protect

revision: str = "0008_crm"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("crm_accounts", "crm_contacts", "crm_leads", "crm_deals", "crm_deal_history",
          "crm_activities", "crm_suggestions")
# Frozen copies of the vocabularies in autopilot/sandbox/crm.py as of this revision.
STAGES = "'Prospecting', 'Engaging', 'Proposal', 'Negotiation', 'Won', 'Lost'"
PENDING = sa.text("status = 'pending'")


def _key() -> list[sa.Column]:
    return [sa.Column("tenant_id", sa.String(64), nullable=False),
            sa.Column("id", sa.String(64), nullable=False)]


def _when(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "crm_accounts", *_key(),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("sector", sa.String(40), nullable=False),
        sa.Column("employees", sa.Integer(), nullable=False),
        sa.Column("annual_revenue_musd", sa.Numeric(12, 2), nullable=False),
        sa.Column("office_location", sa.String(100), nullable=False),
        sa.Column("owner", sa.String(100), nullable=False),
        sa.Column("renewal_date", sa.Date(), nullable=True),
        sa.Column("open_support_issues", sa.Integer(), nullable=False),
        _when("support_open_since", nullable=True),
        _when("last_activity_at"),
        _when("created_at"),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_crm_accounts"),
        sa.CheckConstraint("open_support_issues >= 0", name="ck_crm_accounts_support_issues"),
        sa.CheckConstraint("open_support_issues = 0 OR support_open_since IS NOT NULL",
                           name="ck_crm_accounts_support_open_since"),
    )
    op.create_index("ix_crm_accounts_renewal_date", "crm_accounts", ["renewal_date"])
    op.create_index("ix_crm_accounts_last_activity_at", "crm_accounts", ["last_activity_at"])

    op.create_table(
        "crm_contacts", *_key(),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("email", sa.String(200), nullable=True),
        sa.Column("phone", sa.String(40), nullable=True),
        sa.Column("do_not_contact", sa.Boolean(), nullable=False),
        _when("last_activity_at", nullable=True),
        _when("created_at"),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_crm_contacts"),
    )
    op.create_index("ix_crm_contacts_account", "crm_contacts", ["tenant_id", "account_id"])

    op.create_table(
        "crm_leads", *_key(),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("company", sa.String(200), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("email", sa.String(200), nullable=True),
        sa.Column("phone", sa.String(40), nullable=True),
        sa.Column("do_not_contact", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(40), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("owner", sa.String(100), nullable=False),
        sa.Column("product_interest", sa.String(100), nullable=True),
        _when("last_activity_at"),
        _when("created_at"),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_crm_leads"),
        sa.CheckConstraint("status IN ('new', 'working', 'nurture', 'qualified', "
                           "'disqualified')", name="ck_crm_leads_status"),
    )
    op.create_index("ix_crm_leads_status_last_activity", "crm_leads",
                    ["status", "last_activity_at"])

    op.create_table(
        "crm_deals", *_key(),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("primary_contact_id", sa.String(64), nullable=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("product", sa.String(100), nullable=False),
        sa.Column("owner", sa.String(100), nullable=False),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("amount", sa.Numeric(12, 2), nullable=False),
        sa.Column("engage_date", sa.Date(), nullable=True),
        sa.Column("close_date", sa.Date(), nullable=False),
        _when("last_activity_at"),
        _when("created_at"),
        _when("updated_at"),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_crm_deals"),
        sa.CheckConstraint(f"stage IN ({STAGES})", name="ck_crm_deals_stage"),
        sa.CheckConstraint("amount >= 0", name="ck_crm_deals_amount"),
    )
    op.create_index("ix_crm_deals_account", "crm_deals", ["tenant_id", "account_id"])

    op.create_table(
        "crm_deal_history", *_key(),
        sa.Column("deal_id", sa.String(64), nullable=False),
        _when("changed_at"),
        sa.Column("changed_by", sa.String(200), nullable=False),
        sa.Column("from_stage", sa.String(16), nullable=False),
        sa.Column("to_stage", sa.String(16), nullable=False),
        sa.Column("from_close_date", sa.Date(), nullable=False),
        sa.Column("to_close_date", sa.Date(), nullable=False),
        sa.Column("from_amount", sa.Numeric(12, 2), nullable=False),
        sa.Column("to_amount", sa.Numeric(12, 2), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_crm_deal_history"),
        sa.CheckConstraint(f"from_stage IN ({STAGES}) AND to_stage IN ({STAGES})",
                           name="ck_crm_deal_history_stages"),
        sa.CheckConstraint("from_stage <> to_stage OR from_close_date <> to_close_date "
                           "OR from_amount <> to_amount",
                           name="ck_crm_deal_history_changes_something"),
    )
    op.create_index("ix_crm_deal_history_changed_at", "crm_deal_history", ["changed_at"])
    op.create_index("ix_crm_deal_history_deal", "crm_deal_history",
                    ["tenant_id", "deal_id", "changed_at"])

    op.create_table(
        "crm_activities", *_key(),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("lead_id", sa.String(64), nullable=True),
        sa.Column("contact_id", sa.String(64), nullable=True),
        sa.Column("account_id", sa.String(64), nullable=True),
        sa.Column("deal_id", sa.String(64), nullable=True),
        _when("occurred_at"),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.Column("priority", sa.String(8), nullable=False),
        sa.Column("suggestion_id", sa.String(64), nullable=True),
        _when("created_at"),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_crm_activities"),
        sa.CheckConstraint("kind IN ('call', 'meeting', 'email_out', 'email_in', 'web_visit', "
                           "'note', 'task')", name="ck_crm_activities_kind"),
        sa.CheckConstraint("status IN ('done', 'open', 'cancelled')",
                           name="ck_crm_activities_status"),
        sa.CheckConstraint("priority IN ('normal', 'high')", name="ck_crm_activities_priority"),
        sa.CheckConstraint("(kind = 'task' AND due_date IS NOT NULL) OR "
                           "(kind <> 'task' AND due_date IS NULL AND status = 'done')",
                           name="ck_crm_activities_task_shape"),
        sa.CheckConstraint("lead_id IS NOT NULL OR contact_id IS NOT NULL OR "
                           "account_id IS NOT NULL OR deal_id IS NOT NULL",
                           name="ck_crm_activities_linked"),
    )
    op.create_index("ix_crm_activities_occurred_at", "crm_activities", ["occurred_at"])
    for link in ("lead", "account", "deal"):
        op.create_index(f"ix_crm_activities_{link}", "crm_activities",
                        ["tenant_id", f"{link}_id", "occurred_at"])

    op.create_table(
        "crm_suggestions", *_key(),
        sa.Column("trigger_id", sa.String(40), nullable=False),
        sa.Column("record_id", sa.String(64), nullable=False),
        sa.Column("trigger_context", sa.JSON(), nullable=False),
        sa.Column("event_id", sa.String(200), nullable=False),
        sa.Column("thread_id", sa.String(80), nullable=False),
        sa.Column("apply_action_id", sa.String(64), nullable=False),
        sa.Column("action_name", sa.String(64), nullable=False),
        sa.Column("action", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("reasoning", sa.Text(), nullable=False),
        _when("created_at"),
        _when("updated_at"),
        sa.Column("reviewed_by", sa.String(200), nullable=True),
        sa.Column("review_note", sa.Text(), nullable=True),
        sa.Column("approved_by", sa.String(200), nullable=True),
        _when("applied_at", nullable=True),
        sa.Column("apply_result", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_crm_suggestions"),
        sa.CheckConstraint("status IN ('pending', 'rejected', 'applied', 'failed')",
                           name="ck_crm_suggestions_status"),
        sa.CheckConstraint("trigger_id IN ('lead_stagnant', 'deal_regressed', "
                           "'account_at_risk', 'reengagement_opportunity')",
                           name="ck_crm_suggestions_trigger_id"),
        sa.CheckConstraint("confidence >= 0 AND confidence <= 1",
                           name="ck_crm_suggestions_confidence"),
        sa.CheckConstraint("(status = 'applied' AND applied_at IS NOT NULL AND "
                           "approved_by IS NOT NULL) OR (status <> 'applied' AND "
                           "applied_at IS NULL AND approved_by IS NULL)",
                           name="ck_crm_suggestions_applied_shape"),
    )
    op.create_index("uq_crm_suggestions_one_pending", "crm_suggestions",
                    ["tenant_id", "record_id", "action_name"], unique=True,
                    sqlite_where=PENDING, postgresql_where=PENDING)
    op.create_index("ix_crm_suggestions_status_thread", "crm_suggestions",
                    ["status", "thread_id"])
    op.create_index("ix_crm_suggestions_record", "crm_suggestions",
                    ["tenant_id", "record_id", "status"])

    for table in TABLES:
        protect(op, table)


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table)
