"""Sandbox tables of the revenue autopilot (seed 003): a small CRM (accounts, contacts, deals,
meetings), support tickets, weekly product telemetry and market news as the *sources*; and the
autopilot's own world model: signals with a TTL, one account state per account, the decision
of every run, internal tasks, generated documents and the customer outbox.

Source rows carry an indexed `updated_at` so the scheduled scan reads only what changed.
Invariants live in the database: value ranges and enumerations are CHECKs, a signal is unique
per dedupe key and expires after it was detected, a run records at most one decision.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from autopilot.models import Base, TenantKeyed, UTCDateTime, utcnow

POSTURES = ("HEALTHY", "WATCH", "AT_RISK", "EXPANSION")
DECISION_OUTCOMES = ("ACTION_PROPOSALS", "DATA_REQUEST", "CLARIFICATION_REQUEST",
                     "APPROVAL_REQUEST", "NO_ACTION")
TASK_KINDS = ("TASK", "NOTE", "DATA_REQUEST", "CLARIFICATION")
OUTREACH_KINDS = ("EMAIL", "DISCOUNT_OFFER", "CONTRACT_CHANGE")
DEAL_STAGES = ("DISCOVERY", "EVALUATION", "PROPOSAL", "NEGOTIATION", "COMMIT", "CLOSED_WON",
               "CLOSED_LOST")
TICKET_SEVERITIES = ("SEV1", "SEV2", "SEV3", "SEV4")
MARKET_KINDS = ("FUNDING", "PARTNERSHIP", "EXECUTIVE_CHANGE", "COMPETITOR")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


# --------------------------------------------------------------------------- sources


class RevAccount(TenantKeyed, Base):
    """A customer account as the CRM knows it, with when each source was last synced."""

    __tablename__ = "rev_accounts"
    name: Mapped[str] = mapped_column(String(200))
    industry: Mapped[str] = mapped_column(String(60))
    country: Mapped[str] = mapped_column(String(2))
    plan_tier: Mapped[str] = mapped_column(String(20))
    seats: Mapped[int] = mapped_column(Integer)
    arr: Mapped[float] = mapped_column(Numeric(14, 2))
    owner: Mapped[str] = mapped_column(String(200))  # the account executive / CSM
    health_score: Mapped[int] = mapped_column(Integer)  # CRM health, 0-100
    next_step: Mapped[str | None] = mapped_column(String(500), nullable=True)
    next_step_due: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    renewal_date: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    crm_synced_at: Mapped[datetime] = mapped_column(UTCDateTime())
    support_synced_at: Mapped[datetime] = mapped_column(UTCDateTime())
    telemetry_synced_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)

    __table_args__ = (
        CheckConstraint("health_score BETWEEN 0 AND 100", name="health_range"),
        CheckConstraint("seats >= 0", name="seats_positive"),
    )


class RevContact(TenantKeyed, Base):
    __tablename__ = "rev_contacts"
    account_id: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))  # CHAMPION | ECONOMIC_BUYER | USER | EXEC
    status: Mapped[str] = mapped_column(String(10), default="ACTIVE")  # ACTIVE | LEFT
    engagement_score: Mapped[int] = mapped_column(Integer)  # 0-100, last 30 days
    prior_engagement_score: Mapped[int] = mapped_column(Integer)  # 0-100, the 30 days before
    changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)

    __table_args__ = (
        CheckConstraint("status IN ('ACTIVE', 'LEFT')", name="status_known"),
        CheckConstraint("engagement_score BETWEEN 0 AND 100 AND "
                        "prior_engagement_score BETWEEN 0 AND 100", name="engagement_range"),
    )


class RevDeal(TenantKeyed, Base):
    """An opportunity (new business, expansion or renewal)."""

    __tablename__ = "rev_deals"
    account_id: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(12))  # NEW | EXPANSION | RENEWAL
    stage: Mapped[str] = mapped_column(String(12))
    prior_stage: Mapped[str | None] = mapped_column(String(12), nullable=True)
    stage_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    amount: Mapped[float] = mapped_column(Numeric(14, 2))
    seats: Mapped[int] = mapped_column(Integer)
    close_date: Mapped[datetime] = mapped_column(UTCDateTime())
    prior_close_date: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    close_date_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(),
                                                                   nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)

    __table_args__ = (
        CheckConstraint(_in("stage", DEAL_STAGES), name="stage_known"),
        CheckConstraint("amount >= 0", name="amount_positive"),
    )


class RevMeeting(TenantKeyed, Base):
    __tablename__ = "rev_meetings"
    account_id: Mapped[str] = mapped_column(String(64), index=True)
    title: Mapped[str] = mapped_column(String(300))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    status: Mapped[str] = mapped_column(String(10))  # SCHEDULED | HELD | CANCELLED
    attendee_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    summary: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)

    __table_args__ = (
        CheckConstraint("status IN ('SCHEDULED', 'HELD', 'CANCELLED')", name="status_known"),
    )


class RevTicket(TenantKeyed, Base):
    __tablename__ = "rev_tickets"
    account_id: Mapped[str] = mapped_column(String(64), index=True)
    subject: Mapped[str] = mapped_column(String(300))
    severity: Mapped[str] = mapped_column(String(4))
    status: Mapped[str] = mapped_column(String(10))  # OPEN | PENDING | RESOLVED
    escalated: Mapped[bool] = mapped_column(Boolean, default=False)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())
    first_response_minutes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)

    __table_args__ = (
        CheckConstraint(_in("severity", TICKET_SEVERITIES), name="severity_known"),
        CheckConstraint("status IN ('OPEN', 'PENDING', 'RESOLVED')", name="status_known"),
    )


class RevUsageWeek(TenantKeyed, Base):
    """Weekly product telemetry of an account."""

    __tablename__ = "rev_usage_weeks"
    account_id: Mapped[str] = mapped_column(String(64))
    week_start: Mapped[datetime] = mapped_column(UTCDateTime())
    active_users: Mapped[int] = mapped_column(Integer)
    events: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)

    __table_args__ = (
        UniqueConstraint("tenant_id", "account_id", "week_start",
                         name="uq_rev_usage_weeks_account_week"),
        CheckConstraint("active_users >= 0 AND events >= 0", name="counts_positive"),
    )


class RevMarketEvent(TenantKeyed, Base):
    """A news item about the account (funding, partnership, executive move, competitor)."""

    __tablename__ = "rev_market_events"
    account_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    headline: Mapped[str] = mapped_column(String(400))
    source: Mapped[str] = mapped_column(String(100))
    published_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)

    __table_args__ = (CheckConstraint(_in("kind", MARKET_KINDS), name="kind_known"),)


# --------------------------------------------------------------------------- world model


class RevSignal(TenantKeyed, Base):
    """A typed observation about an account with severity, confidence, evidence and a TTL.
    One row per dedupe key (account, type, subject): a re-detection refreshes it."""

    __tablename__ = "rev_signals"
    account_id: Mapped[str] = mapped_column(String(64), index=True)
    signal_type: Mapped[str] = mapped_column(String(40))
    severity: Mapped[int] = mapped_column(Integer)  # 1 (informational) .. 5 (critical)
    confidence: Mapped[float] = mapped_column(Numeric(4, 3))  # 0..1
    direction: Mapped[int] = mapped_column(Integer)  # -1 risk, +1 opportunity, 0 neutral
    dimension: Mapped[str] = mapped_column(String(40))  # what it is about (usage, deal, ...)
    subject: Mapped[str] = mapped_column(String(100))  # the record it is about
    summary: Mapped[str] = mapped_column(String(500))
    source: Mapped[str] = mapped_column(String(100))
    evidence_refs: Mapped[list[Any]] = mapped_column(JSON)
    dedupe_key: Mapped[str] = mapped_column(String(240))
    batch_id: Mapped[str] = mapped_column(String(64), index=True)
    detected_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    # Set when its source stopped showing it (it then expired early); cleared on re-detection.
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    thread_id: Mapped[str | None] = mapped_column(String(80), nullable=True)

    __table_args__ = (
        UniqueConstraint("tenant_id", "dedupe_key", name="uq_rev_signals_dedupe_key"),
        CheckConstraint("severity BETWEEN 1 AND 5", name="severity_range"),
        CheckConstraint("confidence >= 0 AND confidence <= 1", name="confidence_range"),
        CheckConstraint("direction IN (-1, 0, 1)", name="direction_known"),
        CheckConstraint("expires_at > detected_at", name="ttl_positive"),
        Index("ix_rev_signals_active", "tenant_id", "account_id", "expires_at"),
    )


class RevAccountState(TenantKeyed, Base):
    """The account's current reality (id = account id): posture, top risks and why, what
    changed, what is unknown. `version` counts refreshes (optimistic concurrency)."""

    __tablename__ = "rev_account_states"
    posture: Mapped[str] = mapped_column(String(12))
    momentum: Mapped[str] = mapped_column(String(12))
    risk_points: Mapped[int] = mapped_column(Integer)
    health_estimate: Mapped[int] = mapped_column(Integer)
    top_risks: Mapped[list[Any]] = mapped_column(JSON)
    opportunities: Mapped[list[Any]] = mapped_column(JSON)
    unknowns: Mapped[list[Any]] = mapped_column(JSON)
    recent_changes: Mapped[list[Any]] = mapped_column(JSON)
    signal_ids: Mapped[list[Any]] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(Integer)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    thread_id: Mapped[str | None] = mapped_column(String(80), nullable=True)

    __table_args__ = (
        CheckConstraint(_in("posture", POSTURES), name="posture_known"),
        CheckConstraint("health_estimate BETWEEN 0 AND 100", name="health_range"),
        CheckConstraint("version >= 1", name="version_positive"),
    )


class RevDecision(TenantKeyed, Base):
    """The decision-protocol outcome of one run, with why and what it proposed."""

    __tablename__ = "rev_decisions"
    account_id: Mapped[str] = mapped_column(String(64), index=True)
    thread_id: Mapped[str] = mapped_column(String(80))
    trigger_type: Mapped[str] = mapped_column(String(40))
    outcome: Mapped[str] = mapped_column(String(24))
    reasons: Mapped[list[Any]] = mapped_column(JSON)
    validators: Mapped[dict[str, Any]] = mapped_column(JSON)
    signal_ids: Mapped[list[Any]] = mapped_column(JSON)
    actions: Mapped[list[Any]] = mapped_column(JSON)
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint("tenant_id", "thread_id", name="uq_rev_decisions_thread_id"),
        CheckConstraint(_in("outcome", DECISION_OUTCOMES), name="outcome_known"),
    )


class RevTask(TenantKeyed, Base):
    """Internal work: a task or note for the owner, a data request to a connector, or a
    clarification question. `task_key` names what it is about, so it is not opened twice."""

    __tablename__ = "rev_tasks"
    account_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(14))
    task_key: Mapped[str] = mapped_column(String(240))
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    assignee: Mapped[str] = mapped_column(String(200))
    questions: Mapped[list[Any]] = mapped_column(JSON, default=list)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    status: Mapped[str] = mapped_column(String(10), default="OPEN")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    thread_id: Mapped[str | None] = mapped_column(String(80), nullable=True)

    __table_args__ = (
        CheckConstraint(_in("kind", TASK_KINDS), name="kind_known"),
        CheckConstraint("status IN ('OPEN', 'DONE', 'CANCELLED')", name="status_known"),
        Index("ix_rev_tasks_open_by_key", "tenant_id", "account_id", "task_key", "status"),
    )


class RevDocument(TenantKeyed, Base):
    """A generated document, e.g. a meeting-prep brief."""

    __tablename__ = "rev_documents"
    account_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    meeting_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    title: Mapped[str] = mapped_column(String(300))
    content: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    thread_id: Mapped[str | None] = mapped_column(String(80), nullable=True)

    __table_args__ = (CheckConstraint("kind IN ('MEETING_BRIEF')", name="kind_known"),)


class RevOutreach(TenantKeyed, Base):
    """What went to a customer (the sandbox outbox): an email, a discount offer or a
    contract change. Only ever written after a person approved it."""

    __tablename__ = "rev_outreach"
    account_id: Mapped[str] = mapped_column(String(64), index=True)
    contact_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    cc: Mapped[list[Any]] = mapped_column(JSON, default=list)
    deal_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    discount_pct: Mapped[int | None] = mapped_column(Integer, nullable=True)
    new_seats: Mapped[int | None] = mapped_column(Integer, nullable=True)
    status: Mapped[str] = mapped_column(String(10), default="SENT")
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    thread_id: Mapped[str | None] = mapped_column(String(80), nullable=True)

    __table_args__ = (
        CheckConstraint(_in("kind", OUTREACH_KINDS), name="kind_known"),
        CheckConstraint("discount_pct IS NULL OR discount_pct BETWEEN 1 AND 100",
                        name="discount_range"),
        Index("ix_rev_outreach_recent", "tenant_id", "account_id", "sent_at"),
    )
