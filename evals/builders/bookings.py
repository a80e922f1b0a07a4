"""Derived incidents for the `bookings` autopilot (seed 002), from real timestamps.

There is no public bookings dataset. What the seed's rules depend on is timing: how far ahead
a reminder goes out (at least 60 minutes), at what local hour (quiet hours 21:00-07:00 hold
reminders), how many times a calendar write failed (retry on its own below 5 attempts), when
a booking moved. Those timings are taken from a real event log with timestamps, the UCI
incident management log (dataset 498, Amaral et al., CC BY 4.0): 600 ServiceNow incidents,
each with its opening, every update, its resolution and its reassignments. Each sampled
incident stands for one service-visit booking:

- `opened_at` is when the customer booked; `resolved_at` is when the visit starts (30 min).
- the booking's reminder falls due as the booking system computes it: 24 h before the visit,
  or at booking time if that is later, and never for a booking made less than 2 h ahead.
- `reassignment_count` is the number of failed calendar writes, and the update that made the
  last reassignment is when the CalendarWriteFailed event arrives.
- a reopened incident (`reopen_count` > 0) is a rescheduled visit: the first resolution is the
  old start, the final one the new start, and the reopening is when BookingRescheduled fires.

The log publishes no time zone: its wall-clock times are read as the property's local time
(America/New_York). Each incident is moved, keeping weekday, wall-clock time and every
duration between its events, into the week of the eval epoch (Monday 2024-04-15), then moved
back by less than 15 minutes so the visit starts on the booking system's 15-minute grid.

Label -> expectation (seed 002's rules as configured in policy/defaults.json):

- BookingCreated -> `send_confirmation` (booking_confirmed), ALLOW at any hour: a
  confirmation answers the customer's own action, quiet hours do not hold it.
- ReminderDue -> `send_reminder`: ALLOW when the visit is at least 60 minutes away and the
  local time is outside 21:00-07:00; otherwise REQUIRE_APPROVAL (NO_AUTO_PERMIT /
  QUIET_HOURS). ReminderDue is also replayed at booking time for visits booked less than
  2 h ahead (a late scan), to test the 60-minute rule on real short lead times; leads within
  5 minutes of 60 are skipped, so the verdict does not hang on the replay clock's ticking.
- CalendarWriteFailed with n failed attempts -> `retry_calendar_sync`: ALLOW for n < 5,
  REQUIRE_APPROVAL from 5.
- BookingRescheduled -> `send_confirmation` (booking_rescheduled), ALLOW while the new start
  is ahead.
"""

from __future__ import annotations

import csv
import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from evals.format import EPOCH, EVAL_TENANT, Incident

GRAPH = "bookings"
TZ = ZoneInfo("America/New_York")
UCI = "UCI ML repository 498: incident management process event log (Amaral et al.)"
LICENCE = "CC BY 4.0"
RESOURCE = "RES-UCI-VISITS"
SERVICE = "Service visit"
VISIT = timedelta(minutes=30)
REMINDER_LEAD = timedelta(hours=24)  # autopilot/sandbox/bookings.py reminder_due
NO_REMINDER_WITHIN = timedelta(hours=2)
SLOT = 15  # minutes


# ----------------------------------------------------------------------------- extract


def _t(value: str) -> datetime | None:
    return datetime.strptime(value, "%d-%m-%Y %H:%M") if value not in ("", "?") else None


def _quiet(moment: datetime) -> bool:
    return moment.hour >= 21 or moment.hour < 7


def _near_edge(moment: datetime) -> bool:
    minutes = moment.hour * 60 + moment.minute
    return any(abs(minutes - edge) <= 2 for edge in (7 * 60, 21 * 60))


