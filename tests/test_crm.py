"""The crm autopilot (seed 000): triggers -> queued suggestions -> review -> safe apply, with
no CRM write ever running without a person's approval."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from autopilot.db import ALL_TENANTS
from autopilot.models import ToolCall
from autopilot.runtime import ACTIVE, Runner
from autopilot.sandbox.crm import CrmActivity, CrmDeal, CrmSuggestion
from graphs.crm import SPEC
from graphs.crm.detect import detect
from graphs.trigger import TriggerError, parse_trigger
from policy.engine import Outcome, PolicyEngine, PolicyRequest, ToolFacts
from policy.testing import run_suites
from tests.helpers import TENANT, approve_all, cli_ok, no_ticks, query_app_db, serve_api
from tools.catalog import build_registry
from tools.crm import CRM_WRITE_TOOLS, QUEUE_TOOLS, RUN_ACTIVE
from tools.crm import register as register_crm
from tools.gateway import Principal
from tools.registry import PermanentToolError, ToolContext, ToolKind, ToolRegistry

CEDAR = Path(__file__).resolve().parent.parent / "policy" / "policies" / "crm.cedar"


def trigger(n: int | str, trigger_id: str, record_id: str, context: dict[str, Any],
            at: datetime | None = None, tenant: str = TENANT) -> dict[str, Any]:
    """A trigger in seed 000's format, as the payload of an event envelope."""
    return {"event_id": f"crm-{n}", "tenant_id": tenant, "source": "test",
            "event_type": trigger_id, "occurred_at": (at or datetime.now(UTC)).isoformat(),
            "payload": {"trigger_id": trigger_id, "tenant_id": tenant, "record_id": record_id,
                        "context": context}}


def stagnant(n: int | str, lead: str = "LEAD-1001", days: int = 12,
             at: datetime | None = None) -> dict[str, Any]:
    return trigger(n, "lead_stagnant", lead, {"days_stagnant": days}, at)


def lost_deal_wrote_again(n: int | str) -> dict[str, Any]:
    return trigger(n, "reengagement_opportunity", "OPP-KWVA7VR1",
                   {"record_type": "deal", "activity_id": "ACT-0017"})


def suggestions(runner: Runner, **where: Any) -> list[CrmSuggestion]:
    with runner.services.db.session(ALL_TENANTS) as s:
        q = select(CrmSuggestion).where(*(getattr(CrmSuggestion, k) == v
                                          for k, v in where.items()))
        return list(s.scalars(q.order_by(CrmSuggestion.created_at, CrmSuggestion.id)))


def reconcile(runner: Runner, since: datetime) -> list[Any]:
    """One scheduler tick of the crm detectors over (since, now]: run what it finds."""
    with runner.services.db.session(ALL_TENANTS) as s:
        events = [e for e in detect(s, since, datetime.now(UTC))
                  if e["event_type"] == "crm_suggestion_outcome"]
    return [runner.submit("crm", e) for e in events]


# --------------------------------------------------------------------------- policy


def _facts(registry: ToolRegistry, name: str) -> ToolFacts:
    spec = registry.get(name)
    return ToolFacts(name=name, kind=spec.kind.value, reversible=spec.reversible,
                     cost_class=spec.cost_class.value, risk=spec.risk.value)


def test_every_crm_write_needs_a_person_whatever_else_would_allow_it() -> None:
    """Every write tool the CRM tool set registers (found from the registry, so a new one is
    covered) needs approval at every level, granted by a tenant rule, from any autopilot."""
    own = ToolRegistry()
    register_crm(own)
    writes = set(own.names(ToolKind.WRITE)) - set(QUEUE_TOOLS)
    assert writes == set(CRM_WRITE_TOOLS)
    for tool in writes:
        assert f'"{tool}"' in CEDAR.read_text()  # listed in CRM_WRITE_REQUIRES_APPROVAL
    registry = build_registry()
    grants = [{"id": f"GRANT_{t.upper()}", "action": t, "effect": "allow", "priority": 1000}
              for t in writes]
    engine = PolicyEngine().with_config({"rules": grants})
    for tool in sorted(writes):
        for graph in ("crm", "maintenance"):
            for level in range(1, 5):
                d = engine.evaluate(PolicyRequest(
                    graph=graph, tenant_id="t", tool=_facts(registry, tool),
                    facts={"confidence_pct": 100, "grounded": True, "category": "Prospecting"},
                    level_override=level))
                assert d.outcome is Outcome.REQUIRE_APPROVAL, (tool, graph, level, d)
                assert "CRM_WRITE_REQUIRES_APPROVAL" in d.reasons
    # The queue writes, by contrast, run on their own at the configured levels (L2).
    for tool in QUEUE_TOOLS:
        d = PolicyEngine().evaluate(PolicyRequest(graph="crm", tenant_id="t",
                                                  tool=_facts(registry, tool)))
        assert (d.outcome, d.reasons) == (Outcome.ALLOW, ["CRM_SUGGESTION_QUEUE"])
    [suite] = {r.suite for r in run_suites(PolicyEngine(), registry,
                                           [CEDAR.parent.parent / "tests" / "crm.yaml"])}
    assert suite == "crm (seed 000)"
    assert RUN_ACTIVE == ACTIVE  # the apply and close tools' notion of a live run


