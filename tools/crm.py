"""CRM tools over the sandbox CRM (seed 000): 360 reads and the activity timeline, the
suggestion queue, and the mutation tools the Safe Apply Engine runs.

Seed 000 section 6: no AI-initiated write without approval. Every CRM mutation
(`create_crm_task`, `update_deal_stage`, `log_activity`, `send_outreach_email`) applies one
queued suggestion: it refuses a suggestion that is not pending, belongs to another run, or
has no recorded approval of this very action, and it marks the suggestion applied (who
approved it, when, what it did) in the same transaction as the mutation. Cedar forbids these
tools from running on their own (policy/policies/crm.cedar); this check is the second lock.

Recording a suggestion (`enqueue_suggestion`) and closing one whose review ended without an
apply (`close_suggestion`) are the autopilot's internal, reversible queue writes.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import select

from autopilot.models import AgentException, Approval, Run
from autopilot.sandbox.crm import (
    CLOSED_STAGES,
    OPEN_STAGES,
    TOUCH_KINDS,
    CrmAccount,
    CrmActivity,
    CrmContact,
    CrmDeal,
    CrmDealChange,
    CrmLead,
    CrmSuggestion,
)
from tools.registry import (
    CostClass,
    PermanentToolError,
    Preview,
    RiskClass,
    ToolContext,
    ToolKind,
    ToolRegistry,
    pydantic_errors,
)

Stage = Literal["Prospecting", "Engaging", "Proposal", "Negotiation", "Won", "Lost"]
TriggerId = Literal["lead_stagnant", "deal_regressed", "account_at_risk",
                    "reengagement_opportunity"]
SuggestionStatus = Literal["pending", "rejected", "applied", "failed"]
# The CRM mutations: each needs a person's approval, whatever the autonomy level or rules.
CRM_WRITE_TOOLS = ("create_crm_task", "update_deal_stage", "log_activity",
                   "send_outreach_email")
QUEUE_TOOLS = ("enqueue_suggestion", "close_suggestion")
CrmWriteTool = Literal["create_crm_task", "update_deal_stage", "log_activity",
                       "send_outreach_email"]
# Run statuses in which the run may still act (autopilot.runtime.ACTIVE; a test pins them).
RUN_ACTIVE = ("queued", "running", "needs_approval", "executing", "failed_retryable")
RECENT = 10  # activities shown in a 360 view


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _f(value: Decimal | float | None) -> float | None:
    return None if value is None else float(value)


def _days(now: datetime, then: datetime | None) -> int | None:
    return None if then is None else max(0, (now - then).days)


def _new_id(prefix: str, ctx: ToolContext, *parts: str) -> str:
    """A record id derived from the call's idempotency key: a retried call makes the same."""
    seed = "|".join([ctx.idempotency_key or ctx.now.isoformat(), *parts])
    return f"{prefix}-{hashlib.sha256(seed.encode()).hexdigest()[:10].upper()}"


# --------------------------------------------------------------------------- output models


class ActivityOut(Strict):
    activity_id: str
    kind: str
    status: str
    subject: str
    body: str
    owner: str
    lead_id: str | None
    contact_id: str | None
    account_id: str | None
    deal_id: str | None
    occurred_at: datetime
    due_date: date | None
    priority: str
    suggestion_id: str | None

    @classmethod
    def of(cls, a: CrmActivity) -> ActivityOut:
        return cls(activity_id=a.id, kind=a.kind, status=a.status, subject=a.subject,
                   body=a.body, owner=a.owner, lead_id=a.lead_id, contact_id=a.contact_id,
                   account_id=a.account_id, deal_id=a.deal_id, occurred_at=a.occurred_at,
                   due_date=a.due_date, priority=a.priority, suggestion_id=a.suggestion_id)


class SuggestionOut(Strict):
    """One queue entry, with the fields of seed 000 section 3.2."""

    suggestion_id: str
    tenant_id: str
    trigger_id: str
    record_id: str
    trigger_context: dict[str, Any]
    event_id: str
    thread_id: str
    apply_action_id: str
    action_name: str
    action: dict[str, Any]
    status: str
    confidence: float
    reasoning: str
    created_at: datetime
    updated_at: datetime
    reviewed_by: str | None
    review_note: str | None
    approved_by: str | None
    applied_at: datetime | None
    apply_result: dict[str, Any] | None

    @classmethod
    def of(cls, s: CrmSuggestion) -> SuggestionOut:
        return cls(suggestion_id=s.id, tenant_id=s.tenant_id, trigger_id=s.trigger_id,
                   record_id=s.record_id, trigger_context=dict(s.trigger_context or {}),
                   event_id=s.event_id, thread_id=s.thread_id,
                   apply_action_id=s.apply_action_id, action_name=s.action_name,
                   action=dict(s.action), status=s.status, confidence=s.confidence,
                   reasoning=s.reasoning, created_at=s.created_at, updated_at=s.updated_at,
                   reviewed_by=s.reviewed_by, review_note=s.review_note,
                   approved_by=s.approved_by, applied_at=s.applied_at,
                   apply_result=s.apply_result)


