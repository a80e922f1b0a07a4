"""Maintenance tools over the sandbox property backend (seed 001: work orders, vendors, bids,
messages, PM schedules). Every query is scoped to the caller's tenant.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import select

from autopilot.models import (
    BidRequest,
    FollowUp,
    Message,
    PMSchedule,
    Property,
    Resident,
    Unit,
    Vendor,
    WorkOrder,
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

Category = Literal[
    "PLUMBING", "HVAC", "ELECTRICAL", "APPLIANCE", "PEST", "STRUCTURAL",
    "DOOR_WINDOW", "PAINT_PLASTER", "ELEVATOR", "GENERAL",
]
Priority = Literal["EMERGENCY", "URGENT", "ROUTINE"]
WorkOrderStatus = Literal["OPEN", "DISPATCHED", "BIDDING", "IN_PROGRESS", "COMPLETED", "CLOSED",
                          "CANCELLED"]
MAX_AMOUNT = 10_000_000  # any amount above this is a data error, not a repair
OPEN_STATUSES = ("OPEN", "DISPATCHED", "BIDDING", "IN_PROGRESS")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _money(value: Decimal | float | None) -> float | None:
    return None if value is None else float(value)


# --------------------------------------------------------------------------- output models


class WorkOrderOut(Strict):
    id: str
    property_id: str
    unit_id: str | None
    category: str
    priority: str
    status: str
    title: str
    description: str
    estimated_cost: float
    not_to_exceed: float | None
    vendor_id: str | None
    sla_due_at: datetime | None
    source_ref: str | None
    final_cost: float | None
    notes: list[str]

    @classmethod
    def of(cls, wo: WorkOrder) -> WorkOrderOut:
        return cls(id=wo.id, property_id=wo.property_id, unit_id=wo.unit_id,
                   category=wo.category, priority=wo.priority, status=wo.status, title=wo.title,
                   description=wo.description, estimated_cost=float(wo.estimated_cost),
                   not_to_exceed=_money(wo.not_to_exceed), vendor_id=wo.vendor_id,
                   sla_due_at=wo.sla_due_at, source_ref=wo.source_ref,
                   final_cost=_money(wo.final_cost), notes=list(wo.notes or []))


class VendorOut(Strict):
    id: str
    name: str
    categories: list[str]
    hourly_rate: float
    callout_fee: float
    score: float
    completed_jobs: int
    open_work_orders: int
    active: bool
    emergency_service: bool

    @classmethod
    def of(cls, v: Vendor) -> VendorOut:
        return cls(id=v.id, name=v.name, categories=list(v.categories),
                   hourly_rate=float(v.hourly_rate), callout_fee=float(v.callout_fee),
                   score=v.score, completed_jobs=v.completed_jobs,
                   open_work_orders=v.open_work_orders, active=v.active,
                   emergency_service=v.emergency_service)


class ResidentOut(Strict):
    id: str
    name: str
    preferred_channel: str


class UnitContextOut(Strict):
    unit_id: str
    unit_number: str
    property_id: str
    property_name: str
    city: str
    timezone: str
    residents: list[ResidentOut]
    open_work_orders: list[WorkOrderOut]


class PMScheduleOut(Strict):
    id: str
    property_id: str
    unit_id: str | None
    task: str
    category: str
    frequency_days: int
    next_due_at: datetime
    contract_vendor_id: str | None
    contract_price: float | None


class MessageOut(Strict):
    id: str
    thread_id: str
    resident_id: str | None
    direction: str
    channel: str
    body: str
    related_work_order_id: str | None


class FollowUpOut(Strict):
    id: str
    work_order_id: str
    kind: str
    due_at: datetime
    status: str


class WorkOrderList(Strict):
    work_orders: list[WorkOrderOut]


class VendorList(Strict):
    vendors: list[VendorOut]


class BidsOut(Strict):
    work_order: WorkOrderOut
    bid_request_ids: list[str]


# --------------------------------------------------------------------------- input models


class UnitRef(Strict):
    unit_id: str = Field(min_length=1)


class WorkOrderRef(Strict):
    work_order_id: str = Field(min_length=1)


class VendorRef(Strict):
    vendor_id: str = Field(min_length=1)


class PMRef(Strict):
    pm_schedule_id: str = Field(min_length=1)


class MessageRef(Strict):
    message_id: str = Field(min_length=1)


class FollowUpRef(Strict):
    follow_up_id: str = Field(min_length=1)


class FindOpenWorkOrders(Strict):
    property_id: str = Field(min_length=1)
    unit_id: str | None = None
    category: Category | None = None


class ListVendors(Strict):
    category: Category
    emergency_only: bool = False


class CreateWorkOrder(Strict):
    work_order_id: str = Field(min_length=1, max_length=64)
    property_id: str = Field(min_length=1)
    unit_id: str | None = None
    category: Category
    priority: Priority
    title: str = Field(min_length=3, max_length=300)
    description: str = Field(min_length=1)
    estimated_cost: float = Field(ge=0, le=MAX_AMOUNT, allow_inf_nan=False)
    sla_due_at: AwareDatetime
    source_ref: str | None = None


class UpdateWorkOrder(Strict):
    work_order_id: str = Field(min_length=1)
    priority: Priority | None = None
    note: str | None = Field(default=None, max_length=2000)


class DispatchVendor(Strict):
    work_order_id: str = Field(min_length=1)
    vendor_id: str = Field(min_length=1)
    category: Category
    priority: Priority
    not_to_exceed: float = Field(gt=0, le=MAX_AMOUNT, allow_inf_nan=False,
                                 description="spend ceiling the vendor may invoice")
    scheduled_for: AwareDatetime


class RequestBids(Strict):
    work_order_id: str = Field(min_length=1)
    vendor_ids: list[str] = Field(min_length=1, max_length=5)
    due_in_days: int = Field(default=5, ge=1, le=30)


class SendResidentMessage(Strict):
    message_id: str = Field(min_length=1, max_length=64)
    resident_id: str = Field(min_length=1)
    channel: Literal["sms", "email", "in_app"]
    body: str = Field(min_length=1, max_length=1600)
    related_work_order_id: str | None = None


class ScheduleFollowUp(Strict):
    follow_up_id: str = Field(min_length=1, max_length=64)
    work_order_id: str = Field(min_length=1)
    kind: Literal["vendor_response", "sla_check", "satisfaction"]
    due_at: AwareDatetime


class CloseWorkOrder(Strict):
    work_order_id: str = Field(min_length=1)
    final_cost: float = Field(ge=0, le=MAX_AMOUNT, allow_inf_nan=False)
    resolution: str = Field(min_length=1, max_length=2000)


# --------------------------------------------------------------------------- helpers


def _work_order(ctx: ToolContext, work_order_id: str, tool: str) -> WorkOrder:
    return ctx.fetch(WorkOrder, work_order_id, tool, "work order")


def _vendor(ctx: ToolContext, vendor_id: str, tool: str) -> Vendor:
    return ctx.fetch(Vendor, vendor_id, tool, "vendor")


def _touch(wo: WorkOrder, ctx: ToolContext, note: str) -> None:
    wo.updated_at = ctx.now
    wo.notes = [*list(wo.notes or []), f"{ctx.now:%Y-%m-%d %H:%M}Z {note}"]


# --------------------------------------------------------------------------- write previews
# Which record each write changes and what it would set, for the approval context pack. Field
# names are those of the read tool's output (WorkOrderOut, MessageOut, FollowUpOut).

WORK_ORDER_CREATE = Preview(
    record="work_order", read_tool="get_work_order", key="work_order_id", creates=True,
    sets={"id": "work_order_id", "property_id": "property_id", "unit_id": "unit_id",
          "category": "category", "priority": "priority", "title": "title",
          "description": "description", "estimated_cost": "estimated_cost",
          "sla_due_at": "sla_due_at", "source_ref": "source_ref"},
    fixed={"status": "OPEN"})
WORK_ORDER_UPDATE = Preview(
    record="work_order", read_tool="get_work_order", key="work_order_id",
    sets={"priority": "priority"}, appends={"notes": "note"})
DISPATCH = Preview(
    record="work_order", read_tool="get_work_order", key="work_order_id",
    sets={"vendor_id": "vendor_id", "not_to_exceed": "not_to_exceed"},
    fixed={"status": "DISPATCHED"}, money=("not_to_exceed",),
    notifies={"vendor_id": "vendor"}, touches={"vendor_id": "vendor"})
BIDS = Preview(
    record="work_order", read_tool="get_work_order", key="work_order_id",
    fixed={"status": "BIDDING"}, notifies={"vendor_ids": "vendor"})
RESIDENT_MESSAGE = Preview(
    record="message", read_tool="get_message", key="message_id", creates=True,
    sets={"id": "message_id", "resident_id": "resident_id", "channel": "channel",
          "body": "body", "related_work_order_id": "related_work_order_id"},
    fixed={"direction": "out"}, notifies={"resident_id": "resident"})
FOLLOW_UP = Preview(
    record="follow_up", read_tool="get_follow_up", key="follow_up_id", creates=True,
    sets={"id": "follow_up_id", "work_order_id": "work_order_id", "kind": "kind",
          "due_at": "due_at"},
    fixed={"status": "SCHEDULED"})
CLOSE_OUT = Preview(
    record="work_order", read_tool="get_work_order", key="work_order_id",
    sets={"final_cost": "final_cost"}, fixed={"status": "CLOSED"},
    appends={"notes": "resolution"}, money=("final_cost",))


# --------------------------------------------------------------------------- registration


def register(registry: ToolRegistry) -> None:
    """Add the maintenance tools to `registry`."""

    @registry.tool(name="get_unit_context", kind=ToolKind.READ, input_model=UnitRef,
                   output_model=UnitContextOut,
                   description="Unit, its property, current residents and open work orders.")
    def get_unit_context(ctx: ToolContext, args: UnitRef) -> UnitContextOut:
        unit = ctx.session.get(Unit, (ctx.tenant_id, args.unit_id))
        if unit is None:
            raise PermanentToolError("get_unit_context", f"unit {args.unit_id!r} does not exist")
        prop = ctx.session.get(Property, (ctx.tenant_id, unit.property_id))
        assert prop is not None
        residents = ctx.session.scalars(select(Resident).where(
            Resident.tenant_id == ctx.tenant_id, Resident.unit_id == unit.id)).all()
        open_wos = ctx.session.scalars(select(WorkOrder).where(
            WorkOrder.tenant_id == ctx.tenant_id, WorkOrder.unit_id == unit.id,
            WorkOrder.status.in_(OPEN_STATUSES))).all()
        return UnitContextOut(
            unit_id=unit.id, unit_number=unit.number, property_id=prop.id,
            property_name=prop.name, city=prop.city, timezone=prop.timezone,
            residents=[ResidentOut(id=r.id, name=r.name, preferred_channel=r.preferred_channel)
                       for r in residents],
            open_work_orders=[WorkOrderOut.of(w) for w in open_wos])

    @registry.tool(name="get_work_order", kind=ToolKind.READ, input_model=WorkOrderRef,
                   output_model=WorkOrderOut, description="Read one work order.")
    def get_work_order(ctx: ToolContext, args: WorkOrderRef) -> WorkOrderOut:
        return WorkOrderOut.of(_work_order(ctx, args.work_order_id, "get_work_order"))

    @registry.tool(name="find_open_work_orders", kind=ToolKind.READ,
                   input_model=FindOpenWorkOrders, output_model=WorkOrderList,
                   description="Open work orders of a property, optionally one unit and trade.")
    def find_open_work_orders(ctx: ToolContext, args: FindOpenWorkOrders) -> WorkOrderList:
        q = select(WorkOrder).where(WorkOrder.tenant_id == ctx.tenant_id,
                                    WorkOrder.property_id == args.property_id,
                                    WorkOrder.status.in_(OPEN_STATUSES))
        if args.unit_id:
            q = q.where(WorkOrder.unit_id == args.unit_id)
        if args.category:
            q = q.where(WorkOrder.category == args.category)
        rows = ctx.session.scalars(q.order_by(WorkOrder.created_at)).all()
        return WorkOrderList(work_orders=[WorkOrderOut.of(w) for w in rows])

    @registry.tool(name="list_vendors", kind=ToolKind.READ, input_model=ListVendors,
                   output_model=VendorList,
                   description="Active vendors serving a trade, with rates, scores and load.")
    def list_vendors(ctx: ToolContext, args: ListVendors) -> VendorList:
        rows = ctx.session.scalars(select(Vendor).where(
            Vendor.tenant_id == ctx.tenant_id, Vendor.active.is_(True))).all()
        vendors = [VendorOut.of(v) for v in rows if args.category in v.categories
                   and (v.emergency_service or not args.emergency_only)]
        return VendorList(vendors=sorted(vendors, key=lambda v: v.id))

    @registry.tool(name="get_vendor", kind=ToolKind.READ, input_model=VendorRef,
                   output_model=VendorOut, description="Read one vendor.")
    def get_vendor(ctx: ToolContext, args: VendorRef) -> VendorOut:
        return VendorOut.of(_vendor(ctx, args.vendor_id, "get_vendor"))

    @registry.tool(name="get_pm_schedule", kind=ToolKind.READ, input_model=PMRef,
                   output_model=PMScheduleOut, description="Read one preventive-maintenance task.")
    def get_pm_schedule(ctx: ToolContext, args: PMRef) -> PMScheduleOut:
        pm = ctx.session.get(PMSchedule, (ctx.tenant_id, args.pm_schedule_id))
        if pm is None:
            raise PermanentToolError("get_pm_schedule",
                                     f"PM schedule {args.pm_schedule_id!r} does not exist")
        return PMScheduleOut(id=pm.id, property_id=pm.property_id, unit_id=pm.unit_id,
                             task=pm.task, category=pm.category, frequency_days=pm.frequency_days,
                             next_due_at=pm.next_due_at, contract_vendor_id=pm.contract_vendor_id,
                             contract_price=_money(pm.contract_price))

    @registry.tool(name="get_message", kind=ToolKind.READ, input_model=MessageRef,
                   output_model=MessageOut, description="Read one message.")
    def get_message(ctx: ToolContext, args: MessageRef) -> MessageOut:
        msg = ctx.session.get(Message, (ctx.tenant_id, args.message_id))
        if msg is None:
            raise PermanentToolError("get_message", f"message {args.message_id!r} does not exist")
        return MessageOut(id=msg.id, thread_id=msg.thread_id, resident_id=msg.resident_id,
                          direction=msg.direction, channel=msg.channel, body=msg.body,
                          related_work_order_id=msg.related_work_order_id)

    @registry.tool(name="get_follow_up", kind=ToolKind.READ, input_model=FollowUpRef,
                   output_model=FollowUpOut, description="Read one scheduled follow-up.")
    def get_follow_up(ctx: ToolContext, args: FollowUpRef) -> FollowUpOut:
        fu = ctx.session.get(FollowUp, (ctx.tenant_id, args.follow_up_id))
        if fu is None:
            raise PermanentToolError("get_follow_up",
                                     f"follow-up {args.follow_up_id!r} does not exist")
        return FollowUpOut(id=fu.id, work_order_id=fu.work_order_id, kind=fu.kind,
                           due_at=fu.due_at, status=fu.status)

    # ----------------------------------------------------------------------- writes

    def wo_facts(ctx: ToolContext, args: CreateWorkOrder) -> dict[str, object]:
        return {"category": args.category, "priority": args.priority}

    @registry.tool(name="create_work_order", kind=ToolKind.WRITE, reversible=True,
                   input_model=CreateWorkOrder, output_model=WorkOrderOut,
                   cost_class=CostClass.CHEAP, risk=RiskClass.LOW, policy_facts=wo_facts,
                   preview=WORK_ORDER_CREATE, description="Open a work order (cancellable).")
    def create_work_order(ctx: ToolContext, args: CreateWorkOrder) -> WorkOrderOut:
        if ctx.session.get(WorkOrder, (ctx.tenant_id, args.work_order_id)) is not None:
            raise PermanentToolError("create_work_order",
                                     f"work order {args.work_order_id!r} already exists")
        if ctx.session.get(Property, (ctx.tenant_id, args.property_id)) is None:
            raise PermanentToolError("create_work_order",
                                     f"property {args.property_id!r} does not exist")
        wo = WorkOrder(tenant_id=ctx.tenant_id, id=args.work_order_id,
                       property_id=args.property_id, unit_id=args.unit_id,
                       category=args.category, priority=args.priority, status="OPEN",
                       title=args.title, description=args.description,
                       estimated_cost=args.estimated_cost, sla_due_at=args.sla_due_at,
                       source_ref=args.source_ref, notes=[], created_at=ctx.now,
                       updated_at=ctx.now)
        ctx.session.add(wo)
        ctx.session.flush()
        return WorkOrderOut.of(wo)

    @registry.tool(name="update_work_order", kind=ToolKind.WRITE, reversible=True,
                   input_model=UpdateWorkOrder, output_model=WorkOrderOut,
                   preview=WORK_ORDER_UPDATE,
                   description="Raise priority and/or add a note to an open work order.")
    def update_work_order(ctx: ToolContext, args: UpdateWorkOrder) -> WorkOrderOut:
        wo = _work_order(ctx, args.work_order_id, "update_work_order")
        if wo.status not in OPEN_STATUSES:
            raise PermanentToolError("update_work_order", f"work order is {wo.status}")
        if args.priority:
            wo.priority = args.priority
        _touch(wo, ctx, args.note or f"priority set to {args.priority}")
        return WorkOrderOut.of(wo)

    def dispatch_facts(ctx: ToolContext, args: DispatchVendor) -> dict[str, object]:
        # Trade and priority come from the work order once it exists, not from the (editable)
        # arguments; an unknown vendor is an error, which the gate turns into a BLOCK.
        vendor = _vendor(ctx, args.vendor_id, "dispatch_vendor")
        wo = ctx.session.get(WorkOrder, (ctx.tenant_id, args.work_order_id))
        return {"spend_cents": int(round(args.not_to_exceed * 100)),
                "category": wo.category if wo else args.category,
                "priority": wo.priority if wo else args.priority, "vendor_id": vendor.id,
                "vendor_open_work_orders": vendor.open_work_orders}

    @registry.tool(name="dispatch_vendor", kind=ToolKind.WRITE, reversible=True,
                   input_model=DispatchVendor, output_model=WorkOrderOut,
                   cost_class=CostClass.MED, risk=RiskClass.MEDIUM, policy_facts=dispatch_facts,
                   preview=DISPATCH,
                   description="Assign a vendor to a work order with a not-to-exceed amount.")
    def dispatch_vendor(ctx: ToolContext, args: DispatchVendor) -> WorkOrderOut:
        wo = _work_order(ctx, args.work_order_id, "dispatch_vendor")
        vendor = _vendor(ctx, args.vendor_id, "dispatch_vendor")
        if not vendor.active:
            raise PermanentToolError("dispatch_vendor", f"vendor {vendor.id} is inactive")
        if args.category not in vendor.categories:
            raise PermanentToolError("dispatch_vendor",
                                     f"vendor {vendor.id} does not serve {args.category}")
        if wo.status not in ("OPEN", "BIDDING"):
            raise PermanentToolError("dispatch_vendor", f"work order is {wo.status}")
        if args.category != wo.category:
            raise PermanentToolError("dispatch_vendor", f"category {args.category} does not "
                                                        f"match the work order's {wo.category}")
        wo.status, wo.vendor_id, wo.not_to_exceed = "DISPATCHED", vendor.id, args.not_to_exceed
        vendor.open_work_orders += 1
        _touch(wo, ctx, f"dispatched to {vendor.name} (NTE {args.not_to_exceed:.2f}) "
                        f"for {args.scheduled_for:%Y-%m-%d %H:%M}")
        return WorkOrderOut.of(wo)

    @registry.tool(name="request_bids", kind=ToolKind.WRITE, reversible=True,
                   input_model=RequestBids, output_model=BidsOut, cost_class=CostClass.CHEAP,
                   risk=RiskClass.LOW, preview=BIDS,
                   description="Ask several vendors to bid on a work order.")
    def request_bids(ctx: ToolContext, args: RequestBids) -> BidsOut:
        wo = _work_order(ctx, args.work_order_id, "request_bids")
        ids = []
        for vendor_id in args.vendor_ids:
            _vendor(ctx, vendor_id, "request_bids")
            bid_id = f"BID-{wo.id}-{vendor_id}"
            if ctx.session.get(BidRequest, (ctx.tenant_id, bid_id)) is None:
                ctx.session.add(BidRequest(tenant_id=ctx.tenant_id, id=bid_id, work_order_id=wo.id,
                                           vendor_id=vendor_id, status="REQUESTED",
                                           due_at=ctx.now + timedelta(days=args.due_in_days),
                                           created_at=ctx.now))
            ids.append(bid_id)
        wo.status = "BIDDING"
        _touch(wo, ctx, f"bids requested from {', '.join(args.vendor_ids)}")
        ctx.session.flush()
        return BidsOut(work_order=WorkOrderOut.of(wo), bid_request_ids=ids)

    @registry.tool(name="send_resident_message", kind=ToolKind.WRITE, reversible=False,
                   input_model=SendResidentMessage, output_model=MessageOut,
                   risk=RiskClass.MEDIUM, preview=RESIDENT_MESSAGE,
                   description="Send a message to a resident (cannot be unsent).")
    def send_resident_message(ctx: ToolContext, args: SendResidentMessage) -> MessageOut:
        resident = ctx.session.get(Resident, (ctx.tenant_id, args.resident_id))
        if resident is None:
            raise PermanentToolError("send_resident_message",
                                     f"resident {args.resident_id!r} does not exist")
        msg = Message(tenant_id=ctx.tenant_id, id=args.message_id,
                      thread_id=f"TH-{resident.id}", resident_id=resident.id,
                      unit_id=resident.unit_id, direction="out", channel=args.channel,
                      body=args.body, related_work_order_id=args.related_work_order_id,
                      created_at=ctx.now)
        ctx.session.add(msg)
        ctx.session.flush()
        return MessageOut(id=msg.id, thread_id=msg.thread_id, resident_id=msg.resident_id,
                          direction="out", channel=msg.channel, body=msg.body,
                          related_work_order_id=msg.related_work_order_id)

    @registry.tool(name="schedule_follow_up", kind=ToolKind.WRITE, reversible=True,
                   input_model=ScheduleFollowUp, output_model=FollowUpOut,
                   preview=FOLLOW_UP,
                   description="Schedule an SLA / vendor-response / satisfaction follow-up.")
    def schedule_follow_up(ctx: ToolContext, args: ScheduleFollowUp) -> FollowUpOut:
        _work_order(ctx, args.work_order_id, "schedule_follow_up")
        fu = FollowUp(tenant_id=ctx.tenant_id, id=args.follow_up_id,
                      work_order_id=args.work_order_id, kind=args.kind, due_at=args.due_at,
                      status="SCHEDULED", created_at=ctx.now)
        ctx.session.add(fu)
        ctx.session.flush()
        return FollowUpOut(id=fu.id, work_order_id=fu.work_order_id, kind=fu.kind,
                           due_at=fu.due_at, status=fu.status)

    def close_facts(ctx: ToolContext, args: CloseWorkOrder) -> dict[str, object]:
        wo = ctx.session.get(WorkOrder, (ctx.tenant_id, args.work_order_id))
        authorised = float(wo.not_to_exceed) if wo is not None and wo.not_to_exceed else 0.0
        overrun = max(0.0, args.final_cost - authorised)
        return {"spend_cents": int(round(overrun * 100)),
                "category": wo.category if wo else "", "priority": wo.priority if wo else ""}

    @registry.tool(name="close_work_order", kind=ToolKind.WRITE, reversible=True,
                   input_model=CloseWorkOrder, output_model=WorkOrderOut,
                   cost_class=CostClass.MED, risk=RiskClass.MEDIUM, policy_facts=close_facts,
                   preview=CLOSE_OUT,
                   description="Close out a completed work order with its final cost; "
                               "cost above the dispatched not-to-exceed counts as new spend.")
    def close_work_order(ctx: ToolContext, args: CloseWorkOrder) -> WorkOrderOut:
        wo = _work_order(ctx, args.work_order_id, "close_work_order")
        if wo.status in ("CLOSED", "CANCELLED"):
            raise PermanentToolError("close_work_order", f"work order is already {wo.status}")
        if wo.vendor_id:
            vendor = _vendor(ctx, wo.vendor_id, "close_work_order")
            vendor.open_work_orders = max(0, vendor.open_work_orders - 1)
            vendor.completed_jobs += 1
        wo.status, wo.final_cost, wo.closed_at = "CLOSED", args.final_cost, ctx.now
        _touch(wo, ctx, f"closed: {args.resolution}")
        if wo.source_ref and wo.source_ref.startswith("pm:"):
            pm = ctx.session.get(PMSchedule, (ctx.tenant_id, wo.source_ref[3:]))
            if pm is not None:
                pm.last_completed_at = ctx.now
                pm.next_due_at = ctx.now + timedelta(days=pm.frequency_days)
        return WorkOrderOut.of(wo)
