"""Revenue tools (seed 003 tool plane) over the sandbox CRM, support desk, telemetry and news
(autopilot/sandbox/revenue.py). Every query is scoped to the caller's tenant.

Reads are the seed's `crm.get_commercial_window`, `support.get_risk_summary`,
`telemetry.get_health_summary`, `signals.list_recent` and `account.get_state`. Writes come in
the seed's three action classes, declared by each tool's `policy_facts` as `category` (so the
class follows the tool, never the planner):

- `INTERNAL_NON_DESTRUCTIVE`: signals, account state, decisions, tasks and notes, data and
  clarification requests, meeting briefs - reversible, may run on their own;
- `INTERNAL_MUTATION`: the CRM record's health, owner, next step - reversible, on its own only
  when policy and the proposal's confidence allow;
- `EXTERNAL_HUMAN_TOUCH`: emails, discounts, contract changes to a customer - irreversible,
  `external`, always in front of a person.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select

from autopilot.sandbox.revenue import (
    RevAccount,
    RevAccountState,
    RevContact,
    RevDeal,
    RevDecision,
    RevDocument,
    RevMarketEvent,
    RevMeeting,
    RevOutreach,
    RevSignal,
    RevTask,
    RevTicket,
    RevUsageWeek,
)
from tools.registry import (
    CostClass,
    PermanentToolError,
    Preview,
    RiskClass,
    ToolContext,
    ToolKind,
    ToolRegistry,
)

INTERNAL = "INTERNAL_NON_DESTRUCTIVE"
MUTATION = "INTERNAL_MUTATION"
EXTERNAL = "EXTERNAL_HUMAN_TOUCH"

Outcome = Literal["ACTION_PROPOSALS", "DATA_REQUEST", "CLARIFICATION_REQUEST",
                  "APPROVAL_REQUEST", "NO_ACTION"]
Posture = Literal["HEALTHY", "WATCH", "AT_RISK", "EXPANSION"]
Source = Literal["crm", "support", "telemetry"]
SignalType = Literal[
    "RENEWAL_WINDOW_ENTERED", "CLOSE_DATE_SLIPPED", "STAKEHOLDER_CHANGED", "SUPPORT_SEV2_AGING",
    "USAGE_DROP_PERCENT", "NO_MEETING_IN_21_DAYS", "OPPORTUNITY_STAGE_CHANGED",
    "CHAMPION_ENGAGEMENT_DROPPED", "COMPETITIVE_THREAT_DETECTED", "PRODUCT_USAGE_SPIKE",
    "SUPPORT_TICKET_ESCALATION", "EXECUTIVE_CHANGE", "FUNDING_ANNOUNCEMENT",
    "PARTNERSHIP_ANNOUNCEMENT", "MEETING_UPCOMING",
]


@dataclass(frozen=True)
class SignalKind:
    """What a signal type is about (`dimension`) and which way it points (-1 risk, +1
    opportunity, 0 context; None: it depends, e.g. a stage change forward or back)."""

    dimension: str
    direction: int | None
    ttl_hours: int  # default time to live


# The signal catalogue (seed 003 phase 1.3, plus MEETING_UPCOMING from the meeting-prep wedge).
SIGNALS: dict[str, SignalKind] = {
    "RENEWAL_WINDOW_ENTERED": SignalKind("renewal", 0, 24 * 30),
    "CLOSE_DATE_SLIPPED": SignalKind("deal_timing", -1, 24 * 14),
    "STAKEHOLDER_CHANGED": SignalKind("stakeholders", -1, 24 * 30),
    "SUPPORT_SEV2_AGING": SignalKind("support", -1, 24 * 3),
    "USAGE_DROP_PERCENT": SignalKind("usage", -1, 24 * 7),
    "NO_MEETING_IN_21_DAYS": SignalKind("engagement", -1, 24 * 7),
    "OPPORTUNITY_STAGE_CHANGED": SignalKind("deal_stage", None, 24 * 14),
    "CHAMPION_ENGAGEMENT_DROPPED": SignalKind("stakeholders", -1, 24 * 14),
    "COMPETITIVE_THREAT_DETECTED": SignalKind("competition", -1, 24 * 30),
    "PRODUCT_USAGE_SPIKE": SignalKind("usage", 1, 24 * 7),
    "SUPPORT_TICKET_ESCALATION": SignalKind("support", -1, 24 * 7),
    "EXECUTIVE_CHANGE": SignalKind("stakeholders", -1, 24 * 45),
    "FUNDING_ANNOUNCEMENT": SignalKind("market", 1, 24 * 60),
    "PARTNERSHIP_ANNOUNCEMENT": SignalKind("market", 1, 24 * 60),
    "MEETING_UPCOMING": SignalKind("engagement", 0, 48),
}
MAX_TTL_HOURS = 24 * 180


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------- read models


class AccountRef(Strict):
    account_id: str = Field(min_length=1, max_length=64)


class ContactOut(Strict):
    id: str
    name: str
    email: str
    title: str
    role: str
    status: str
    engagement_score: int
    prior_engagement_score: int
    changed_at: datetime | None


class DealOut(Strict):
    id: str
    name: str
    kind: str
    stage: str
    prior_stage: str | None
    stage_changed_at: datetime | None
    amount: float
    seats: int
    close_date: datetime
    prior_close_date: datetime | None
    close_date_changed_at: datetime | None


class MeetingOut(Strict):
    id: str
    title: str
    starts_at: datetime
    status: str
    attendee_ids: list[str]
    summary: str | None
    brief_id: str | None  # the newest meeting brief drafted for it


class TaskOut(Strict):
    id: str
    account_id: str
    kind: str
    task_key: str
    title: str
    body: str
    assignee: str
    questions: list[str]
    due_at: datetime | None
    status: str
    created_at: datetime


class OutreachOut(Strict):
    id: str
    account_id: str
    contact_id: str
    kind: str
    subject: str
    body: str
    cc: list[str]
    deal_id: str | None
    discount_pct: int | None
    new_seats: int | None
    status: str
    sent_at: datetime


class AccountOut(Strict):
    """`crm.get_commercial_window`: the account, its people, deals, meetings, open internal
    tasks and what was sent to it in the last 30 days."""

    id: str
    name: str
    industry: str
    country: str
    plan_tier: str
    seats: int
    arr: float
    owner: str
    health_score: int
    next_step: str | None
    next_step_due: datetime | None
    renewal_date: datetime
    crm_synced_at: datetime
    support_synced_at: datetime
    telemetry_synced_at: datetime
    contacts: list[ContactOut]
    deals: list[DealOut]
    meetings: list[MeetingOut]
    tasks: list[TaskOut]
    outreach: list[OutreachOut]


class TicketOut(Strict):
    id: str
    subject: str
    severity: str
    status: str
    escalated: bool
    opened_at: datetime
    first_response_minutes: int | None


class SupportSummaryOut(Strict):
    """`support.get_risk_summary`: open and pending tickets."""

    account_id: str
    open_count: int
    sev2_open: int
    escalated_open: int
    tickets: list[TicketOut]


class UsageWeekOut(Strict):
    id: str
    week_start: datetime
    active_users: int
    events: int


class UsageRef(Strict):
    account_id: str = Field(min_length=1, max_length=64)
    weeks: int = Field(default=8, ge=2, le=26)


class UsageSummaryOut(Strict):
    """`telemetry.get_health_summary`: weekly active users, oldest first."""

    account_id: str
    seats: int
    usage_weeks: list[UsageWeekOut]


class MarketRef(Strict):
    account_id: str = Field(min_length=1, max_length=64)
    days: int = Field(default=60, ge=1, le=365)


class MarketEventOut(Strict):
    id: str
    kind: str
    headline: str
    source: str
    published_at: datetime


class MarketEventsOut(Strict):
    account_id: str
    market_events: list[MarketEventOut]


class ListSignals(Strict):
    account_id: str = Field(min_length=1, max_length=64)
    as_of: AwareDatetime | None = Field(default=None, description="judge expiry at this instant "
                                                                  "(default: now)")
    include_expired: bool = False


class SignalOut(Strict):
    id: str
    signal_type: str
    severity: int
    confidence: float
    direction: int
    dimension: str
    subject: str
    summary: str
    source: str
    evidence_refs: list[str]
    detected_at: datetime
    expires_at: datetime
    expired: bool


class SignalsOut(Strict):
    """`signals.list_recent`: the account's signals; expired ones only when asked for."""

    account_id: str
    as_of: datetime
    signals: list[SignalOut]