class ReviewOut(Strict):
    """Where the review of a suggestion stands, from the run's own records."""

    run_status: str | None
    approval_id: str | None
    approval_status: str | None  # pending | decided | expired | cancelled | superseded
    decision: str | None  # approve | edit | reject (of the apply action)
    reviewer: str | None
    message: str | None
    decided_at: datetime | None
    problem: str | None  # why the run stopped, when it escalated or failed
    open: bool  # the run may still act, or the reviewer may still decide


class SuggestionDetail(SuggestionOut):
    review: ReviewOut


class SuggestionList(Strict):
    suggestions: list[SuggestionOut]


class ContactOut(Strict):
    contact_id: str
    account_id: str
    name: str
    title: str
    email: str | None
    do_not_contact: bool
    last_activity_at: datetime | None

    @classmethod
    def of(cls, c: CrmContact) -> ContactOut:
        return cls(contact_id=c.id, account_id=c.account_id, name=c.name, title=c.title,
                   email=c.email, do_not_contact=c.do_not_contact,
                   last_activity_at=c.last_activity_at)


class AccountOut(Strict):
    account_id: str
    name: str
    sector: str
    employees: int
    annual_revenue_musd: float
    office_location: str
    owner: str
    renewal_date: date | None
    open_support_issues: int
    support_open_since: datetime | None
    last_activity_at: datetime

    @classmethod
    def of(cls, a: CrmAccount) -> AccountOut:
        return cls(account_id=a.id, name=a.name, sector=a.sector, employees=a.employees,
                   annual_revenue_musd=float(a.annual_revenue_musd),
                   office_location=a.office_location, owner=a.owner,
                   renewal_date=a.renewal_date, open_support_issues=a.open_support_issues,
                   support_open_since=a.support_open_since,
                   last_activity_at=a.last_activity_at)


class DealOut(Strict):
    deal_id: str
    account_id: str
    primary_contact_id: str | None
    name: str
    product: str
    owner: str
    stage: str
    amount: float
    engage_date: date | None
    close_date: date
    last_activity_at: datetime

    @classmethod
    def of(cls, d: CrmDeal) -> DealOut:
        return cls(deal_id=d.id, account_id=d.account_id,
                   primary_contact_id=d.primary_contact_id, name=d.name, product=d.product,
                   owner=d.owner, stage=d.stage, amount=float(d.amount),
                   engage_date=d.engage_date, close_date=d.close_date,
                   last_activity_at=d.last_activity_at)


class DealChangeOut(Strict):
    change_id: str
    changed_at: datetime
    changed_by: str
    from_stage: str
    to_stage: str
    from_close_date: date
    to_close_date: date
    from_amount: float
    to_amount: float
    note: str

    @classmethod
    def of(cls, h: CrmDealChange) -> DealChangeOut:
        return cls(change_id=h.id, changed_at=h.changed_at, changed_by=h.changed_by,
                   from_stage=h.from_stage, to_stage=h.to_stage,
                   from_close_date=h.from_close_date, to_close_date=h.to_close_date,
                   from_amount=float(h.from_amount), to_amount=float(h.to_amount),
                   note=h.note)


class LeadOut(Strict):
    lead_id: str
    name: str
    company: str
    title: str
    email: str | None
    do_not_contact: bool
    source: str
    status: str
    owner: str
    product_interest: str | None
    last_activity_at: datetime
    days_since_activity: int


class Lead360(LeadOut):
    activities: list[ActivityOut]
    open_tasks: list[ActivityOut]
    pending_suggestions: list[SuggestionOut]


class Deal360(DealOut):
    days_since_activity: int
    account: AccountOut
    primary_contact: ContactOut | None
    history: list[DealChangeOut]
    activities: list[ActivityOut]
    open_tasks: list[ActivityOut]
    pending_suggestions: list[SuggestionOut]


class Account360(AccountOut):
    days_since_activity: int
    days_to_renewal: int | None
    contacts: list[ContactOut]
    deals: list[DealOut]
    activities: list[ActivityOut]
    open_tasks: list[ActivityOut]
    pending_suggestions: list[SuggestionOut]


class Timeline(Strict):
    activities: list[ActivityOut]


# --------------------------------------------------------------------------- input models


class LeadRef(Strict):
    lead_id: str = Field(min_length=1, max_length=64)


class DealRef(Strict):
    deal_id: str = Field(min_length=1, max_length=64)


class AccountRef(Strict):
    account_id: str = Field(min_length=1, max_length=64)


class ActivityRef(Strict):
    activity_id: str = Field(min_length=1, max_length=64)


class SuggestionRef(Strict):
    suggestion_id: str = Field(min_length=1, max_length=64)


class _Links(Strict):
    lead_id: str | None = Field(default=None, max_length=64)
    contact_id: str | None = Field(default=None, max_length=64)
    account_id: str | None = Field(default=None, max_length=64)
    deal_id: str | None = Field(default=None, max_length=64)

    def links(self) -> dict[str, str | None]:
        return {"lead_id": self.lead_id, "contact_id": self.contact_id,
                "account_id": self.account_id, "deal_id": self.deal_id}


class TimelineQuery(_Links):
    limit: int = Field(default=20, ge=1, le=200)
    include_tasks: bool = True

    @model_validator(mode="after")
    def _one_record(self) -> TimelineQuery:
        if sum(v is not None for v in self.links().values()) != 1:
            raise ValueError("give exactly one of lead_id, contact_id, account_id, deal_id")
        return self