def test_triggers_must_be_in_seed_000_format() -> None:
    ok = stagnant(1)
    envelope, payload = parse_trigger(ok, SPEC.event_types)
    assert payload.record_id == "LEAD-1001" and payload.context.days_stagnant == 12
    mismatch = {**ok, "payload": {**ok["payload"], "trigger_id": "deal_regressed"}}
    with pytest.raises(TriggerError) as err:
        parse_trigger(mismatch, SPEC.event_types)
    assert [f["field"] for f in err.value.fields] == ["payload.trigger_id"]
    unknown = {**ok, "payload": {**ok["payload"], "context": {"days": 3}}}
    with pytest.raises(TriggerError) as err:
        parse_trigger(unknown, SPEC.event_types)
    assert {f["field"] for f in err.value.fields} == {"payload.context.days_stagnant",
                                                      "payload.context.days"}


# --------------------------------------------------------------------------- runs


def test_suggestion_is_queued_on_its_own_and_applied_only_after_approval(
        runner: Runner) -> None:
    view = runner.submit("crm", stagnant(1))
    assert view.status == "needs_approval"
    queue, apply = view.values["proposals"]
    # Queueing the suggestion ran on its own (the allow path); the CRM write waits.
    assert (queue["tool"], queue["status"], queue["decision"]["reasons"]) == (
        "enqueue_suggestion", "executed", ["CRM_SUGGESTION_QUEUE"])
    assert (apply["tool"], apply["status"]) == ("create_crm_task", "needs_approval")
    assert apply["decision"]["reasons"] == ["AUTONOMY_LEVEL", "CRM_WRITE_REQUIRES_APPROVAL"]
    request = view.pending_approval["request"]
    assert request["action_requests"][0]["name"] == "create_crm_task"
    assert "Lead inactive for 12 days" in request["reasoning"][0]
    [s] = suggestions(runner)
    assert (s.status, s.trigger_id, s.record_id, s.action_name) == (
        "pending", "lead_stagnant", "LEAD-1001", "create_crm_task")
    assert s.action["payload"]["lead_id"] == "LEAD-1001" and 0 < s.confidence <= 1
    assert s.reasoning.startswith("Lead inactive for 12 days") and s.approved_by is None
    task_id = apply["args"]["activity_id"]

    # Safe Apply refuses on its own too: no recorded approval of the action, wrong run.
    spec = runner.services.registry.get("create_crm_task")
    args = spec.input_model.model_validate(apply["args"])
    for thread in (view.thread_id, "crm-some-other-run"):
        with runner.services.db.session(TENANT) as session, \
                pytest.raises(PermanentToolError) as err:
            spec.handler(ToolContext(session=session, tenant_id=TENANT,
                                     now=datetime.now(UTC), thread_id=thread), args)
        assert ("no recorded approval" if thread == view.thread_id
                else "only that run applies it") in str(err.value)
    with runner.services.db.session(ALL_TENANTS) as session:
        assert session.get(CrmActivity, (TENANT, task_id)) is None

    done = runner.decide(view.thread_id, approve_all(view), reviewer="anna@acme.example")
    assert (done.status, done.outcome) == ("completed", "resolved")
    assert [c["ok"] for c in done.values["verification"]] == [True, True]
    [s] = suggestions(runner)
    assert (s.status, s.approved_by) == ("applied", "anna@acme.example")
    assert s.applied_at is not None and s.apply_result == {"ok": True, "activity_id": task_id}
    with runner.services.db.session(ALL_TENANTS) as session:
        task = session.get(CrmActivity, (TENANT, task_id))
        assert (task.kind, task.status, task.lead_id, task.suggestion_id) == (
            "task", "open", "LEAD-1001", s.id)
        assert task.due_date > datetime.now(UTC).date()
    with runner.services.db.session(ALL_TENANTS) as session:
        calls = {c.action_id: c.reason_code for c in session.scalars(
            select(ToolCall).where(ToolCall.thread_id == view.thread_id))}
    assert calls["suggest_1"] == "CRM_SUGGESTION_QUEUE"  # ran on its own
    assert calls["apply_1"].startswith("APPROVED:")  # ran on a recorded approval