class RiskItem(Strict):
    signal_id: str
    signal_type: SignalType
    severity: int = Field(ge=1, le=5)
    why: str = Field(min_length=1, max_length=500)
    evidence_refs: list[str] = Field(min_length=1)


class AccountStateOut(Strict):
    """`account.get_state`: posture, top risks and why, recent changes, unknowns."""

    id: str
    exists: bool
    posture: str | None
    momentum: str | None
    risk_points: int
    health_estimate: int | None
    top_risks: list[RiskItem]
    opportunities: list[RiskItem]
    unknowns: list[str]
    recent_changes: list[str]
    signal_ids: list[str]
    version: int
    computed_at: datetime | None


class SignalBatchRef(Strict):
    batch_id: str = Field(min_length=1, max_length=64)


class SignalBatchOut(Strict):
    id: str
    account_id: str
    count: int
    signal_ids: list[str]


class DecisionRef(Strict):
    decision_id: str = Field(min_length=1, max_length=64)


class DecisionOut(Strict):
    id: str
    account_id: str
    thread_id: str
    trigger_type: str
    outcome: str
    reasons: list[str]
    validators: dict[str, Any]
    signal_ids: list[str]
    actions: list[dict[str, Any]]
    decided_at: datetime


class TaskRef(Strict):
    task_id: str = Field(min_length=1, max_length=64)


class DocumentRef(Strict):
    document_id: str = Field(min_length=1, max_length=64)


class OutreachRef(Strict):
    outreach_id: str = Field(min_length=1, max_length=64)


class DocumentOut(Strict):
    id: str
    account_id: str
    kind: str
    meeting_id: str | None
    title: str
    content: dict[str, Any]
    created_at: datetime


# --------------------------------------------------------------------------- write models


class SignalIn(Strict):
    signal_type: SignalType
    severity: int = Field(ge=1, le=5)
    confidence: float = Field(ge=0, le=1, allow_inf_nan=False)
    direction: Literal[-1, 0, 1]
    subject: str = Field(min_length=1, max_length=100)
    summary: str = Field(min_length=1, max_length=500)
    source: str = Field(min_length=1, max_length=100)
    evidence_refs: list[str] = Field(min_length=1, max_length=20)
    ttl_hours: int = Field(ge=1, le=MAX_TTL_HOURS)

    @model_validator(mode="after")
    def _direction_fits_type(self) -> SignalIn:
        fixed = SIGNALS[self.signal_type].direction
        if fixed is not None and self.direction != fixed:
            raise ValueError(f"{self.signal_type} always has direction {fixed}")
        return self


class EmitSignals(Strict):
    batch_id: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9._-]+$")
    account_id: str = Field(min_length=1, max_length=64)
    detected_at: AwareDatetime
    signals: list[SignalIn] = Field(default=[], max_length=30)
    resolved_signal_ids: list[str] = Field(
        default=[], max_length=30,
        description="active signals the source no longer shows: they expire at detected_at")

    @model_validator(mode="after")
    def _not_empty(self) -> EmitSignals:
        if not self.signals and not self.resolved_signal_ids:
            raise ValueError("a batch emits or resolves at least one signal")
        return self


class RefreshAccountState(Strict):
    account_id: str = Field(min_length=1, max_length=64)
    expected_version: int = Field(ge=0, description="the version the state was computed "
                                                     "from; a newer one refuses the write")
    posture: Posture
    momentum: Literal["NEW", "IMPROVING", "STEADY", "DECLINING"]
    risk_points: int = Field(ge=0, le=10_000)
    health_estimate: int = Field(ge=0, le=100)
    top_risks: list[RiskItem] = Field(max_length=5)
    opportunities: list[RiskItem] = Field(max_length=5)
    unknowns: list[str] = Field(max_length=10)
    recent_changes: list[str] = Field(max_length=20)
    signal_ids: list[str] = Field(max_length=50)


class RecordDecision(Strict):
    decision_id: str = Field(min_length=1, max_length=64)
    account_id: str = Field(min_length=1, max_length=64)
    trigger_type: str = Field(min_length=1, max_length=40)
    outcome: Outcome
    reasons: list[str] = Field(min_length=1, max_length=20)
    validators: dict[str, Any]
    signal_ids: list[str] = Field(max_length=50)
    actions: list[dict[str, Any]] = Field(max_length=20)


class CreateTask(Strict):
    task_id: str = Field(min_length=1, max_length=64)
    account_id: str = Field(min_length=1, max_length=64)
    kind: Literal["TASK", "NOTE"]
    task_key: str = Field(min_length=1, max_length=240)
    title: str = Field(min_length=3, max_length=300)
    body: str = Field(min_length=1, max_length=4000)
    assignee: str = Field(min_length=1, max_length=200)
    due_at: AwareDatetime | None = None