class ListSuggestions(Strict):
    status: SuggestionStatus | None = None
    record_id: str | None = Field(default=None, max_length=64)
    limit: int = Field(default=50, ge=1, le=500)


class _Apply(Strict):
    """Every CRM mutation applies one queued suggestion."""

    suggestion_id: str = Field(min_length=1, max_length=64)


class CreateCrmTask(_Apply, _Links):
    """Seed 000's `create_activity` with a due date: a task for a rep (lead_id, description,
    due_date as in the seed's example payload)."""

    activity_id: str = Field(min_length=1, max_length=64)
    owner: str = Field(min_length=1, max_length=200)
    description: str = Field(min_length=3, max_length=300)
    due_date: date
    priority: Literal["normal", "high"] = "normal"

    @model_validator(mode="after")
    def _linked(self) -> CreateCrmTask:
        if not any((self.lead_id, self.deal_id, self.account_id)):
            raise ValueError("a task needs a lead_id, deal_id or account_id")
        return self


class UpdateDealStage(_Apply):
    deal_id: str = Field(min_length=1, max_length=64)
    expected_stage: Stage = Field(description="the stage the suggestion saw; a deal that "
                                              "moved since is not changed")
    stage: Stage
    close_date: date | None = Field(default=None, description="new expected close date "
                                                              "(required to reopen)")
    reason: str = Field(min_length=3, max_length=1000)


class LogActivity(_Apply, _Links):
    activity_id: str = Field(min_length=1, max_length=64)
    kind: Literal["note", "call", "meeting"]
    owner: str = Field(min_length=1, max_length=200)
    subject: str = Field(min_length=3, max_length=300)
    body: str = Field(default="", max_length=5000)

    @model_validator(mode="after")
    def _linked(self) -> LogActivity:
        if not any(self.links().values()):
            raise ValueError("an activity needs a lead_id, contact_id, account_id or deal_id")
        return self


class SendOutreachEmail(_Apply):
    activity_id: str = Field(min_length=1, max_length=64)
    lead_id: str | None = Field(default=None, max_length=64)
    contact_id: str | None = Field(default=None, max_length=64)
    deal_id: str | None = Field(default=None, max_length=64)
    sender: str = Field(min_length=1, max_length=200)
    subject: str = Field(min_length=3, max_length=200)
    body: str = Field(min_length=10, max_length=5000)

    @model_validator(mode="after")
    def _one_recipient(self) -> SendOutreachEmail:
        if (self.lead_id is None) == (self.contact_id is None):
            raise ValueError("give exactly one recipient: lead_id or contact_id")
        return self


APPLY_MODELS: dict[str, type[_Apply]] = {
    "create_crm_task": CreateCrmTask, "update_deal_stage": UpdateDealStage,
    "log_activity": LogActivity, "send_outreach_email": SendOutreachEmail}


class SuggestedAction(Strict):
    """Seed 000 section 2.2: the proposed Braid tool call."""

    action: CrmWriteTool
    payload: dict[str, Any]


class EnqueueSuggestion(Strict):
    suggestion_id: str = Field(min_length=1, max_length=64)
    trigger_id: TriggerId
    record_id: str = Field(min_length=1, max_length=64)
    trigger_context: dict[str, Any] = {}
    event_id: str = Field(min_length=1, max_length=200)
    action: SuggestedAction
    confidence: float = Field(ge=0, le=1, allow_inf_nan=False)
    reasoning: str = Field(min_length=1, max_length=4000)
    apply_action_id: str = Field(min_length=1, max_length=64,
                                 description="the proposal of this run that applies it")


class CloseSuggestion(Strict):
    suggestion_id: str = Field(min_length=1, max_length=64)
    status: Literal["rejected", "failed"]
    reviewed_by: str | None = Field(default=None, max_length=200)
    note: str = Field(min_length=1, max_length=2000)


# --------------------------------------------------------------------------- helpers



def _lead_out(ctx: ToolContext, lead: CrmLead) -> LeadOut:
    return LeadOut(lead_id=lead.id, name=lead.name, company=lead.company, title=lead.title,
                   email=lead.email, do_not_contact=lead.do_not_contact, source=lead.source,
                   status=lead.status, owner=lead.owner, product_interest=lead.product_interest,
                   last_activity_at=lead.last_activity_at,
                   days_since_activity=_days(ctx.now, lead.last_activity_at) or 0)


def _activities(ctx: ToolContext, column: Any, value: str, *, tasks: bool,
                limit: int = RECENT) -> list[ActivityOut]:
    """Open tasks by due date (`tasks`), else what happened, newest first."""
    q = select(CrmActivity).where(CrmActivity.tenant_id == ctx.tenant_id, column == value)
    if tasks:
        q = q.where(CrmActivity.kind == "task", CrmActivity.status == "open").order_by(
            CrmActivity.due_date, CrmActivity.id)
    else:
        q = q.where(CrmActivity.kind != "task").order_by(CrmActivity.occurred_at.desc(),
                                                         CrmActivity.id)
    return [ActivityOut.of(a) for a in ctx.session.scalars(q.limit(limit))]


