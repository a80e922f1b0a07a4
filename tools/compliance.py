"""Compliance + PM tools (seed 001, workflow C) over the sandbox: the shared compliance items,
PM schedules, work orders and vendors, and the compliance tasks, contacts and notices of
`autopilot.sandbox.compliance`. Every query is scoped to the caller's tenant.

Every write's policy facts carry `days_until_due` of the obligation it serves, computed here
from the record at the moment of the decision (never taken from the planner), so the Cedar
rules for the critical window and for overdue items see the truth at plan time and again at
execute time.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select

from autopilot.models import ComplianceItem, PMSchedule, Property, Vendor, WorkOrder
from autopilot.sandbox.compliance import (
    LIVE_TASK_STATUSES,
    ComplianceContact,
    ComplianceNotice,
    ComplianceTask,
)
from tools.maintenance import MAX_AMOUNT, Category, WorkOrderOut
from tools.registry import (
    CostClass,
    PermanentToolError,
    Preview,
    RiskClass,
    ToolContext,
    ToolKind,
    ToolRegistry,
)

TaskPriority = Literal["ROUTINE", "URGENT"]
Channel = Literal["in_app", "email", "sms"]
DAY_SECONDS = 86_400


@dataclass(frozen=True)
class Obligation:
    """What discharging one kind of compliance item takes."""

    label: str
    trade: str | None  # the licensed contractor's trade (a work order); None: staff does it
    typical_cost: float  # the contractor's usual fee for the inspection / report, USD
    cycle_days: int | None  # the next occurrence falls this long after the due date


# NYC obligations of the sandbox portfolio (seed 001 "compliance" items). A kind not listed
# is a staff task with no recurrence.
OBLIGATIONS: dict[str, Obligation] = {
    "GAS_PIPING_INSPECTION": Obligation(
        "Gas piping inspection by a Licensed Master Plumber (LL152)", "PLUMBING", 650, 4 * 365),
    "BOILER_INSPECTION": Obligation(
        "Low-pressure boiler inspection by an approved inspector", "HVAC", 350, 365),
    "FACADE_INSPECTION": Obligation(
        "FISP facade inspection and report by a QEWI (LL11)", "STRUCTURAL", 4500, 5 * 365),
    "ELEVATOR_INSPECTION": Obligation(
        "Periodic elevator inspection and test", "ELEVATOR", 450, 365),
    "ENERGY_BENCHMARKING": Obligation(
        "Energy and water benchmarking filing (LL84)", None, 0, 365),
    "BEDBUG_REPORT": Obligation(
        "Annual bedbug infestation history filing with HPD", None, 0, 365),
    "LEAD_PAINT_ANNUAL_NOTICE": Obligation(
        "Annual lead paint notice and visual inspection (LL1)", None, 0, 365),
}
STAFF_TASK = Obligation("Compliance obligation", None, 0, None)


def obligation(kind: str) -> Obligation:
    return OBLIGATIONS.get(kind, STAFF_TASK)


def days_until_due(due_at: datetime, now: datetime) -> int:
    """Whole days to the deadline: days ahead round up (due in 4 hours is 1, exactly due is
    0); any moment past the deadline is negative, counting whole days late (3 days and 4
    hours late is -3, one hour late is -1)."""
    days = (due_at - now).total_seconds() / DAY_SECONDS
    return math.ceil(days) if days >= 0 else -max(1, math.floor(-days))


def next_item_id(item_id: str, due_at: datetime) -> str:
    """Id of an item's next occurrence: `<base>@<due date>` (a hash when that is too long)."""
    base = item_id.split("@", 1)[0]
    candidate = f"{base}@{due_at:%Y-%m-%d}"
    if len(candidate) <= 64:
        return candidate
    return "CI-" + hashlib.sha256(candidate.encode()).hexdigest()[:20].upper()


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------- output models