def test_reject_edit_and_the_queue_records_how_each_review_ended(runner: Runner) -> None:
    start = datetime.now(UTC) - timedelta(seconds=1)
    rejected = runner.submit("crm", trigger(2, "deal_regressed", "OPP-Z063OYW0",
                                            {"change_id": "DH-Z063-3",
                                             "regressions": ["stage_moved_back"]}))
    done = runner.decide(rejected.thread_id, {"decisions": [
        {"type": "reject", "message": "Moses already has a call booked"}]}, reviewer="mgr")
    assert done.status == "completed" and "rejected by mgr" in done.values["summary"]

    edited = runner.submit("crm", trigger(3, "reengagement_opportunity", "LEAD-1004",
                                          {"record_type": "lead", "activity_id": "ACT-0006"}))
    email, task = edited.pending_approval["request"]["action_requests"]
    assert (email["name"], task["name"]) == ("send_outreach_email", "create_crm_task")
    later = (datetime.now(UTC).date() + timedelta(days=7)).isoformat()
    view = runner.decide(edited.thread_id, {"decisions": [
        {"type": "reject", "message": "Violet will write herself"},
        {"type": "edit", "edited_action": {"name": "create_crm_task",
                                           "args": {**task["args"], "due_date": later}}}]},
        reviewer="violet")
    # An edited CRM write still needs a person: the edited values come back for approval.
    assert view.status == "needs_approval"
    assert view.pending_approval["request"]["action_requests"][0]["args"]["due_date"] == later
    view = runner.decide(view.thread_id, approve_all(view), reviewer="lead@acme.example")
    assert view.status == "completed"
    by_tool = {s.action_name: s for s in suggestions(runner, record_id="LEAD-1004")}
    applied = by_tool["create_crm_task"]
    assert (applied.status, applied.approved_by) == ("applied", "lead@acme.example")
    assert applied.action["payload"]["due_date"] == later
    assert applied.apply_result["edited_from"]["due_date"] != later

    # Rejected suggestions stay pending until the next tick records how the review ended.
    waiting = suggestions(runner, status="pending")
    assert {s.action_name for s in waiting} == {"create_crm_task", "send_outreach_email"}
    closed = reconcile(runner, start)
    assert len(closed) == 2 and all(v.status == "completed" for v in closed)
    assert all(v.values["proposals"][0]["decision"]["reasons"] == ["CRM_SUGGESTION_QUEUE"]
               for v in closed)
    notes = {s.record_id: (s.status, s.reviewed_by, s.review_note, s.approved_by)
             for s in suggestions(runner, status="rejected")}
    assert notes == {"OPP-Z063OYW0": ("rejected", "mgr", "Moses already has a call booked",
                                      None),
                     "LEAD-1004": ("rejected", "violet", "Violet will write herself", None)}
    assert reconcile(runner, datetime.now(UTC)) == []  # delta-only: nothing new since
    with runner.services.db.session(ALL_TENANTS) as s:
        sent = s.scalars(select(CrmActivity).where(CrmActivity.kind == "email_out",
                                                   CrmActivity.lead_id == "LEAD-1004")).all()
    assert [a.subject for a in sent] == ["Quarterly newsletter"]  # the reply never went out


def test_edit_past_policy_is_blocked_and_escalated(runner: Runner) -> None:
    view = runner.submit("crm", lost_deal_wrote_again(4))
    task, reopen = view.pending_approval["request"]["action_requests"]
    assert reopen["name"] == "update_deal_stage" and reopen["args"]["stage"] == "Prospecting"
    done = runner.decide(view.thread_id, {"decisions": [
        {"type": "approve"},
        {"type": "edit", "edited_action": {"name": "update_deal_stage",
                                           "args": {**reopen["args"], "stage": "Won"}}}]},
        reviewer="mgr")
    assert done.status == "escalated"
    assert done.values["escalation"]["blocked_rules"] == ["CRM_DEAL_CLOSE_BY_REP_ONLY"]
    [exc] = runner.exceptions(TENANT)
    assert exc.graph == "crm" and exc.thread_id == view.thread_id
    with runner.services.db.session(ALL_TENANTS) as s:
        assert s.get(CrmDeal, (TENANT, "OPP-KWVA7VR1")).stage == "Lost"
        assert s.get(CrmActivity, (TENANT, task["args"]["activity_id"])) is None
    closed = reconcile(runner, datetime.now(UTC) - timedelta(minutes=1))
    assert len(closed) == 2
    assert {(s.action_name, s.status) for s in suggestions(runner)} == {
        ("create_crm_task", "failed"), ("update_deal_stage", "failed")}
    assert all("CRM_DEAL_CLOSE_BY_REP_ONLY" in s.review_note for s in suggestions(runner))


