"""Scheduled trigger detection for bookings: reminders falling due, no-shows, expired holds
(the seed's hold cleanup timer) and calendar writes due for a retry.

Each scan is one set-based query over an indexed (status, due column) pair and reads only
rows whose due moment lies in the tick window `(since, until]`; `since=None` (the first tick)
reads everything currently due. A row crosses its threshold once, so it is found by exactly
one tick; a repeat still lands on its existing run through the dedupe key.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from autopilot.sandbox.bookings import Booking

# A confirmed appointment is a no-show once it is this far past its start with no check-in.
NO_SHOW_GRACE = timedelta(minutes=15)


def detect(session: Session, since: datetime | None, until: datetime) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    b = Booking

    reminders = select(b.tenant_id, b.id, b.start_at, b.reminder_due_at).where(
        b.status == "CONFIRMED", b.reminder_due_at <= until, b.reminder_sent_at.is_(None),
        b.start_at > until)
    if since is not None:
        reminders = reminders.where(b.reminder_due_at > since)
    for tenant_id, booking_id, start, due in session.execute(
            reminders.order_by(b.reminder_due_at, b.tenant_id, b.id)):
        events.append(_event(tenant_id, f"reminder:{booking_id}:{start:%Y%m%dT%H%M}",
                             "ReminderDue", due,
                             {"booking_id": booking_id, "start_at": start.isoformat()}))

    no_shows = select(b.tenant_id, b.id, b.start_at).where(
        b.status == "CONFIRMED", b.start_at <= until - NO_SHOW_GRACE,
        b.checked_in_at.is_(None))
    if since is not None:
        no_shows = no_shows.where(b.start_at > since - NO_SHOW_GRACE)
    for tenant_id, booking_id, start in session.execute(
            no_shows.order_by(b.start_at, b.tenant_id, b.id)):
        events.append(_event(tenant_id, f"no-show:{booking_id}:{start:%Y%m%dT%H%M}",
                             "NoShowDetected", start + NO_SHOW_GRACE,
                             {"booking_id": booking_id}))

    holds = select(b.tenant_id, b.id, b.hold_expires_at, b.start_at, b.end_at).where(
        b.status == "HELD", b.hold_expires_at <= until)
    if since is not None:
        holds = holds.where(b.hold_expires_at > since)
    for tenant_id, hold_id, expiry, start, end in session.execute(
            holds.order_by(b.hold_expires_at, b.tenant_id, b.id)):
        events.append(_event(tenant_id, f"hold-expired:{hold_id}", "HoldExpired", expiry,
                             {"hold_id": hold_id, "slot_start": start.isoformat(),
                              "slot_end": end.isoformat()}))

    retries = select(b.tenant_id, b.id, b.calendar_next_retry_at, b.calendar_sync_attempts,
                     b.calendar_last_error).where(
        b.calendar_sync_status == "FAILED", b.calendar_next_retry_at <= until)
    if since is not None:
        retries = retries.where(b.calendar_next_retry_at > since)
    for tenant_id, booking_id, due, attempts, error in session.execute(
            retries.order_by(b.calendar_next_retry_at, b.tenant_id, b.id)):
        events.append(_event(tenant_id, f"calendar-retry:{booking_id}:{attempts}",
                             "CalendarWriteFailed", due,
                             {"booking_id": booking_id, "attempt": attempts,
                              "error": (error or "")[:500]}))
    return events


def _event(tenant_id: str, event_id: str, event_type: str, at: datetime,
           payload: dict[str, Any]) -> dict[str, Any]:
    return {"event_id": event_id, "tenant_id": tenant_id, "source": "scheduler",
            "event_type": event_type, "occurred_at": at.isoformat(), "payload": payload}