class RequestData(Strict):
    task_id: str = Field(min_length=1, max_length=64)
    account_id: str = Field(min_length=1, max_length=64)
    source: Source
    reason: str = Field(min_length=1, max_length=1000)


class RequestClarification(Strict):
    task_id: str = Field(min_length=1, max_length=64)
    account_id: str = Field(min_length=1, max_length=64)
    task_key: str = Field(min_length=1, max_length=240)
    assignee: str = Field(min_length=1, max_length=200)
    questions: list[str] = Field(min_length=1, max_length=3)
    conflicting_signal_ids: list[str] = Field(min_length=2, max_length=10)


class BriefSignal(Strict):
    signal_id: str
    signal_type: SignalType
    severity: int = Field(ge=1, le=5)
    confidence: float = Field(ge=0, le=1)
    summary: str
    evidence_refs: list[str] = Field(min_length=1)
    expires_at: AwareDatetime


class MeetingBrief(Strict):
    """The meeting-prep brief: what the account looks like, what could go wrong and why,
    the signals with their evidence, and what to say."""

    meeting: dict[str, Any]
    account_state: dict[str, Any]
    top_risks: list[RiskItem]
    signals: list[BriefSignal]
    open_issues: list[dict[str, Any]]
    last_meeting: dict[str, Any] | None
    unknowns: list[str]
    talking_points: list[str] = Field(min_length=1, max_length=10)


class DraftMeetingBrief(Strict):
    document_id: str = Field(min_length=1, max_length=64)
    account_id: str = Field(min_length=1, max_length=64)
    meeting_id: str = Field(min_length=1, max_length=64)
    title: str = Field(min_length=3, max_length=300)
    content: MeetingBrief


class UpdateAccount(Strict):
    account_id: str = Field(min_length=1, max_length=64)
    health_score: int | None = Field(default=None, ge=0, le=100)
    owner: str | None = Field(default=None, min_length=3, max_length=200)
    next_step: str | None = Field(default=None, min_length=3, max_length=500)
    next_step_due: AwareDatetime | None = None
    reason: str = Field(min_length=1, max_length=1000)

    @model_validator(mode="after")
    def _changes_something(self) -> UpdateAccount:
        if all(v is None for v in (self.health_score, self.owner, self.next_step,
                                   self.next_step_due)):
            raise ValueError("set at least one of health_score, owner, next_step, "
                             "next_step_due")
        return self


class SendEmail(Strict):
    outreach_id: str = Field(min_length=1, max_length=64)
    account_id: str = Field(min_length=1, max_length=64)
    contact_id: str = Field(min_length=1, max_length=64)
    subject: str = Field(min_length=3, max_length=300)
    body: str = Field(min_length=1, max_length=5000)
    cc: list[str] = Field(default=[], max_length=20, description="contact ids copied in")


class OfferDiscount(Strict):
    outreach_id: str = Field(min_length=1, max_length=64)
    account_id: str = Field(min_length=1, max_length=64)
    contact_id: str = Field(min_length=1, max_length=64)
    deal_id: str = Field(min_length=1, max_length=64)
    discount_pct: int = Field(ge=1, le=100)
    subject: str = Field(min_length=3, max_length=300)
    body: str = Field(min_length=1, max_length=5000)


class ProposeContractChange(Strict):
    outreach_id: str = Field(min_length=1, max_length=64)
    account_id: str = Field(min_length=1, max_length=64)
    contact_id: str = Field(min_length=1, max_length=64)
    deal_id: str = Field(min_length=1, max_length=64)
    new_seats: int = Field(ge=1, le=100_000)
    subject: str = Field(min_length=3, max_length=300)
    body: str = Field(min_length=1, max_length=5000)


# --------------------------------------------------------------------------- helpers


def _account(ctx: ToolContext, account_id: str, tool: str) -> RevAccount:
    return ctx.fetch(RevAccount, account_id, tool, "account")


def _contact_of(ctx: ToolContext, account_id: str, contact_id: str, tool: str) -> RevContact:
    contact = ctx.session.get(RevContact, (ctx.tenant_id, contact_id))
    if contact is None or contact.account_id != account_id:
        raise PermanentToolError(tool, f"contact {contact_id!r} is not a contact of "
                                       f"account {account_id!r}")
    if contact.status != "ACTIVE":
        raise PermanentToolError(tool, f"contact {contact_id!r} has left {account_id!r}")
    return contact


def _deal_of(ctx: ToolContext, account_id: str, deal_id: str, tool: str) -> RevDeal:
    deal = ctx.session.get(RevDeal, (ctx.tenant_id, deal_id))
    if deal is None or deal.account_id != account_id:
        raise PermanentToolError(tool, f"deal {deal_id!r} is not a deal of account "
                                       f"{account_id!r}")
    return deal


def _new(ctx: ToolContext, model: type[Any], record_id: str, tool: str) -> None:
    if ctx.session.get(model, (ctx.tenant_id, record_id)) is not None:
        raise PermanentToolError(tool, f"{model.__tablename__} {record_id!r} already exists")


def _task_out(t: RevTask) -> TaskOut:
    return TaskOut(id=t.id, account_id=t.account_id, kind=t.kind, task_key=t.task_key,
                   title=t.title, body=t.body, assignee=t.assignee,
                   questions=list(t.questions or []), due_at=t.due_at, status=t.status,
                   created_at=t.created_at)


def _outreach_out(o: RevOutreach) -> OutreachOut:
    return OutreachOut(id=o.id, account_id=o.account_id, contact_id=o.contact_id, kind=o.kind,
                       subject=o.subject, body=o.body, cc=list(o.cc or []), deal_id=o.deal_id,
                       discount_pct=o.discount_pct, new_seats=o.new_seats, status=o.status,
                       sent_at=o.sent_at)


def _signal_out(s: RevSignal, as_of: datetime) -> SignalOut:
    return SignalOut(id=s.id, signal_type=s.signal_type, severity=s.severity,
                     confidence=float(s.confidence), direction=s.direction,
                     dimension=s.dimension, subject=s.subject, summary=s.summary,
                     source=s.source, evidence_refs=list(s.evidence_refs),
                     detected_at=s.detected_at, expires_at=s.expires_at,
                     expired=s.expires_at <= as_of)