class ComplianceItemOut(Strict):
    id: str
    property_id: str
    kind: str
    label: str
    description: str
    authority: str
    due_at: datetime
    status: str
    days_until_due: int
    contractor_trade: str | None
    typical_cost: float
    cycle_days: int | None

    @classmethod
    def of(cls, item: ComplianceItem, now: datetime) -> ComplianceItemOut:
        ob = obligation(item.kind)
        label = item.description if ob is STAFF_TASK else ob.label  # unknown kinds: its own
        return cls(id=item.id, property_id=item.property_id, kind=item.kind, label=label,
                   description=item.description, authority=item.authority,
                   due_at=item.due_at, status=item.status,
                   days_until_due=days_until_due(item.due_at, now), contractor_trade=ob.trade,
                   typical_cost=ob.typical_cost, cycle_days=ob.cycle_days)


class ComplianceTaskOut(Strict):
    id: str
    compliance_item_id: str | None
    pm_schedule_id: str | None
    property_id: str
    cycle_due_at: datetime
    title: str
    assignee_id: str
    due_at: datetime
    priority: str
    status: str
    work_order_id: str | None
    evidence_ref: str | None
    completed_by: str | None
    completed_at: datetime | None
    notes: list[str]

    @classmethod
    def of(cls, t: ComplianceTask) -> ComplianceTaskOut:
        return cls(id=t.id, compliance_item_id=t.compliance_item_id,
                   pm_schedule_id=t.pm_schedule_id, property_id=t.property_id,
                   cycle_due_at=t.cycle_due_at, title=t.title, assignee_id=t.assignee_id,
                   due_at=t.due_at, priority=t.priority, status=t.status,
                   work_order_id=t.work_order_id, evidence_ref=t.evidence_ref,
                   completed_by=t.completed_by, completed_at=t.completed_at,
                   notes=list(t.notes or []))


class ComplianceTaskList(Strict):
    compliance_tasks: list[ComplianceTaskOut]


class ContactOut(Strict):
    id: str
    property_id: str
    name: str
    role: str
    preferred_channel: str
    active: bool


class ContactList(Strict):
    contacts: list[ContactOut]


class NoticeOut(Strict):
    id: str
    task_id: str
    contact_id: str
    channel: str
    body: str
    created_at: datetime


class CompletionOut(Strict):
    compliance_item: ComplianceItemOut
    next_item_id: str | None = Field(description="the next occurrence, for recurring items")


# --------------------------------------------------------------------------- input models


class ItemRef(Strict):
    compliance_item_id: str = Field(min_length=1)


class TaskRef(Strict):
    task_id: str = Field(min_length=1)


class NoticeRef(Strict):
    notice_id: str = Field(min_length=1)


class PropertyRef(Strict):
    property_id: str = Field(min_length=1)


class _OneObligation(Strict):
    compliance_item_id: str | None = Field(default=None, min_length=1)
    pm_schedule_id: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _exactly_one(self) -> _OneObligation:
        if (self.compliance_item_id is None) == (self.pm_schedule_id is None):
            raise ValueError("give exactly one of compliance_item_id and pm_schedule_id")
        return self


class FindTasks(_OneObligation):
    pass


class CreateTask(_OneObligation):
    task_id: str = Field(min_length=1, max_length=64)
    assignee_id: str = Field(min_length=1)
    title: str = Field(min_length=3, max_length=300)
    due_at: AwareDatetime = Field(description="when the task must be done by")
    priority: TaskPriority


class CreateComplianceWorkOrder(_OneObligation):
    """Names the obligation as well as the task: the policy facts (days until due) come from
    the obligation, which exists before the task is written; the tool checks they match."""

    work_order_id: str = Field(min_length=1, max_length=64)
    task_id: str = Field(min_length=1)
    vendor_id: str = Field(min_length=1)
    category: Category
    priority: TaskPriority
    title: str = Field(min_length=3, max_length=300)
    description: str = Field(min_length=1, max_length=4000)
    not_to_exceed: float = Field(gt=0, le=MAX_AMOUNT, allow_inf_nan=False,
                                 description="spend ceiling the contractor may invoice")
    sla_due_at: AwareDatetime = Field(description="when the contractor's work must be done")


