"""Sandbox CRM of the `crm` autopilot (seed 000): accounts, contacts, leads, deals with their
change history, activities (tasks included), and the suggestion queue.

Detectors scan these tables across tenants, so each threshold column has an index that leads
with that column; the invariants a tool could get wrong (known statuses and stages, a task
has a due date, one pending suggestion per record and action) are CHECK and unique
constraints in the database, not only code.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from autopilot.models import Base, TenantKeyed, UTCDateTime, utcnow

OPEN_STAGES = ("Prospecting", "Engaging", "Proposal", "Negotiation")
CLOSED_STAGES = ("Won", "Lost")
DEAL_STAGES = (*OPEN_STAGES, *CLOSED_STAGES)
# How far along an open deal is; a change to a lower rank is a regression.
STAGE_RANK = {stage: rank for rank, stage in enumerate(OPEN_STAGES, start=1)}
LEAD_STATUSES = ("new", "working", "nurture", "qualified", "disqualified")
ACTIVE_LEAD_STATUSES = ("new", "working")  # a rep owes these leads a next step
# Done activities (call ... note) and planned ones (task, open until done or cancelled).
ACTIVITY_KINDS = ("call", "meeting", "email_out", "email_in", "web_visit", "note", "task")
INBOUND_KINDS = ("email_in", "web_visit")  # the buyer reached out
TOUCH_KINDS = ("call", "meeting", "email_out", "email_in")  # real engagement: bumps recency
ACTIVITY_STATUSES = ("done", "open", "cancelled")
TRIGGER_IDS = ("lead_stagnant", "deal_regressed", "account_at_risk", "reengagement_opportunity")
# Seed 000 section 2.3/2.4: queued "awaiting approval", then Reject, or Approve (as is or
# edited) and Safe Apply, which either applies it or fails. Approval and apply are one atomic
# step here, so an approved suggestion is `applied` (approved_by + applied_at) or `failed`.
SUGGESTION_STATUSES = ("pending", "rejected", "applied", "failed")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class CrmAccount(TenantKeyed, Base):
    __tablename__ = "crm_accounts"
    name: Mapped[str] = mapped_column(String(200))
    sector: Mapped[str] = mapped_column(String(40))
    employees: Mapped[int] = mapped_column(Integer)
    annual_revenue_musd: Mapped[float] = mapped_column(Numeric(12, 2))
    office_location: Mapped[str] = mapped_column(String(100))
    owner: Mapped[str] = mapped_column(String(100))  # the account executive
    renewal_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    open_support_issues: Mapped[int] = mapped_column(Integer, default=0)
    support_open_since: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_activity_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        CheckConstraint("open_support_issues >= 0", name="support_issues"),
        CheckConstraint("open_support_issues = 0 OR support_open_since IS NOT NULL",
                        name="support_open_since"),
        Index("ix_crm_accounts_renewal_date", "renewal_date"),
        Index("ix_crm_accounts_last_activity_at", "last_activity_at"),
    )


class CrmContact(TenantKeyed, Base):
    __tablename__ = "crm_contacts"
    account_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(200), nullable=True)
    phone: Mapped[str | None] = mapped_column(String(40), nullable=True)
    do_not_contact: Mapped[bool] = mapped_column(Boolean, default=False)
    last_activity_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (Index("ix_crm_contacts_account", "tenant_id", "account_id"),)


class CrmLead(TenantKeyed, Base):
    __tablename__ = "crm_leads"
    name: Mapped[str] = mapped_column(String(200))
    company: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(200), nullable=True)
    phone: Mapped[str | None] = mapped_column(String(40), nullable=True)
    do_not_contact: Mapped[bool] = mapped_column(Boolean, default=False)
    source: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16))
    owner: Mapped[str] = mapped_column(String(100))
    product_interest: Mapped[str | None] = mapped_column(String(100), nullable=True)
    last_activity_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        CheckConstraint(_in("status", LEAD_STATUSES), name="status"),
        Index("ix_crm_leads_status_last_activity", "status", "last_activity_at"),
    )


class CrmDeal(TenantKeyed, Base):
    __tablename__ = "crm_deals"
    account_id: Mapped[str] = mapped_column(String(64))
    primary_contact_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    name: Mapped[str] = mapped_column(String(200))
    product: Mapped[str] = mapped_column(String(100))
    owner: Mapped[str] = mapped_column(String(100))
    stage: Mapped[str] = mapped_column(String(16))
    amount: Mapped[float] = mapped_column(Numeric(12, 2))
    engage_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    close_date: Mapped[date] = mapped_column(Date)  # expected, or actual once Won/Lost
    last_activity_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        CheckConstraint(_in("stage", DEAL_STAGES), name="stage"),
        CheckConstraint("amount >= 0", name="amount"),
        Index("ix_crm_deals_account", "tenant_id", "account_id"),
    )


class CrmDealChange(TenantKeyed, Base):
    """One change of a deal's stage, expected close date and/or amount (before and after)."""

    __tablename__ = "crm_deal_history"
    deal_id: Mapped[str] = mapped_column(String(64))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    changed_by: Mapped[str] = mapped_column(String(200))
    from_stage: Mapped[str] = mapped_column(String(16))
    to_stage: Mapped[str] = mapped_column(String(16))
    from_close_date: Mapped[date] = mapped_column(Date)
    to_close_date: Mapped[date] = mapped_column(Date)
    from_amount: Mapped[float] = mapped_column(Numeric(12, 2))
    to_amount: Mapped[float] = mapped_column(Numeric(12, 2))
    note: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (
        CheckConstraint(_in("from_stage", DEAL_STAGES) + " AND " + _in("to_stage", DEAL_STAGES),
                        name="stages"),
        CheckConstraint("from_stage <> to_stage OR from_close_date <> to_close_date "
                        "OR from_amount <> to_amount", name="changes_something"),
        Index("ix_crm_deal_history_changed_at", "changed_at"),
        Index("ix_crm_deal_history_deal", "tenant_id", "deal_id", "changed_at"),
    )