def _state_out(account_id: str, st: RevAccountState | None) -> AccountStateOut:
    if st is None:
        return AccountStateOut(id=account_id, exists=False, posture=None, momentum=None,
                               risk_points=0, health_estimate=None, top_risks=[],
                               opportunities=[], unknowns=[], recent_changes=[], signal_ids=[],
                               version=0, computed_at=None)
    return AccountStateOut(
        id=st.id, exists=True, posture=st.posture, momentum=st.momentum,
        risk_points=st.risk_points, health_estimate=st.health_estimate,
        top_risks=[RiskItem.model_validate(r) for r in st.top_risks],
        opportunities=[RiskItem.model_validate(r) for r in st.opportunities],
        unknowns=list(st.unknowns), recent_changes=list(st.recent_changes),
        signal_ids=list(st.signal_ids), version=st.version, computed_at=st.computed_at)


def _batch_out(ctx: ToolContext, batch_id: str, tool: str) -> SignalBatchOut:
    rows = ctx.session.scalars(select(RevSignal).where(
        RevSignal.tenant_id == ctx.tenant_id, RevSignal.batch_id == batch_id)
        .order_by(RevSignal.id)).all()
    if not rows:
        raise PermanentToolError(tool, f"signal batch {batch_id!r} does not exist")
    return SignalBatchOut(id=batch_id, account_id=rows[0].account_id, count=len(rows),
                          signal_ids=[r.id for r in rows])


def _account_out(ctx: ToolContext, a: RevAccount) -> AccountOut:
    """The account with its people, deals, meetings (last 60 days and upcoming, each with
    its newest brief), open tasks and the outreach of the last 30 days."""
    t = ctx.tenant_id
    contacts = ctx.session.scalars(select(RevContact).where(
        RevContact.tenant_id == t, RevContact.account_id == a.id).order_by(RevContact.id))
    deals = ctx.session.scalars(select(RevDeal).where(
        RevDeal.tenant_id == t, RevDeal.account_id == a.id).order_by(RevDeal.id))
    meetings = ctx.session.scalars(select(RevMeeting).where(
        RevMeeting.tenant_id == t, RevMeeting.account_id == a.id,
        RevMeeting.starts_at >= ctx.now - timedelta(days=60))
        .order_by(RevMeeting.starts_at)).all()
    briefs = dict(ctx.session.execute(select(RevDocument.meeting_id, RevDocument.id).where(
        RevDocument.tenant_id == t, RevDocument.account_id == a.id,
        RevDocument.kind == "MEETING_BRIEF").order_by(RevDocument.created_at)).all())
    tasks = ctx.session.scalars(select(RevTask).where(
        RevTask.tenant_id == t, RevTask.account_id == a.id, RevTask.status == "OPEN")
        .order_by(RevTask.created_at))
    outreach = ctx.session.scalars(select(RevOutreach).where(
        RevOutreach.tenant_id == t, RevOutreach.account_id == a.id,
        RevOutreach.sent_at >= ctx.now - timedelta(days=30)).order_by(RevOutreach.sent_at))
    return AccountOut(
        id=a.id, name=a.name, industry=a.industry, country=a.country,
        plan_tier=a.plan_tier, seats=a.seats, arr=float(a.arr), owner=a.owner,
        health_score=a.health_score, next_step=a.next_step, next_step_due=a.next_step_due,
        renewal_date=a.renewal_date, crm_synced_at=a.crm_synced_at,
        support_synced_at=a.support_synced_at, telemetry_synced_at=a.telemetry_synced_at,
        contacts=[ContactOut(id=c.id, name=c.name, email=c.email, title=c.title,
                             role=c.role, status=c.status,
                             engagement_score=c.engagement_score,
                             prior_engagement_score=c.prior_engagement_score,
                             changed_at=c.changed_at) for c in contacts],
        deals=[DealOut(id=d.id, name=d.name, kind=d.kind, stage=d.stage,
                       prior_stage=d.prior_stage, stage_changed_at=d.stage_changed_at,
                       amount=float(d.amount), seats=d.seats, close_date=d.close_date,
                       prior_close_date=d.prior_close_date,
                       close_date_changed_at=d.close_date_changed_at) for d in deals],
        meetings=[MeetingOut(id=m.id, title=m.title, starts_at=m.starts_at,
                             status=m.status, attendee_ids=list(m.attendee_ids or []),
                             summary=m.summary, brief_id=briefs.get(m.id))
                  for m in meetings],
        tasks=[_task_out(x) for x in tasks],
        outreach=[_outreach_out(o) for o in outreach])

def signal_key(account_id: str, signal_type: str, subject: str) -> str:
    """One signal per account, type and subject: a re-detection refreshes it."""
    return f"{account_id}|{signal_type}|{subject}"


# --------------------------------------------------------------------------- facts


def _internal(ctx: ToolContext, args: Any) -> dict[str, object]:
    return {"category": INTERNAL}


def _mutation(ctx: ToolContext, args: Any) -> dict[str, object]:
    return {"category": MUTATION}


def _email_facts(ctx: ToolContext, args: SendEmail) -> dict[str, object]:
    return {"category": EXTERNAL, "external": True, "recipients": 1 + len(set(args.cc))}


def _discount_facts(ctx: ToolContext, args: OfferDiscount) -> dict[str, object]:
    # The tool's risk model: the concession, as a percentage of the deal.
    return {"category": EXTERNAL, "external": True, "recipients": 1,
            "risk_score": args.discount_pct}


def _contract_facts(ctx: ToolContext, args: ProposeContractChange) -> dict[str, object]:
    return {"category": EXTERNAL, "external": True, "recipients": 1}


# Action class of each write, for planners that predict what will need a person.
ACTION_CLASS = {
    "revenue_emit_signals": INTERNAL, "revenue_refresh_account_state": INTERNAL,
    "revenue_record_decision": INTERNAL, "revenue_create_task": INTERNAL,
    "revenue_request_data": INTERNAL, "revenue_request_clarification": INTERNAL,
    "revenue_draft_meeting_brief": INTERNAL, "revenue_update_account": MUTATION,
    "revenue_send_email": EXTERNAL, "revenue_offer_discount": EXTERNAL,
    "revenue_propose_contract_change": EXTERNAL,
}

# --------------------------------------------------------------------------- write previews

TASK_FIELDS = {"id": "task_id", "account_id": "account_id"}
PREVIEW_SIGNALS = Preview(record="signal_batch", read_tool="get_revenue_signal_batch",
                          key="batch_id", creates=True,
                          sets={"id": "batch_id", "account_id": "account_id"})
PREVIEW_STATE = Preview(
    record="revenue_account_state", read_tool="get_revenue_account_state", key="account_id",
    sets={"posture": "posture", "momentum": "momentum", "risk_points": "risk_points",
          "health_estimate": "health_estimate", "top_risks": "top_risks",
          "opportunities": "opportunities", "unknowns": "unknowns",
          "recent_changes": "recent_changes", "signal_ids": "signal_ids"})