def _pending(ctx: ToolContext, record_id: str) -> list[SuggestionOut]:
    rows = ctx.session.scalars(select(CrmSuggestion).where(
        CrmSuggestion.tenant_id == ctx.tenant_id, CrmSuggestion.record_id == record_id,
        CrmSuggestion.status == "pending").order_by(CrmSuggestion.created_at))
    return [SuggestionOut.of(s) for s in rows]


def review_of(ctx: ToolContext, s: CrmSuggestion) -> ReviewOut:
    """The review of a suggestion from the run that queued it: the run's status, the latest
    approval that held its apply action and the decision on it, and why the run stopped."""
    run = ctx.session.get(Run, s.thread_id)
    if run is not None and run.tenant_id != ctx.tenant_id:
        run = None
    approvals = ctx.session.scalars(select(Approval).where(
        Approval.tenant_id == ctx.tenant_id, Approval.thread_id == s.thread_id)
        .order_by(Approval.created_at.desc(), Approval.id.desc())).all()
    held = next((a for a in approvals
                 if s.apply_action_id in (a.request or {}).get("action_ids", [])), None)
    decision = message = None
    if held is not None and held.status == "decided" and held.decision:
        ids = held.request["action_ids"]
        picked = held.decision.get("decisions", [])[ids.index(s.apply_action_id)]
        decision, message = picked.get("type"), picked.get("message")
    exc = ctx.session.get(AgentException, f"EXC-{s.thread_id}")
    problem = (f"{exc.title}: {exc.details}" if exc is not None and exc.tenant_id == ctx.tenant_id
               else run.error if run is not None else None)
    still_open = (run is None or run.status in RUN_ACTIVE
                  or (held is not None and held.status in ("pending", "expired")))
    return ReviewOut(run_status=run.status if run else None,
                     approval_id=held.id if held else None,
                     approval_status=held.status if held else None, decision=decision,
                     reviewer=held.decided_by if held else None, message=message,
                     decided_at=held.decided_at if held else None, problem=problem,
                     open=still_open)


def _approver(ctx: ToolContext, s: CrmSuggestion) -> str | None:
    """Who approved this suggestion's apply action in its run (the latest such approval)."""
    rows = ctx.session.scalars(select(Approval).where(
        Approval.tenant_id == ctx.tenant_id, Approval.thread_id == s.thread_id,
        Approval.status == "decided").order_by(Approval.decided_at.desc())).all()
    for a in rows:
        ids = (a.request or {}).get("action_ids", [])
        decisions = (a.decision or {}).get("decisions", [])
        if s.apply_action_id in ids and len(decisions) > ids.index(s.apply_action_id) and \
                decisions[ids.index(s.apply_action_id)].get("type") == "approve":
            return a.decided_by
    return None


def _claim(ctx: ToolContext, tool: str, suggestion_id: str) -> tuple[CrmSuggestion, str]:
    """Safe Apply, validate: the suggestion exists, proposes this tool, is pending, belongs
    to this run, and a person approved this run's action that applies it."""
    s: CrmSuggestion = ctx.fetch(CrmSuggestion, suggestion_id, tool, "suggestion")
    if s.action_name != tool:
        raise PermanentToolError(tool, f"suggestion {s.id} proposes {s.action_name}, not {tool}")
    if s.status != "pending":
        raise PermanentToolError(tool, f"suggestion {s.id} is {s.status}; only a pending "
                                       "suggestion is applied")
    if not ctx.thread_id or s.thread_id != ctx.thread_id:
        raise PermanentToolError(tool, f"suggestion {s.id} belongs to run {s.thread_id}; only "
                                       "that run applies it")
    approver = _approver(ctx, s)
    if approver is None:
        raise PermanentToolError(tool, f"suggestion {s.id} has no recorded approval of "
                                       f"{s.apply_action_id}: CRM writes are applied only "
                                       "after a person approves them")
    return s, approver


def _applied(ctx: ToolContext, s: CrmSuggestion, approver: str, args: _Apply,
             result: dict[str, Any]) -> None:
    """Safe Apply, update status (same transaction as the mutation). An edited payload
    replaces the queued one; the original is kept in apply_result."""
    payload = args.model_dump(mode="json", exclude={"suggestion_id"})
    queued = dict(s.action.get("payload", {}))
    outcome: dict[str, Any] = {"ok": True, **result}
    if payload != queued:
        outcome["edited_from"] = queued
    s.action = {"action": s.action_name, "payload": payload}
    s.status, s.approved_by, s.reviewed_by = "applied", approver, approver
    s.applied_at = s.updated_at = ctx.now
    s.apply_result = outcome


def _check_links(ctx: ToolContext, tool: str, links: dict[str, str | None]) -> None:
    models = {"lead_id": (CrmLead, "lead"), "contact_id": (CrmContact, "contact"),
              "account_id": (CrmAccount, "account"), "deal_id": (CrmDeal, "deal")}
    for arg, value in links.items():
        if value is not None:
            model, what = models[arg]
            ctx.fetch(model, value, tool, what)


def _touch(ctx: ToolContext, act: CrmActivity) -> None:
    """Customer engagement (not notes or tasks) makes every linked record recent again."""
    if act.kind not in TOUCH_KINDS:
        return
    for model, key in ((CrmLead, act.lead_id), (CrmContact, act.contact_id),
                       (CrmAccount, act.account_id), (CrmDeal, act.deal_id)):
        if key is None:
            continue
        row = ctx.session.get(model, (ctx.tenant_id, key))
        if row is not None and (row.last_activity_at is None
                                or row.last_activity_at < act.occurred_at):
            row.last_activity_at = act.occurred_at


