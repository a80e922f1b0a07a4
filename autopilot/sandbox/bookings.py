"""Sandbox booking system of the bookings autopilot (seed 002, gomomo.ai): bookable resources
in the shared NYC buildings (leasing tours, move-in inspections, a community room), the
customers who book them, bookings and holds, the mirrored external calendar and the
notification outbox the autopilot writes to.

No overbooking, ever (seed 002 section 2). The guarantee is a database constraint that holds
identically on SQLite and Postgres: every HELD or CONFIRMED booking claims each 15-minute slot
it covers in `booking_slot_claims`, whose primary key is (tenant, resource, slot number). Two
bookings that overlap by even one slot on the same resource cannot both be committed, however
many processes try at once: the second insert of a claimed slot is a unique violation (on
Postgres it waits for the first transaction and then fails; on SQLite writers serialise on the
write lock and the second sees the first's claim). Releasing a booking (cancel, expiry,
reschedule) deletes its claims in the same transaction that changes its status. Booking
times are therefore on the 15-minute grid, which every function here checks.

The functions below are the booking system's own service layer (what emits the seed's
domain events); the autopilot reaches these tables only through tools/bookings.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    delete,
    func,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from autopilot.models import Base, TenantKeyed, UTCDateTime, utcnow

SLOT_MINUTES = 15
SLOT_SECONDS = SLOT_MINUTES * 60
MAX_DURATION = timedelta(hours=8)
ACTIVE_STATUSES = ("HELD", "CONFIRMED")  # the statuses that hold their slots
BOOKING_STATUSES = ("HELD", "CONFIRMED", "CANCELLED", "EXPIRED", "COMPLETED")
CHANNELS = ("email", "sms", "webhook")
OUTBOX_STATUSES = ("queued", "sent", "failed")
SYNC_STATUSES = ("PENDING", "SYNCED", "FAILED")
CALENDAR_STATUSES = ("connected", "unavailable", "auth_expired")
REMINDER_LEAD = timedelta(hours=24)
# A booking made this close to its start gets no reminder: the confirmation just told them.
NO_REMINDER_WITHIN = timedelta(hours=2)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


# --------------------------------------------------------------------------- tables


class BookingResource(TenantKeyed, Base):
    """Something bookable: a person's calendar (leasing agent, super) or a room."""

    __tablename__ = "booking_resources"
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))  # staff | room
    property_id: Mapped[str] = mapped_column(String(64))
    service: Mapped[str] = mapped_column(String(100))  # what is booked on it
    calendar_provider: Mapped[str] = mapped_column(String(32))
    # The connection to the external calendar: connected | unavailable | auth_expired.
    calendar_status: Mapped[str] = mapped_column(String(16), default="connected")
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    __table_args__ = (
        CheckConstraint(_in("calendar_status", CALENDAR_STATUSES), name="calendar_status"),
    )


class BookingCustomer(TenantKeyed, Base):
    """Who booked; contact details stay here and in the outbox, nowhere else."""

    __tablename__ = "booking_customers"
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(200), nullable=True)
    phone: Mapped[str | None] = mapped_column(String(40), nullable=True)
    webhook_url: Mapped[str | None] = mapped_column(String(500), nullable=True)
    preferred_channel: Mapped[str] = mapped_column(String(10), default="email")

    __table_args__ = (
        CheckConstraint(_in("preferred_channel", CHANNELS), name="preferred_channel"),
    )


class Booking(TenantKeyed, Base):
    """A booking or a hold (status HELD, with `hold_expires_at`) on one resource."""

    __tablename__ = "bookings"
    resource_id: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[str] = mapped_column(String(64))
    service: Mapped[str] = mapped_column(String(100))
    start_at: Mapped[datetime] = mapped_column(UTCDateTime())
    end_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16))
    hold_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    checked_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    customer_note: Mapped[str] = mapped_column(Text, default="")
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    cancel_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    previous_start_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    calendar_sync_status: Mapped[str] = mapped_column(String(16), default="PENDING")
    calendar_sync_attempts: Mapped[int] = mapped_column(Integer, default=0)
    calendar_last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    calendar_next_retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime(),
                                                                    nullable=True)
    reminder_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    reminder_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        CheckConstraint("end_at > start_at", name="time_range"),
        CheckConstraint(_in("status", BOOKING_STATUSES), name="status"),
        CheckConstraint(_in("calendar_sync_status", SYNC_STATUSES), name="calendar_sync"),
        CheckConstraint("calendar_sync_attempts >= 0", name="calendar_attempts"),
        # The scheduled scans (graphs/bookings/detect.py), each over its own due column.
        Index("ix_bookings_reminder_due", "status", "reminder_due_at"),
        Index("ix_bookings_status_start", "status", "start_at"),
        Index("ix_bookings_hold_expiry", "status", "hold_expires_at"),
        Index("ix_bookings_calendar_retry", "calendar_sync_status", "calendar_next_retry_at"),
        Index("ix_bookings_resource_start", "tenant_id", "resource_id", "start_at"),
    )