PREVIEW_DECISION = Preview(
    record="revenue_decision", read_tool="get_revenue_decision", key="decision_id",
    creates=True, sets={"id": "decision_id", "account_id": "account_id",
                        "outcome": "outcome", "reasons": "reasons"})
PREVIEW_TASK = Preview(
    record="revenue_task", read_tool="get_revenue_task", key="task_id", creates=True,
    sets={**TASK_FIELDS, "kind": "kind", "title": "title", "body": "body",
          "assignee": "assignee", "due_at": "due_at"}, fixed={"status": "OPEN"},
    touches={"account_id": "revenue_account"})
PREVIEW_DATA = Preview(
    record="revenue_task", read_tool="get_revenue_task", key="task_id", creates=True,
    sets=TASK_FIELDS, fixed={"kind": "DATA_REQUEST", "status": "OPEN"},
    touches={"account_id": "revenue_account"})
PREVIEW_CLARIFY = Preview(
    record="revenue_task", read_tool="get_revenue_task", key="task_id", creates=True,
    sets={**TASK_FIELDS, "assignee": "assignee", "questions": "questions"},
    fixed={"kind": "CLARIFICATION", "status": "OPEN"}, touches={"account_id": "revenue_account"})
PREVIEW_BRIEF = Preview(
    record="revenue_document", read_tool="get_revenue_document", key="document_id",
    creates=True, sets={"id": "document_id", "account_id": "account_id",
                        "meeting_id": "meeting_id", "title": "title"},
    fixed={"kind": "MEETING_BRIEF"})
PREVIEW_UPDATE = Preview(
    record="revenue_account", read_tool="get_revenue_account", key="account_id",
    sets={"health_score": "health_score", "owner": "owner", "next_step": "next_step",
          "next_step_due": "next_step_due"})
_OUTREACH = {"id": "outreach_id", "account_id": "account_id", "contact_id": "contact_id",
             "subject": "subject", "body": "body"}
PREVIEW_EMAIL = Preview(
    record="outreach", read_tool="get_revenue_outreach", key="outreach_id", creates=True,
    sets={**_OUTREACH, "cc": "cc"}, fixed={"kind": "EMAIL", "status": "SENT"},
    notifies={"contact_id": "contact", "cc": "contact"})
PREVIEW_DISCOUNT = Preview(
    record="outreach", read_tool="get_revenue_outreach", key="outreach_id", creates=True,
    sets={**_OUTREACH, "deal_id": "deal_id", "discount_pct": "discount_pct"},
    fixed={"kind": "DISCOUNT_OFFER", "status": "SENT"}, notifies={"contact_id": "contact"},
    touches={"deal_id": "deal"})
PREVIEW_CONTRACT = Preview(
    record="outreach", read_tool="get_revenue_outreach", key="outreach_id", creates=True,
    sets={**_OUTREACH, "deal_id": "deal_id", "new_seats": "new_seats"},
    fixed={"kind": "CONTRACT_CHANGE", "status": "SENT"}, notifies={"contact_id": "contact"},
    touches={"deal_id": "deal"})


# --------------------------------------------------------------------------- registration


def register(registry: ToolRegistry) -> None:
    """Add the revenue tools to `registry`."""
    _register_reads(registry)
    _register_internal_writes(registry)
    _register_account_writes(registry)