class NotifyAssignee(_OneObligation):
    notice_id: str = Field(min_length=1, max_length=64)
    task_id: str = Field(min_length=1)
    channel: Channel
    body: str = Field(min_length=1, max_length=1600)


class CompleteTask(Strict):
    task_id: str = Field(min_length=1)
    completed_by: str = Field(min_length=1, max_length=200)
    evidence_ref: str = Field(min_length=1, max_length=200,
                              description="inspection report, filing or certificate number")
    note: str | None = Field(default=None, max_length=2000)


class RecordCompletion(Strict):
    compliance_item_id: str = Field(min_length=1)
    task_id: str = Field(min_length=1)


# --------------------------------------------------------------------------- helpers


def _item(ctx: ToolContext, item_id: str, tool: str) -> ComplianceItem:
    return ctx.fetch(ComplianceItem, item_id, tool, "compliance item")


def _pm(ctx: ToolContext, pm_id: str, tool: str) -> PMSchedule:
    return ctx.fetch(PMSchedule, pm_id, tool, "PM schedule")


def _task(ctx: ToolContext, task_id: str, tool: str) -> ComplianceTask:
    return ctx.fetch(ComplianceTask, task_id, tool, "compliance task")


def _live(task: ComplianceTask, tool: str) -> None:
    if task.status not in LIVE_TASK_STATUSES:
        raise PermanentToolError(tool, f"compliance task {task.id} is {task.status}")


def _due_and_kind(ctx: ToolContext, item_id: str | None, pm_id: str | None,
                  tool: str) -> tuple[datetime, str]:
    """The obligation's deadline and kind (the item's kind, or the PM's trade)."""
    if item_id is not None:
        item = _item(ctx, item_id, tool)
        return item.due_at, item.kind
    assert pm_id is not None
    pm = _pm(ctx, pm_id, tool)
    return pm.next_due_at, pm.category


def _same_obligation(task: ComplianceTask, args: _OneObligation, tool: str) -> None:
    if (task.compliance_item_id, task.pm_schedule_id) != (args.compliance_item_id,
                                                          args.pm_schedule_id):
        raise PermanentToolError(tool, f"compliance task {task.id} is for "
                                       f"{task.compliance_item_id or task.pm_schedule_id}, not "
                                       f"{args.compliance_item_id or args.pm_schedule_id}")


def _obligation_facts(ctx: ToolContext, args: _OneObligation, tool: str) -> dict[str, object]:
    due, kind = _due_and_kind(ctx, args.compliance_item_id, args.pm_schedule_id, tool)
    return {"days_until_due": days_until_due(due, ctx.now), "category": kind}


def _task_facts(ctx: ToolContext, task_id: str, tool: str) -> dict[str, object]:
    task = _task(ctx, task_id, tool)
    due, kind = _due_and_kind(ctx, task.compliance_item_id, task.pm_schedule_id, tool)
    return {"days_until_due": days_until_due(due, ctx.now), "category": kind,
            "priority": task.priority}


def _note(task: ComplianceTask, ctx: ToolContext, note: str) -> None:
    task.updated_at = ctx.now
    task.notes = [*list(task.notes or []), f"{ctx.now:%Y-%m-%d %H:%M}Z {note}"]


# --------------------------------------------------------------------------- write previews

TASK_CREATE = Preview(
    record="compliance_task", read_tool="get_compliance_task", key="task_id", creates=True,
    sets={"id": "task_id", "compliance_item_id": "compliance_item_id",
          "pm_schedule_id": "pm_schedule_id", "title": "title", "assignee_id": "assignee_id",
          "due_at": "due_at", "priority": "priority"},
    fixed={"status": "OPEN"},
    touches={"compliance_item_id": "compliance_item", "pm_schedule_id": "pm_schedule",
             "assignee_id": "contact"})