def test_a_failing_apply_escalates_and_the_suggestion_is_marked_failed(
        runner: Runner) -> None:
    runner.services.gateway.faults.set("create_crm_task", permanent=True)
    view = runner.submit("crm", stagnant(5))
    done = runner.decide(view.thread_id, approve_all(view), reviewer="anna")
    assert done.status == "escalated"
    assert done.values["escalation"]["title"] == "Tool failed permanently"
    [s] = suggestions(runner)
    assert s.status == "pending" and s.applied_at is None  # the failed write rolled back
    [closed] = reconcile(runner, datetime.now(UTC) - timedelta(minutes=1))
    assert closed.status == "completed"
    [s] = suggestions(runner)
    assert (s.status, s.reviewed_by, s.approved_by) == ("failed", "anna", None)
    assert "injected fault" in s.review_note and s.apply_result["ok"] is False


def test_repeated_trigger_is_deduplicated_and_a_waiting_suggestion_not_requeued(
        runner: Runner) -> None:
    first = runner.submit("crm", stagnant(6))
    again = runner.submit("crm", stagnant(7))
    assert again.deduplicated and again.thread_id == first.thread_id
    tomorrow = runner.submit("crm", stagnant(8, at=datetime.now(UTC) + timedelta(days=1)))
    assert not tomorrow.deduplicated and tomorrow.thread_id != first.thread_id
    assert (tomorrow.status, tomorrow.outcome) == ("completed", "nothing_to_do")
    assert "already waiting" in tomorrow.values["summary"]
    assert len(suggestions(runner)) == 1
    # A lead with a follow-up already planned needs nothing new.
    planned = runner.submit("crm", stagnant(9, lead="LEAD-1007", days=14))
    assert planned.outcome == "nothing_to_do" and "already plans" in planned.values["summary"]


def test_tenant_isolation(runner: Runner) -> None:
    view = runner.submit("crm", stagnant(11))
    gateway = runner.services.gateway
    intruder = Principal.autopilot("crm", "intruder")
    for tool, args in (("get_lead_360", {"lead_id": "LEAD-1001"}),
                       ("get_deal_360", {"deal_id": "OPP-Z063OYW0"}),
                       ("get_account_360", {"account_id": "ACC-CANCITY"}),
                       ("get_suggestion", {"suggestion_id": suggestions(runner)[0].id})):
        assert gateway.read(Principal.autopilot("crm", TENANT), tool, args)
        with pytest.raises(PermanentToolError):
            gateway.read(intruder, tool, args)
    assert gateway.read(intruder, "list_suggestions", {}) == {"suggestions": []}
    assert gateway.read(intruder, "get_activity_timeline",
                        {"lead_id": "LEAD-1001"}) == {"activities": []}
    # A trigger whose payload names another tenant than its envelope does not run.
    foreign = stagnant(12, lead="LEAD-1002", days=25)
    foreign["payload"]["tenant_id"] = "other"
    escalated = runner.submit("crm", foreign)
    assert escalated.status == "escalated" and "is not the event's tenant" in \
        escalated.values["escalation"]["details"]
    assert view.status == "needs_approval" and len(suggestions(runner)) == 1