class BookingSlotClaim(TenantKeyed, Base):
    """One 15-minute slot of a resource held by one active booking: the no-overbooking
    constraint (unique per tenant, resource and slot number, on every backend)."""

    __tablename__ = "booking_slot_claims"
    resource_id: Mapped[str] = mapped_column(String(64))
    slot_no: Mapped[int] = mapped_column(Integer)  # minutes since the epoch / 15
    slot_start: Mapped[datetime] = mapped_column(UTCDateTime())
    booking_id: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        UniqueConstraint("tenant_id", "resource_id", "slot_no",
                         name="uq_booking_slot_claims_resource_slot"),
        Index("ix_booking_slot_claims_booking", "tenant_id", "booking_id"),
    )


class CalendarEvent(TenantKeyed, Base):
    """The booking as the external calendar has it (what retry_calendar_sync writes)."""

    __tablename__ = "booking_calendar_events"
    booking_id: Mapped[str] = mapped_column(String(64))
    resource_id: Mapped[str] = mapped_column(String(64))
    start_at: Mapped[datetime] = mapped_column(UTCDateTime())
    end_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16))  # busy | cancelled
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class NotificationOutbox(TenantKeyed, Base):
    """Seed 002 `notification_outbox`: a message is queued here (the autopilot's write) and a
    delivery worker sends it. `idempotency_key` is the business key (template, booking and
    appointment time), so one appointment never gets the same message twice, whichever run
    asks. The recipient is resolved from the customer record at write time; it never appears
    in tool arguments, tool output, the ledger or logs."""

    __tablename__ = "booking_notification_outbox"
    booking_id: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(10))
    recipient: Mapped[str] = mapped_column(String(500))
    template: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(300))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(10), default="queued")
    idempotency_key: Mapped[str] = mapped_column(String(200))
    source_thread_id: Mapped[str | None] = mapped_column(String(80), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key",
                         name="uq_booking_notification_outbox_idempotency"),
        CheckConstraint(_in("channel", CHANNELS), name="channel"),
        CheckConstraint(_in("status", OUTBOX_STATUSES), name="status"),
        Index("ix_booking_notification_outbox_booking", "tenant_id", "booking_id"),
        Index("ix_booking_notification_outbox_status", "status", "created_at"),
    )


# --------------------------------------------------------------------------- the service


class BookingError(ValueError):
    """A request the booking system refuses (bad times, unknown records, wrong state)."""


class SlotUnavailable(BookingError):
    """Another active booking already claims one of the slots."""


def slot_no(moment: datetime) -> int:
    return int(moment.astimezone(UTC).timestamp()) // SLOT_SECONDS


def on_grid(moment: datetime) -> bool:
    return moment.tzinfo is not None and int(moment.timestamp()) % SLOT_SECONDS == 0 \
        and moment.microsecond == 0


def check_range(start: datetime, end: datetime) -> None:
    """Times the booking system accepts: aware, on the 15-minute grid, at most 8 hours."""
    if start.tzinfo is None or end.tzinfo is None:
        raise BookingError("booking times must carry a time zone")
    if not (on_grid(start) and on_grid(end)):
        raise BookingError(f"booking times must be on the {SLOT_MINUTES}-minute grid")
    if end <= start:
        raise BookingError("a booking must end after it starts")
    if end - start > MAX_DURATION:
        raise BookingError("a booking may last at most 8 hours")


def slots(start: datetime, end: datetime) -> list[int]:
    return list(range(slot_no(start), slot_no(end)))


def reminder_due(start: datetime, now: datetime) -> datetime | None:
    """When the reminder for an appointment at `start` falls due (None: no reminder)."""
    if start - now < NO_REMINDER_WITHIN:
        return None
    return max(start - REMINDER_LEAD, now)


