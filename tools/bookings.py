"""Bookings tools (seed 002) over the sandbox booking system: read a booking or an outbox
message, queue customer messages in the notification outbox (confirmation, reminder,
follow-up), cancel a no-show, release an expired hold, retry a failed calendar write.

The names of the five seeded actions are the seed's (`send_confirmation`, `send_reminder`,
`auto_cancel_no_show`, `send_follow_up`, `retry_calendar_sync`), because the seeded rules in
policy/defaults.json are about exactly these. Their `policy_facts` are computed from the
booking as stored, never from the (editable) arguments: minutes until the appointment
(`lead_time_minutes`), minutes since it began (`minutes_since_start`), calendar attempts so
far (`attempt`).

Privacy: no tool takes or returns a recipient. The message tools resolve the address from the
customer record inside the write and store it only in the outbox row, so it never reaches
proposals, checkpoints, the ledger or logs; outputs name the recipient as `customer:<id>`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import select

from autopilot.models import Property
from autopilot.sandbox.bookings import (
    ACTIVE_STATUSES,
    Booking,
    BookingCustomer,
    BookingError,
    BookingResource,
    NotificationOutbox,
    cancel,
    claimed_slots,
    expire_hold,
    sync_calendar,
)
from graphs.trigger import stable_id
from tools.registry import (
    PermanentToolError,
    Preview,
    RiskClass,
    ToolContext,
    ToolKind,
    ToolRegistry,
)

Channel = Literal["email", "sms", "webhook"]
ConfirmationTemplate = Literal["booking_confirmed", "booking_rescheduled", "booking_cancelled"]
FollowUpTemplate = Literal["no_show"]
DEFAULT_TIMEZONE = "America/New_York"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------- models


class NotificationSummary(Strict):
    id: str
    template: str
    channel: str
    status: str
    idempotency_key: str
    created_at: datetime


class BookingOut(Strict):
    id: str
    resource_id: str
    resource_name: str
    resource_kind: str
    property_id: str
    property_name: str
    timezone: str
    service: str
    customer_id: str
    preferred_channel: str
    channels: list[str]  # the channels the customer can be reached on (not the addresses)
    customer_note: str
    start_at: datetime
    end_at: datetime
    status: str
    hold_expires_at: datetime | None
    checked_in_at: datetime | None
    cancel_reason: str | None
    previous_start_at: datetime | None
    claimed_slots: int
    calendar_status: str  # the resource's calendar connection
    calendar_sync_status: str
    calendar_sync_attempts: int
    calendar_last_error: str | None
    calendar_next_retry_at: datetime | None
    reminder_due_at: datetime | None
    reminder_sent_at: datetime | None
    notifications: list[NotificationSummary]


class BookingStateOut(Strict):
    """What a booking write returns: the state it changed, without the customer's note (the
    recorded result of a write is kept in `tool_calls` as is)."""

    id: str
    status: str
    start_at: datetime
    end_at: datetime
    hold_expires_at: datetime | None
    cancel_reason: str | None
    claimed_slots: int
    calendar_sync_status: str
    calendar_sync_attempts: int
    calendar_last_error: str | None
    calendar_next_retry_at: datetime | None


class NotificationOut(Strict):
    id: str
    booking_id: str
    customer_id: str
    recipient_ref: str  # `customer:<id>`: who, without the address
    channel: str
    template: str
    subject: str
    status: str
    idempotency_key: str
    created_at: datetime
    deduplicated: bool = False  # the same message was already queued (by any run)


class BookingRef(Strict):
    booking_id: str = Field(min_length=1, max_length=64)


class NotificationRef(Strict):
    message_id: str = Field(min_length=1, max_length=64)


class SendConfirmation(Strict):
    booking_id: str = Field(min_length=1, max_length=64)
    customer_id: str = Field(min_length=1, max_length=64)
    template: ConfirmationTemplate
    channel: Channel


class SendReminder(Strict):
    booking_id: str = Field(min_length=1, max_length=64)
    customer_id: str = Field(min_length=1, max_length=64)
    channel: Channel


class SendFollowUp(Strict):
    booking_id: str = Field(min_length=1, max_length=64)
    customer_id: str = Field(min_length=1, max_length=64)
    template: FollowUpTemplate = "no_show"
    channel: Channel


class CancelNoShow(Strict):
    booking_id: str = Field(min_length=1, max_length=64)
    reason: str = Field(default="no_show", min_length=1, max_length=200)


class ReleaseHold(Strict):
    booking_id: str = Field(min_length=1, max_length=64)
    expected_expiry: AwareDatetime = Field(
        description="the hold's expiry the plan saw; a hold extended since is not released")


# --------------------------------------------------------------------------- helpers


def message_key(template: str, booking_id: str, start_at: datetime) -> str:
    """The outbox's business key: one message of a kind per booking and appointment time."""
    return f"{template}:{booking_id}:{start_at.astimezone(ZoneInfo('UTC')):%Y%m%dT%H%M}"


