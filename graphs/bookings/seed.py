"""Sandbox data and demo triggers for the bookings autopilot.

The tenant's three NYC buildings (seeded before this) get bookable resources: leasing tours,
move-in inspections and a community room, one of them on a calendar whose authorisation has
expired. Prospects and residents book them; the bookings are made through the sandbox
booking service (so every active one holds its slots) and cover every state the autopilot
reacts to: new, rescheduled, cancelled, a live hold and an expired one, calendar writes that
failed twice and five times, a reminder that is due, a no-show and a visit that happened.
All times are relative to `now`, on the 15-minute grid.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from autopilot.sandbox.bookings import (
    Booking,
    BookingCustomer,
    BookingResource,
    book,
    cancel,
    check_in,
    reschedule,
)

HOUR, DAY = timedelta(hours=1), timedelta(days=1)

# (id, name, kind, property, service, calendar provider, calendar status)
RESOURCES = [
    ("RES-GRAND-TOURS", "Leasing tours, Grand Concourse Residences", "staff", "P-GRAND",
     "Apartment tour", "google", "connected"),
    ("RES-FLAT-INSPECT", "Move-in inspections, Flatbush Gardens", "staff", "P-FLATBUSH",
     "Move-in inspection", "outlook", "connected"),
    ("RES-FLAT-ROOM", "Community room, Flatbush Gardens", "room", "P-FLATBUSH",
     "Community room reservation", "google", "connected"),
    ("RES-ASTORIA-TOURS", "Leasing tours, Astoria Park Lofts", "staff", "P-ASTORIA",
     "Apartment tour", "outlook", "auth_expired"),
]

# (id, name, channel); e-mail and phone are derived, webhook only for the relocation firm
CUSTOMERS = [
    ("C-1001", "Ana Torres", "email"), ("C-1002", "Ben Adler", "sms"),
    ("C-1003", "Chloe Nwosu", "email"), ("C-1004", "Deepak Rao", "sms"),
    ("C-1005", "Elena Petrova", "email"), ("C-1006", "Farid Haddad", "sms"),
    ("C-1007", "Gina Russo", "email"), ("C-1008", "Hiro Tanaka", "sms"),
    ("C-1009", "Brightside Relocation", "webhook"), ("C-1010", "Imani Brooks", "email"),
]

LEGAL_NOTE = ("Second try: last time nobody showed up for my tour. If that happens again "
              "I'm calling my attorney.")


def _hour(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def seed(session: Session, tenant_id: str, now: datetime) -> bool:
    """Idempotent: does nothing when the tenant already has booking resources."""
    if session.scalar(select(BookingResource.id).where(
            BookingResource.tenant_id == tenant_id).limit(1)):
        return False
    for rid, name, kind, prop, service, provider, status in RESOURCES:
        session.add(BookingResource(tenant_id=tenant_id, id=rid, name=name, kind=kind,
                                    property_id=prop, service=service,
                                    calendar_provider=provider, calendar_status=status,
                                    active=True))
    for n, (cid, name, channel) in enumerate(CUSTOMERS):
        handle = name.lower().replace(" ", ".")
        session.add(BookingCustomer(
            tenant_id=tenant_id, id=cid, name=name, preferred_channel=channel,
            email=f"{handle}@example.com", phone=f"+1917555{100 + n:04d}",
            webhook_url="https://hooks.brightside-relocation.example/bookings"
            if channel == "webhook" else None))
    session.flush()
    h = _hour(now)

    def make(bid: str, resource: str, customer: str, start: datetime, minutes: int,
             made: datetime, hold: timedelta | None = None, note: str = "") -> Booking:
        return book(session, tenant_id, booking_id=bid, resource_id=resource,
                    customer_id=customer, start=start, end=start + timedelta(minutes=minutes),
                    now=made, hold_for=hold, note=note)

    make("BK-1001", "RES-GRAND-TOURS", "C-1001", h + 26 * HOUR, 30, now,
         note="Interested in the 2-bedroom units.")
    moved = make("BK-1002", "RES-FLAT-INSPECT", "C-1002", h + 2 * DAY, 60, now - 3 * DAY)
    reschedule(session, moved, h + 3 * DAY, h + 3 * DAY + HOUR, now)
    cancel(session, make("BK-1003", "RES-GRAND-TOURS", "C-1003", h + 2 * DAY + 2 * HOUR, 30,
                         now - DAY), "customer: found another apartment", now)
    make("BK-1004", "RES-FLAT-ROOM", "C-1004", h + DAY + 3 * HOUR, 120,
         now - 40 * timedelta(minutes=1), hold=timedelta(minutes=30),
         note="Birthday party for 20 people.")
    make("BK-1005", "RES-GRAND-TOURS", "C-1005", h + 4 * DAY, 30, now,
         hold=timedelta(minutes=45))
    for bid, customer, start, attempts in (("BK-1006", "C-1006", h + 30 * HOUR, 2),
                                           ("BK-1007", "C-1007", h + 50 * HOUR, 5)):
        resource = "RES-FLAT-INSPECT" if bid == "BK-1006" else "RES-GRAND-TOURS"
        failed = make(bid, resource, customer, start, 60 if bid == "BK-1006" else 30,
                      now - DAY)
        failed.calendar_sync_status, failed.calendar_sync_attempts = "FAILED", attempts
        failed.calendar_last_error = "calendar provider unavailable (HTTP 503)"
        failed.calendar_next_retry_at = now - timedelta(minutes=attempts)
    make("BK-1008", "RES-FLAT-INSPECT", "C-1008", h - HOUR, 60, now - 2 * DAY)
    # On the calendar whose authorisation expired: its write failed when it was booked.
    make("BK-1009", "RES-ASTORIA-TOURS", "C-1009", h + 20 * HOUR, 30, now - 2 * DAY)
    done = make("BK-1010", "RES-GRAND-TOURS", "C-1010", h - 3 * HOUR, 30, now - 3 * DAY)
    check_in(done, h - 3 * HOUR + timedelta(minutes=5))
    done.status = "COMPLETED"
    make("BK-1011", "RES-GRAND-TOURS", "C-1003", h + 6 * DAY, 30, now, note=LEGAL_NOTE)
    session.flush()
    return True


def demo(tenant_id: str, now: datetime) -> list[tuple[str, dict[str, Any]]]:
    """What `autopilot demo` fires for bookings, against the seeded data."""
    at = now.isoformat()
    h = _hour(now)

    def event(n: int, event_type: str, payload: dict[str, Any]) -> dict[str, Any]:
        return {"event_id": f"bk-evt-{n}", "tenant_id": tenant_id, "source": "booking-service",
                "event_type": event_type, "occurred_at": at, "trace_id": f"bk-trace-{n}",
                "payload": payload}

    created = event(1, "BookingCreated", {"booking_id": "BK-1001"})
    return [
        ("BookingCreated: the confirmation goes out on its own (BOOKING_SEND_CONFIRMATION)",
         created),
        ("BookingRescheduled: the new time is confirmed",
         event(2, "BookingRescheduled", {"booking_id": "BK-1002",
                                         "previous_start_at": (h + 2 * DAY).isoformat()})),
        ("BookingCancelled: the cancellation is confirmed",
         event(3, "BookingCancelled", {"booking_id": "BK-1003",
                                       "reason": "customer: found another apartment"})),
        ("HoldCreated: nothing to do, the hold timer watches it",
         event(4, "HoldCreated", {"hold_id": "BK-1005"})),
        ("HoldExpired: the slot is released (BOOKING_RELEASE_EXPIRED_HOLD)",
         event(5, "HoldExpired", {"hold_id": "BK-1004"})),
        ("CalendarWriteFailed after 2 attempts: retried on its own",
         event(6, "CalendarWriteFailed", {"booking_id": "BK-1006", "attempt": 2,
                                          "error": "calendar provider unavailable"})),
        ("CalendarWriteFailed after 5 attempts: a person decides (NO_AUTO_PERMIT)",
         event(7, "CalendarWriteFailed", {"booking_id": "BK-1007", "attempt": 5,
                                          "error": "calendar provider unavailable"})),
        ("CalendarWriteFailed on an expired calendar authorisation: escalated, not retried",
         event(8, "CalendarWriteFailed", {"booking_id": "BK-1009", "attempt": 1,
                                          "error": "calendar authorisation expired"})),
        ("ReminderDue: the reminder goes out (held for a person in quiet hours)",
         event(9, "ReminderDue", {"booking_id": "BK-1009",
                                  "start_at": (h + 20 * HOUR).isoformat()})),
        ("NoShowDetected: auto-cancel is denied by policy, so a manager decides",
         event(10, "NoShowDetected", {"booking_id": "BK-1008"})),
        ("BookingCreated with a legal threat in the note: a person reviews the confirmation",
         event(11, "BookingCreated", {"booking_id": "BK-1011"})),
        ("Same BookingCreated again: deduplicated", created),
    ]