def _new_activity(ctx: ToolContext, tool: str, activity_id: str, **fields: Any) -> CrmActivity:
    if ctx.session.get(CrmActivity, (ctx.tenant_id, activity_id)) is not None:
        raise PermanentToolError(tool, f"activity {activity_id!r} already exists")
    act = CrmActivity(tenant_id=ctx.tenant_id, id=activity_id, occurred_at=ctx.now,
                      created_at=ctx.now, **fields)
    ctx.session.add(act)
    ctx.session.flush()
    return act


def _record_exists(ctx: ToolContext, record_id: str) -> bool:
    return any(ctx.session.get(m, (ctx.tenant_id, record_id)) is not None
               for m in (CrmLead, CrmDeal, CrmAccount))


# --------------------------------------------------------------------------- write previews

TASK = Preview(
    record="activity", read_tool="get_crm_activity", key="activity_id", creates=True,
    sets={"activity_id": "activity_id", "subject": "description", "owner": "owner",
          "due_date": "due_date", "priority": "priority", "lead_id": "lead_id",
          "deal_id": "deal_id", "account_id": "account_id", "contact_id": "contact_id",
          "suggestion_id": "suggestion_id"},
    fixed={"kind": "task", "status": "open"},
    touches={"lead_id": "lead", "deal_id": "deal", "account_id": "account",
             "suggestion_id": "suggestion"})
DEAL_STAGE = Preview(
    record="deal", read_tool="get_deal_360", key="deal_id",
    sets={"stage": "stage", "close_date": "close_date"},
    touches={"suggestion_id": "suggestion"})
ACTIVITY = Preview(
    record="activity", read_tool="get_crm_activity", key="activity_id", creates=True,
    sets={"activity_id": "activity_id", "kind": "kind", "subject": "subject", "body": "body",
          "owner": "owner", "lead_id": "lead_id", "deal_id": "deal_id",
          "account_id": "account_id", "contact_id": "contact_id",
          "suggestion_id": "suggestion_id"},
    fixed={"status": "done"},
    touches={"lead_id": "lead", "deal_id": "deal", "account_id": "account",
             "suggestion_id": "suggestion"})
OUTREACH = Preview(
    record="activity", read_tool="get_crm_activity", key="activity_id", creates=True,
    sets={"activity_id": "activity_id", "subject": "subject", "body": "body",
          "owner": "sender", "lead_id": "lead_id", "contact_id": "contact_id",
          "deal_id": "deal_id", "suggestion_id": "suggestion_id"},
    fixed={"kind": "email_out", "status": "done"},
    notifies={"lead_id": "lead", "contact_id": "contact"},
    touches={"suggestion_id": "suggestion"})
ENQUEUE = Preview(
    record="suggestion", read_tool="get_suggestion", key="suggestion_id", creates=True,
    sets={"suggestion_id": "suggestion_id", "trigger_id": "trigger_id",
          "record_id": "record_id", "trigger_context": "trigger_context",
          "event_id": "event_id", "action": "action", "confidence": "confidence",
          "reasoning": "reasoning", "apply_action_id": "apply_action_id"},
    fixed={"status": "pending"})
CLOSE = Preview(
    record="suggestion", read_tool="get_suggestion", key="suggestion_id",
    sets={"status": "status", "reviewed_by": "reviewed_by", "review_note": "note"})


# --------------------------------------------------------------------------- registration


