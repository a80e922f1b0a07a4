"""The compliance + PM autopilot (seed 001, workflow C) end to end through the runner, on
SQLite and Postgres: autonomous tasks far from the due date, approval inside the critical
window and whenever overdue, blocks and escalations, tool failures, the daily scan (exact and
delta-only), re-checks that record completion and read the item back, dedupe, and one run
through the HTTP API with a real server.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from autopilot.db import ALL_TENANTS
from autopilot.jobs import JobQueue
from autopilot.models import ComplianceItem, PMSchedule, Vendor, WorkOrder
from autopilot.runtime import Runner
from autopilot.sandbox.compliance import (
    LIVE_TASK_STATUSES,
    ComplianceNotice,
    ComplianceTask,
)
from graphs.compliance import SPEC
from graphs.compliance.detect import LOOK_AHEAD
from tests.helpers import TENANT, cli_ok, no_ticks, query_app_db, serve_api
from tools.compliance import days_until_due
from tools.gateway import Principal
from tools.maintenance import OPEN_STATUSES
from tools.registry import PermanentToolError

CRITICAL = timedelta(days=7)


def event(n: int | str, event_type: str, payload: dict[str, Any],
          at: datetime | None = None) -> dict[str, Any]:
    return {"event_id": f"evt-c{n}", "tenant_id": TENANT, "source": "test",
            "event_type": event_type, "occurred_at": (at or datetime.now(UTC)).isoformat(),
            "payload": payload}


def item_due(n: int, item_id: str, stage: str = "requested") -> dict[str, Any]:
    return event(n, "compliance_item_due", {"compliance_item_id": item_id, "stage": stage})


def tasks(runner: Runner, **where: str) -> list[ComplianceTask]:
    with runner.services.db.session(ALL_TENANTS) as s:
        q = select(ComplianceTask).where(
            *(getattr(ComplianceTask, k) == v for k, v in where.items()))
        return list(s.scalars(q))


def item(runner: Runner, item_id: str) -> ComplianceItem | None:
    with runner.services.db.session(ALL_TENANTS) as s:
        return s.get(ComplianceItem, (TENANT, item_id))


def by_action(view: Any) -> dict[str, dict[str, Any]]:
    return {p["action_id"]: p for p in view.values["proposals"]}


def decide(runner: Runner, view: Any, *decisions: dict[str, Any]) -> Any:
    return runner.decide(view.thread_id, {"decisions": list(decisions)}, reviewer="mgr@acme")


APPROVE = {"type": "approve"}


# --------------------------------------------------------------------------- allow


def test_far_off_filing_runs_on_its_own_and_its_completion_is_read_back(runner: Runner) -> None:
    view = runner.submit("compliance", item_due(1, "CI-ASTORIA-LL84", "upcoming"))
    assert (view.status, view.outcome) == ("completed", "resolved"), view.values.get("escalation")
    steps = by_action(view)
    assert list(steps) == ["create_task", "notify_assignee"]  # a staff filing: no contractor
    assert {p["decision"]["reasons"][0] for p in steps.values()} == {
        "COMPLIANCE_AUTONOMOUS_TASK"}
    assert all(c["ok"] for c in view.values["verification"]) and len(
        view.values["verification"]) == 2
    [task] = tasks(runner, compliance_item_id="CI-ASTORIA-LL84")
    ll84 = item(runner, "CI-ASTORIA-LL84")
    assert task.assignee_id == "CC-ASTORIA-COORD" and task.status == "OPEN"
    assert task.cycle_due_at == ll84.due_at
    assert abs(task.due_at - (ll84.due_at - CRITICAL)) < timedelta(seconds=1)  # before window
    with runner.services.db.session(ALL_TENANTS) as s:
        [notice] = s.scalars(select(ComplianceNotice).where(ComplianceNotice.task_id == task.id))
    assert notice.contact_id == "CC-ASTORIA-COORD" and notice.channel == "in_app"

    done = runner.submit("compliance", event(2, "compliance_task_completed", {
        "compliance_item_id": "CI-ASTORIA-LL84", "completed_by": "Nikos Pappas",
        "evidence_ref": "LL84-CONF-58213"}))
    assert (done.status, done.outcome) == ("completed", "resolved"), done.values.get("escalation")
    assert [c["action_id"] for c in done.values["verification"] if c["ok"]] == [
        "complete_task", "record_completion"]
    [task] = tasks(runner, id=task.id)
    assert (task.status, task.evidence_ref, task.completed_by) == (
        "DONE", "LL84-CONF-58213", "Nikos Pappas")
    assert item(runner, "CI-ASTORIA-LL84").status == "COMPLIANT"
    following = item(runner, f"CI-ASTORIA-LL84@{ll84.due_at + timedelta(days=365):%Y-%m-%d}")
    assert following is not None and following.status == "OPEN"
    # A later scan of the satisfied item has nothing to do.
    again = runner.submit("compliance", item_due(3, "CI-ASTORIA-LL84", "critical"))
    assert (again.status, again.outcome) == ("completed", "nothing_to_do")


# --------------------------------------------------------------------------- approval


def test_inside_the_critical_window_a_person_approves(runner: Runner) -> None:
    with runner.services.db.session(ALL_TENANTS) as s:
        load = s.get(Vendor, (TENANT, "V-AQUA")).open_work_orders
    view = runner.submit("compliance", item_due(10, "CI-GRAND-LL152", "critical"))
    assert view.status == "needs_approval"
    request = view.pending_approval["request"]
    assert [r["name"] for r in request["action_requests"]] == [
        "create_compliance_task", "create_compliance_work_order", "notify_compliance_assignee"]
    assert {p["reasons"][0] for p in request["policy"]} == {"COMPLIANCE_CRITICAL_WINDOW"}
    assert tasks(runner, compliance_item_id="CI-GRAND-LL152") == []  # nothing ran yet
    book = by_action(view)["book_contractor"]["args"]
    assert (book["vendor_id"], book["category"], book["not_to_exceed"]) == (
        "V-AQUA", "PLUMBING", 650.0)  # best-scored plumber with room; the LL152 fee

    done = decide(runner, view, APPROVE, APPROVE, APPROVE)
    assert (done.status, done.outcome) == ("completed", "resolved"), done.values.get("escalation")
    assert all(c["ok"] for c in done.values["verification"])
    [task] = tasks(runner, compliance_item_id="CI-GRAND-LL152")
    assert task.status == "IN_PROGRESS" and task.priority == "URGENT"
    with runner.services.db.session(ALL_TENANTS) as s:
        wo = s.get(WorkOrder, (TENANT, task.work_order_id))
        assert s.get(Vendor, (TENANT, "V-AQUA")).open_work_orders == load + 1
    assert (wo.status, wo.source_ref, float(wo.not_to_exceed)) == (
        "DISPATCHED", "compliance:CI-GRAND-LL152", 650.0)


def test_overdue_is_always_escalated_and_an_edit_is_gated_again(runner: Runner) -> None:
    view = runner.submit("compliance", item_due(20, "CI-ASTORIA-BOILER", "overdue"))
    assert view.status == "needs_approval"
    request = view.pending_approval["request"]
    assert request["severity"] == "HIGH"
    assert {p["reasons"][0] for p in request["policy"]} == {"COMPLIANCE_OVERDUE"}
    assert "overdue by 3 days" in view.summary
    book = by_action(view)["book_contractor"]["args"]
    edited = {"type": "edit", "edited_action": {"name": "create_compliance_work_order",
                                                "args": {**book, "not_to_exceed": 400}}}
    again = decide(runner, view, APPROVE, edited, APPROVE)
    assert again.status == "needs_approval"  # the edited booking is still overdue work
    [pending] = again.pending_approval["request"]["action_requests"]
    assert pending["args"]["not_to_exceed"] == 400
    assert tasks(runner, compliance_item_id="CI-ASTORIA-BOILER") == []
    done = decide(runner, again, APPROVE)
    assert (done.status, done.outcome) == ("completed", "resolved")
    [task] = tasks(runner, compliance_item_id="CI-ASTORIA-BOILER")
    with runner.services.db.session(ALL_TENANTS) as s:
        assert float(s.get(WorkOrder, (TENANT, task.work_order_id)).not_to_exceed) == 400

    # The task is out but the item is still overdue: the next scan escalates, every time.
    late = runner.submit("compliance", item_due(21, "CI-ASTORIA-BOILER", "upcoming"))
    assert late.status == "escalated" and late.values.get("proposals", []) == []
    escalation = late.values["escalation"]
    assert (escalation["severity"], escalation["category"], escalation["blocked_rules"]) == (
        "CRITICAL", "SLA", ["COMPLIANCE_OVERDUE"])
    assert any(e.thread_id == late.thread_id for e in runner.exceptions(TENANT))


def test_a_rejected_overdue_pm_writes_nothing(runner: Runner) -> None:
    view = runner.submit("compliance", event(30, "compliance_pm_overdue",
                                             {"pm_schedule_id": "PM-FLAT-GUTTERS"}))
    assert view.status == "needs_approval"
    book = by_action(view)["book_contractor"]["args"]
    assert (book["vendor_id"], book["not_to_exceed"]) == ("V-HANDY", 190.0)  # 50 + 2 x 70
    reject = {"type": "reject", "message": "the super cleans them this week"}
    done = decide(runner, view, reject, reject, reject)
    assert (done.status, done.outcome) == ("completed", "rejected")
    assert tasks(runner, pm_schedule_id="PM-FLAT-GUTTERS") == []
    with runner.services.db.session(ALL_TENANTS) as s:
        assert s.scalar(select(WorkOrder.id).where(
            WorkOrder.source_ref == "pm:PM-FLAT-GUTTERS")) is None


# --------------------------------------------------------------------------- block / escalate


def test_blocks_hold_the_whole_plan(runner: Runner) -> None:
    # A PM whose contract is above the hard limit slipped past due.
    with runner.services.db.session(ALL_TENANTS) as s:
        s.execute(update(PMSchedule).where(PMSchedule.id == "PM-GRAND-BOILER").values(
            next_due_at=datetime.now(UTC) - timedelta(days=1)))
    view = runner.submit("compliance", event(40, "compliance_pm_overdue",
                                             {"pm_schedule_id": "PM-GRAND-BOILER"}))
    assert view.status == "escalated"
    escalation = view.values["escalation"]
    assert (escalation["category"], escalation["blocked_rules"]) == (
        "FINANCIAL", ["SPEND_HARD_BLOCK"])
    assert tasks(runner, pm_schedule_id="PM-GRAND-BOILER") == []  # held whole: nothing ran

    # An approver cannot edit a booking past the hard limit either.
    gas = runner.submit("compliance", item_due(41, "CI-GRAND-LL152"))
    book = by_action(gas)["book_contractor"]["args"]
    edited = {"type": "edit", "edited_action": {"name": "create_compliance_work_order",
                                                "args": {**book, "not_to_exceed": 6000}}}
    blocked = decide(runner, gas, APPROVE, edited, APPROVE)
    assert blocked.status == "escalated"
    assert blocked.values["escalation"]["blocked_rules"] == ["SPEND_HARD_BLOCK"]
    assert tasks(runner, compliance_item_id="CI-GRAND-LL152") == []


def test_a_task_past_its_deadline_is_escalated_by_the_recheck(runner: Runner) -> None:
    runner.submit("compliance", item_due(50, "CI-ASTORIA-LL84"))
    [task] = tasks(runner, compliance_item_id="CI-ASTORIA-LL84")
    on_track = runner.submit("compliance", event(51, "compliance_recheck",
                                                 {"task_id": task.id, "stage": "requested"}))
    assert (on_track.status, on_track.outcome) == ("completed", "nothing_to_do")
    with runner.services.db.session(ALL_TENANTS) as s:  # its deadline passes, still open
        s.execute(update(ComplianceTask).where(ComplianceTask.id == task.id).values(
            due_at=datetime.now(UTC) - timedelta(hours=1)))
    late = runner.submit("compliance", event(52, "compliance_recheck",
                                             {"task_id": task.id, "stage": "deadline"}))
    assert late.status == "escalated"
    assert late.values["escalation"]["title"] == f"Compliance task {task.id} missed its deadline"
    assert late.values["escalation"]["category"] == "SLA"


# --------------------------------------------------------------------------- failures


def test_tool_failures_escalate_and_say_what_was_done(runner: Runner) -> None:
    faults = runner.services.gateway.faults
    faults.set("create_compliance_task", transient=3)
    flaky = runner.submit("compliance", item_due(60, "CI-ASTORIA-LL84"))
    assert flaky.status == "escalated"
    assert flaky.values["escalation"]["title"] == "Tool kept failing after 3 tries"
    assert tasks(runner, compliance_item_id="CI-ASTORIA-LL84") == []

    faults.set("create_compliance_task")  # healthy again
    faults.set("notify_compliance_assignee", permanent=True)
    broken = runner.submit("compliance", item_due(61, "CI-ASTORIA-LL84", "upcoming"))
    assert broken.status == "escalated"
    assert broken.values["escalation"]["title"] == "Tool failed permanently"
    assert "Completed before the failure: create_task" in broken.values["escalation"]["details"]
    assert len(tasks(runner, compliance_item_id="CI-ASTORIA-LL84")) == 1


def test_database_keeps_one_live_task_per_cycle_and_done_needs_proof(runner: Runner) -> None:
    now = datetime.now(UTC)

    def add(task_id: str, **extra: Any) -> None:
        with runner.services.db.session(TENANT) as s:
            s.add(ComplianceTask(**{
                "tenant_id": TENANT, "id": task_id, "compliance_item_id": "CI-FLAT-LL11",
                "property_id": "P-FLATBUSH", "cycle_due_at": now, "title": "FISP",
                "assignee_id": "CC-FLAT-COORD", "due_at": now, "priority": "ROUTINE",
                "status": "OPEN", "notes": [], **extra}))

    add("CT-A")
    with pytest.raises(IntegrityError):
        add("CT-B")  # a second live task for the same cycle
    add("CT-C", status="CANCELLED")  # cancelled ones do not count
    with pytest.raises(IntegrityError):
        add("CT-D", cycle_due_at=now + timedelta(days=1), status="DONE")  # done, no proof
    with pytest.raises(IntegrityError):
        add("CT-E", cycle_due_at=now + timedelta(days=2), pm_schedule_id="PM-FLAT-GUTTERS")


def test_tools_never_reach_another_tenants_records(runner: Runner) -> None:
    runner.submit("compliance", item_due(70, "CI-ASTORIA-LL84"))
    [task] = tasks(runner, compliance_item_id="CI-ASTORIA-LL84")
    gateway, intruder = runner.services.gateway, Principal.autopilot("compliance", "intruder")
    for tool, args in (("get_compliance_item", {"compliance_item_id": "CI-ASTORIA-LL84"}),
                       ("get_compliance_task", {"task_id": task.id})):
        with pytest.raises(PermanentToolError):
            gateway.read(intruder, tool, args)
    assert gateway.read(intruder, "list_compliance_contacts",
                        {"property_id": "P-ASTORIA"}) == {"contacts": []}
    decision = runner.services.gate.decide(
        graph="compliance", tenant_id="intruder", thread_id="x", action_id="a",
        tool="complete_compliance_task", args={"task_id": task.id, "completed_by": "eve",
                                               "evidence_ref": "forged"},
        run_facts={}, stage="execute")
    assert (decision.outcome.value, decision.reasons) == ("BLOCK", ["POLICY_ERROR"])


# --------------------------------------------------------------------------- the daily scan


def _oracle(runner: Runner, since: datetime | None, until: datetime) -> set[tuple[str, ...]]:
    """What the scan must find, computed row by row in Python from the whole tables."""
    with runner.services.db.session(ALL_TENANTS) as s:
        items = list(s.scalars(select(ComplianceItem)))
        pms = list(s.scalars(select(PMSchedule)))
        wos = {(w.tenant_id, w.id): w for w in s.scalars(select(WorkOrder))}
        all_tasks = list(s.scalars(select(ComplianceTask)))

    def crossed(at: datetime) -> bool:
        return at <= until and (since is None or at > since)

    out: set[tuple[str, ...]] = set()
    for i in (i for i in items if i.status == "OPEN"):
        live = any(t.compliance_item_id == i.id and t.cycle_due_at == i.due_at
                   and t.status in LIVE_TASK_STATUSES for t in all_tasks)
        if since is None:
            if i.due_at <= until + LOOK_AHEAD:
                stage = ("overdue" if i.due_at <= until else "critical"
                         if i.due_at - CRITICAL <= until else "upcoming")
                out.add(("compliance_item_due", i.id, stage))
            continue
        for stage, offset in (("upcoming", LOOK_AHEAD), ("critical", CRITICAL),
                              ("overdue", timedelta(0))):
            if crossed(i.due_at - offset) and not (stage == "critical" and live):
                out.add(("compliance_item_due", i.id, stage))
    for pm in pms:
        open_wo = any(w.source_ref == f"pm:{pm.id}" and w.status in OPEN_STATUSES
                      for w in wos.values())
        if crossed(pm.next_due_at) and not open_wo:
            out.add(("compliance_pm_overdue", pm.id, ""))
    for t in (t for t in all_tasks if t.status in LIVE_TASK_STATUSES):
        if crossed(t.due_at):
            out.add(("compliance_recheck", t.id, "deadline"))
        wo = wos.get((t.tenant_id, t.work_order_id or ""))
        if wo is not None and wo.status in ("COMPLETED", "CLOSED") and crossed(
                wo.closed_at or wo.updated_at):
            out.add(("compliance_recheck", t.id, "work_order_closed"))
    return out


def _scan(runner: Runner, since: datetime | None, until: datetime) -> set[tuple[str, ...]]:
    with runner.services.db.session(ALL_TENANTS) as s:
        events = SPEC.detect(s, since, until)
    found = [(e["event_type"], next(iter(e["payload"].values())), e["payload"].get("stage", ""))
             for e in events]
    assert len(found) == len(set(found)), "an event reported twice"
    return set(found)


def test_daily_scan_finds_exactly_what_is_due_and_only_what_changed(runner: Runner) -> None:
    now = datetime.now(UTC)
    full = _scan(runner, None, now)
    assert full == _oracle(runner, None, now)
    assert {("compliance_item_due", "CI-GRAND-LL152", "critical"),
            ("compliance_item_due", "CI-FLAT-LL11", "upcoming"),
            ("compliance_item_due", "CI-ASTORIA-BOILER", "overdue"),
            ("compliance_item_due", "CI-ASTORIA-LL84", "upcoming"),
            ("compliance_pm_overdue", "PM-FLAT-GUTTERS", "")} <= full
    assert not any(f[1] == "CI-GRAND-BEDBUG" for f in full)  # 65 days out: beyond the horizon

    # The tick queues one run per trigger; a second full scan starts nothing new.
    queue = JobQueue(runner.services.settings)
    queue.runner = runner
    started = queue.tick("compliance", since=None, until=now)
    assert len(started) == len(full)
    statuses = [runner.resume(t).status for t in started]
    assert set(statuses) == {"completed", "needs_approval"}, statuses  # LL84 ran on its own
    assert queue.tick("compliance", since=None, until=now) == []

    # Delta-only: a window four to six days out holds the gas piping deadline, the bedbug
    # filing entering the horizon and the elevator PM falling due (it has no work order).
    window = (now + timedelta(days=4), now + timedelta(days=6))
    delta = _scan(runner, *window)
    assert delta == _oracle(runner, *window)
    assert {("compliance_item_due", "CI-GRAND-LL152", "overdue"),
            ("compliance_item_due", "CI-GRAND-BEDBUG", "upcoming"),
            ("compliance_pm_overdue", "PM-GRAND-ELEVATOR", "")} <= delta
    assert not any(f[1] in ("CI-ASTORIA-BOILER", "PM-FLAT-GUTTERS") for f in delta)

    # Around LL84's task deadline (the start of its critical window): the task is re-checked
    # and the item's own critical checkpoint is skipped, since a live task covers it.
    [ll84] = tasks(runner, compliance_item_id="CI-ASTORIA-LL84")
    window = (ll84.due_at - timedelta(hours=1), ll84.due_at + timedelta(hours=1))
    near = _scan(runner, *window)
    assert near == _oracle(runner, *window)
    assert ("compliance_recheck", ll84.id, "deadline") in near
    assert ("compliance_item_due", "CI-ASTORIA-LL84", "critical") not in near


def test_recheck_records_completion_when_the_contractor_s_work_order_closes(
        runner: Runner) -> None:
    gas = runner.submit("compliance", item_due(80, "CI-GRAND-LL152"))
    decide(runner, gas, APPROVE, APPROVE, APPROVE)
    [task] = tasks(runner, compliance_item_id="CI-GRAND-LL152")
    before = datetime.now(UTC)
    closed = runner.submit("maintenance", event(81, "work_completed", {
        "work_order_id": task.work_order_id, "final_cost": 600,
        "resolution": "LL152 inspection done, no leaks; GPS2 filed"}))
    assert closed.status == "completed"
    with runner.services.db.session(ALL_TENANTS) as s:
        events = SPEC.detect(s, before, datetime.now(UTC))
    found = [e for e in events if e["event_type"] == "compliance_recheck"]
    assert [e["payload"] for e in found] == [{"task_id": task.id,
                                              "stage": "work_order_closed"}]
    view = runner.submit("compliance", found[0])
    assert (view.status, view.outcome) == ("completed", "resolved"), view.values.get("escalation")
    # Inside the critical window, yet recording the proof runs on its own.
    assert [p["decision"]["reasons"] for p in view.values["proposals"]] == [
        ["COMPLIANCE_AUTONOMOUS_TASK"], ["COMPLIANCE_AUTONOMOUS_TASK"]]
    [task] = tasks(runner, id=task.id)
    assert (task.status, task.evidence_ref) == ("DONE", f"work_order:{task.work_order_id}")
    gas_item = item(runner, "CI-GRAND-LL152")
    assert gas_item.status == "COMPLIANT"
    assert days_until_due(gas_item.due_at, datetime.now(UTC)) == 5
    assert item(runner, f"CI-GRAND-LL152@{gas_item.due_at + timedelta(days=4 * 365):%Y-%m-%d}")


def test_a_repeated_trigger_is_one_run(runner: Runner) -> None:
    first = runner.submit("compliance", item_due(90, "CI-FLAT-LL11", "upcoming"))
    assert first.status == "needs_approval"  # the task ran; the QEWI booking waits (spend)
    assert by_action(first)["book_contractor"]["decision"]["reasons"] == [
        "CATEGORY_NOT_AUTO_ASSIGNABLE", "SPEND_OVER_AUTO_LIMIT"]
    again = runner.submit("compliance", item_due(90, "CI-FLAT-LL11", "upcoming"))
    assert again.deduplicated and again.thread_id == first.thread_id
    assert len(tasks(runner, compliance_item_id="CI-FLAT-LL11")) == 1
    # Another trigger for the same cycle sees the live task and leaves it be.
    other = runner.submit("compliance", item_due(91, "CI-FLAT-LL11", "requested"))
    assert (other.status, other.outcome) == ("completed", "nothing_to_do")
    assert "on track" in other.summary
    assert len(tasks(runner, compliance_item_id="CI-FLAT-LL11")) == 1


# --------------------------------------------------------------------------- HTTP


KEYS = {"k-mgr": {"tenant": TENANT, "subject": "maria@acme.example", "roles": ["approver"]}}
H = {"Authorization": "Bearer k-mgr"}


def _poll(base: str, run_id: str, *wanted: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        run = httpx.get(f"{base}/v1/runs/{run_id}", headers=H, timeout=10).json()
        if run["status"] in wanted:
            return run
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} never reached {wanted}: {run}")


def test_through_the_http_api(sqlite_env: dict[str, str], tmp_path: Path) -> None:
    env = {**sqlite_env, "AUTOPILOT_API_KEYS": json.dumps(KEYS),
           "AUTOPILOT_SCHEDULES": no_ticks(), "AGENT_JOB_POLL_INTERVAL_MS": "100"}
    cli_ok(env, "seed")
    with serve_api(env, tmp_path / "logs") as (base, _stderr):
        trigger = item_due(100, "CI-GRAND-LL152", "critical")
        posted = httpx.post(f"{base}/v1/events", json=trigger, headers=H, timeout=10)
        assert posted.status_code == 202, posted.text
        assert posted.json()["graph"] == "compliance"
        run_id = posted.json()["run_id"]
        again = httpx.post(f"{base}/v1/events", json=trigger, headers=H, timeout=10)
        assert again.status_code == 200 and again.json()["deduplicated"] is True
        _poll(base, run_id, "needs_approval")
        [approval] = [a for a in httpx.get(f"{base}/v1/approvals", headers=H,
                                           timeout=10).json()["approvals"]
                      if a["run_id"] == run_id]
        decided = httpx.post(f"{base}/v1/approvals/{approval['id']}/decision", headers=H,
                             json={"decision": "approve"}, timeout=30)
        assert decided.status_code == 202, decided.text
        run = _poll(base, run_id, "completed", "escalated", "failed_terminal")
        assert run["status"] == "completed", run
    rows = query_app_db(env, "SELECT status, work_order_id FROM compliance_tasks "
                             "WHERE compliance_item_id = 'CI-GRAND-LL152'")
    assert len(rows) == 1 and rows[0][0] == "IN_PROGRESS" and rows[0][1]
