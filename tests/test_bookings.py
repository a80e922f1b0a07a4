"""The bookings autopilot (seed 002) end to end, on SQLite and Postgres: seeded allow / deny
rules through the runner (confirmations, reminders, no-shows, follow-ups, calendar retries,
expired holds), approvals (approve, reject, edit), failures (tool faults, a calendar outage
caught by verification), quiet hours, the scheduled scans, no overbooking under concurrency,
recipients kept out of the ledger and logs, and the HTTP API with a real server."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from autopilot.db import ALL_TENANTS
from autopilot.models import (
    AgentException,
    Evidence,
    LedgerEntry,
    PolicyDecisionRecord,
    ToolCall,
)
from autopilot.runtime import Runner
from autopilot.sandbox.bookings import (
    Booking,
    BookingCustomer,
    BookingResource,
    BookingSlotClaim,
    CalendarEvent,
    NotificationOutbox,
    SlotUnavailable,
    book,
    reschedule,
)
from graphs.bookings.detect import detect
from tests.conftest import RunnerFactory, settings_env
from tests.helpers import (
    TENANT,
    approve_all,
    execute_app_db,
    no_ticks,
    query_app_db,
    run_cli,
    serve_api,
)

SLOT = timedelta(minutes=15)


def event(n: int | str, event_type: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {"event_id": f"bk-{n}", "tenant_id": TENANT, "source": "booking-service",
            "event_type": event_type, "occurred_at": datetime.now(UTC).isoformat(),
            "payload": payload}


def booking(runner: Runner, booking_id: str) -> Booking:
    with runner.services.db.session(TENANT) as s:
        row = s.get(Booking, (TENANT, booking_id))
        assert row is not None
        return row


def outbox(runner: Runner, booking_id: str) -> list[NotificationOutbox]:
    with runner.services.db.session(TENANT) as s:
        return list(s.scalars(select(NotificationOutbox).where(
            NotificationOutbox.tenant_id == TENANT, NotificationOutbox.booking_id == booking_id)))


def claims(runner: Runner, booking_id: str) -> int:
    with runner.services.db.session(TENANT) as s:
        return int(s.scalar(select(func.count()).select_from(BookingSlotClaim).where(
            BookingSlotClaim.tenant_id == TENANT, BookingSlotClaim.booking_id == booking_id)))


def customer(runner: Runner, customer_id: str) -> BookingCustomer:
    with runner.services.db.session(TENANT) as s:
        row = s.get(BookingCustomer, (TENANT, customer_id))
        assert row is not None
        return row


def grid(moment: datetime, ahead: timedelta) -> datetime:
    """The first 15-minute grid point at least `ahead` after `moment`."""
    target = moment + ahead
    base = target.replace(minute=0, second=0, microsecond=0)
    while base < target:
        base += SLOT
    return base


def proposal(view: Any, tool: str) -> dict[str, Any]:
    return next(p for p in view.values["proposals"] if p["tool"] == tool)


# --------------------------------------------------------------------------- allow paths


def test_confirmations_go_out_on_their_own_once(runner: Runner) -> None:
    view = runner.submit("bookings", event(1, "BookingCreated", {"booking_id": "BK-1001"}))
    assert (view.status, view.outcome) == ("completed", "resolved"), view.values.get("escalation")
    confirm = proposal(view, "send_confirmation")
    assert confirm["decision"]["reasons"] == ["BOOKING_SEND_CONFIRMATION"]
    assert view.values["verification"] == [{"action_id": "confirm", "ok": True, "diff": {}}]
    [msg] = outbox(runner, "BK-1001")
    ana = customer(runner, "C-1001")
    # The write is the outbox row, addressed from the customer record, on their channel.
    assert (msg.channel, msg.recipient, msg.status, msg.template) == (
        "email", ana.email, "queued", "booking_confirmed")
    assert msg.payload["body"].startswith("Hi Ana, your Apartment tour")
    assert "recipient" not in confirm["args"] and ana.email not in json.dumps(confirm)

    # The same event again, or a second copy with another id the same day: one run, one message.
    again = runner.submit("bookings", event(1, "BookingCreated", {"booking_id": "BK-1001"}))
    copy = runner.submit("bookings", event("1b", "BookingCreated", {"booking_id": "BK-1001"}))
    assert again.deduplicated and copy.deduplicated and copy.thread_id == view.thread_id
    # A new run about the same booking (e.g. replayed from another source tomorrow) finds the
    # message already queued and proposes nothing.
    later = {**event("1c", "BookingCreated", {"booking_id": "BK-1001"}),
             "occurred_at": (datetime.now(UTC) + timedelta(days=1)).isoformat()}
    assert runner.submit("bookings", later).outcome == "nothing_to_do"
    assert len(outbox(runner, "BK-1001")) == 1

    moved = runner.submit("bookings", event(2, "BookingRescheduled", {
        "booking_id": "BK-1002",
        "previous_start_at": booking(runner, "BK-1002").previous_start_at.isoformat()}))
    cancelled = runner.submit("bookings", event(3, "BookingCancelled",
                                                {"booking_id": "BK-1003"}))
    assert moved.status == cancelled.status == "completed"
    assert [m.template for m in outbox(runner, "BK-1002")] == ["booking_rescheduled"]
    assert [(m.template, m.channel) for m in outbox(runner, "BK-1003")] == [
        ("booking_cancelled", "email")]
    # A cancellation event for a booking that is still confirmed sends nothing.
    wrong = runner.submit("bookings", event(4, "BookingCancelled", {"booking_id": "BK-1006"}))
    assert wrong.outcome == "nothing_to_do" and outbox(runner, "BK-1006") == []


def test_expired_hold_is_released_and_the_slot_can_be_booked(runner: Runner) -> None:
    hold = booking(runner, "BK-1004")
    assert hold.status == "HELD" and claims(runner, "BK-1004") == 8  # 2 hours

    def take_slot(n: int) -> None:
        with runner.services.db.session(TENANT) as s:
            book(s, TENANT, booking_id=f"BK-TAKE-{n}", resource_id=hold.resource_id,
                 customer_id="C-1002", start=hold.start_at, end=hold.start_at + SLOT)

    with pytest.raises(SlotUnavailable):
        take_slot(1)
    fresh = runner.submit("bookings", event(5, "HoldCreated", {"hold_id": "BK-1005"}))
    assert fresh.outcome == "nothing_to_do"  # a live hold: the hold timer watches it
    view = runner.submit("bookings", event(6, "HoldExpired", {"hold_id": "BK-1004"}))
    assert view.status == "completed", view.values.get("escalation")
    assert proposal(view, "release_expired_hold")["decision"]["reasons"] == [
        "BOOKING_RELEASE_EXPIRED_HOLD"]
    assert booking(runner, "BK-1004").status == "EXPIRED" and claims(runner, "BK-1004") == 0
    take_slot(2)  # the slot is free again
    assert claims(runner, "BK-TAKE-2") == 1


# --------------------------------------------------------------------------- calendar


def test_calendar_retries_allow_approve_outage_and_reconnect(runner: Runner) -> None:
    # Attempt 2 < 5: runs on its own; the booking lands on the calendar.
    view = runner.submit("bookings", event(10, "CalendarWriteFailed",
                                           {"booking_id": "BK-1006", "attempt": 2}))
    assert view.status == "completed"
    assert proposal(view, "retry_calendar_sync")["decision"]["reasons"] == [
        "BOOKING_RETRY_CALENDAR_SYNC"]
    assert booking(runner, "BK-1006").calendar_sync_status == "SYNCED"
    with runner.services.db.session(TENANT) as s:
        assert s.get(CalendarEvent, (TENANT, "CAL-BK-1006")).status == "busy"

    # Five failed attempts: the seeded rule no longer allows it; a person approves.
    held = runner.submit("bookings", event(11, "CalendarWriteFailed",
                                           {"booking_id": "BK-1007", "attempt": 5}))
    assert held.status == "needs_approval"
    assert held.pending_approval["request"]["policy"][0]["reasons"] == ["NO_AUTO_PERMIT"]
    done = runner.decide(held.thread_id, approve_all(held), reviewer="ops@acme.example")
    assert (done.status, done.outcome) == ("completed", "resolved")
    assert booking(runner, "BK-1007").calendar_sync_status == "SYNCED"

    # A provider outage: the retry runs, records one more failed attempt and the next retry
    # time, and verification (expecting SYNCED) escalates instead of pretending it worked.
    with runner.services.db.session(TENANT) as s:
        b = s.get(Booking, (TENANT, "BK-1001"))
        b.calendar_sync_status, b.calendar_sync_attempts = "FAILED", 1
        s.get(BookingResource, (TENANT, "RES-GRAND-TOURS")).calendar_status = "unavailable"
    failed = runner.submit("bookings", event(12, "CalendarWriteFailed",
                                             {"booking_id": "BK-1001", "attempt": 1}))
    assert failed.status == "escalated"
    assert failed.values["escalation"]["title"] == "Verification failed"
    after = booking(runner, "BK-1001")
    assert (after.calendar_sync_status, after.calendar_sync_attempts) == ("FAILED", 2)
    assert after.calendar_next_retry_at is not None
    # The retry timer brings it back once, as a new run (the attempt is in the dedupe key).
    with runner.services.db.session(ALL_TENANTS) as s:
        due = detect(s, after.calendar_next_retry_at - timedelta(seconds=1),
                     after.calendar_next_retry_at)
    [retry] = [e for e in due if e["event_type"] == "CalendarWriteFailed"]
    assert retry["payload"] == {"booking_id": "BK-1001", "attempt": 2,
                                "error": "calendar provider unavailable (HTTP 503)"}
    assert runner.submit("bookings", retry).thread_id != failed.thread_id

    # An expired authorisation cannot be fixed by retrying: escalated with nothing proposed.
    auth = runner.submit("bookings", event(13, "CalendarWriteFailed", {"booking_id": "BK-1009"}))
    assert auth.status == "escalated" and not auth.values.get("proposals")
    assert "reconnecting" in auth.values["escalation"]["title"]


# --------------------------------------------------------------------------- approvals


def test_short_notice_reminder_needs_a_person_and_a_rejection_sends_nothing(
        runner: Runner) -> None:
    start = grid(datetime.now(UTC), timedelta(minutes=31))  # 31-45 minutes ahead
    with runner.services.db.session(TENANT) as s:
        book(s, TENANT, booking_id="BK-SOON", resource_id="RES-FLAT-ROOM",
             customer_id="C-1010", start=start, end=start + 2 * SLOT)
    view = runner.submit("bookings", event(20, "ReminderDue", {
        "booking_id": "BK-SOON", "start_at": start.isoformat()}))
    assert view.status == "needs_approval"
    assert view.pending_approval["request"]["policy"][0]["reasons"] == ["NO_AUTO_PERMIT"]
    with runner.services.db.session(TENANT) as s:
        facts = s.scalars(select(PolicyDecisionRecord.request).where(
            PolicyDecisionRecord.thread_id == view.thread_id)).first()["facts"]
    assert 30 <= facts["lead_time_minutes"] < 60  # from the stored booking, not the args
    done = runner.decide(view.thread_id, {"decisions": [
        {"type": "reject", "message": "they booked 40 minutes ago; no reminder needed"}]},
        reviewer="frontdesk@acme.example")
    assert (done.status, done.outcome) == ("completed", "rejected")
    assert outbox(runner, "BK-SOON") == []

    # A day ahead the seeded rule lets it go on its own (by the customer's webhook).
    due = booking(runner, "BK-1009")
    ok = runner.submit("bookings", event(21, "ReminderDue", {
        "booking_id": "BK-1009", "start_at": due.start_at.isoformat()}))
    assert ok.status == "completed"
    assert proposal(ok, "send_reminder")["decision"]["reasons"] == ["BOOKING_SEND_REMINDER"]
    [msg] = outbox(runner, "BK-1009")
    assert (msg.channel, msg.template) == ("webhook", "reminder")
    assert booking(runner, "BK-1009").reminder_sent_at is not None


def test_legal_note_goes_to_a_person_who_can_edit_the_channel(runner: Runner) -> None:
    view = runner.submit("bookings", event(30, "BookingCreated", {"booking_id": "BK-1011"}))
    assert view.status == "needs_approval"
    assert view.pending_approval["request"]["policy"][0]["reasons"] == ["LEGAL_KEYWORD"]
    args = {**proposal(view, "send_confirmation")["args"], "channel": "sms"}
    edited = runner.decide(view.thread_id, {"decisions": [{"type": "edit", "edited_action": {
        "name": "send_confirmation", "args": args}}]}, reviewer="mgr@acme.example")
    # The edit is gated again: still a legal context, so it comes back for approval.
    assert edited.status == "needs_approval"
    assert edited.pending_approval["request"]["action_requests"][0]["args"]["channel"] == "sms"
    done = runner.decide(edited.thread_id, approve_all(edited), reviewer="mgr@acme.example")
    assert (done.status, done.outcome) == ("completed", "resolved")
    [msg] = outbox(runner, "BK-1011")
    assert (msg.channel, msg.recipient) == ("sms", customer(runner, "C-1003").phone)


# --------------------------------------------------------------------------- block


def test_no_show_is_blocked_by_the_seeded_deny_and_escalated(runner: Runner) -> None:
    view = runner.submit("bookings", event(40, "NoShowDetected", {"booking_id": "BK-1008"}))
    assert view.status == "escalated"
    with runner.services.db.session(TENANT) as s:
        exc = s.scalar(select(AgentException).where(AgentException.thread_id == view.thread_id))
    assert exc.context["blocked_rules"] == ["BOOKING_AUTO_CANCEL_NO_SHOW",
                                            "BOOKING_SEND_FOLLOW_UP"]
    b = booking(runner, "BK-1008")
    assert b.status == "CONFIRMED" and claims(runner, "BK-1008") == 4  # nothing ran
    assert outbox(runner, "BK-1008") == []

    # A tenant that wants it raises the priority (seed 002 rules): the deny is beaten, but
    # the irreversible actions still need a person at the bookings autopilot's level (L3).
    runner.services.policy_store.create(
        scope_type="tenant", scope_id=TENANT, cedar="", author="ops", activate=True,
        config={"rules": [
            {"id": "TENANT_NO_SHOW_REVIEW", "autopilot": "bookings",
             "action": "auto_cancel_no_show", "effect": "require_approval", "priority": 20},
            {"id": "TENANT_NO_SHOW_FOLLOW_UP", "autopilot": "bookings",
             "action": "send_follow_up", "effect": "allow", "priority": 20}]})
    again = runner.submit("bookings", {**event(41, "NoShowDetected", {"booking_id": "BK-1008"}),
                                       "occurred_at": (datetime.now(UTC) + timedelta(days=1))
                                       .isoformat()})
    assert again.status == "needs_approval"
    reasons = [p["reasons"] for p in again.pending_approval["request"]["policy"]]
    assert reasons == [["AUTONOMY_LEVEL", "TENANT_NO_SHOW_REVIEW"], ["AUTONOMY_LEVEL"]]
    done = runner.decide(again.thread_id, approve_all(again), reviewer="mgr@acme.example")
    assert done.status == "completed"
    b = booking(runner, "BK-1008")
    assert (b.status, b.cancel_reason) == ("CANCELLED", "no_show")
    assert claims(runner, "BK-1008") == 0
    assert [m.template for m in outbox(runner, "BK-1008")] == ["no_show"]


# --------------------------------------------------------------------------- failure


def test_tool_faults_escalate_and_leave_nothing_half_written(runner: Runner) -> None:
    runner.services.gateway.faults.set("send_confirmation", transient=3)
    view = runner.submit("bookings", event(50, "BookingCreated", {"booking_id": "BK-1001"}))
    assert view.status == "escalated"
    assert view.values["escalation"]["title"] == "Tool kept failing after 3 tries"
    assert outbox(runner, "BK-1001") == []
    runner.services.gateway.faults.set("release_expired_hold", permanent=True)
    perm = runner.submit("bookings", event(51, "HoldExpired", {"hold_id": "BK-1004"}))
    assert perm.values["escalation"]["title"] == "Tool failed permanently"
    assert booking(runner, "BK-1004").status == "HELD" and claims(runner, "BK-1004") == 8


# --------------------------------------------------------------------------- detector


def test_scheduled_scan_finds_exactly_the_due_rows_and_only_new_ones(runner: Runner) -> None:
    now = datetime.now(UTC)

    def scan(since: datetime | None, until: datetime) -> list[tuple[str, str]]:
        with runner.services.db.session(ALL_TENANTS) as s:
            return sorted((e["event_type"], e["payload"].get("booking_id")
                           or e["payload"]["hold_id"]) for e in detect(s, since, until))

    # First tick (no window start): everything currently due in the seeded data.
    assert scan(None, now) == [
        ("CalendarWriteFailed", "BK-1006"), ("CalendarWriteFailed", "BK-1007"),
        ("CalendarWriteFailed", "BK-1009"), ("HoldExpired", "BK-1004"),
        ("NoShowDetected", "BK-1008"), ("ReminderDue", "BK-1009")]
    # Delta only: nothing that was already due is found again.
    assert scan(now, now + timedelta(minutes=1)) == []
    # The next three hours: BK-1001's reminder (24 h ahead) and BK-1005's hold expiry.
    assert scan(now, now + timedelta(hours=3)) == [("HoldExpired", "BK-1005"),
                                                   ("ReminderDue", "BK-1001")]
    # A booking made now, a day and a half ahead, shows up when its reminder falls due.
    start = grid(now, timedelta(hours=36))
    with runner.services.db.session(TENANT) as s:
        book(s, TENANT, booking_id="BK-NEW", resource_id="RES-FLAT-ROOM", customer_id="C-1001",
             start=start, end=start + SLOT, now=now)
    due = start - timedelta(hours=24)
    assert ("ReminderDue", "BK-NEW") in scan(due - timedelta(minutes=5), due)
    assert ("ReminderDue", "BK-NEW") not in scan(due, due + timedelta(hours=1))
    # A detected trigger submitted twice is one run.
    with runner.services.db.session(ALL_TENANTS) as s:
        [hold] = [e for e in detect(s, None, now) if e["event_type"] == "HoldExpired"]
    first, second = runner.submit("bookings", hold), runner.submit("bookings", hold)
    assert second.deduplicated and second.thread_id == first.thread_id


# --------------------------------------------------------------------------- invariants


def test_no_overbooking_under_concurrency(runner: Runner, backend_env: dict[str, str]) -> None:
    db = runner.services.db
    start = grid(datetime.now(UTC), timedelta(days=10))
    results: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(16)

    def attempt(n: int) -> None:
        # Four different but pairwise-overlapping hours (start + 0/15/30/45 min), four
        # threads each, all at once, each in its own transaction and connection.
        begin = start + (n % 4) * SLOT
        barrier.wait()
        try:
            with db.session(TENANT) as s:
                book(s, TENANT, booking_id=f"BK-RACE-{n}", resource_id="RES-GRAND-TOURS",
                     customer_id="C-1001", start=begin, end=begin + 4 * SLOT)
            outcome = "won"
        except SlotUnavailable:
            outcome = "lost"
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(results) == ["lost"] * 15 + ["won"]
    with db.session(TENANT) as s:
        race = s.scalars(select(Booking).where(Booking.id.like("BK-RACE-%"))).all()
    assert len(race) == 1  # the losers left no booking row behind
    assert claims(runner, race[0].id) == 4
    # A reschedule onto a taken slot fails and leaves the booking where it was.
    before = (booking(runner, "BK-1001").start_at, claims(runner, "BK-1001"))
    with pytest.raises(SlotUnavailable), db.session(TENANT) as s:
        mine = s.get(Booking, (TENANT, "BK-1001"))
        reschedule(s, mine, race[0].start_at, race[0].start_at + SLOT)
    assert (booking(runner, "BK-1001").start_at, claims(runner, "BK-1001")) == before
    # The guarantee is the database's: a raw insert of a claimed slot is refused too.
    taken = query_app_db(backend_env, "SELECT resource_id, slot_no, slot_start FROM "
                                      "booking_slot_claims WHERE booking_id = ?", (race[0].id,))
    resource, slot, slot_start = taken[0]
    with pytest.raises(Exception, match="(?i)unique|duplicate"):
        execute_app_db(backend_env, "INSERT INTO booking_slot_claims (tenant_id, id, "
                                    "resource_id, slot_no, slot_start, booking_id) VALUES "
                                    f"('{TENANT}', 'sneaky', '{resource}', {slot}, "
                                    f"'{slot_start}', 'BK-SNEAKY')")


def test_recipients_never_reach_the_ledger_decisions_or_evidence(runner: Runner) -> None:
    email, phone = "zoe.quinn@example.com", "+19175550188"
    start = grid(datetime.now(UTC), timedelta(days=2))
    with runner.services.db.session(TENANT) as s:
        s.add(BookingCustomer(tenant_id=TENANT, id="C-PRIV", name="Zoe Quinn", email=email,
                              phone=phone, preferred_channel="sms"))
        s.flush()
        book(s, TENANT, booking_id="BK-PRIV", resource_id="RES-FLAT-ROOM",
             customer_id="C-PRIV", start=start, end=start + SLOT,
             note=f"Text me at +1 917 555 0188 or write to {email} if anything changes.")
        b = s.get(Booking, (TENANT, "BK-PRIV"))
        b.calendar_sync_status, b.calendar_sync_attempts = "FAILED", 1
    created = runner.submit("bookings", event(60, "BookingCreated", {"booking_id": "BK-PRIV"}))
    remind = runner.submit("bookings", event(61, "ReminderDue", {
        "booking_id": "BK-PRIV", "start_at": start.isoformat()}))
    synced = runner.submit("bookings", event(62, "CalendarWriteFailed",
                                             {"booking_id": "BK-PRIV", "attempt": 1}))
    assert created.status == remind.status == synced.status == "completed"
    assert {m.recipient for m in outbox(runner, "BK-PRIV")} == {phone}  # it was really used
    needles = (email, phone, "917 555 0188", "5550188", "zoe.quinn")
    with runner.services.db.session(TENANT) as s:
        stored = [json.dumps(e.payload) for e in s.scalars(select(LedgerEntry).where(
            LedgerEntry.tenant_id == TENANT))]
        stored += [json.dumps(r.request) for r in s.scalars(select(PolicyDecisionRecord).where(
            PolicyDecisionRecord.tenant_id == TENANT))]
    with runner.services.db.session(TENANT) as s:
        stored += [json.dumps(e.content) + e.summary for e in s.scalars(select(Evidence))]
        # The recorded results of writes are kept as they are: they carry no contact either.
        stored += [json.dumps(c.output) + json.dumps(c.args) for c in s.scalars(select(ToolCall))]
    text = "\n".join(stored)
    assert "BK-PRIV" in text  # the runs are on record ...
    for needle in needles:  # ... without the customer's address or number
        assert needle not in text, needle


# --------------------------------------------------------------------------- quiet hours


def test_quiet_hours_hold_reminders_for_a_person(open_runner: RunnerFactory,
                                                 tmp_path: Path) -> None:
    night = {**settings_env(tmp_path), "AUTOPILOT_POLICY_TIME": "2026-11-19T03:30:00+00:00"}
    runner = open_runner(night)  # 22:30 in New York, where the Astoria building is
    tools = runner.services.policy_for(TENANT).config["messaging"]["quietHours"]["tools"]
    # Reminders belong in messaging.quietHours.tools; a tenant may add them (stricter).
    runner.services.policy_store.create(
        scope_type="tenant", scope_id=TENANT, cedar="", author="ops", activate=True,
        config={"messaging": {"quietHours": {"tools": sorted(
            {*tools, "send_reminder", "send_follow_up"})}}})
    due = booking(runner, "BK-1009")
    view = runner.submit("bookings", event(70, "ReminderDue", {
        "booking_id": "BK-1009", "start_at": due.start_at.isoformat()}))
    assert view.status == "needs_approval"
    assert view.pending_approval["request"]["policy"][0]["reasons"] == ["QUIET_HOURS"]
    assert outbox(runner, "BK-1009") == []
    # A confirmation answers the customer's own booking, so it is not held at night.
    ok = runner.submit("bookings", event(71, "BookingCreated", {"booking_id": "BK-1001"}))
    assert ok.status == "completed"
    day = open_runner(settings_env(tmp_path))  # same data, 14:00 in New York
    later = day.submit("bookings", event(72, "ReminderDue", {
        "booking_id": "BK-1006", "start_at": booking(day, "BK-1006").start_at.isoformat()}))
    assert later.status == "completed"


# --------------------------------------------------------------------------- HTTP API


KEYS = {"k-approver": {"tenant": TENANT, "subject": "maria@acme.example", "roles": ["approver"]},
        "k-ingest": {"tenant": TENANT, "subject": "booking-service", "roles": ["ingest"]}}


def test_http_api_event_approval_completed_and_logs_without_recipients(
        sqlite_env: dict[str, str], tmp_path: Path) -> None:
    env = {**sqlite_env, "AUTOPILOT_SCHEDULES": no_ticks(), "AUTOPILOT_API_KEYS": json.dumps(KEYS),
           "AGENT_JOB_POLL_INTERVAL_MS": "100", "AUTOPILOT_LOG_LEVEL": "debug"}
    assert run_cli(env, "seed").returncode == 0
    emails = [r[0] for r in query_app_db(env, "SELECT email FROM booking_customers")]
    phones = [r[0] for r in query_app_db(env, "SELECT phone FROM booking_customers")]
    auth = {"k-approver": {"Authorization": "Bearer k-approver"},
            "k-ingest": {"Authorization": "Bearer k-ingest"}}
    with serve_api(env, tmp_path / "logs") as (base, stderr):
        def run(run_id: str) -> dict[str, Any]:
            return httpx.get(f"{base}/v1/runs/{run_id}", headers=auth["k-approver"],
                             timeout=10).json()

        def wait(run_id: str, *wanted: str) -> dict[str, Any]:
            import time

            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                body = run(run_id)
                if body["status"] in wanted:
                    return body
                time.sleep(0.1)
            raise AssertionError(f"{run_id} never reached {wanted}: {body}")

        posted = httpx.post(f"{base}/v1/events", headers=auth["k-ingest"], timeout=10, json=event(
            80, "CalendarWriteFailed", {"booking_id": "BK-1007", "attempt": 5}))
        assert posted.status_code == 202, posted.text
        assert posted.json()["graph"] == "bookings"
        run_id = posted.json()["run_id"]
        wait(run_id, "needs_approval")
        approvals = httpx.get(f"{base}/v1/approvals", headers=auth["k-approver"],
                              timeout=10).json()["approvals"]
        [mine] = [a for a in approvals if a["run_id"] == run_id]
        decided = httpx.post(f"{base}/v1/approvals/{mine['id']}/decision",
                             headers=auth["k-approver"], json={"decision": "approve"},
                             timeout=30)
        assert decided.status_code == 202, decided.text
        done = wait(run_id, "completed", "escalated", "failed_terminal")
        assert (done["status"], done["outcome"]) == ("completed", "resolved"), done
        confirm = httpx.post(f"{base}/v1/events", headers=auth["k-ingest"], timeout=10,
                             json=event(81, "BookingCreated", {"booking_id": "BK-1001"}))
        assert wait(confirm.json()["run_id"], "completed")["outcome"] == "resolved"
        bad = httpx.post(f"{base}/v1/events", headers=auth["k-ingest"], timeout=10,
                         json=event(82, "BookingRescheduled", {"booking_id": "BK-1002"}))
        assert bad.status_code == 422
        assert "payload.previous_start_at" in json.dumps(bad.json()["error"])
        log = stderr.read_text()
    assert query_app_db(env, "SELECT calendar_sync_status FROM bookings WHERE id = 'BK-1007'"
                        ) == [("SYNCED",)]
    assert query_app_db(env, "SELECT count(*) FROM booking_notification_outbox WHERE "
                             "booking_id = 'BK-1001'") == [(1,)]
    assert "/v1/events" in log  # the server logged the work ...
    for secret in (*emails, *phones):  # ... and never a customer's address or number
        assert secret not in log, secret