def summarise(events: list[dict[str, str]]) -> dict[str, Any] | None:
    """One incident's timeline from its event rows (in log order)."""
    last = events[-1]
    opened, resolved = _t(last["opened_at"]), _t(last["resolved_at"])
    if opened is None or resolved is None or resolved <= opened:
        return None
    count = int(last["reassignment_count"])
    reassigned = next((_t(e["sys_updated_at"]) for e in events
                       if int(e["reassignment_count"]) == count), None) if count else None
    first_resolved = next((_t(e["sys_updated_at"]) for e in events
                           if e["incident_state"] == "Resolved"), None)
    reopened = next((_t(e["sys_updated_at"]) for e in events if int(e["reopen_count"]) > 0),
                    None)
    fmt = "%Y-%m-%dT%H:%M"
    return {"number": last["number"], "caller": last["caller_id"], "priority": last["priority"],
            "opened_at": opened.strftime(fmt), "resolved_at": resolved.strftime(fmt),
            "reassignment_count": count,
            "reassigned_at": reassigned.strftime(fmt) if reassigned else "",
            "reopen_count": int(last["reopen_count"]),
            "first_resolved_at": first_resolved.strftime(fmt) if first_resolved else "",
            "reopened_at": reopened.strftime(fmt) if reopened else ""}