def register(registry: ToolRegistry) -> None:
    """Add the CRM tools to `registry`."""

    # ----------------------------------------------------------------------- reads

    @registry.tool(name="get_lead_360", kind=ToolKind.READ, input_model=LeadRef,
                   output_model=Lead360,
                   description="A lead with its recent activities, open tasks and pending "
                               "suggestions.")
    def get_lead_360(ctx: ToolContext, args: LeadRef) -> Lead360:
        lead = ctx.fetch(CrmLead, args.lead_id, "get_lead_360", "lead")
        return Lead360(**_lead_out(ctx, lead).model_dump(),
                       activities=_activities(ctx, CrmActivity.lead_id, lead.id, tasks=False),
                       open_tasks=_activities(ctx, CrmActivity.lead_id, lead.id, tasks=True),
                       pending_suggestions=_pending(ctx, lead.id))

    @registry.tool(name="get_deal_360", kind=ToolKind.READ, input_model=DealRef,
                   output_model=Deal360,
                   description="A deal with its account, primary contact, change history, "
                               "recent activities, open tasks and pending suggestions.")
    def get_deal_360(ctx: ToolContext, args: DealRef) -> Deal360:
        deal = ctx.fetch(CrmDeal, args.deal_id, "get_deal_360", "deal")
        account = ctx.fetch(CrmAccount, deal.account_id, "get_deal_360", "account")
        contact = (ctx.session.get(CrmContact, (ctx.tenant_id, deal.primary_contact_id))
                   if deal.primary_contact_id else None)
        history = ctx.session.scalars(select(CrmDealChange).where(
            CrmDealChange.tenant_id == ctx.tenant_id, CrmDealChange.deal_id == deal.id)
            .order_by(CrmDealChange.changed_at.desc()).limit(20))
        return Deal360(**DealOut.of(deal).model_dump(),
                       days_since_activity=_days(ctx.now, deal.last_activity_at) or 0,
                       account=AccountOut.of(account),
                       primary_contact=ContactOut.of(contact) if contact else None,
                       history=[DealChangeOut.of(h) for h in history],
                       activities=_activities(ctx, CrmActivity.deal_id, deal.id, tasks=False),
                       open_tasks=_activities(ctx, CrmActivity.deal_id, deal.id, tasks=True),
                       pending_suggestions=_pending(ctx, deal.id))

    @registry.tool(name="get_account_360", kind=ToolKind.READ, input_model=AccountRef,
                   output_model=Account360,
                   description="An account with contacts, deals, support load, renewal, "
                               "recent activities, open tasks and pending suggestions.")
    def get_account_360(ctx: ToolContext, args: AccountRef) -> Account360:
        acct = ctx.fetch(CrmAccount, args.account_id, "get_account_360", "account")
        contacts = ctx.session.scalars(select(CrmContact).where(
            CrmContact.tenant_id == ctx.tenant_id, CrmContact.account_id == acct.id)
            .order_by(CrmContact.id))
        deals = ctx.session.scalars(select(CrmDeal).where(
            CrmDeal.tenant_id == ctx.tenant_id, CrmDeal.account_id == acct.id)
            .order_by(CrmDeal.close_date.desc(), CrmDeal.id))
        return Account360(
            **AccountOut.of(acct).model_dump(),
            days_since_activity=_days(ctx.now, acct.last_activity_at) or 0,
            days_to_renewal=((acct.renewal_date - ctx.now.date()).days
                             if acct.renewal_date else None),
            contacts=[ContactOut.of(c) for c in contacts],
            deals=[DealOut.of(d) for d in deals],
            activities=_activities(ctx, CrmActivity.account_id, acct.id, tasks=False),
            open_tasks=_activities(ctx, CrmActivity.account_id, acct.id, tasks=True),
            pending_suggestions=_pending(ctx, acct.id))

    @registry.tool(name="get_activity_timeline", kind=ToolKind.READ,
                   input_model=TimelineQuery, output_model=Timeline,
                   description="Activities of one lead, contact, account or deal, newest "
                               "first (tasks included unless include_tasks is false).")
    def get_activity_timeline(ctx: ToolContext, args: TimelineQuery) -> Timeline:
        column, value = next((getattr(CrmActivity, k), v) for k, v in args.links().items()
                             if v is not None)
        q = select(CrmActivity).where(CrmActivity.tenant_id == ctx.tenant_id, column == value)
        if not args.include_tasks:
            q = q.where(CrmActivity.kind != "task")
        rows = ctx.session.scalars(q.order_by(CrmActivity.occurred_at.desc(), CrmActivity.id)
                                   .limit(args.limit))
        return Timeline(activities=[ActivityOut.of(a) for a in rows])

    @registry.tool(name="get_crm_activity", kind=ToolKind.READ, input_model=ActivityRef,
                   output_model=ActivityOut, description="Read one activity or task.")
    def get_crm_activity(ctx: ToolContext, args: ActivityRef) -> ActivityOut:
        return ActivityOut.of(ctx.fetch(CrmActivity, args.activity_id, "get_crm_activity",
                                        "activity"))

    @registry.tool(name="get_suggestion", kind=ToolKind.READ, input_model=SuggestionRef,
                   output_model=SuggestionDetail,
                   description="One queued suggestion with where its review stands.")
    def get_suggestion(ctx: ToolContext, args: SuggestionRef) -> SuggestionDetail:
        s = ctx.fetch(CrmSuggestion, args.suggestion_id, "get_suggestion", "suggestion")
        return SuggestionDetail(**SuggestionOut.of(s).model_dump(), review=review_of(ctx, s))

    @registry.tool(name="list_suggestions", kind=ToolKind.READ, input_model=ListSuggestions,
                   output_model=SuggestionList,
                   description="The suggestion queue, newest first, by status and/or record.")
    def list_suggestions(ctx: ToolContext, args: ListSuggestions) -> SuggestionList:
        q = select(CrmSuggestion).where(CrmSuggestion.tenant_id == ctx.tenant_id)
        if args.status:
            q = q.where(CrmSuggestion.status == args.status)
        if args.record_id:
            q = q.where(CrmSuggestion.record_id == args.record_id)
        rows = ctx.session.scalars(q.order_by(CrmSuggestion.created_at.desc(),
                                              CrmSuggestion.id).limit(args.limit))
        return SuggestionList(suggestions=[SuggestionOut.of(s) for s in rows])

    # ----------------------------------------------------------------------- queue writes

    def enqueue_facts(ctx: ToolContext, args: EnqueueSuggestion) -> dict[str, object]:
        return {"category": args.action.action}  # lets a rule keep some actions unsuggested

    @registry.tool(name="enqueue_suggestion", kind=ToolKind.WRITE, reversible=True,
                   input_model=EnqueueSuggestion, output_model=SuggestionOut,
                   cost_class=CostClass.CHEAP, risk=RiskClass.LOW, policy_facts=enqueue_facts,
                   preview=ENQUEUE,
                   description="Queue a suggestion (proposed CRM tool call, confidence, "
                               "reasoning) for review; changes nothing in the CRM.")
    def enqueue_suggestion(ctx: ToolContext, args: EnqueueSuggestion) -> SuggestionOut:
        tool = "enqueue_suggestion"
        if ctx.session.get(CrmSuggestion, (ctx.tenant_id, args.suggestion_id)) is not None:
            raise PermanentToolError(tool, f"suggestion {args.suggestion_id!r} already exists")
        model = APPLY_MODELS[args.action.action]
        try:  # seed 000 section 4.3: a known mutation tool with a proper argument structure
            parsed = model.model_validate({**args.action.payload,
                                           "suggestion_id": args.suggestion_id})
        except ValidationError as exc:
            detail = "; ".join(f"{e['field']}: {e['message']}"
                               for e in pydantic_errors(exc, prefix="action.payload."))
            raise PermanentToolError(tool, f"payload does not fit {args.action.action}: "
                                           f"{detail}") from None
        if not _record_exists(ctx, args.record_id):
            raise PermanentToolError(tool, f"record {args.record_id!r} does not exist")
        waiting = ctx.session.scalar(select(CrmSuggestion.id).where(
            CrmSuggestion.tenant_id == ctx.tenant_id, CrmSuggestion.record_id == args.record_id,
            CrmSuggestion.action_name == args.action.action,
            CrmSuggestion.status == "pending"))
        if waiting is not None:
            raise PermanentToolError(tool, f"suggestion {waiting} ({args.action.action} on "
                                           f"{args.record_id}) is already pending")
        s = CrmSuggestion(
            tenant_id=ctx.tenant_id, id=args.suggestion_id, trigger_id=args.trigger_id,
            record_id=args.record_id, trigger_context=args.trigger_context,
            event_id=args.event_id, thread_id=ctx.thread_id or "",
            apply_action_id=args.apply_action_id, action_name=args.action.action,
            action={"action": args.action.action,
                    "payload": parsed.model_dump(mode="json", exclude={"suggestion_id"})},
            status="pending", confidence=args.confidence, reasoning=args.reasoning,
            created_at=ctx.now, updated_at=ctx.now)
        ctx.session.add(s)
        ctx.session.flush()
        return SuggestionOut.of(s)

    def close_facts(ctx: ToolContext, args: CloseSuggestion) -> dict[str, object]:
        return {"category": args.status}

    @registry.tool(name="close_suggestion", kind=ToolKind.WRITE, reversible=True,
                   input_model=CloseSuggestion, output_model=SuggestionOut,
                   cost_class=CostClass.CHEAP, risk=RiskClass.LOW, policy_facts=close_facts,
                   preview=CLOSE,
                   description="Record that a pending suggestion's review ended without an "
                               "apply (rejected, or approved but not applied).")
    def close_suggestion(ctx: ToolContext, args: CloseSuggestion) -> SuggestionOut:
        tool = "close_suggestion"
        s = ctx.fetch(CrmSuggestion, args.suggestion_id, tool, "suggestion")
        if s.status != "pending":
            raise PermanentToolError(tool, f"suggestion {s.id} is already {s.status}")
        if review_of(ctx, s).open:  # never behind a reviewer's back
            raise PermanentToolError(tool, f"suggestion {s.id} is still under review in run "
                                           f"{s.thread_id}")
        s.status, s.reviewed_by, s.review_note = args.status, args.reviewed_by, args.note
        s.apply_result = {"ok": False, "error": args.note} if args.status == "failed" else None
        s.updated_at = ctx.now
        return SuggestionOut.of(s)

    # ----------------------------------------------------------------------- CRM mutations

    def task_facts(ctx: ToolContext, args: CreateCrmTask) -> dict[str, object]:
        return {"category": "task", "priority": args.priority}

    @registry.tool(name="create_crm_task", kind=ToolKind.WRITE, reversible=True,
                   input_model=CreateCrmTask, output_model=ActivityOut,
                   cost_class=CostClass.CHEAP, risk=RiskClass.LOW, policy_facts=task_facts,
                   preview=TASK,
                   description="Apply an approved suggestion: create a task (a planned "
                               "activity with a due date) for a rep; cancellable.")
    def create_crm_task(ctx: ToolContext, args: CreateCrmTask) -> ActivityOut:
        tool = "create_crm_task"
        s, approver = _claim(ctx, tool, args.suggestion_id)
        _check_links(ctx, tool, args.links())
        if args.due_date < ctx.now.date():
            raise PermanentToolError(tool, f"due_date {args.due_date} is in the past")
        act = _new_activity(ctx, tool, args.activity_id, kind="task", status="open",
                            subject=args.description, body="", owner=args.owner,
                            due_date=args.due_date, priority=args.priority,
                            suggestion_id=s.id, **args.links())
        _applied(ctx, s, approver, args, {"activity_id": act.id})
        return ActivityOut.of(act)

    def stage_facts(ctx: ToolContext, args: UpdateDealStage) -> dict[str, object]:
        return {"category": args.stage}  # the target stage (closing is a rep's call)

    @registry.tool(name="update_deal_stage", kind=ToolKind.WRITE, reversible=True,
                   input_model=UpdateDealStage, output_model=DealOut,
                   cost_class=CostClass.CHEAP, risk=RiskClass.MEDIUM, policy_facts=stage_facts,
                   preview=DEAL_STAGE,
                   description="Apply an approved suggestion: move a deal to another stage "
                               "(and close date), if it is still where the suggestion saw it; "
                               "recorded in the deal's history.")
    def update_deal_stage(ctx: ToolContext, args: UpdateDealStage) -> DealOut:
        tool = "update_deal_stage"
        s, approver = _claim(ctx, tool, args.suggestion_id)
        deal: CrmDeal = ctx.fetch(CrmDeal, args.deal_id, tool, "deal")
        if deal.stage != args.expected_stage:
            raise PermanentToolError(tool, f"deal {deal.id} is {deal.stage} now, not "
                                           f"{args.expected_stage}: the suggestion is stale")
        close = args.close_date or deal.close_date
        if args.stage == deal.stage and close == deal.close_date:
            raise PermanentToolError(tool, f"deal {deal.id} is already {deal.stage}")
        if args.stage in OPEN_STAGES and deal.stage in CLOSED_STAGES and args.close_date is None:
            raise PermanentToolError(tool, "reopening a closed deal needs a new close_date")
        if args.stage in OPEN_STAGES and close < ctx.now.date():
            raise PermanentToolError(tool, f"close_date {close} of an open deal is in the past")
        ctx.session.add(CrmDealChange(
            tenant_id=ctx.tenant_id, id=_new_id("DH", ctx, deal.id), deal_id=deal.id,
            changed_at=ctx.now, changed_by=f"autopilot:crm for {approver} ({s.id})",
            from_stage=deal.stage, to_stage=args.stage, from_close_date=deal.close_date,
            to_close_date=close, from_amount=deal.amount, to_amount=deal.amount,
            note=args.reason))
        deal.stage, deal.close_date, deal.updated_at = args.stage, close, ctx.now
        _applied(ctx, s, approver, args, {"deal_id": deal.id, "stage": args.stage,
                                          "close_date": close.isoformat()})
        ctx.session.flush()
        return DealOut.of(deal)

    def activity_facts(ctx: ToolContext, args: LogActivity) -> dict[str, object]:
        return {"category": args.kind}

    @registry.tool(name="log_activity", kind=ToolKind.WRITE, reversible=True,
                   input_model=LogActivity, output_model=ActivityOut,
                   cost_class=CostClass.CHEAP, risk=RiskClass.LOW, policy_facts=activity_facts,
                   preview=ACTIVITY,
                   description="Apply an approved suggestion: log a note, call or meeting on "
                               "the timeline (notes do not count as customer engagement).")
    def log_activity(ctx: ToolContext, args: LogActivity) -> ActivityOut:
        tool = "log_activity"
        s, approver = _claim(ctx, tool, args.suggestion_id)
        _check_links(ctx, tool, args.links())
        act = _new_activity(ctx, tool, args.activity_id, kind=args.kind, status="done",
                            subject=args.subject, body=args.body, owner=args.owner,
                            priority="normal", suggestion_id=s.id, **args.links())
        _touch(ctx, act)
        _applied(ctx, s, approver, args, {"activity_id": act.id})
        return ActivityOut.of(act)

    def outreach_facts(ctx: ToolContext, args: SendOutreachEmail) -> dict[str, object]:
        return {"recipients": 1, "external": True, "category": "email"}

    @registry.tool(name="send_outreach_email", kind=ToolKind.WRITE, reversible=False,
                   input_model=SendOutreachEmail, output_model=ActivityOut,
                   cost_class=CostClass.MED, risk=RiskClass.MEDIUM,
                   policy_facts=outreach_facts, preview=OUTREACH,
                   description="Apply an approved suggestion: email a lead or contact outside "
                               "the company (cannot be unsent); logged as an outbound email.")
    def send_outreach_email(ctx: ToolContext, args: SendOutreachEmail) -> ActivityOut:
        tool = "send_outreach_email"
        s, approver = _claim(ctx, tool, args.suggestion_id)
        account_id = None
        if args.lead_id is not None:
            person: CrmLead | CrmContact = ctx.fetch(CrmLead, args.lead_id, tool, "lead")
        else:
            assert args.contact_id is not None
            person = ctx.fetch(CrmContact, args.contact_id, tool, "contact")
            account_id = person.account_id
        if not person.email:
            raise PermanentToolError(tool, f"{person.id} has no email address")
        if person.do_not_contact:
            raise PermanentToolError(tool, f"{person.id} asked not to be contacted")
        if args.deal_id is not None:
            ctx.fetch(CrmDeal, args.deal_id, tool, "deal")
        act = _new_activity(ctx, tool, args.activity_id, kind="email_out", status="done",
                            subject=args.subject, body=args.body, owner=args.sender,
                            priority="normal", suggestion_id=s.id, lead_id=args.lead_id,
                            contact_id=args.contact_id, account_id=account_id,
                            deal_id=args.deal_id)
        _touch(ctx, act)
        _applied(ctx, s, approver, args, {"activity_id": act.id, "to": person.email})
        return ActivityOut.of(act)