class CrmActivity(TenantKeyed, Base):
    """A call, meeting, email, web visit or note that happened, or a task (planned, with a due
    date, open until done or cancelled)."""

    __tablename__ = "crm_activities"
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text, default="")
    owner: Mapped[str] = mapped_column(String(200))  # who did it, or who is to do the task
    lead_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    contact_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    account_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    deal_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())  # tasks: when created
    due_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    priority: Mapped[str] = mapped_column(String(8), default="normal")
    suggestion_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        CheckConstraint(_in("kind", ACTIVITY_KINDS), name="kind"),
        CheckConstraint(_in("status", ACTIVITY_STATUSES), name="status"),
        CheckConstraint("priority IN ('normal', 'high')", name="priority"),
        CheckConstraint("(kind = 'task' AND due_date IS NOT NULL) OR "
                        "(kind <> 'task' AND due_date IS NULL AND status = 'done')",
                        name="task_shape"),
        CheckConstraint("lead_id IS NOT NULL OR contact_id IS NOT NULL OR "
                        "account_id IS NOT NULL OR deal_id IS NOT NULL", name="linked"),
        Index("ix_crm_activities_occurred_at", "occurred_at"),
        Index("ix_crm_activities_lead", "tenant_id", "lead_id", "occurred_at"),
        Index("ix_crm_activities_account", "tenant_id", "account_id", "occurred_at"),
        Index("ix_crm_activities_deal", "tenant_id", "deal_id", "occurred_at"),
    )


class CrmSuggestion(TenantKeyed, Base):
    """The suggestion queue (seed 000 sections 2.3 and 3.2): one proposed tool call with its
    trigger, confidence and reasoning, who reviewed it and what applying it did.

    `id` is the seed's suggestion_id; `action` is the seed's output (`{"action": tool,
    "payload": {...}}`), `action_name` its tool (indexed for the one-pending rule).
    `thread_id` / `apply_action_id` name the run and the proposal that apply it, which is how
    the apply tool finds the recorded approval.
    """

    __tablename__ = "crm_suggestions"
    trigger_id: Mapped[str] = mapped_column(String(40))
    record_id: Mapped[str] = mapped_column(String(64))
    trigger_context: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    event_id: Mapped[str] = mapped_column(String(200))
    thread_id: Mapped[str] = mapped_column(String(80))
    apply_action_id: Mapped[str] = mapped_column(String(64))
    action_name: Mapped[str] = mapped_column(String(64))
    action: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    confidence: Mapped[float] = mapped_column(Float)
    reasoning: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    reviewed_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    review_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    approved_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    applied_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    apply_result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)

    __table_args__ = (
        CheckConstraint(_in("status", SUGGESTION_STATUSES), name="status"),
        CheckConstraint(_in("trigger_id", TRIGGER_IDS), name="trigger_id"),
        CheckConstraint("confidence >= 0 AND confidence <= 1", name="confidence"),
        CheckConstraint("(status = 'applied' AND applied_at IS NOT NULL AND "
                        "approved_by IS NOT NULL) OR (status <> 'applied' AND "
                        "applied_at IS NULL AND approved_by IS NULL)", name="applied_shape"),
        # Never two suggestions of the same action for one record waiting at once.
        Index("uq_crm_suggestions_one_pending", "tenant_id", "record_id", "action_name",
              unique=True, sqlite_where=text("status = 'pending'"),
              postgresql_where=text("status = 'pending'")),
        Index("ix_crm_suggestions_status_thread", "status", "thread_id"),
        Index("ix_crm_suggestions_record", "tenant_id", "record_id", "status"),
    )
