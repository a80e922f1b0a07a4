"""Deterministic bookings playbook (seed 002 section 4 handlers): read the booking through the
gateway, then propose the one reaction its event calls for, with reasoning, evidence,
expected outcome, rollback and a read-back check.

| event | proposal |
|---|---|
| BookingCreated | `send_confirmation` (booking_confirmed) |
| BookingRescheduled | `send_confirmation` (booking_rescheduled) |
| BookingCancelled | `send_confirmation` (booking_cancelled) |
| HoldCreated | nothing: the hold timer (detect.py) watches it |
| HoldExpired | `release_expired_hold` |
| CalendarWriteFailed | `retry_calendar_sync` (escalation if the calendar needs reconnecting) |
| ReminderDue | `send_reminder` |
| NoShowDetected | `auto_cancel_no_show`, then `send_follow_up` (no_show) |

The playbook never decides what policy allows: the seeded rules (confirmation and reminder
allow, no-show cancel and follow-up deny, calendar retry allow below 5 attempts) and quiet
hours are the gate's. It only checks that the booking is still in the state the event
describes, so a stale or repeated event proposes nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from graphs.bookings.detect import NO_SHOW_GRACE
from graphs.bookings.events import (
    BookingCancelledPayload,
    BookingCreatedPayload,
    BookingRescheduledPayload,
    CalendarWriteFailedPayload,
    HoldCreatedPayload,
    HoldExpiredPayload,
    NoShowDetectedPayload,
    ReminderDuePayload,
)
from graphs.spine import NodeIO, Perception
from graphs.state import Escalation, PlanResult, Proposal, VerifySpec
from graphs.trigger import TriggerEnvelope
from tools.bookings import message_id, message_key

CONFIRMATION_WANTS = {"booking_confirmed": "CONFIRMED", "booking_rescheduled": "CONFIRMED",
                      "booking_cancelled": "CANCELLED"}


def _stamp(moment: datetime) -> str:
    return f"{moment:%Y%m%dT%H%M}"


def dedupe_ref(envelope: TriggerEnvelope, payload: BaseModel) -> tuple[str, str]:
    """(ref, scope) of the dedupe key: the booking, and which of its moments the event is
    about, so a second reschedule or the next calendar attempt is a new run."""
    if isinstance(payload, BookingCreatedPayload):
        return payload.booking_id, "created"
    if isinstance(payload, BookingCancelledPayload):
        return payload.booking_id, "cancelled"
    if isinstance(payload, BookingRescheduledPayload):
        return payload.booking_id, f"rescheduled-from-{_stamp(payload.previous_start_at)}"
    if isinstance(payload, HoldCreatedPayload):
        return payload.hold_id, "hold"
    if isinstance(payload, HoldExpiredPayload):
        return payload.hold_id, "hold-expired"
    if isinstance(payload, CalendarWriteFailedPayload):
        return payload.booking_id, ("calendar" if payload.attempt is None
                                    else f"calendar-attempt-{payload.attempt}")
    if isinstance(payload, ReminderDuePayload):
        return payload.booking_id, f"reminder-{_stamp(payload.start_at)}"
    if isinstance(payload, NoShowDetectedPayload):
        return payload.booking_id, "no-show"
    raise TypeError(f"no dedupe rule for {type(payload).__name__}")


# --------------------------------------------------------------------------- perceive


def _booking_id(payload: BaseModel) -> str:
    if isinstance(payload, HoldCreatedPayload | HoldExpiredPayload):
        return payload.hold_id
    return str(payload.booking_id)  # type: ignore[attr-defined]  # every other one has it


def _when(b: dict[str, Any], key: str = "start_at") -> str:
    moment = datetime.fromisoformat(b[key]).astimezone(ZoneInfo(b["timezone"]))
    return f"{moment:%a %d %b %H:%M} {b['timezone'].split('/')[-1].replace('_', ' ')}"


def perceive(io: NodeIO, envelope: TriggerEnvelope, payload: BaseModel) -> Perception:
    booking = io.read("get_booking", booking_id=_booking_id(payload))
    detail = payload.model_dump(mode="json", exclude_none=True)
    return Perception(
        {"event_type": envelope.event_type, "booking": booking, "payload": detail},
        [{"ref": f"event:{envelope.event_id}", "source": envelope.source,
          "summary": f"{envelope.event_type} for {booking['id']}: "
                     + ", ".join(f"{k}={v}" for k, v in detail.items())}])


# --------------------------------------------------------------------------- plan


def _facts(b: dict[str, Any]) -> dict[str, Any]:
    # The property gives the gate its scope and time zone (quiet hours are local); the
    # customer's note is screened for legal / harassment / ... keywords and never shown to
    # Cedar itself.
    return {"is_emergency": False, "category": "BOOKING", "property_id": b["property_id"],
            "text": b["customer_note"]}


def _refs(b: dict[str, Any], env: TriggerEnvelope) -> list[str]:
    return [f"booking:{b['id']}", f"event:{env.event_id}"]


def _nothing(b: dict[str, Any], summary: str) -> PlanResult:
    return PlanResult(run_facts=_facts(b), summary=summary)


def _sent(b: dict[str, Any], template: str) -> bool:
    key = message_key(template, b["id"], datetime.fromisoformat(b["start_at"]))
    return any(n["idempotency_key"] == key for n in b["notifications"])


def _channel(b: dict[str, Any]) -> str | None:
    if b["preferred_channel"] in b["channels"]:
        return str(b["preferred_channel"])
    return b["channels"][0] if b["channels"] else None


def _no_contact(b: dict[str, Any], refs: list[str]) -> PlanResult:
    esc = Escalation(severity="MEDIUM", category="SYSTEM",
                     title=f"Customer {b['customer_id']} cannot be reached",
                     details=f"Booking {b['id']}: the customer has no e-mail, phone or webhook "
                             "on record, so no message can be queued.",
                     decision_requested="Add a contact to the customer record, or call them",
                     evidence_refs=refs)
    return PlanResult(run_facts=_facts(b), summary=esc.title, escalation=esc)


def _message(action_id: str, tool: str, template: str, b: dict[str, Any], channel: str,
             refs: list[str], *, description: str, reasoning: str, confidence: float,
             expected: str, depends_on: list[str] | None = None) -> Proposal:
    args: dict[str, Any] = {"booking_id": b["id"], "customer_id": b["customer_id"],
                            "channel": channel}
    if tool != "send_reminder":
        args["template"] = template
    mid = message_id(template, b["id"], datetime.fromisoformat(b["start_at"]))
    return Proposal(
        action_id=action_id, tool=tool, args=args, description=description,
        confidence=confidence, reasoning=reasoning, evidence_refs=refs,
        expected_outcome=expected,
        rollback_plan="Irreversible once delivered: while it is still queued the outbox row "
                      f"{mid} can be marked failed; after that, send a correction",
        depends_on=depends_on or [],
        verify=VerifySpec(tool="get_booking_notification", args={"message_id": mid},
                          expect={"booking_id": b["id"], "template": template,
                                  "channel": channel}))


def plan(io: NodeIO, envelope: TriggerEnvelope, payload: BaseModel,
         seen: Perception) -> PlanResult:
    b = seen.context["booking"]
    refs = _refs(b, envelope)
    if isinstance(payload, BookingCreatedPayload | BookingRescheduledPayload
                  | BookingCancelledPayload):
        return _plan_confirmation(io, payload, b, refs)
    if isinstance(payload, HoldCreatedPayload):
        if b["status"] != "HELD":
            return _nothing(b, f"{b['id']} is {b['status']}, no longer a hold")
        return _nothing(b, f"Hold {b['id']} on {b['resource_name']} for {_when(b)} until "
                           f"{_when(b, 'hold_expires_at')}; the hold timer releases it if it "
                           "is not completed")
    if isinstance(payload, HoldExpiredPayload):
        return _plan_release(io, b, refs)
    if isinstance(payload, CalendarWriteFailedPayload):
        return _plan_calendar(b, refs)
    if isinstance(payload, ReminderDuePayload):
        return _plan_reminder(io, payload, b, refs)
    assert isinstance(payload, NoShowDetectedPayload)
    return _plan_no_show(io, b, refs)


def _plan_confirmation(io: NodeIO, payload: BaseModel, b: dict[str, Any],
                       refs: list[str]) -> PlanResult:
    template = ("booking_cancelled" if isinstance(payload, BookingCancelledPayload) else
                "booking_rescheduled" if isinstance(payload, BookingRescheduledPayload)
                else "booking_confirmed")
    wanted = CONFIRMATION_WANTS[template]
    what = template.removeprefix("booking_")
    if b["status"] != wanted:
        return _nothing(b, f"{b['id']} is {b['status']}: no '{what}' message for it")
    if isinstance(payload, BookingRescheduledPayload) and \
            datetime.fromisoformat(b["start_at"]) == payload.previous_start_at:
        return _nothing(b, f"{b['id']} is still at {_when(b)}: it did not move")
    if datetime.fromisoformat(b["start_at"]) <= io.now:
        return _nothing(b, f"{b['id']} began at {_when(b)}: too late for a '{what}' message")
    if _sent(b, template):
        return _nothing(b, f"The '{what}' message for {b['id']} at {_when(b)} is already "
                           "in the outbox")
    channel = _channel(b)
    if channel is None:
        return _no_contact(b, refs)
    why = {"booking_confirmed": "A new booking is confirmed to the customer straight away "
                                "(seed 002: confirmation after booking).",
           "booking_rescheduled": "The customer is told the new time as soon as a booking "
                                  "moves, so nobody turns up at the old one.",
           "booking_cancelled": "A cancellation is confirmed so the customer knows the slot "
                                "is gone and does not come."}[template]
    moved = (f" (was {_when(b, 'previous_start_at')})"
             if template == "booking_rescheduled" and b["previous_start_at"] else "")
    proposal = _message(
        "confirm", "send_confirmation", template, b, channel, refs,
        description=f"Send the '{what}' message for {b['service']} on {_when(b)}{moved} "
                    f"to customer {b['customer_id']} by {channel}",
        reasoning=f"{why} {b['id']} is {b['status']} on {b['resource_name']}; the customer "
                  f"prefers {b['preferred_channel']}.",
        confidence=0.97, expected=f"One queued {channel} '{what}' message for {b['id']}")
    return PlanResult(proposals=[proposal], run_facts=_facts(b),
                      summary=f"{what.capitalize()}: {b['service']} {b['id']} on {_when(b)}")


def _plan_release(io: NodeIO, b: dict[str, Any], refs: list[str]) -> PlanResult:
    if b["status"] != "HELD":
        return _nothing(b, f"{b['id']} is {b['status']}: nothing to release")
    expiry = datetime.fromisoformat(b["hold_expires_at"])
    if expiry > io.now:
        return _nothing(b, f"Hold {b['id']} now runs until {_when(b, 'hold_expires_at')}")
    proposal = Proposal(
        action_id="release", tool="release_expired_hold",
        args={"booking_id": b["id"], "expected_expiry": b["hold_expires_at"]},
        description=f"Release the expired hold {b['id']} on {b['resource_name']} "
                    f"({_when(b)}, {b['claimed_slots']} slots)",
        confidence=0.98,
        reasoning=f"The hold expired at {_when(b, 'hold_expires_at')} without being "
                  "completed; while it stands nobody else can book the slot.",
        evidence_refs=refs,
        expected_outcome=f"{b['id']} EXPIRED and its {b['claimed_slots']} slots free again",
        rollback_plan="Hold the slot again for the customer if it is still free",
        verify=VerifySpec(tool="get_booking", args={"booking_id": b["id"]},
                          expect={"status": "EXPIRED", "claimed_slots": 0}))
    return PlanResult(proposals=[proposal], run_facts=_facts(b),
                      summary=f"Hold {b['id']} expired: release {_when(b)}")


def _plan_calendar(b: dict[str, Any], refs: list[str]) -> PlanResult:
    if b["calendar_sync_status"] == "SYNCED":
        return _nothing(b, f"{b['id']} is already on the calendar")
    attempts = b["calendar_sync_attempts"]
    if b["calendar_status"] == "auth_expired":
        esc = Escalation(
            severity="MEDIUM", category="SYSTEM",
            title=f"Calendar of {b['resource_name']} needs reconnecting",
            details=f"{b['id']} ({_when(b)}) is not on the calendar after {attempts} "
                    f"attempt(s): {b['calendar_last_error'] or 'authorisation expired'}. "
                    "Retrying cannot help until the calendar is authorised again.",
            decision_requested="Reconnect the resource's calendar, then send a new "
                               "CalendarWriteFailed event (or add the booking by hand)",
            evidence_refs=refs)
        return PlanResult(run_facts=_facts(b), summary=esc.title, escalation=esc)
    proposal = Proposal(
        action_id="retry_sync", tool="retry_calendar_sync", args={"booking_id": b["id"]},
        description=f"Write {b['id']} ({_when(b)}) to the calendar of {b['resource_name']} "
                    f"again (after {attempts} failed attempt(s))",
        confidence=max(0.5, 0.95 - 0.08 * attempts),
        reasoning=f"The last calendar write failed: {b['calendar_last_error'] or 'unknown'}. "
                  "Staff work from the calendar, so a booking missing there is a missed "
                  "appointment waiting to happen.",
        evidence_refs=refs, expected_outcome=f"{b['id']} SYNCED to the calendar",
        rollback_plan="Delete the calendar event (the booking itself is unchanged)",
        verify=VerifySpec(tool="get_booking", args={"booking_id": b["id"]},
                          expect={"calendar_sync_status": "SYNCED"}))
    return PlanResult(proposals=[proposal], run_facts=_facts(b),
                      summary=f"Calendar retry for {b['id']} (attempt {attempts + 1})")


def _plan_reminder(io: NodeIO, payload: ReminderDuePayload, b: dict[str, Any],
                   refs: list[str]) -> PlanResult:
    start = datetime.fromisoformat(b["start_at"])
    if b["status"] != "CONFIRMED":
        return _nothing(b, f"{b['id']} is {b['status']}: no reminder")
    if start != payload.start_at:
        return _nothing(b, f"{b['id']} moved to {_when(b)}: its own reminder follows")
    if start <= io.now:
        return _nothing(b, f"{b['id']} already began at {_when(b)}")
    if b["reminder_sent_at"] or _sent(b, "reminder"):
        return _nothing(b, f"The reminder for {b['id']} at {_when(b)} is already sent")
    channel = _channel(b)
    if channel is None:
        return _no_contact(b, refs)
    lead = int((start - io.now).total_seconds() // 60)
    proposal = _message(
        "remind", "send_reminder", "reminder", b, channel, refs,
        description=f"Remind customer {b['customer_id']} by {channel} of {b['service']} "
                    f"on {_when(b)} (in {lead // 60} h {lead % 60} min)",
        reasoning="Reminders cut no-shows (seed 002: reminder before the appointment). "
                  f"{b['id']} is confirmed and the reminder was due "
                  f"{_when(b, 'reminder_due_at') if b['reminder_due_at'] else 'now'}.",
        confidence=0.95, expected=f"One queued {channel} reminder for {b['id']}")
    return PlanResult(proposals=[proposal], run_facts=_facts(b),
                      summary=f"Reminder: {b['service']} {b['id']} on {_when(b)}")


def _plan_no_show(io: NodeIO, b: dict[str, Any], refs: list[str]) -> PlanResult:
    start = datetime.fromisoformat(b["start_at"])
    if b["status"] != "CONFIRMED" or b["checked_in_at"]:
        return _nothing(b, f"{b['id']} is {b['status']}"
                           + (", checked in" if b["checked_in_at"] else "")
                           + ": not a no-show")
    if start + NO_SHOW_GRACE > io.now:
        return _nothing(b, f"{b['id']} began at {_when(b)}: still within the grace period")
    late = int((io.now - start).total_seconds() // 60)
    cancel = Proposal(
        action_id="cancel_no_show", tool="auto_cancel_no_show",
        args={"booking_id": b["id"], "reason": "no_show"},
        description=f"Cancel {b['id']} ({b['service']} on {_when(b)}) as a no-show and "
                    f"free its {b['claimed_slots']} slots",
        confidence=0.8,
        reasoning=f"The appointment began {late} minutes ago and customer "
                  f"{b['customer_id']} has not checked in; the rest of the slot could be "
                  "offered to someone else.",
        evidence_refs=refs, expected_outcome=f"{b['id']} CANCELLED (no_show), slots free",
        rollback_plan="Irreversible for the customer: rebook them if the slot is still free",
        verify=VerifySpec(tool="get_booking", args={"booking_id": b["id"]},
                          expect={"status": "CANCELLED", "claimed_slots": 0}))
    proposals = [cancel]
    channel = _channel(b)
    if channel is not None:
        proposals.append(_message(
            "follow_up", "send_follow_up", "no_show", b, channel, refs,
            description=f"Tell customer {b['customer_id']} by {channel} we missed them and "
                        "offer a new time",
            reasoning="A missed appointment gets a friendly way back (seed 002: post-visit "
                      "follow-up).",
            confidence=0.85, expected=f"One queued {channel} 'we missed you' message",
            depends_on=["cancel_no_show"]))
    return PlanResult(proposals=proposals, run_facts=_facts(b),
                      summary=f"No-show: {b['service']} {b['id']} on {_when(b)}")