WORK_ORDER_CREATE = Preview(
    record="work_order", read_tool="get_work_order", key="work_order_id", creates=True,
    sets={"id": "work_order_id", "category": "category", "priority": "priority",
          "title": "title", "description": "description", "vendor_id": "vendor_id",
          "not_to_exceed": "not_to_exceed", "sla_due_at": "sla_due_at"},
    fixed={"status": "DISPATCHED"}, money=("not_to_exceed",),
    notifies={"vendor_id": "vendor"}, touches={"vendor_id": "vendor", "task_id": "compliance_task"})
NOTICE = Preview(
    record="compliance_notice", read_tool="get_compliance_notice", key="notice_id",
    creates=True, sets={"id": "notice_id", "task_id": "task_id", "channel": "channel",
                        "body": "body"},
    notifies={"task_id": "assignee_of_task"})
TASK_COMPLETE = Preview(
    record="compliance_task", read_tool="get_compliance_task", key="task_id",
    sets={"completed_by": "completed_by", "evidence_ref": "evidence_ref"},
    fixed={"status": "DONE"}, appends={"notes": "note"})
ITEM_COMPLETION = Preview(
    record="compliance_item", read_tool="get_compliance_item", key="compliance_item_id",
    fixed={"status": "COMPLIANT"}, touches={"task_id": "compliance_task"})


# --------------------------------------------------------------------------- registration