def message_id(template: str, booking_id: str, start_at: datetime) -> str:
    """The outbox row id a message tool writes (the planner verifies by it)."""
    return stable_id("MSG", message_key(template, booking_id, start_at), length=16)


def _booking(ctx: ToolContext, booking_id: str, tool: str) -> Booking:
    return ctx.fetch(Booking, booking_id, tool, "booking")


def _place(ctx: ToolContext, resource: BookingResource | None) -> tuple[str, str]:
    prop = ctx.session.get(Property, (ctx.tenant_id, resource.property_id)) if resource else None
    return (prop.name, prop.timezone) if prop else ("", DEFAULT_TIMEZONE)


def _channels(customer: BookingCustomer | None) -> list[str]:
    if customer is None:
        return []
    return [c for c, v in (("email", customer.email), ("sms", customer.phone),
                           ("webhook", customer.webhook_url)) if v]


def booking_out(ctx: ToolContext, b: Booking) -> BookingOut:
    resource = ctx.session.get(BookingResource, (ctx.tenant_id, b.resource_id))
    customer = ctx.session.get(BookingCustomer, (ctx.tenant_id, b.customer_id))
    prop_name, tz = _place(ctx, resource)
    notes = ctx.session.scalars(select(NotificationOutbox).where(
        NotificationOutbox.tenant_id == ctx.tenant_id, NotificationOutbox.booking_id == b.id)
        .order_by(NotificationOutbox.created_at, NotificationOutbox.id)).all()
    return BookingOut(
        id=b.id, resource_id=b.resource_id, resource_name=resource.name if resource else "",
        resource_kind=resource.kind if resource else "",
        property_id=resource.property_id if resource else "", property_name=prop_name,
        timezone=tz, service=b.service, customer_id=b.customer_id,
        preferred_channel=customer.preferred_channel if customer else "",
        channels=_channels(customer), customer_note=b.customer_note or "",
        start_at=b.start_at, end_at=b.end_at, status=b.status,
        hold_expires_at=b.hold_expires_at, checked_in_at=b.checked_in_at,
        cancel_reason=b.cancel_reason, previous_start_at=b.previous_start_at,
        claimed_slots=claimed_slots(ctx.session, ctx.tenant_id, b.id),
        calendar_status=resource.calendar_status if resource else "",
        calendar_sync_status=b.calendar_sync_status,
        calendar_sync_attempts=b.calendar_sync_attempts,
        calendar_last_error=b.calendar_last_error,
        calendar_next_retry_at=b.calendar_next_retry_at, reminder_due_at=b.reminder_due_at,
        reminder_sent_at=b.reminder_sent_at,
        notifications=[NotificationSummary(id=n.id, template=n.template, channel=n.channel,
                                           status=n.status, idempotency_key=n.idempotency_key,
                                           created_at=n.created_at) for n in notes])


def booking_state(ctx: ToolContext, b: Booking) -> BookingStateOut:
    return BookingStateOut(
        id=b.id, status=b.status, start_at=b.start_at, end_at=b.end_at,
        hold_expires_at=b.hold_expires_at, cancel_reason=b.cancel_reason,
        claimed_slots=claimed_slots(ctx.session, ctx.tenant_id, b.id),
        calendar_sync_status=b.calendar_sync_status,
        calendar_sync_attempts=b.calendar_sync_attempts,
        calendar_last_error=b.calendar_last_error,
        calendar_next_retry_at=b.calendar_next_retry_at)


def notification_out(n: NotificationOutbox, deduplicated: bool = False) -> NotificationOut:
    return NotificationOut(id=n.id, booking_id=n.booking_id, customer_id=n.customer_id,
                           recipient_ref=f"customer:{n.customer_id}", channel=n.channel,
                           template=n.template, subject=n.subject, status=n.status,
                           idempotency_key=n.idempotency_key, created_at=n.created_at,
                           deduplicated=deduplicated)


def _local(moment: datetime, tz: str) -> str:
    return f"{moment.astimezone(ZoneInfo(tz)):%a %d %b at %H:%M}"