def _pick(rng: random.Random, rows: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    return rng.sample(rows, min(n, len(rows)))


def extract(data_dir: Path, out_dir: Path) -> None:
    path = data_dir / "support_tickets" / "uci_incident_event_log_600incidents.csv"
    events: dict[str, list[dict[str, str]]] = defaultdict(list)
    with path.open() as fh:
        for row in csv.DictReader(fh):
            events[row["number"]].append(row)
    timelines = sorted((s for e in events.values() if (s := summarise(e)) is not None),
                       key=lambda s: s["number"])
    rng = random.Random(7)
    lead = {s["number"]: (datetime.fromisoformat(s["resolved_at"])
                          - datetime.fromisoformat(s["opened_at"])) for s in timelines}
    at = {s["number"]: datetime.fromisoformat(s["opened_at"]) for s in timelines}
    due = {s["number"]: datetime.fromisoformat(s["resolved_at"]) - REMINDER_LEAD
           for s in timelines}
    picked: list[dict[str, Any]] = []

    def take(kind: str, rows: list[dict[str, Any]], n: int) -> None:
        chosen = {r["number"] for r in picked if r["kind"] == kind}
        rows = [r for r in rows if r["number"] not in chosen]
        picked.extend(r | {"kind": kind} for r in _pick(rng, rows, n))

    # Confirmations: bookings made at night and by day.
    ok = [s for s in timelines if not _near_edge(at[s["number"]])]
    take("created", [s for s in ok if _quiet(at[s["number"]])], 3)
    take("created", [s for s in ok if not _quiet(at[s["number"]])], 3)
    # Reminders: due at night and by day (booked at least 2 h ahead).
    remind = [s for s in timelines if lead[s["number"]] >= NO_REMINDER_WITHIN]
    when = {s["number"]: max(due[s["number"]], at[s["number"]]) for s in remind}
    remind = [s for s in remind if not _near_edge(when[s["number"]])]
    take("reminder", [s for s in remind if _quiet(when[s["number"]])], 3)
    take("reminder", [s for s in remind if not _quiet(when[s["number"]])], 5)
    # Late reminders: visits booked less than 2 h ahead, away from the 60-minute line.
    short = [s for s in ok if 0 < lead[s["number"]].total_seconds() / 60 < 120
             and abs(lead[s["number"]].total_seconds() / 60 - 60) >= 5]
    take("late_reminder", [s for s in short if lead[s["number"]] < timedelta(minutes=60)], 2)
    take("late_reminder", [s for s in short if lead[s["number"]] > timedelta(minutes=60)], 2)
    # Calendar retries: one incident per reassignment count 1..9 that has one.
    failed = [s for s in timelines if s["reassignment_count"] and s["reassigned_at"]
              and datetime.fromisoformat(s["reassigned_at"])
              < datetime.fromisoformat(s["resolved_at"])]
    for count in range(1, 10):
        take("calendar", [s for s in failed if s["reassignment_count"] == count], 1)
    # Reschedules: every reopened incident with a first resolution before its reopening.
    picked.extend(s | {"kind": "rescheduled"} for s in timelines
                  if s["reopen_count"] and s["first_resolved_at"] and s["reopened_at"]
                  and s["first_resolved_at"] <= s["reopened_at"] <= s["resolved_at"])
    out_dir.mkdir(parents=True, exist_ok=True)
    fields = ["kind", "number", "caller", "priority", "opened_at", "resolved_at",
              "reassignment_count", "reassigned_at", "reopen_count", "first_resolved_at",
              "reopened_at"]
    with (out_dir / "uci_booking_timelines.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(sorted(picked, key=lambda r: (r["kind"], r["number"])))


# ----------------------------------------------------------------------------- build


class Clock:
    """Moves one incident's wall-clock times into the eval week (same weekday and time of
    day), then back by under 15 minutes so that the visit starts on the grid."""

    def __init__(self, anchor: datetime, start: datetime) -> None:
        epoch_monday = EPOCH.astimezone(TZ).date()
        target = epoch_monday + timedelta(days=anchor.weekday())
        self.days = (target - anchor.date()).days
        moved = start + timedelta(days=self.days)
        self.grid = timedelta(minutes=moved.minute % SLOT)

    def __call__(self, moment: datetime) -> datetime:
        local = (moment + timedelta(days=self.days) - self.grid).replace(tzinfo=TZ)
        return local.astimezone(UTC)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _slot_claims(booking_id: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
    first, last = int(start.timestamp()) // (SLOT * 60), int(end.timestamp()) // (SLOT * 60)
    return [{"id": f"{booking_id}:{n}", "resource_id": RESOURCE, "slot_no": n,
             "slot_start": _iso(datetime.fromtimestamp(n * SLOT * 60, UTC)),
             "booking_id": booking_id} for n in range(first, last)]


def _world(row: dict[str, str], booking_id: str, *, booked: datetime, start: datetime,
           at: datetime, **booking: Any) -> dict[str, list[dict[str, Any]]]:
    caller = row["caller"].split()[-1]
    customer = f"C-SN-{caller}"
    due = max(start - REMINDER_LEAD, booked) if start - booked >= NO_REMINDER_WITHIN else None
    return {
        "booking_resources": [{
            "id": RESOURCE, "name": "Service visits, Grand Concourse Residences",
            "kind": "staff", "property_id": "P-GRAND", "service": SERVICE,
            "calendar_provider": "google", "calendar_status": "connected", "active": True}],
        "booking_customers": [{
            "id": customer, "name": f"Caller {caller}", "email": f"caller{caller}@example.com",
            "phone": None, "webhook_url": None, "preferred_channel": "email"}],
        "bookings": [{
            "id": booking_id, "resource_id": RESOURCE, "customer_id": customer,
            "service": SERVICE, "start_at": _iso(start), "end_at": _iso(start + VISIT),
            "status": "CONFIRMED", "customer_note": "", "calendar_sync_status": "SYNCED",
            "calendar_sync_attempts": 1, "reminder_due_at": _iso(due),
            "created_at": _iso(booked), "updated_at": _iso(at)} | booking],
        "booking_slot_claims": _slot_claims(booking_id, start, start + VISIT),
    }


def _local(moment: datetime) -> str:
    return f"{moment.astimezone(TZ):%a %d %b %H:%M}"


def _span(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    days, hours, mins = minutes // 1440, minutes // 60 % 24, minutes % 60
    return " ".join(f"{v} {u}" for v, u in ((days, "d"), (hours, "h"), (mins, "min")) if v) \
        or "0 min"


def _incident(n: str, title: str, row: dict[str, str], note: str, tags: list[str],
              at: datetime, event_type: str, payload: dict[str, Any],
              records: dict[str, list[dict[str, Any]]], expect: dict[str, Any],
              human: dict[str, Any] | None = None) -> Incident:
    return Incident.model_validate({
        "id": f"bookings.{n}", "graph": GRAPH, "title": title,
        "source": {"dataset": UCI, "ref": row["number"], "licence": LICENCE,
                   "note": f"{note} (log times: opened {row['opened_at']}, resolved "
                           f"{row['resolved_at']})"},
        "tags": ["derived", "uci", *tags], "at": _iso(at),
        "trigger": {"event_id": f"eval-bk-{n}", "tenant_id": EVAL_TENANT,
                    "source": "booking-service" if event_type != "ReminderDue" else "scheduler",
                    "event_type": event_type, "occurred_at": _iso(at),
                    "trace_id": f"eval-bk-{n}", "payload": payload},
        "world": {"records": records}, "expect": expect, "human": human or {}})


def _message(tool: str, booking_id: str, decision: str, why: str, template: str | None = None,
             never_auto: bool = False) -> dict[str, Any]:
    args = {"booking_id": booking_id, "channel": "email"}
    if template:
        args["template"] = template
    expect: dict[str, Any] = {
        "outcome": "completed", "match": "strict",
        "actions": [{"tool": tool, "args": args, "decision": decision}],
        "human_required": decision != "ALLOW", "why": why,
        "never": [{"tool": "auto_cancel_no_show", "why": "nothing was missed"},
                  {"tool": "send_follow_up", "why": "nothing was missed"}]}
    if never_auto:
        expect["never"].append({"tool": tool, "without_approval": True,
                                "why": "held by the seeded rules: a person sends it"})
    return expect


def _reminder_expect(booking_id: str, at: datetime, start: datetime) -> dict[str, Any]:
    lead = int((start - at).total_seconds() // 60)
    quiet = _quiet(at.astimezone(TZ))
    if lead < 60:
        why = (f"The visit is {lead} min away: seed 002 allows a reminder on its own only at "
               "least 60 minutes ahead (BOOKING_SEND_REMINDER), so a person decides.")
    elif quiet:
        why = (f"The reminder falls due at {_local(at)} local time, inside quiet hours "
               "(21:00-07:00): it waits for a person (QUIET_HOURS).")
    else:
        why = (f"The visit is {lead // 60} h {lead % 60} min away and it is {_local(at)} local "
               "time: the seeded rule allows the reminder on its own (BOOKING_SEND_REMINDER).")
    held = lead < 60 or quiet
    return _message("send_reminder", booking_id, "REQUIRE_APPROVAL" if held else "ALLOW", why,
                    never_auto=held)


def build(sources_dir: Path) -> list[Incident]:
    with (sources_dir / "uci_booking_timelines.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    out: list[Incident] = []
    for row in rows:
        kind, number = row["kind"], row["number"]
        p = {k: datetime.fromisoformat(row[k]) if row[k] else None
             for k in ("opened_at", "resolved_at", "reassigned_at", "first_resolved_at",
                       "reopened_at")}
        bid = f"BK-SN-{number.removeprefix('INC')}"
        n = f"uci-{kind.replace('_', '-')}-{number.lower()}"
        anchor = {"created": p["opened_at"], "reminder": None, "late_reminder": p["opened_at"],
                  "calendar": p["reassigned_at"], "rescheduled": p["reopened_at"]}[kind]
        if kind == "reminder":
            anchor = max(p["resolved_at"] - REMINDER_LEAD, p["opened_at"])
        clock = Clock(anchor, p["resolved_at"])
        at, start, booked = clock(anchor), clock(p["resolved_at"]), clock(p["opened_at"])

        def world(_row: dict[str, str] = row, _bid: str = bid, _booked: datetime = booked,
                  _start: datetime = start, _at: datetime = at,
                  **kw: Any) -> dict[str, list[dict[str, Any]]]:
            return _world(_row, _bid, booked=_booked, start=_start, at=_at, **kw)

        if kind == "created":
            expect = _message("send_confirmation", bid, "ALLOW",
                              f"A new booking made at {_local(at)} local time is confirmed "
                              "straight away (BOOKING_SEND_CONFIRMATION); quiet hours hold "
                              "proactive messages, not the answer to the customer's own "
                              "booking.", template="booking_confirmed")
            out.append(_incident(n, f"Booking made {_local(at)} for a visit "
                                    f"{_span(start - at)} ahead: confirm", row,
                                 "opened_at = booked, resolved_at = visit start",
                                 ["routine", "confirmation", "night" if _quiet(at.astimezone(TZ))
                                  else "day"], at, "BookingCreated", {"booking_id": bid},
                                 world(), expect))
        elif kind in ("reminder", "late_reminder"):
            expect = _reminder_expect(bid, at, start)
            tags = ["reminder", "quiet-hours" if _quiet(at.astimezone(TZ)) else "day"]
            if kind == "late_reminder":
                tags.append("edge-case")
            tags.append("routine" if not expect["human_required"] else "held")
            note = ("reminder due 24 h before the visit (resolved_at)" if kind == "reminder" else
                    "booked less than 2 h ahead; ReminderDue replayed at booking time")
            # The log has no reviewer times. A held reminder is approved while it can still
            # help: within a third of the time left before the visit (the replay clock moves
            # on by that much), at most 30 minutes.
            lead = (start - at).total_seconds() / 60
            human = ({"decisions": [{"tool": "send_reminder", "type": "approve",
                                     "after_minutes": round(min(30.0, lead / 3), 1)}]}
                     if expect["human_required"] else None)
            out.append(_incident(n, f"Reminder at {_local(at)} for a visit "
                                    f"{_span(start - at)} ahead", row, note, tags, at,
                                 "ReminderDue",
                                 {"booking_id": bid, "start_at": _iso(start)}, world(), expect,
                                 human))
        elif kind == "calendar":
            attempts = int(row["reassignment_count"])
            auto = attempts < 5
            error = "calendar provider unavailable (HTTP 503)"
            expect = {"outcome": "completed", "match": "strict", "human_required": not auto,
                      "actions": [{"tool": "retry_calendar_sync", "args": {"booking_id": bid},
                                   "decision": "ALLOW" if auto else "REQUIRE_APPROVAL"}],
                      "why": f"{attempts} calendar write(s) failed so far: seed 002 retries on "
                             "its own only below 5 attempts (BOOKING_RETRY_CALENDAR_SYNC)"
                             + ("." if auto else "; from the 5th a person decides."),
                      "never": [{"tool": "send_confirmation",
                                 "why": "the customer was already told; the calendar is "
                                        "internal"}]}
            if not auto:
                expect["never"].append({"tool": "retry_calendar_sync", "without_approval": True,
                                        "why": "5 or more failed attempts"})
            records = world(calendar_sync_status="FAILED", calendar_sync_attempts=attempts,
                            calendar_last_error=error, calendar_next_retry_at=_iso(at))
            out.append(_incident(n, f"Calendar write failed {attempts} time(s): retry", row,
                                 "reassignment_count = failed calendar writes; the last "
                                 f"reassignment ({row['reassigned_at']}) is the event",
                                 ["calendar", "routine" if auto else "held"], at,
                                 "CalendarWriteFailed",
                                 {"booking_id": bid, "attempt": attempts, "error": error},
                                 records, expect))
        else:  # rescheduled
            previous = clock(p["first_resolved_at"])
            if start > at:
                expect = _message("send_confirmation", bid, "ALLOW",
                                  f"The visit moved from {_local(previous)} to "
                                  f"{_local(start)}: the customer is told the new time straight "
                                  "away (BOOKING_SEND_CONFIRMATION).",
                                  template="booking_rescheduled")
            else:
                expect = {"outcome": "nothing_to_do", "match": "strict", "actions": [],
                          "human_required": False,
                          "why": "The new time has already begun: a 'rescheduled' message "
                                 "would arrive too late to help.",
                          "never": [{"tool": "send_confirmation", "why": "too late"}]}
            out.append(_incident(n, f"Visit moved from {_local(previous)} to {_local(start)}",
                                 row, f"reopened incident: first resolution "
                                      f"{row['first_resolved_at']} = old start, reopened "
                                      f"{row['reopened_at']} = event",
                                 ["reschedule", "routine"], at, "BookingRescheduled",
                                 {"booking_id": bid, "previous_start_at": _iso(previous)},
                                 world(previous_start_at=_iso(previous)), expect))
    return out