def register(registry: ToolRegistry) -> None:
    """Add the compliance tools to `registry`."""

    # ----------------------------------------------------------------------- reads

    @registry.tool(name="get_compliance_item", kind=ToolKind.READ, input_model=ItemRef,
                   output_model=ComplianceItemOut,
                   description="One compliance item with its deadline, days until due "
                               "(negative when overdue) and what discharging it takes.")
    def get_compliance_item(ctx: ToolContext, args: ItemRef) -> ComplianceItemOut:
        return ComplianceItemOut.of(_item(ctx, args.compliance_item_id, "get_compliance_item"),
                                    ctx.now)

    @registry.tool(name="get_compliance_task", kind=ToolKind.READ, input_model=TaskRef,
                   output_model=ComplianceTaskOut, description="Read one compliance task.")
    def get_compliance_task(ctx: ToolContext, args: TaskRef) -> ComplianceTaskOut:
        return ComplianceTaskOut.of(_task(ctx, args.task_id, "get_compliance_task"))

    @registry.tool(name="find_compliance_tasks", kind=ToolKind.READ, input_model=FindTasks,
                   output_model=ComplianceTaskList,
                   description="Every task (any cycle, any status) of one compliance item or "
                               "PM schedule, newest cycle first.")
    def find_compliance_tasks(ctx: ToolContext, args: FindTasks) -> ComplianceTaskList:
        q = select(ComplianceTask).where(ComplianceTask.tenant_id == ctx.tenant_id)
        if args.compliance_item_id is not None:
            q = q.where(ComplianceTask.compliance_item_id == args.compliance_item_id)
        else:
            q = q.where(ComplianceTask.pm_schedule_id == args.pm_schedule_id)
        rows = ctx.session.scalars(q.order_by(ComplianceTask.cycle_due_at.desc(),
                                              ComplianceTask.created_at.desc())).all()
        return ComplianceTaskList(compliance_tasks=[ComplianceTaskOut.of(t) for t in rows])

    @registry.tool(name="list_compliance_contacts", kind=ToolKind.READ, input_model=PropertyRef,
                   output_model=ContactList,
                   description="Who is responsible for compliance at a property.")
    def list_compliance_contacts(ctx: ToolContext, args: PropertyRef) -> ContactList:
        rows = ctx.session.scalars(select(ComplianceContact).where(
            ComplianceContact.tenant_id == ctx.tenant_id,
            ComplianceContact.property_id == args.property_id)
            .order_by(ComplianceContact.id)).all()
        return ContactList(contacts=[ContactOut(
            id=c.id, property_id=c.property_id, name=c.name, role=c.role,
            preferred_channel=c.preferred_channel, active=c.active) for c in rows])

    @registry.tool(name="get_compliance_notice", kind=ToolKind.READ, input_model=NoticeRef,
                   output_model=NoticeOut, description="Read one notice sent to an assignee.")
    def get_compliance_notice(ctx: ToolContext, args: NoticeRef) -> NoticeOut:
        n = ctx.session.get(ComplianceNotice, (ctx.tenant_id, args.notice_id))
        if n is None:
            raise PermanentToolError("get_compliance_notice",
                                     f"notice {args.notice_id!r} does not exist")
        return NoticeOut(id=n.id, task_id=n.task_id, contact_id=n.contact_id, channel=n.channel,
                         body=n.body, created_at=n.created_at)

    # ----------------------------------------------------------------------- writes

    def task_facts(ctx: ToolContext, args: CreateTask) -> dict[str, object]:
        return {**_obligation_facts(ctx, args, "create_compliance_task"),
                "priority": args.priority}

    @registry.tool(name="create_compliance_task", kind=ToolKind.WRITE, reversible=True,
                   input_model=CreateTask, output_model=ComplianceTaskOut,
                   policy_facts=task_facts, preview=TASK_CREATE,
                   description="Open a task for the current cycle of a compliance item or an "
                               "overdue PM schedule, assigned to a property contact "
                               "(cancellable; one live task per cycle).")
    def create_compliance_task(ctx: ToolContext, args: CreateTask) -> ComplianceTaskOut:
        tool = "create_compliance_task"
        if args.compliance_item_id is not None:
            item = _item(ctx, args.compliance_item_id, tool)
            if item.status != "OPEN":
                raise PermanentToolError(tool, f"compliance item {item.id} is {item.status}")
            property_id, cycle = item.property_id, item.due_at
            same = ComplianceTask.compliance_item_id == item.id
        else:
            assert args.pm_schedule_id is not None
            pm = _pm(ctx, args.pm_schedule_id, tool)
            property_id, cycle = pm.property_id, pm.next_due_at
            same = ComplianceTask.pm_schedule_id == pm.id
        contact = ctx.session.get(ComplianceContact, (ctx.tenant_id, args.assignee_id))
        if contact is None or not contact.active or contact.property_id != property_id:
            raise PermanentToolError(tool, f"{args.assignee_id!r} is not an active compliance "
                                           f"contact of {property_id}")
        if ctx.session.get(ComplianceTask, (ctx.tenant_id, args.task_id)) is not None:
            raise PermanentToolError(tool, f"compliance task {args.task_id!r} already exists")
        live = ctx.session.scalar(select(ComplianceTask.id).where(
            ComplianceTask.tenant_id == ctx.tenant_id, same,
            ComplianceTask.cycle_due_at == cycle,
            ComplianceTask.status.in_(LIVE_TASK_STATUSES)))
        if live is not None:
            raise PermanentToolError(tool, f"task {live} already covers this cycle")
        task = ComplianceTask(
            tenant_id=ctx.tenant_id, id=args.task_id, compliance_item_id=args.compliance_item_id,
            pm_schedule_id=args.pm_schedule_id, property_id=property_id, cycle_due_at=cycle,
            title=args.title, assignee_id=contact.id, due_at=args.due_at,
            priority=args.priority, status="OPEN", notes=[],
            source_thread_id=ctx.thread_id, created_at=ctx.now, updated_at=ctx.now)
        ctx.session.add(task)
        _note(task, ctx, f"assigned to {contact.name} ({contact.role}), due "
                         f"{args.due_at:%Y-%m-%d}")
        ctx.session.flush()
        return ComplianceTaskOut.of(task)

    def work_order_facts(ctx: ToolContext, args: CreateComplianceWorkOrder) -> dict[str, object]:
        vendor = ctx.session.get(Vendor, (ctx.tenant_id, args.vendor_id))
        if vendor is None:
            raise PermanentToolError("create_compliance_work_order",
                                     f"vendor {args.vendor_id!r} does not exist")
        facts = _obligation_facts(ctx, args, "create_compliance_work_order")
        return {**facts, "spend_cents": int(round(args.not_to_exceed * 100)),
                "category": args.category, "priority": args.priority, "vendor_id": vendor.id,
                "vendor_open_work_orders": vendor.open_work_orders, "external": True}

    @registry.tool(name="create_compliance_work_order", kind=ToolKind.WRITE, reversible=True,
                   input_model=CreateComplianceWorkOrder, output_model=WorkOrderOut,
                   cost_class=CostClass.MED, risk=RiskClass.MEDIUM,
                   policy_facts=work_order_facts, preview=WORK_ORDER_CREATE,
                   description="Book a licensed contractor for a compliance task: a work order "
                               "dispatched to the vendor with a not-to-exceed amount, linked "
                               "to the task (cancellable).")
    def create_compliance_work_order(ctx: ToolContext,
                                     args: CreateComplianceWorkOrder) -> WorkOrderOut:
        tool = "create_compliance_work_order"
        task = _task(ctx, args.task_id, tool)
        _live(task, tool)
        _same_obligation(task, args, tool)
        if task.work_order_id is not None:
            raise PermanentToolError(tool, f"task {task.id} already has work order "
                                           f"{task.work_order_id}")
        vendor = ctx.session.get(Vendor, (ctx.tenant_id, args.vendor_id))
        if vendor is None or not vendor.active:
            raise PermanentToolError(tool, f"vendor {args.vendor_id!r} is not an active vendor")
        if args.category not in vendor.categories:
            raise PermanentToolError(tool, f"vendor {vendor.id} does not serve {args.category}")
        if ctx.session.get(WorkOrder, (ctx.tenant_id, args.work_order_id)) is not None:
            raise PermanentToolError(tool, f"work order {args.work_order_id!r} already exists")
        if ctx.session.get(Property, (ctx.tenant_id, task.property_id)) is None:
            raise PermanentToolError(tool, f"property {task.property_id!r} does not exist")
        source = (f"compliance:{task.compliance_item_id}" if task.compliance_item_id
                  else f"pm:{task.pm_schedule_id}")
        wo = WorkOrder(tenant_id=ctx.tenant_id, id=args.work_order_id,
                       property_id=task.property_id, unit_id=None, category=args.category,
                       priority=args.priority, status="DISPATCHED", title=args.title,
                       description=args.description, estimated_cost=args.not_to_exceed,
                       not_to_exceed=args.not_to_exceed, vendor_id=vendor.id,
                       sla_due_at=args.sla_due_at, source_ref=source,
                       notes=[f"{ctx.now:%Y-%m-%d %H:%M}Z compliance task {task.id}: "
                              f"dispatched to {vendor.name} (NTE {args.not_to_exceed:.2f})"],
                       created_at=ctx.now, updated_at=ctx.now)
        ctx.session.add(wo)
        vendor.open_work_orders += 1
        task.work_order_id, task.status = wo.id, "IN_PROGRESS"
        _note(task, ctx, f"work order {wo.id} with {vendor.name}")
        ctx.session.flush()
        return WorkOrderOut.of(wo)

    def notice_facts(ctx: ToolContext, args: NotifyAssignee) -> dict[str, object]:
        return {**_obligation_facts(ctx, args, "notify_compliance_assignee"),
                "recipients": 1, "external": False}

    @registry.tool(name="notify_compliance_assignee", kind=ToolKind.WRITE, reversible=False,
                   input_model=NotifyAssignee, output_model=NoticeOut,
                   policy_facts=notice_facts, preview=NOTICE,
                   description="Tell a task's assignee about it (cannot be unsent); the "
                               "recipient is always the task's assignee.")
    def notify_compliance_assignee(ctx: ToolContext, args: NotifyAssignee) -> NoticeOut:
        tool = "notify_compliance_assignee"
        task = _task(ctx, args.task_id, tool)
        if task.status == "CANCELLED":
            raise PermanentToolError(tool, f"compliance task {task.id} is CANCELLED")
        _same_obligation(task, args, tool)
        contact = ctx.session.get(ComplianceContact, (ctx.tenant_id, task.assignee_id))
        if contact is None or not contact.active:
            raise PermanentToolError(tool, f"assignee {task.assignee_id!r} is not active")
        if ctx.session.get(ComplianceNotice, (ctx.tenant_id, args.notice_id)) is not None:
            raise PermanentToolError(tool, f"notice {args.notice_id!r} already exists")
        notice = ComplianceNotice(tenant_id=ctx.tenant_id, id=args.notice_id, task_id=task.id,
                                  contact_id=contact.id, channel=args.channel, body=args.body,
                                  created_at=ctx.now)
        ctx.session.add(notice)
        ctx.session.flush()
        return NoticeOut(id=notice.id, task_id=task.id, contact_id=contact.id,
                         channel=notice.channel, body=notice.body, created_at=ctx.now)

    def complete_facts(ctx: ToolContext, args: CompleteTask) -> dict[str, object]:
        return _task_facts(ctx, args.task_id, "complete_compliance_task")

    @registry.tool(name="complete_compliance_task", kind=ToolKind.WRITE, reversible=True,
                   input_model=CompleteTask, output_model=ComplianceTaskOut,
                   policy_facts=complete_facts, preview=TASK_COMPLETE,
                   description="Mark a compliance task done, with who did it and the report, "
                               "filing or certificate that proves it (re-openable).")
    def complete_compliance_task(ctx: ToolContext, args: CompleteTask) -> ComplianceTaskOut:
        task = _task(ctx, args.task_id, "complete_compliance_task")
        _live(task, "complete_compliance_task")
        task.status, task.completed_by = "DONE", args.completed_by
        task.evidence_ref, task.completed_at = args.evidence_ref, ctx.now
        _note(task, ctx, f"done by {args.completed_by} ({args.evidence_ref})"
                         + (f": {args.note}" if args.note else ""))
        return ComplianceTaskOut.of(task)

    def completion_facts(ctx: ToolContext, args: RecordCompletion) -> dict[str, object]:
        item = _item(ctx, args.compliance_item_id, "record_compliance_completion")
        return {"days_until_due": days_until_due(item.due_at, ctx.now), "category": item.kind}

    @registry.tool(name="record_compliance_completion", kind=ToolKind.WRITE, reversible=True,
                   input_model=RecordCompletion, output_model=CompletionOut,
                   policy_facts=completion_facts, preview=ITEM_COMPLETION,
                   description="Record a compliance item as COMPLIANT from its done task and "
                               "open its next occurrence when it recurs (re-openable).")
    def record_compliance_completion(ctx: ToolContext, args: RecordCompletion) -> CompletionOut:
        tool = "record_compliance_completion"
        item = _item(ctx, args.compliance_item_id, tool)
        if item.status != "OPEN":
            raise PermanentToolError(tool, f"compliance item {item.id} is already "
                                           f"{item.status}")
        task = _task(ctx, args.task_id, tool)
        if task.compliance_item_id != item.id or task.cycle_due_at != item.due_at:
            raise PermanentToolError(tool, f"task {task.id} is not for the current cycle of "
                                           f"{item.id}")
        if task.status != "DONE":
            raise PermanentToolError(tool, f"task {task.id} is {task.status}, not DONE")
        item.status = "COMPLIANT"
        cycle = obligation(item.kind).cycle_days
        next_id = None
        if cycle:
            next_due = item.due_at + timedelta(days=cycle)
            next_id = next_item_id(item.id, next_due)
            if ctx.session.get(ComplianceItem, (ctx.tenant_id, next_id)) is None:
                ctx.session.add(ComplianceItem(
                    tenant_id=ctx.tenant_id, id=next_id, property_id=item.property_id,
                    kind=item.kind, description=item.description, authority=item.authority,
                    due_at=next_due, status="OPEN"))
        ctx.session.flush()
        return CompletionOut(compliance_item=ComplianceItemOut.of(item, ctx.now),
                             next_item_id=next_id)