def _render(template: str, b: Booking, customer: BookingCustomer, place: str, tz: str,
            now: datetime) -> tuple[str, str]:
    """Subject and body of a message (the body is the only place the first name goes)."""
    when, first = _local(b.start_at, tz), customer.name.split()[0]
    where = f" at {place}" if place else ""
    if template == "booking_confirmed":
        subject = f"Confirmed: {b.service} on {when}"
        body = f"Hi {first}, your {b.service}{where} is confirmed for {when}."
    elif template == "booking_rescheduled":
        before = _local(b.previous_start_at, tz) if b.previous_start_at else "its old time"
        subject = f"Rescheduled: {b.service} now on {when}"
        body = f"Hi {first}, your {b.service}{where} has moved from {before} to {when}."
    elif template == "booking_cancelled":
        subject = f"Cancelled: {b.service} on {when}"
        body = f"Hi {first}, your {b.service}{where} on {when} has been cancelled."
    elif template == "reminder":
        hours = max(1, round((b.start_at - now).total_seconds() / 3600))
        subject = f"Reminder: {b.service} on {when}"
        body = (f"Hi {first}, a reminder of your {b.service}{where} on {when} "
                f"(in about {hours} hour{'s' if hours != 1 else ''}). Reply C to confirm.")
    elif template == "no_show":
        subject = f"We missed you: {b.service} on {when}"
        body = (f"Hi {first}, we missed you at your {b.service}{where} on {when}. "
                "Reply to this message to book a new time.")
    else:
        raise ValueError(f"unknown template {template!r}")
    return subject, f"{body} Times are {tz.split('/')[-1].replace('_', ' ')} time."


def _queue(ctx: ToolContext, tool: str, b: Booking, customer_id: str, template: str,
           channel: str) -> NotificationOut:
    """Write one message to the outbox exactly once per business key (the effect of every
    message tool)."""
    if b.customer_id != customer_id:
        raise PermanentToolError(tool, f"booking {b.id} belongs to customer {b.customer_id}, "
                                       f"not {customer_id}")
    key = message_key(template, b.id, b.start_at)
    existing = ctx.session.scalar(select(NotificationOutbox).where(
        NotificationOutbox.tenant_id == ctx.tenant_id,
        NotificationOutbox.idempotency_key == key))
    if existing is not None:
        return notification_out(existing, deduplicated=True)
    customer = ctx.session.get(BookingCustomer, (ctx.tenant_id, customer_id))
    if customer is None:
        raise PermanentToolError(tool, f"customer {customer_id!r} does not exist")
    recipient = {"email": customer.email, "sms": customer.phone,
                 "webhook": customer.webhook_url}[channel]
    if not recipient:
        raise PermanentToolError(tool, f"customer {customer_id} has no {channel} contact "
                                       f"(reachable by: {', '.join(_channels(customer))})")
    resource = ctx.session.get(BookingResource, (ctx.tenant_id, b.resource_id))
    place, tz = _place(ctx, resource)
    subject, body = _render(template, b, customer, place, tz, ctx.now)
    row = NotificationOutbox(
        tenant_id=ctx.tenant_id, id=message_id(template, b.id, b.start_at), booking_id=b.id,
        customer_id=customer_id, channel=channel, recipient=recipient, template=template,
        subject=subject, status="queued", idempotency_key=key,
        source_thread_id=ctx.thread_id, attempts=0, created_at=ctx.now,
        payload={"subject": subject, "body": body, "service": b.service, "location": place,
                 "start_at": b.start_at.isoformat(), "timezone": tz,
                 "booking_id": b.id})
    ctx.session.add(row)
    ctx.session.flush()
    return notification_out(row)