def _register_reads(registry: ToolRegistry) -> None:
    @registry.tool(name="get_revenue_account", kind=ToolKind.READ, input_model=AccountRef,
                   output_model=AccountOut,
                   description="CRM commercial window: account, contacts, deals, meetings of "
                               "the last 60 days and upcoming, open tasks, recent outreach.")
    def get_revenue_account(ctx: ToolContext, args: AccountRef) -> AccountOut:
        return _account_out(ctx, _account(ctx, args.account_id, "get_revenue_account"))

    @registry.tool(name="get_revenue_support_summary", kind=ToolKind.READ,
                   input_model=AccountRef, output_model=SupportSummaryOut,
                   description="Support risk summary: open and pending tickets of an account.")
    def get_revenue_support_summary(ctx: ToolContext, args: AccountRef) -> SupportSummaryOut:
        _account(ctx, args.account_id, "get_revenue_support_summary")
        rows = ctx.session.scalars(select(RevTicket).where(
            RevTicket.tenant_id == ctx.tenant_id, RevTicket.account_id == args.account_id,
            RevTicket.status != "RESOLVED").order_by(RevTicket.opened_at)).all()
        return SupportSummaryOut(
            account_id=args.account_id, open_count=len(rows),
            sev2_open=sum(r.severity == "SEV2" for r in rows),
            escalated_open=sum(r.escalated for r in rows),
            tickets=[TicketOut(id=r.id, subject=r.subject, severity=r.severity,
                               status=r.status, escalated=r.escalated, opened_at=r.opened_at,
                               first_response_minutes=r.first_response_minutes)
                     for r in rows])

    @registry.tool(name="get_revenue_usage_summary", kind=ToolKind.READ, input_model=UsageRef,
                   output_model=UsageSummaryOut,
                   description="Product telemetry: weekly active users of the last N weeks.")
    def get_revenue_usage_summary(ctx: ToolContext, args: UsageRef) -> UsageSummaryOut:
        account = _account(ctx, args.account_id, "get_revenue_usage_summary")
        rows = ctx.session.scalars(select(RevUsageWeek).where(
            RevUsageWeek.tenant_id == ctx.tenant_id, RevUsageWeek.account_id == account.id)
            .order_by(RevUsageWeek.week_start.desc()).limit(args.weeks)).all()
        return UsageSummaryOut(account_id=account.id, seats=account.seats, usage_weeks=[
            UsageWeekOut(id=r.id, week_start=r.week_start, active_users=r.active_users,
                         events=r.events) for r in reversed(rows)])

    @registry.tool(name="list_revenue_market_events", kind=ToolKind.READ, input_model=MarketRef,
                   output_model=MarketEventsOut,
                   description="News about an account in the last N days (funding, "
                               "partnerships, executive moves, competitors).")
    def list_revenue_market_events(ctx: ToolContext, args: MarketRef) -> MarketEventsOut:
        _account(ctx, args.account_id, "list_revenue_market_events")
        rows = ctx.session.scalars(select(RevMarketEvent).where(
            RevMarketEvent.tenant_id == ctx.tenant_id,
            RevMarketEvent.account_id == args.account_id,
            RevMarketEvent.published_at >= ctx.now - timedelta(days=args.days))
            .order_by(RevMarketEvent.published_at)).all()
        return MarketEventsOut(account_id=args.account_id, market_events=[
            MarketEventOut(id=r.id, kind=r.kind, headline=r.headline, source=r.source,
                           published_at=r.published_at) for r in rows])

    @registry.tool(name="list_revenue_signals", kind=ToolKind.READ, input_model=ListSignals,
                   output_model=SignalsOut,
                   description="Signals of an account; expired ones (past their TTL) are left "
                               "out unless asked for.")
    def list_revenue_signals(ctx: ToolContext, args: ListSignals) -> SignalsOut:
        _account(ctx, args.account_id, "list_revenue_signals")
        as_of = args.as_of or ctx.now
        q = select(RevSignal).where(RevSignal.tenant_id == ctx.tenant_id,
                                    RevSignal.account_id == args.account_id)
        if not args.include_expired:
            q = q.where(RevSignal.expires_at > as_of)
        rows = ctx.session.scalars(q.order_by(RevSignal.detected_at, RevSignal.id)).all()
        return SignalsOut(account_id=args.account_id, as_of=as_of,
                          signals=[_signal_out(s, as_of) for s in rows])

    @registry.tool(name="get_revenue_account_state", kind=ToolKind.READ, input_model=AccountRef,
                   output_model=AccountStateOut,
                   description="The account's maintained state: posture, top risks and why, "
                               "recent changes, unknowns (exists=false before the first).")
    def get_revenue_account_state(ctx: ToolContext, args: AccountRef) -> AccountStateOut:
        _account(ctx, args.account_id, "get_revenue_account_state")
        return _state_out(args.account_id,
                          ctx.session.get(RevAccountState, (ctx.tenant_id, args.account_id)))

    @registry.tool(name="get_revenue_signal_batch", kind=ToolKind.READ,
                   input_model=SignalBatchRef, output_model=SignalBatchOut,
                   description="The signals last written by one batch.")
    def get_revenue_signal_batch(ctx: ToolContext, args: SignalBatchRef) -> SignalBatchOut:
        return _batch_out(ctx, args.batch_id, "get_revenue_signal_batch")

    @registry.tool(name="get_revenue_decision", kind=ToolKind.READ, input_model=DecisionRef,
                   output_model=DecisionOut, description="One recorded decision of a run.")
    def get_revenue_decision(ctx: ToolContext, args: DecisionRef) -> DecisionOut:
        d = ctx.session.get(RevDecision, (ctx.tenant_id, args.decision_id))
        if d is None:
            raise PermanentToolError("get_revenue_decision",
                                     f"decision {args.decision_id!r} does not exist")
        return DecisionOut(id=d.id, account_id=d.account_id, thread_id=d.thread_id,
                           trigger_type=d.trigger_type, outcome=d.outcome,
                           reasons=list(d.reasons), validators=dict(d.validators),
                           signal_ids=list(d.signal_ids), actions=list(d.actions),
                           decided_at=d.decided_at)

    @registry.tool(name="get_revenue_task", kind=ToolKind.READ, input_model=TaskRef,
                   output_model=TaskOut, description="One internal task, note or request.")
    def get_revenue_task(ctx: ToolContext, args: TaskRef) -> TaskOut:
        t = ctx.session.get(RevTask, (ctx.tenant_id, args.task_id))
        if t is None:
            raise PermanentToolError("get_revenue_task", f"task {args.task_id!r} does not exist")
        return _task_out(t)

    @registry.tool(name="get_revenue_document", kind=ToolKind.READ, input_model=DocumentRef,
                   output_model=DocumentOut, description="One generated document.")
    def get_revenue_document(ctx: ToolContext, args: DocumentRef) -> DocumentOut:
        d = ctx.session.get(RevDocument, (ctx.tenant_id, args.document_id))
        if d is None:
            raise PermanentToolError("get_revenue_document",
                                     f"document {args.document_id!r} does not exist")
        return DocumentOut(id=d.id, account_id=d.account_id, kind=d.kind,
                           meeting_id=d.meeting_id, title=d.title, content=dict(d.content),
                           created_at=d.created_at)

    @registry.tool(name="get_revenue_outreach", kind=ToolKind.READ, input_model=OutreachRef,
                   output_model=OutreachOut, description="One message sent to a customer.")
    def get_revenue_outreach(ctx: ToolContext, args: OutreachRef) -> OutreachOut:
        o = ctx.session.get(RevOutreach, (ctx.tenant_id, args.outreach_id))
        if o is None:
            raise PermanentToolError("get_revenue_outreach",
                                     f"outreach {args.outreach_id!r} does not exist")
        return _outreach_out(o)



