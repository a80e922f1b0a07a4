"""Tenant comms tools over the sandbox messaging backend (seed 001 `/api/messages/threads*`,
`/api/notifications*`): read a resident's conversation, the policy documents replies are
grounded in and the staff directory; reply (irreversible), move the thread's state
(reversible) and notify staff (irreversible). Every query is scoped to the caller's tenant.

`send_thread_reply` carries its own risk model for the gate (`risk_score`): a reply is only
as safe as the records it quotes, so it scores 0 when every cited source is a live record
that applies to this conversation, and 100 when it cites none or any it cites does not.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import or_, select

from autopilot.models import Message, Property, Resident, WorkOrder
from autopilot.sandbox.tenant_comms import (
    OWES_REPLY,
    CommsPolicyDoc,
    CommsStaff,
    CommsStaffNotification,
    CommsThread,
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

ThreadState = Literal["open", "awaiting_resident", "awaiting_staff", "closed"]
ReplyChannel = Literal["sms", "email", "in_app", "portal"]
Severity = Literal["LOW", "MEDIUM", "HIGH", "CRITICAL"]
Topic = Literal[
    "RENT_PAYMENT", "BILLING_DISPUTE", "MAINTENANCE_REQUEST", "MAINTENANCE_STATUS", "AMENITY",
    "PACKAGE", "MOVE_IN_OUT", "LEASE_RENEWAL", "LEASE_CHANGE", "NOISE_COMPLAINT",
    "GENERAL_INFO", "GENERAL", "ACKNOWLEDGEMENT",
]
GROUNDED, UNGROUNDED = 0, 100  # send_thread_reply's risk_score
SOURCE_KINDS = ("doc", "work_order")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------- output models


class ThreadMessageOut(Strict):
    id: str
    direction: str
    channel: str
    body: str
    related_work_order_id: str | None
    created_at: datetime


class ResidentThreadOut(Strict):
    id: str
    resident_id: str
    resident_name: str
    preferred_channel: str
    unit_id: str
    property_id: str
    property_name: str
    timezone: str
    state: str
    intent: str | None
    topic: str | None
    assigned_staff_id: str | None
    handoff: str | None
    escalation_level: int
    last_inbound_at: datetime | None
    last_outbound_at: datetime | None
    reply_due_at: datetime | None
    messages: list[ThreadMessageOut]


class PolicyDocOut(Strict):
    id: str
    property_id: str | None
    topic: str
    title: str
    source: str
    keywords: list[str]
    answer: str
    version: int


class PolicyDocList(Strict):
    docs: list[PolicyDocOut]


class StaffOut(Strict):
    id: str
    name: str
    role: str
    property_id: str | None


class StaffList(Strict):
    staff_members: list[StaffOut]


class NotificationOut(Strict):
    id: str
    staff_id: str
    thread_id: str
    severity: str
    reason: str
    summary: str
    channels: list[str]
    status: str
    created_at: datetime


class ReplyOut(Strict):
    id: str
    thread_id: str
    resident_id: str
    direction: str
    channel: str
    body: str
    source_refs: list[str]


class ThreadStateOut(Strict):
    id: str
    state: str
    previous_state: str
    intent: str | None
    topic: str | None
    assigned_staff_id: str | None
    handoff: str | None
    escalation_level: int
    reply_due_at: datetime | None


# --------------------------------------------------------------------------- input models


class ThreadRef(Strict):
    thread_id: str = Field(min_length=1, max_length=64)
    limit: int = Field(default=20, ge=1, le=100, description="most recent messages to return")


class PolicyDocQuery(Strict):
    property_id: str = Field(min_length=1)
    topic: Topic | None = None


class StaffQuery(Strict):
    property_id: str = Field(min_length=1)


class NotificationRef(Strict):
    notification_id: str = Field(min_length=1)


class SendThreadReply(Strict):
    reply_id: str = Field(min_length=1, max_length=64)
    thread_id: str = Field(min_length=1, max_length=64)
    resident_id: str = Field(min_length=1, description="must be the thread's resident")
    in_reply_to: str = Field(min_length=1, description="the inbound message answered")
    channel: ReplyChannel
    topic: Topic
    body: str = Field(min_length=1, max_length=1600)
    source_refs: list[str] = Field(
        default=[], max_length=5,
        description="records the reply quotes: `doc:<policy doc id>` or "
                    "`work_order:<id>`; a reply citing none is not sent on its own")


class SetThreadState(Strict):
    thread_id: str = Field(min_length=1, max_length=64)
    state: ThreadState
    intent: str | None = Field(default=None, max_length=32)
    topic: Topic | None = None
    assigned_staff_id: str | None = Field(default=None, description="None keeps the owner")
    handoff: Literal["maintenance"] | None = None
    escalation_level: int | None = Field(default=None, ge=0, le=5)
    reply_due_at: AwareDatetime | None = Field(
        default=None, description="when a reply is owed by; required for open/awaiting_staff "
                                  "and cleared for the other states")
    note: str = Field(default="", max_length=500)

    @model_validator(mode="after")
    def _due_matches_state(self) -> SetThreadState:
        if self.state in OWES_REPLY and self.reply_due_at is None:
            raise ValueError(f"reply_due_at is required when the state is {self.state}")
        if self.state not in OWES_REPLY and self.reply_due_at is not None:
            raise ValueError(f"a thread that is {self.state} owes no reply: drop reply_due_at")
        return self


class NotifyThreadStaff(Strict):
    notification_id: str = Field(min_length=1, max_length=64)
    staff_id: str = Field(min_length=1)
    thread_id: str = Field(min_length=1, max_length=64)
    severity: Severity
    reason: str = Field(min_length=1, max_length=64)
    summary: str = Field(min_length=1, max_length=1000)
    channels: list[Literal["in_app", "email", "sms"]] = Field(
        default=["in_app", "email"], min_length=1, max_length=3)


# --------------------------------------------------------------------------- helpers


def _thread(ctx: ToolContext, thread_id: str, tool: str) -> CommsThread:
    return ctx.fetch(CommsThread, thread_id, tool, "thread")


def _staff(ctx: ToolContext, staff_id: str, tool: str) -> CommsStaff:
    staff = ctx.session.get(CommsStaff, (ctx.tenant_id, staff_id))
    if staff is None or not staff.active:
        raise PermanentToolError(tool, f"staff member {staff_id!r} does not exist or is "
                                       "inactive")
    return staff


def source_problems(ctx: ToolContext, thread: CommsThread, topic: str,
                    refs: list[str]) -> list[str]:
    """Why the cited records do not ground a reply on this thread (empty: they do)."""
    if not refs:
        return ["cites no policy document, FAQ record or work order"]
    problems = []
    for ref in refs:
        kind, _, rid = ref.partition(":")
        if kind == "doc":
            doc = ctx.session.get(CommsPolicyDoc, (ctx.tenant_id, rid))
            if doc is None or not doc.active:
                problems.append(f"{ref} is not a live policy document")
            elif doc.property_id not in (None, thread.property_id):
                problems.append(f"{ref} applies to {doc.property_id}, not {thread.property_id}")
            elif doc.topic != topic:
                problems.append(f"{ref} is about {doc.topic}, not {topic}")
        elif kind == "work_order":
            wo = ctx.session.get(WorkOrder, (ctx.tenant_id, rid))
            if wo is None or wo.unit_id != thread.unit_id:
                problems.append(f"{ref} is not a work order of unit {thread.unit_id}")
        else:
            problems.append(f"{ref}: sources are {' or '.join(SOURCE_KINDS)} records")
    return problems


# --------------------------------------------------------------------------- write previews

REPLY_PREVIEW = Preview(
    record="message", read_tool="get_message", key="reply_id", read_arg="message_id",
    creates=True, sets={"id": "reply_id", "thread_id": "thread_id", "channel": "channel",
                        "body": "body", "resident_id": "resident_id"},
    fixed={"direction": "out"}, notifies={"resident_id": "resident"},
    touches={"thread_id": "thread"})
STATE_PREVIEW = Preview(
    record="thread", read_tool="get_resident_thread", key="thread_id",
    sets={"state": "state", "intent": "intent", "topic": "topic",
          "assigned_staff_id": "assigned_staff_id", "handoff": "handoff",
          "escalation_level": "escalation_level", "reply_due_at": "reply_due_at"})
NOTIFY_PREVIEW = Preview(
    record="notification", read_tool="get_thread_notification", key="notification_id",
    creates=True, sets={"id": "notification_id", "staff_id": "staff_id",
                        "thread_id": "thread_id", "severity": "severity", "reason": "reason",
                        "summary": "summary", "channels": "channels"},
    fixed={"status": "SENT"}, notifies={"staff_id": "staff"}, touches={"thread_id": "thread"})


# --------------------------------------------------------------------------- registration


def register(registry: ToolRegistry) -> None:
    """Add the tenant comms tools to `registry`."""

    @registry.tool(name="get_resident_thread", kind=ToolKind.READ, input_model=ThreadRef,
                   output_model=ResidentThreadOut,
                   description="A resident's conversation: state, owner, reply deadline, the "
                               "resident and property, and the most recent messages.")
    def get_resident_thread(ctx: ToolContext, args: ThreadRef) -> ResidentThreadOut:
        thread = _thread(ctx, args.thread_id, "get_resident_thread")
        resident = ctx.session.get(Resident, (ctx.tenant_id, thread.resident_id))
        prop = ctx.session.get(Property, (ctx.tenant_id, thread.property_id))
        if resident is None or prop is None:
            raise PermanentToolError("get_resident_thread",
                                     f"thread {thread.id} names a resident or property that "
                                     "does not exist")
        recent = ctx.session.scalars(
            select(Message).where(Message.tenant_id == ctx.tenant_id,
                                  Message.thread_id == thread.id)
            .order_by(Message.created_at.desc(), Message.id.desc()).limit(args.limit)).all()
        return ResidentThreadOut(
            id=thread.id, resident_id=resident.id, resident_name=resident.name,
            preferred_channel=resident.preferred_channel, unit_id=thread.unit_id,
            property_id=prop.id, property_name=prop.name, timezone=prop.timezone,
            state=thread.state, intent=thread.intent, topic=thread.topic,
            assigned_staff_id=thread.assigned_staff_id, handoff=thread.handoff,
            escalation_level=thread.escalation_level, last_inbound_at=thread.last_inbound_at,
            last_outbound_at=thread.last_outbound_at, reply_due_at=thread.reply_due_at,
            messages=[ThreadMessageOut(id=m.id, direction=m.direction, channel=m.channel,
                                       body=m.body, related_work_order_id=m.related_work_order_id,
                                       created_at=m.created_at) for m in reversed(recent)])

    @registry.tool(name="get_comms_policy_docs", kind=ToolKind.READ,
                   input_model=PolicyDocQuery, output_model=PolicyDocList,
                   description="The live policy documents and FAQ records that apply to a "
                               "property (its own and the tenant-wide ones), optionally for "
                               "one topic.")
    def get_comms_policy_docs(ctx: ToolContext, args: PolicyDocQuery) -> PolicyDocList:
        q = select(CommsPolicyDoc).where(
            CommsPolicyDoc.tenant_id == ctx.tenant_id, CommsPolicyDoc.active.is_(True),
            or_(CommsPolicyDoc.property_id.is_(None),
                CommsPolicyDoc.property_id == args.property_id))
        if args.topic is not None:
            q = q.where(CommsPolicyDoc.topic == args.topic)
        rows = ctx.session.scalars(q.order_by(CommsPolicyDoc.id)).all()
        return PolicyDocList(docs=[PolicyDocOut(
            id=d.id, property_id=d.property_id, topic=d.topic, title=d.title, source=d.source,
            keywords=[str(k) for k in d.keywords], answer=d.answer, version=d.version)
            for d in rows])

    @registry.tool(name="get_comms_staff", kind=ToolKind.READ, input_model=StaffQuery,
                   output_model=StaffList,
                   description="Active staff a property's conversations can be routed to.")
    def get_comms_staff(ctx: ToolContext, args: StaffQuery) -> StaffList:
        rows = ctx.session.scalars(select(CommsStaff).where(
            CommsStaff.tenant_id == ctx.tenant_id, CommsStaff.active.is_(True),
            or_(CommsStaff.property_id.is_(None), CommsStaff.property_id == args.property_id))
            .order_by(CommsStaff.id)).all()
        return StaffList(staff_members=[StaffOut(id=s.id, name=s.name, role=s.role,
                                                 property_id=s.property_id) for s in rows])

    @registry.tool(name="get_thread_notification", kind=ToolKind.READ,
                   input_model=NotificationRef, output_model=NotificationOut,
                   description="Read one staff notification about a thread.")
    def get_thread_notification(ctx: ToolContext, args: NotificationRef) -> NotificationOut:
        n = ctx.session.get(CommsStaffNotification, (ctx.tenant_id, args.notification_id))
        if n is None:
            raise PermanentToolError("get_thread_notification",
                                     f"notification {args.notification_id!r} does not exist")
        return NotificationOut(id=n.id, staff_id=n.staff_id, thread_id=n.thread_id,
                               severity=n.severity, reason=n.reason, summary=n.summary,
                               channels=[str(c) for c in n.channels], status=n.status,
                               created_at=n.created_at)

    # ----------------------------------------------------------------------- writes

    def reply_facts(ctx: ToolContext, args: SendThreadReply) -> dict[str, object]:
        # Facts come from the records the (possibly edited) reply cites, read now.
        thread = _thread(ctx, args.thread_id, "send_thread_reply")
        grounded = not source_problems(ctx, thread, args.topic, args.source_refs)
        return {"risk_score": GROUNDED if grounded else UNGROUNDED, "category": args.topic,
                "recipients": 1, "external": True}

    @registry.tool(name="send_thread_reply", kind=ToolKind.WRITE, reversible=False,
                   input_model=SendThreadReply, output_model=ReplyOut,
                   cost_class=CostClass.CHEAP, risk=RiskClass.MEDIUM, policy_facts=reply_facts,
                   preview=REPLY_PREVIEW,
                   description="Reply to a resident on their conversation, by the given "
                               "channel (cannot be unsent).")
    def send_thread_reply(ctx: ToolContext, args: SendThreadReply) -> ReplyOut:
        thread = _thread(ctx, args.thread_id, "send_thread_reply")
        if thread.resident_id != args.resident_id:
            raise PermanentToolError("send_thread_reply",
                                     f"thread {thread.id} belongs to {thread.resident_id}, "
                                     f"not {args.resident_id}")
        inbound = ctx.session.get(Message, (ctx.tenant_id, args.in_reply_to))
        if inbound is None or inbound.thread_id != thread.id or inbound.direction != "in":
            raise PermanentToolError("send_thread_reply",
                                     f"{args.in_reply_to!r} is not an inbound message of "
                                     f"thread {thread.id}")
        if ctx.session.get(Message, (ctx.tenant_id, args.reply_id)) is not None:
            raise PermanentToolError("send_thread_reply",
                                     f"message {args.reply_id!r} already exists")
        msg = Message(tenant_id=ctx.tenant_id, id=args.reply_id, thread_id=thread.id,
                      resident_id=thread.resident_id, unit_id=thread.unit_id, direction="out",
                      channel=args.channel, body=args.body, created_at=ctx.now)
        ctx.session.add(msg)
        thread.last_outbound_at = thread.updated_at = ctx.now
        ctx.session.flush()
        return ReplyOut(id=msg.id, thread_id=thread.id, resident_id=thread.resident_id,
                        direction="out", channel=msg.channel, body=msg.body,
                        source_refs=args.source_refs)

    def state_facts(ctx: ToolContext, args: SetThreadState) -> dict[str, object]:
        _thread(ctx, args.thread_id, "set_thread_state")
        return {"category": args.topic or "", "recipients": 0}

    @registry.tool(name="set_thread_state", kind=ToolKind.WRITE, reversible=True,
                   input_model=SetThreadState, output_model=ThreadStateOut,
                   cost_class=CostClass.CHEAP, risk=RiskClass.LOW, policy_facts=state_facts,
                   preview=STATE_PREVIEW,
                   description="Move a conversation to open / awaiting_resident / "
                               "awaiting_staff / closed, recording its classification, owner "
                               "and reply deadline (reversible: set it back).")
    def set_thread_state(ctx: ToolContext, args: SetThreadState) -> ThreadStateOut:
        thread = _thread(ctx, args.thread_id, "set_thread_state")
        if args.assigned_staff_id is not None:
            _staff(ctx, args.assigned_staff_id, "set_thread_state")
            thread.assigned_staff_id = args.assigned_staff_id
        previous = thread.state
        thread.state, thread.reply_due_at = args.state, args.reply_due_at
        if args.intent is not None:
            thread.intent = args.intent
        if args.topic is not None:
            thread.topic = args.topic
        if args.handoff is not None:
            thread.handoff = args.handoff
        if args.escalation_level is not None:
            thread.escalation_level = args.escalation_level
        thread.updated_at = ctx.now
        ctx.session.flush()
        return ThreadStateOut(id=thread.id, state=thread.state, previous_state=previous,
                              intent=thread.intent, topic=thread.topic,
                              assigned_staff_id=thread.assigned_staff_id, handoff=thread.handoff,
                              escalation_level=thread.escalation_level,
                              reply_due_at=thread.reply_due_at)

    def notify_facts(ctx: ToolContext, args: NotifyThreadStaff) -> dict[str, object]:
        _staff(ctx, args.staff_id, "notify_thread_staff")
        return {"recipients": 1, "external": False}

    @registry.tool(name="notify_thread_staff", kind=ToolKind.WRITE, reversible=False,
                   input_model=NotifyThreadStaff, output_model=NotificationOut,
                   cost_class=CostClass.CHEAP, risk=RiskClass.LOW, policy_facts=notify_facts,
                   preview=NOTIFY_PREVIEW,
                   description="Notify a staff member (in-app, email) that a conversation "
                               "needs them (cannot be unsent).")
    def notify_thread_staff(ctx: ToolContext, args: NotifyThreadStaff) -> NotificationOut:
        _staff(ctx, args.staff_id, "notify_thread_staff")
        _thread(ctx, args.thread_id, "notify_thread_staff")
        if ctx.session.get(CommsStaffNotification,
                           (ctx.tenant_id, args.notification_id)) is not None:
            raise PermanentToolError("notify_thread_staff",
                                     f"notification {args.notification_id!r} already exists")
        n = CommsStaffNotification(tenant_id=ctx.tenant_id, id=args.notification_id,
                                   staff_id=args.staff_id, thread_id=args.thread_id,
                                   severity=args.severity, reason=args.reason,
                                   summary=args.summary, channels=list(args.channels),
                                   status="SENT", created_at=ctx.now)
        ctx.session.add(n)
        ctx.session.flush()
        return NotificationOut(id=n.id, staff_id=n.staff_id, thread_id=n.thread_id,
                               severity=n.severity, reason=n.reason, summary=n.summary,
                               channels=list(n.channels), status=n.status,
                               created_at=n.created_at)