def calendar_backoff(attempts: int) -> timedelta:
    """Wait before the next calendar retry: 5 min, doubling, at most 6 hours."""
    return min(timedelta(minutes=5) * (2 ** max(0, attempts - 1)), timedelta(hours=6))


def claimed_slots(session: Session, tenant_id: str, booking_id: str) -> int:
    return int(session.scalar(select(func.count()).select_from(BookingSlotClaim).where(
        BookingSlotClaim.tenant_id == tenant_id,
        BookingSlotClaim.booking_id == booking_id)) or 0)


def release_claims(session: Session, booking: Booking) -> None:
    session.execute(delete(BookingSlotClaim).where(
        BookingSlotClaim.tenant_id == booking.tenant_id,
        BookingSlotClaim.booking_id == booking.id))


def _claims(booking: Booking) -> list[BookingSlotClaim]:
    return [BookingSlotClaim(tenant_id=booking.tenant_id, id=f"{booking.id}:{n}",
                             resource_id=booking.resource_id, slot_no=n,
                             slot_start=datetime.fromtimestamp(n * SLOT_SECONDS, UTC),
                             booking_id=booking.id)
            for n in slots(booking.start_at, booking.end_at)]


def _claim(session: Session, booking: Booking, *, new_row: bool) -> None:
    """Write the booking (if new) and its slot claims in a savepoint: on a conflict nothing
    of this booking is left behind and the caller's transaction stays usable."""
    try:
        with session.begin_nested():
            if new_row:
                session.add(booking)
            session.add_all(_claims(booking))
            session.flush()
    except IntegrityError:
        raise SlotUnavailable(
            f"resource {booking.resource_id} is already booked between "
            f"{booking.start_at:%Y-%m-%d %H:%M} and {booking.end_at:%H:%M} UTC") from None


def _resource(session: Session, tenant_id: str, resource_id: str) -> BookingResource:
    resource = session.get(BookingResource, (tenant_id, resource_id))
    if resource is None or not resource.active:
        raise BookingError(f"resource {resource_id!r} does not exist or is inactive")
    return resource


def _calendar_write(session: Session, booking: Booking, resource: BookingResource,
                    now: datetime) -> bool:
    """Mirror the booking to the resource's calendar; on failure record the attempt (the
    booking system then emits CalendarWriteFailed)."""
    booking.calendar_sync_attempts += 1
    if resource.calendar_status != "connected":
        booking.calendar_sync_status = "FAILED"
        booking.calendar_last_error = {
            "unavailable": "calendar provider unavailable (HTTP 503)",
            "auth_expired": "calendar authorisation expired (HTTP 401)"}[resource.calendar_status]
        booking.calendar_next_retry_at = now + calendar_backoff(booking.calendar_sync_attempts)
        return False
    event = session.get(CalendarEvent, (booking.tenant_id, f"CAL-{booking.id}"))
    if event is None:
        event = CalendarEvent(tenant_id=booking.tenant_id, id=f"CAL-{booking.id}",
                              booking_id=booking.id, resource_id=booking.resource_id,
                              start_at=booking.start_at, end_at=booking.end_at, status="busy")
        session.add(event)
    event.start_at, event.end_at, event.updated_at = booking.start_at, booking.end_at, now
    event.status = "busy" if booking.status in ACTIVE_STATUSES else "cancelled"
    booking.calendar_sync_status = "SYNCED"
    booking.calendar_last_error = None
    booking.calendar_next_retry_at = None
    return True


def sync_calendar(session: Session, booking: Booking, now: datetime) -> bool:
    """One calendar write for `booking` (used by the booking system and by the retry tool)."""
    resource = session.get(BookingResource, (booking.tenant_id, booking.resource_id))
    if resource is None:
        raise BookingError(f"resource {booking.resource_id!r} does not exist")
    ok = _calendar_write(session, booking, resource, now)
    booking.updated_at = now
    return ok