def _register_internal_writes(registry: ToolRegistry) -> None:
    @registry.tool(name="revenue_emit_signals", kind=ToolKind.WRITE, reversible=True,
                   input_model=EmitSignals, output_model=SignalBatchOut, policy_facts=_internal,
                   preview=PREVIEW_SIGNALS,
                   description="Record a batch of signals with severity, confidence, evidence "
                               "and TTL; a signal already known (same account, type, subject) "
                               "is refreshed instead of duplicated.")
    def revenue_emit_signals(ctx: ToolContext, args: EmitSignals) -> SignalBatchOut:
        _account(ctx, args.account_id, "revenue_emit_signals")
        if ctx.session.scalar(select(RevSignal.id).where(
                RevSignal.tenant_id == ctx.tenant_id, RevSignal.batch_id == args.batch_id)
                .limit(1)) is not None:
            raise PermanentToolError("revenue_emit_signals",
                                     f"signal batch {args.batch_id!r} already exists")
        for n, sig in enumerate(args.signals):
            key = signal_key(args.account_id, sig.signal_type, sig.subject)
            row = ctx.session.scalar(select(RevSignal).where(
                RevSignal.tenant_id == ctx.tenant_id, RevSignal.dedupe_key == key))
            expires = args.detected_at + timedelta(hours=sig.ttl_hours)
            if row is None:
                row = RevSignal(tenant_id=ctx.tenant_id, id=f"SIG-{args.batch_id}-{n + 1}",
                                account_id=args.account_id, dedupe_key=key,
                                dimension=SIGNALS[sig.signal_type].dimension)
                ctx.session.add(row)
            row.signal_type, row.severity, row.confidence = (sig.signal_type, sig.severity,
                                                             sig.confidence)
            row.direction, row.subject, row.summary = sig.direction, sig.subject, sig.summary
            row.source, row.evidence_refs = sig.source, list(sig.evidence_refs)
            row.batch_id, row.thread_id = args.batch_id, ctx.thread_id
            row.detected_at, row.expires_at, row.resolved_at = args.detected_at, expires, None
        for signal_id in args.resolved_signal_ids:
            row = ctx.session.get(RevSignal, (ctx.tenant_id, signal_id))
            if row is None or row.account_id != args.account_id:
                raise PermanentToolError("revenue_emit_signals", f"signal {signal_id!r} is "
                                         f"not a signal of {args.account_id!r}")
            if row.detected_at < args.detected_at < row.expires_at:
                row.expires_at, row.resolved_at = args.detected_at, args.detected_at
                row.batch_id = args.batch_id
        ctx.session.flush()
        return _batch_out(ctx, args.batch_id, "revenue_emit_signals")

    @registry.tool(name="revenue_refresh_account_state", kind=ToolKind.WRITE, reversible=True,
                   input_model=RefreshAccountState, output_model=AccountStateOut,
                   policy_facts=_internal, preview=PREVIEW_STATE,
                   description="Replace the account's maintained state (posture, top risks "
                               "and why, recent changes); refuses if it moved since it was "
                               "read.")
    def revenue_refresh_account_state(ctx: ToolContext,
                                      args: RefreshAccountState) -> AccountStateOut:
        _account(ctx, args.account_id, "revenue_refresh_account_state")
        st = ctx.session.get(RevAccountState, (ctx.tenant_id, args.account_id))
        current = st.version if st is not None else 0
        if current != args.expected_version:
            raise PermanentToolError("revenue_refresh_account_state",
                                     f"state of {args.account_id} is at version {current}, "
                                     f"not {args.expected_version}: re-read it")
        if st is None:
            st = RevAccountState(tenant_id=ctx.tenant_id, id=args.account_id, version=0)
            ctx.session.add(st)
        st.posture, st.momentum, st.risk_points = args.posture, args.momentum, args.risk_points
        st.health_estimate = args.health_estimate
        st.top_risks = [r.model_dump(mode="json") for r in args.top_risks]
        st.opportunities = [r.model_dump(mode="json") for r in args.opportunities]
        st.unknowns, st.recent_changes = list(args.unknowns), list(args.recent_changes)
        st.signal_ids = list(args.signal_ids)
        st.version, st.computed_at, st.thread_id = current + 1, ctx.now, ctx.thread_id
        ctx.session.flush()
        return _state_out(args.account_id, st)

    @registry.tool(name="revenue_record_decision", kind=ToolKind.WRITE, reversible=True,
                   input_model=RecordDecision, output_model=DecisionOut, policy_facts=_internal,
                   preview=PREVIEW_DECISION,
                   description="Record the run's decision-protocol outcome with its reasons, "
                               "validator results and proposed actions.")
    def revenue_record_decision(ctx: ToolContext, args: RecordDecision) -> DecisionOut:
        _account(ctx, args.account_id, "revenue_record_decision")
        _new(ctx, RevDecision, args.decision_id, "revenue_record_decision")
        d = RevDecision(tenant_id=ctx.tenant_id, id=args.decision_id,
                        account_id=args.account_id, thread_id=ctx.thread_id or args.decision_id,
                        trigger_type=args.trigger_type, outcome=args.outcome,
                        reasons=list(args.reasons), validators=dict(args.validators),
                        signal_ids=list(args.signal_ids), actions=list(args.actions),
                        decided_at=ctx.now)
        ctx.session.add(d)
        ctx.session.flush()
        return DecisionOut(id=d.id, account_id=d.account_id, thread_id=d.thread_id,
                           trigger_type=d.trigger_type, outcome=d.outcome, reasons=d.reasons,
                           validators=d.validators, signal_ids=d.signal_ids, actions=d.actions,
                           decided_at=d.decided_at)

    def add_task(ctx: ToolContext, tool: str, *, task_id: str, account_id: str, kind: str,
                 task_key: str, title: str, body: str, assignee: str,
                 questions: list[str] | None = None, due_at: datetime | None = None) -> TaskOut:
        _account(ctx, account_id, tool)
        _new(ctx, RevTask, task_id, tool)
        task = RevTask(tenant_id=ctx.tenant_id, id=task_id, account_id=account_id, kind=kind,
                       task_key=task_key, title=title, body=body, assignee=assignee,
                       questions=list(questions or []), due_at=due_at, status="OPEN",
                       created_at=ctx.now, thread_id=ctx.thread_id)
        ctx.session.add(task)
        ctx.session.flush()
        return _task_out(task)

    @registry.tool(name="revenue_create_task", kind=ToolKind.WRITE, reversible=True,
                   input_model=CreateTask, output_model=TaskOut, policy_facts=_internal,
                   preview=PREVIEW_TASK,
                   description="Create an internal task or note for the account team.")
    def revenue_create_task(ctx: ToolContext, args: CreateTask) -> TaskOut:
        return add_task(ctx, "revenue_create_task", task_id=args.task_id,
                        account_id=args.account_id, kind=args.kind, task_key=args.task_key,
                        title=args.title, body=args.body, assignee=args.assignee,
                        due_at=args.due_at)

    @registry.tool(name="revenue_request_data", kind=ToolKind.WRITE, reversible=True,
                   input_model=RequestData, output_model=TaskOut, policy_facts=_internal,
                   preview=PREVIEW_DATA,
                   description="DATA_REQUEST: ask a source connector for a fresh sync before "
                               "anything is decided on its data.")
    def revenue_request_data(ctx: ToolContext, args: RequestData) -> TaskOut:
        return add_task(ctx, "revenue_request_data", task_id=args.task_id,
                        account_id=args.account_id, kind="DATA_REQUEST",
                        task_key=f"data:{args.source}",
                        title=f"Refresh {args.source} data for {args.account_id}",
                        body=args.reason, assignee=f"connector:{args.source}")

    @registry.tool(name="revenue_request_clarification", kind=ToolKind.WRITE, reversible=True,
                   input_model=RequestClarification, output_model=TaskOut,
                   policy_facts=_internal, preview=PREVIEW_CLARIFY,
                   description="CLARIFICATION_REQUEST: ask the account owner the few "
                               "questions that resolve conflicting signals.")
    def revenue_request_clarification(ctx: ToolContext, args: RequestClarification) -> TaskOut:
        known = set(ctx.session.scalars(select(RevSignal.id).where(
            RevSignal.tenant_id == ctx.tenant_id, RevSignal.account_id == args.account_id,
            RevSignal.id.in_(args.conflicting_signal_ids))))
        missing = sorted(set(args.conflicting_signal_ids) - known)
        if missing:
            raise PermanentToolError("revenue_request_clarification",
                                     f"unknown signals of {args.account_id}: "
                                     f"{', '.join(missing)}")
        return add_task(ctx, "revenue_request_clarification", task_id=args.task_id,
                        account_id=args.account_id, kind="CLARIFICATION",
                        task_key=args.task_key, title="Conflicting signals: please clarify",
                        body="Signals in conflict: " + ", ".join(args.conflicting_signal_ids),
                        assignee=args.assignee, questions=list(args.questions))

    @registry.tool(name="revenue_draft_meeting_brief", kind=ToolKind.WRITE, reversible=True,
                   input_model=DraftMeetingBrief, output_model=DocumentOut,
                   policy_facts=_internal, preview=PREVIEW_BRIEF,
                   description="Store a meeting-prep brief (account state, risks, signals with "
                               "evidence, talking points) for the account team.")
    def revenue_draft_meeting_brief(ctx: ToolContext, args: DraftMeetingBrief) -> DocumentOut:
        _account(ctx, args.account_id, "revenue_draft_meeting_brief")
        _new(ctx, RevDocument, args.document_id, "revenue_draft_meeting_brief")
        meeting = ctx.session.get(RevMeeting, (ctx.tenant_id, args.meeting_id))
        if meeting is None or meeting.account_id != args.account_id:
            raise PermanentToolError("revenue_draft_meeting_brief",
                                     f"meeting {args.meeting_id!r} is not a meeting of "
                                     f"{args.account_id!r}")
        doc = RevDocument(tenant_id=ctx.tenant_id, id=args.document_id,
                          account_id=args.account_id, kind="MEETING_BRIEF",
                          meeting_id=args.meeting_id, title=args.title,
                          content=args.content.model_dump(mode="json"), created_at=ctx.now,
                          thread_id=ctx.thread_id)
        ctx.session.add(doc)
        ctx.session.flush()
        return DocumentOut(id=doc.id, account_id=doc.account_id, kind=doc.kind,
                           meeting_id=doc.meeting_id, title=doc.title, content=doc.content,
                           created_at=doc.created_at)