def _minutes(delta_seconds: float) -> int:
    return int(delta_seconds // 60)


# --------------------------------------------------------------------------- previews

CUSTOMER_MESSAGE = Preview(record="booking", read_tool="get_booking", key="booking_id",
                           notifies={"customer_id": "customer"})
NO_SHOW_CANCEL = Preview(record="booking", read_tool="get_booking", key="booking_id",
                         fixed={"status": "CANCELLED", "claimed_slots": 0},
                         sets={"cancel_reason": "reason"})
HOLD_RELEASE = Preview(record="booking", read_tool="get_booking", key="booking_id",
                       fixed={"status": "EXPIRED", "claimed_slots": 0})
CALENDAR_RETRY = Preview(record="booking", read_tool="get_booking", key="booking_id",
                         fixed={"calendar_sync_status": "SYNCED"})


# --------------------------------------------------------------------------- registration


def register(registry: ToolRegistry) -> None:
    """Add the bookings tools to `registry`."""

    @registry.tool(name="get_booking", kind=ToolKind.READ, input_model=BookingRef,
                   output_model=BookingOut,
                   description="A booking or hold with its resource, calendar sync state, "
                               "claimed slots and outbox messages (no contact details).")
    def get_booking(ctx: ToolContext, args: BookingRef) -> BookingOut:
        return booking_out(ctx, _booking(ctx, args.booking_id, "get_booking"))

    @registry.tool(name="get_booking_notification", kind=ToolKind.READ,
                   input_model=NotificationRef, output_model=NotificationOut,
                   description="One message in the booking notification outbox (no address).")
    def get_booking_notification(ctx: ToolContext, args: NotificationRef) -> NotificationOut:
        row = ctx.session.get(NotificationOutbox, (ctx.tenant_id, args.message_id))
        if row is None:
            raise PermanentToolError("get_booking_notification",
                                     f"message {args.message_id!r} does not exist")
        return notification_out(row)

    # ----------------------------------------------------------------------- writes

    def confirmation_facts(ctx: ToolContext, args: SendConfirmation) -> dict[str, object]:
        return {"recipients": 1, "external": True}

    def follow_up_facts(ctx: ToolContext, args: SendFollowUp) -> dict[str, object]:
        b = ctx.session.get(Booking, (ctx.tenant_id, args.booking_id))
        facts: dict[str, object] = {"recipients": 1, "external": True}
        if b is not None:
            facts["minutes_since_start"] = max(0, _minutes(
                (ctx.now - b.start_at).total_seconds()))
        return facts

    def reminder_facts(ctx: ToolContext, args: SendReminder) -> dict[str, object]:
        # Lead time from the stored appointment, at the moment of the decision: a reminder
        # that waited for a person is judged again by how far ahead it still is.
        facts: dict[str, object] = {"recipients": 1, "external": True}
        b = ctx.session.get(Booking, (ctx.tenant_id, args.booking_id))
        if b is not None:
            facts["lead_time_minutes"] = max(0, _minutes((b.start_at - ctx.now).total_seconds()))
        return facts

    @registry.tool(name="send_confirmation", kind=ToolKind.WRITE, reversible=False,
                   input_model=SendConfirmation, output_model=NotificationOut,
                   risk=RiskClass.LOW, policy_facts=confirmation_facts,
                   preview=CUSTOMER_MESSAGE,
                   description="Queue a booking confirmation (booked, rescheduled or "
                               "cancelled) to the customer in the outbox (cannot be unsent).")
    def send_confirmation(ctx: ToolContext, args: SendConfirmation) -> NotificationOut:
        b = _booking(ctx, args.booking_id, "send_confirmation")
        wanted = "CANCELLED" if args.template == "booking_cancelled" else "CONFIRMED"
        if b.status != wanted:
            raise PermanentToolError("send_confirmation", f"booking {b.id} is {b.status}; "
                                                          f"{args.template} needs {wanted}")
        return _queue(ctx, "send_confirmation", b, args.customer_id, args.template,
                      args.channel)

    @registry.tool(name="send_reminder", kind=ToolKind.WRITE, reversible=False,
                   input_model=SendReminder, output_model=NotificationOut,
                   risk=RiskClass.LOW, policy_facts=reminder_facts, preview=CUSTOMER_MESSAGE,
                   description="Queue an appointment reminder in the outbox (cannot be unsent).")
    def send_reminder(ctx: ToolContext, args: SendReminder) -> NotificationOut:
        b = _booking(ctx, args.booking_id, "send_reminder")
        if b.status != "CONFIRMED" or b.start_at <= ctx.now:
            raise PermanentToolError("send_reminder", f"booking {b.id} is {b.status} and "
                                                      f"starts {b.start_at:%Y-%m-%d %H:%M}Z: "
                                                      "nothing to remind of")
        out = _queue(ctx, "send_reminder", b, args.customer_id, "reminder", args.channel)
        b.reminder_sent_at = b.reminder_sent_at or ctx.now
        return out

    @registry.tool(name="send_follow_up", kind=ToolKind.WRITE, reversible=False,
                   input_model=SendFollowUp, output_model=NotificationOut,
                   risk=RiskClass.LOW, policy_facts=follow_up_facts,
                   preview=CUSTOMER_MESSAGE,
                   description="Queue a post-visit follow-up (e.g. 'we missed you, rebook?') "
                               "in the outbox (cannot be unsent).")
    def send_follow_up(ctx: ToolContext, args: SendFollowUp) -> NotificationOut:
        b = _booking(ctx, args.booking_id, "send_follow_up")
        if b.start_at > ctx.now:
            raise PermanentToolError("send_follow_up", f"booking {b.id} has not started yet")
        return _queue(ctx, "send_follow_up", b, args.customer_id, args.template, args.channel)

    def no_show_facts(ctx: ToolContext, args: CancelNoShow) -> dict[str, object]:
        b = ctx.session.get(Booking, (ctx.tenant_id, args.booking_id))
        facts: dict[str, object] = {"external": True}
        if b is not None:
            facts["minutes_since_start"] = max(0, _minutes(
                (ctx.now - b.start_at).total_seconds()))
        return facts

    @registry.tool(name="auto_cancel_no_show", kind=ToolKind.WRITE, reversible=False,
                   input_model=CancelNoShow, output_model=BookingStateOut,
                   risk=RiskClass.MEDIUM,
                   policy_facts=no_show_facts, preview=NO_SHOW_CANCEL,
                   description="Cancel a confirmed booking whose customer did not arrive and "
                               "give its slots back (the customer loses the booking).")
    def auto_cancel_no_show(ctx: ToolContext, args: CancelNoShow) -> BookingStateOut:
        b = _booking(ctx, args.booking_id, "auto_cancel_no_show")
        if b.status != "CONFIRMED" or b.checked_in_at is not None or b.start_at > ctx.now:
            raise PermanentToolError("auto_cancel_no_show",
                                     f"booking {b.id} is {b.status}"
                                     + (", checked in" if b.checked_in_at else "")
                                     + ": not a no-show")
        cancel(ctx.session, b, args.reason, ctx.now)
        ctx.session.flush()
        return booking_state(ctx, b)

    @registry.tool(name="release_expired_hold", kind=ToolKind.WRITE, reversible=True,
                   input_model=ReleaseHold, output_model=BookingStateOut,
                   preview=HOLD_RELEASE,
                   description="Give the slots of an expired hold back (the customer can "
                               "hold again while the slot is free).")
    def release_expired_hold(ctx: ToolContext, args: ReleaseHold) -> BookingStateOut:
        b = _booking(ctx, args.booking_id, "release_expired_hold")
        if b.status == "HELD" and b.hold_expires_at != args.expected_expiry:
            raise PermanentToolError("release_expired_hold",
                                     f"hold {b.id} now expires at {b.hold_expires_at}, not "
                                     f"{args.expected_expiry}: it was extended")
        try:
            expire_hold(ctx.session, b, ctx.now)
        except BookingError as exc:
            raise PermanentToolError("release_expired_hold", str(exc)) from None
        ctx.session.flush()
        return booking_state(ctx, b)

    def calendar_facts(ctx: ToolContext, args: BookingRef) -> dict[str, object]:
        b = ctx.session.get(Booking, (ctx.tenant_id, args.booking_id))
        return {"attempt": b.calendar_sync_attempts if b else 0}

    @registry.tool(name="retry_calendar_sync", kind=ToolKind.WRITE, reversible=True,
                   input_model=BookingRef, output_model=BookingStateOut,
                   policy_facts=calendar_facts, preview=CALENDAR_RETRY,
                   description="Write a booking to its resource's calendar again after a "
                               "failed write. A provider outage is recorded as one more "
                               "failed attempt (with the next retry time), not hidden.")
    def retry_calendar_sync(ctx: ToolContext, args: BookingRef) -> BookingStateOut:
        b = _booking(ctx, args.booking_id, "retry_calendar_sync")
        if b.calendar_sync_status == "SYNCED":
            return booking_state(ctx, b)  # already there: nothing to do, nothing repeated
        resource = ctx.session.get(BookingResource, (ctx.tenant_id, b.resource_id))
        if resource is not None and resource.calendar_status == "auth_expired":
            raise PermanentToolError("retry_calendar_sync",
                                     f"the calendar of {resource.name} needs to be "
                                     "reconnected (authorisation expired)")
        if b.status not in ACTIVE_STATUSES and b.status != "CANCELLED":
            raise PermanentToolError("retry_calendar_sync",
                                     f"booking {b.id} is {b.status}: nothing to sync")
        sync_calendar(ctx.session, b, ctx.now)
        ctx.session.flush()
        return booking_state(ctx, b)