def test_detectors_find_exactly_the_due_rows_and_are_delta_only(runner: Runner) -> None:
    now = datetime.now(UTC)

    def found(since: datetime | None, until: datetime) -> set[tuple[str, str]]:
        with runner.services.db.session(ALL_TENANTS) as s:
            events = detect(s, since, until)
        for e in events:  # every event is a valid trigger of this graph
            parse_trigger(e, SPEC.event_types)
        return {(e["event_type"], e["payload"]["record_id"]) for e in events}

    assert found(None, now) == {
        ("lead_stagnant", "LEAD-1001"), ("lead_stagnant", "LEAD-1002"),
        ("lead_stagnant", "LEAD-1007"), ("lead_stagnant", "LEAD-1008"),
        ("deal_regressed", "OPP-Z063OYW0"), ("deal_regressed", "OPP-EC4QE1BX"),
        ("deal_regressed", "OPP-MV1LWRNH"), ("account_at_risk", "ACC-CANCITY"),
        ("reengagement_opportunity", "LEAD-1004"),
        ("reengagement_opportunity", "OPP-KWVA7VR1")}
    day = timedelta(days=1)
    assert found(now, now + day) == {("lead_stagnant", "LEAD-1005")}
    assert found(now + day, now + 31 * day) == {
        ("lead_stagnant", "LEAD-1003"), ("account_at_risk", "ACC-CODEHOW"),
        ("account_at_risk", "ACC-GANJAFLEX")}
    with runner.services.db.session(ALL_TENANTS) as s:
        [risk] = [e for e in detect(s, None, now) if e["event_type"] == "account_at_risk"]
        [slip] = [e for e in detect(s, None, now) if e["payload"]["record_id"] == "OPP-EC4QE1BX"]
    assert risk["payload"]["context"] == {"days_since_activity": 41, "open_support_issues": 2,
                                          "days_to_renewal": 28}
    assert slip["payload"]["context"] == {"change_id": "DH-EC4Q-1",
                                          "regressions": ["close_date_slipped"]}
    # A tick's triggers run: every one is handled (queued, or nothing new to do).
    with runner.services.db.session(ALL_TENANTS) as s:
        events = detect(s, None, now)
    views = [runner.submit("crm", e) for e in events]
    assert {v.status for v in views} <= {"needs_approval", "completed"}
    assert sum(v.status == "needs_approval" for v in views) == 9  # LEAD-1007 has its task
    assert {v.values["plan_summary"] for v in views if v.outcome == "nothing_to_do"} == {
        "LEAD-1007 is quiet for 14 days but Maureen Marcano already plans 'Send Ken the "
        "GTK 500 integration spec' by " + (now.date() + day * 2).isoformat()}


# --------------------------------------------------------------------------- HTTP API

KEYS = {"k-crm": {"tenant": TENANT, "subject": "anna@acme.example", "roles": ["approver"]}}
AUTH = {"Authorization": "Bearer k-crm"}


def _poll(base: str, run_id: str, *wanted: str) -> dict[str, Any]:
    deadline, run = time.monotonic() + 60, {}
    while time.monotonic() < deadline:
        run = httpx.get(f"{base}/v1/runs/{run_id}", headers=AUTH, timeout=10).json()
        if run["status"] in wanted:
            return run
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} never reached {wanted}: {run}")


def test_through_the_http_api(sqlite_env: dict[str, str], tmp_path: Path) -> None:
    env = {**sqlite_env, "AUTOPILOT_API_KEYS": json.dumps(KEYS),
           "AUTOPILOT_SCHEDULES": no_ticks(), "AGENT_JOB_POLL_INTERVAL_MS": "100"}
    cli_ok(env, "seed")
    event = trigger(10, "account_at_risk", "ACC-CANCITY",
                    {"days_since_activity": 41, "open_support_issues": 2, "days_to_renewal": 28})
    with serve_api(env, tmp_path / "logs") as (base, _stderr):
        posted = httpx.post(f"{base}/v1/events", json=event, headers=AUTH, timeout=10)
        assert posted.status_code == 202, posted.text
        assert posted.json()["graph"] == "crm"
        run_id = posted.json()["run_id"]
        _poll(base, run_id, "needs_approval")
        [approval] = [a for a in httpx.get(f"{base}/v1/approvals", headers=AUTH,
                                           timeout=10).json()["approvals"]
                      if a["run_id"] == run_id]
        detail = httpx.get(f"{base}/v1/approvals/{approval['id']}", headers=AUTH,
                           timeout=10).json()
        assert [r["name"] for r in detail["request"]["action_requests"]] == [
            "create_crm_task", "log_activity", "send_outreach_email"]
        decided = httpx.post(f"{base}/v1/approvals/{approval['id']}/decision", headers=AUTH,
                             json={"decision": "approve"}, timeout=30)
        assert decided.status_code == 202, decided.text
        run = _poll(base, run_id, "completed", "escalated", "failed_terminal")
        assert (run["status"], run["outcome"]) == ("completed", "resolved"), run
    rows = query_app_db(env, "SELECT action_name, status, approved_by FROM crm_suggestions "
                             "WHERE record_id = 'ACC-CANCITY' ORDER BY action_name")
    assert rows == [("create_crm_task", "applied", "anna@acme.example"),
                    ("log_activity", "applied", "anna@acme.example"),
                    ("send_outreach_email", "applied", "anna@acme.example")]
    sent = query_app_db(env, "SELECT contact_id FROM crm_activities WHERE kind = 'email_out' "
                             "AND suggestion_id IS NOT NULL")
    assert sent == [("CON-CANCITY-1",)]  # not Tom Hughes, who asked not to be contacted