def _register_account_writes(registry: ToolRegistry) -> None:
    @registry.tool(name="revenue_update_account", kind=ToolKind.WRITE, reversible=True,
                   input_model=UpdateAccount, output_model=AccountOut, policy_facts=_mutation,
                   risk=RiskClass.MEDIUM, preview=PREVIEW_UPDATE,
                   description="Internal mutation of the CRM record: health score, owner, "
                               "next step (the previous values are the rollback).")
    def revenue_update_account(ctx: ToolContext, args: UpdateAccount) -> AccountOut:
        a = _account(ctx, args.account_id, "revenue_update_account")
        if args.health_score is not None:
            a.health_score = args.health_score
        if args.owner is not None:
            a.owner = args.owner
        if args.next_step is not None:
            a.next_step = args.next_step
        if args.next_step_due is not None:
            a.next_step_due = args.next_step_due
        a.updated_at = ctx.now
        ctx.session.flush()
        return _account_out(ctx, a)

    def outreach(ctx: ToolContext, tool: str, args: SendEmail | OfferDiscount |
                 ProposeContractChange, kind: str, **extra: Any) -> OutreachOut:
        _account(ctx, args.account_id, tool)
        _contact_of(ctx, args.account_id, args.contact_id, tool)
        _new(ctx, RevOutreach, args.outreach_id, tool)
        row = RevOutreach(tenant_id=ctx.tenant_id, id=args.outreach_id,
                          account_id=args.account_id, contact_id=args.contact_id, kind=kind,
                          subject=args.subject, body=args.body, status="SENT", sent_at=ctx.now,
                          thread_id=ctx.thread_id, **extra)
        ctx.session.add(row)
        ctx.session.flush()
        return _outreach_out(row)

    @registry.tool(name="revenue_send_email", kind=ToolKind.WRITE, reversible=False,
                   input_model=SendEmail, output_model=OutreachOut, policy_facts=_email_facts,
                   cost_class=CostClass.MED, risk=RiskClass.HIGH, preview=PREVIEW_EMAIL,
                   description="Email a customer contact (cannot be unsent).")
    def revenue_send_email(ctx: ToolContext, args: SendEmail) -> OutreachOut:
        for cc in args.cc:
            _contact_of(ctx, args.account_id, cc, "revenue_send_email")
        return outreach(ctx, "revenue_send_email", args, "EMAIL", cc=sorted(set(args.cc)))

    @registry.tool(name="revenue_offer_discount", kind=ToolKind.WRITE, reversible=False,
                   input_model=OfferDiscount, output_model=OutreachOut,
                   policy_facts=_discount_facts, cost_class=CostClass.MED, risk=RiskClass.HIGH,
                   preview=PREVIEW_DISCOUNT,
                   description="Offer a customer a discount on a deal (a commitment once "
                               "sent).")
    def revenue_offer_discount(ctx: ToolContext, args: OfferDiscount) -> OutreachOut:
        deal = _deal_of(ctx, args.account_id, args.deal_id, "revenue_offer_discount")
        if deal.stage in ("CLOSED_WON", "CLOSED_LOST"):
            raise PermanentToolError("revenue_offer_discount", f"deal {deal.id} is closed")
        return outreach(ctx, "revenue_offer_discount", args, "DISCOUNT_OFFER", deal_id=deal.id,
                        discount_pct=args.discount_pct)

    @registry.tool(name="revenue_propose_contract_change", kind=ToolKind.WRITE,
                   reversible=False, input_model=ProposeContractChange,
                   output_model=OutreachOut, policy_facts=_contract_facts,
                   cost_class=CostClass.MED, risk=RiskClass.HIGH, preview=PREVIEW_CONTRACT,
                   description="Send a customer an order form changing the seats of a deal "
                               "(the deal is re-priced pro rata).")
    def revenue_propose_contract_change(ctx: ToolContext,
                                        args: ProposeContractChange) -> OutreachOut:
        deal = _deal_of(ctx, args.account_id, args.deal_id, "revenue_propose_contract_change")
        if deal.stage in ("CLOSED_WON", "CLOSED_LOST"):
            raise PermanentToolError("revenue_propose_contract_change",
                                     f"deal {deal.id} is closed")
        if deal.seats:
            deal.amount = round(Decimal(deal.amount) * args.new_seats / deal.seats, 2)
        deal.seats, deal.updated_at = args.new_seats, ctx.now
        return outreach(ctx, "revenue_propose_contract_change", args, "CONTRACT_CHANGE",
                        deal_id=deal.id, new_seats=args.new_seats)