def book(session: Session, tenant_id: str, *, booking_id: str, resource_id: str,
         customer_id: str, start: datetime, end: datetime, now: datetime | None = None,
         hold_for: timedelta | None = None, note: str = "") -> Booking:
    """Book (or, with `hold_for`, hold) a slot; raises SlotUnavailable if any of it is taken.
    A confirmed booking is written to the resource's calendar at once."""
    now = now or datetime.now(UTC)
    check_range(start, end)
    resource = _resource(session, tenant_id, resource_id)
    if session.get(BookingCustomer, (tenant_id, customer_id)) is None:
        raise BookingError(f"customer {customer_id!r} does not exist")
    if session.get(Booking, (tenant_id, booking_id)) is not None:
        raise BookingError(f"booking {booking_id!r} already exists")
    held = hold_for is not None
    booking = Booking(tenant_id=tenant_id, id=booking_id, resource_id=resource_id,
                      customer_id=customer_id, service=resource.service, start_at=start,
                      end_at=end, status="HELD" if held else "CONFIRMED",
                      hold_expires_at=now + hold_for if hold_for is not None else None,
                      customer_note=note, calendar_sync_status="PENDING",
                      calendar_sync_attempts=0,
                      reminder_due_at=None if held else reminder_due(start, now),
                      created_at=now, updated_at=now)
    _claim(session, booking, new_row=True)
    if not held:
        sync_calendar(session, booking, now)
    return booking


def confirm_hold(session: Session, booking: Booking, now: datetime | None = None) -> Booking:
    """A customer completes a hold: it keeps its slots and becomes a booking."""
    now = now or datetime.now(UTC)
    if booking.status != "HELD":
        raise BookingError(f"booking {booking.id} is {booking.status}, not HELD")
    if booking.hold_expires_at is not None and booking.hold_expires_at <= now:
        raise BookingError(f"the hold {booking.id} expired at {booking.hold_expires_at}")
    booking.status, booking.hold_expires_at = "CONFIRMED", None
    booking.reminder_due_at = reminder_due(booking.start_at, now)
    sync_calendar(session, booking, now)
    return booking


def reschedule(session: Session, booking: Booking, start: datetime, end: datetime,
               now: datetime | None = None) -> Booking:
    """Move a confirmed booking; the new slots are claimed before the old ones are given up
    in the same transaction, so a conflict leaves the booking where it was."""
    now = now or datetime.now(UTC)
    check_range(start, end)
    if booking.status != "CONFIRMED":
        raise BookingError(f"booking {booking.id} is {booking.status}, not CONFIRMED")
    old = (booking.start_at, booking.end_at)
    try:
        with session.begin_nested():
            release_claims(session, booking)
            booking.start_at, booking.end_at = start, end
            _claim(session, booking, new_row=False)
    except SlotUnavailable:
        booking.start_at, booking.end_at = old
        raise
    booking.previous_start_at = old[0]
    booking.reminder_due_at = reminder_due(start, now)
    booking.reminder_sent_at = None
    booking.calendar_sync_status = "PENDING"
    sync_calendar(session, booking, now)
    return booking


def cancel(session: Session, booking: Booking, reason: str,
           now: datetime | None = None) -> Booking:
    """Cancel a booking or hold and give its slots back."""
    now = now or datetime.now(UTC)
    if booking.status not in ACTIVE_STATUSES:
        raise BookingError(f"booking {booking.id} is already {booking.status}")
    release_claims(session, booking)
    was_on_calendar = booking.calendar_sync_status == "SYNCED"
    booking.status, booking.cancelled_at, booking.cancel_reason = "CANCELLED", now, reason
    booking.reminder_due_at = None
    booking.updated_at = now
    if was_on_calendar:
        sync_calendar(session, booking, now)
    return booking


def expire_hold(session: Session, booking: Booking, now: datetime | None = None) -> Booking:
    """Give an expired hold's slots back (the hold timer's job, seed 002 HoldExpired)."""
    now = now or datetime.now(UTC)
    if booking.status != "HELD":
        raise BookingError(f"booking {booking.id} is {booking.status}, not HELD")
    if booking.hold_expires_at is None or booking.hold_expires_at > now:
        raise BookingError(f"the hold {booking.id} has not expired yet")
    release_claims(session, booking)
    booking.status, booking.updated_at = "EXPIRED", now
    return booking


def check_in(booking: Booking, now: datetime | None = None) -> Booking:
    """The customer arrived (front desk / staff app)."""
    now = now or datetime.now(UTC)
    if booking.status != "CONFIRMED":
        raise BookingError(f"booking {booking.id} is {booking.status}, not CONFIRMED")
    booking.checked_in_at = booking.updated_at = now
    return booking
