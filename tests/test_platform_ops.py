"""The platform_ops autopilot (seed 004) end to end through the runner, on SQLite and
Postgres: autonomous reversible writes (L2), approvals (approve, reject, edit), a blocked plan,
tool and verification failures, the scheduled detector, dedupe, the agent event outbox, and
one approval over HTTP with a real server."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import inspect, select, update

from autopilot.db import ALL_TENANTS
from autopilot.models import AgentException, Base, PolicyDecisionRecord, ToolCall
from autopilot.runtime import Runner
from autopilot.sandbox.platform_ops import (
    OpsAgentEvent,
    OpsAppeal,
    OpsAuditLog,
    OpsContent,
    OpsEndpoint,
    OpsFeatureFlag,
    OpsFriction,
    OpsPushToken,
    OpsQueue,
    OpsSignal,
    OpsUser,
)
from graphs.platform_ops import SPEC
from graphs.platform_ops.detect import detect
from graphs.platform_ops.seed import signal_payloads
from policy.engine import ActionFacts, Outcome, PolicyEngine, PolicyRequest, ToolFacts
from tests.helpers import TENANT, cli_ok, no_ticks, serve_api
from tools.catalog import build_registry
from tools.gateway import Principal

GRAPH = "platform_ops"
SIGNALS = {sid: (kind, payload) for sid, kind, _, payload, _ in signal_payloads()}
IRREVERSIBLE = {"remove_content", "ban_user", "resolve_appeal", "send_password_reset"}
REVERSIBLE = {"apply_friction", "toggle_feature_flag", "throttle_endpoint", "revoke_push_tokens",
              "restart_consumer", "start_backfill"}


def event(n: int | str, event_type: str, payload: dict[str, Any],
          at: datetime | None = None) -> dict[str, Any]:
    return {"event_id": f"ops-{n}", "tenant_id": TENANT, "source": "test",
            "event_type": event_type, "occurred_at": (at or datetime.now(UTC)).isoformat(),
            "payload": payload}


def signal(n: int | str, sid: str, **changes: Any) -> dict[str, Any]:
    kind, payload = SIGNALS[sid]
    return event(n, kind, {**payload, **changes})


def proposals(view: Any) -> dict[str, dict[str, Any]]:
    return {p["action_id"]: p for p in view.values["proposals"]}


def row(runner: Runner, model: type[Any], key: str) -> Any:
    with runner.services.db.session(TENANT) as s:
        return s.get(model, (TENANT, key))


def agent_events(runner: Runner, thread_id: str) -> list[str]:
    with runner.services.db.session(TENANT) as s:
        return list(s.scalars(select(OpsAgentEvent.event_type).where(
            OpsAgentEvent.task_id == thread_id).order_by(OpsAgentEvent.occurred_at)))


# --------------------------------------------------------------------------- allow + dedupe


def test_reliability_rollback_and_throttle_run_on_their_own(runner: Runner) -> None:
    view = runner.submit(GRAPH, signal(1, "SIG-DISC-5XX"))
    assert (view.status, view.outcome) == ("completed", "resolved"), view.values.get("escalation")
    ps = proposals(view)
    assert {a: (p["tool"], p["status"]) for a, p in ps.items()} == {
        "rollback_flag": ("toggle_feature_flag", "executed"),
        "throttle": ("throttle_endpoint", "executed")}
    assert all(p["decision"]["reasons"] == ["PLATFORM_OPS_REVERSIBLE_AUTO"] for p in ps.values())
    assert all(c["ok"] for c in view.values["verification"])
    # The rollback restores the flag's previous state; the throttle sheds the retry storm.
    flag = row(runner, OpsFeatureFlag, "discourse_reply_ranker_v2")
    assert (flag.enabled, flag.rollout_pct, flag.previous_rollout_pct) == (False, 0, 50)
    assert row(runner, OpsEndpoint, "EP-DISC-REPLIES").limit_rps == 1400
    # Evidence: the flag change, its audit entry and the trace that blames it.
    assert {"log:AUD-S-0002", "feature_flag:discourse_reply_ranker_v2",
            "trace_lookup:corr-7f3a9c"} <= set(ps["rollback_flag"]["evidence_refs"])
    assert ps["rollback_flag"]["grounded"] and ps["throttle"]["grounded"]
    # Risk score and blast radius (from the Preview) in the proposal; the gate's own score
    # (from the tool's facts) is the same number.
    assert "risk 30/100; blast radius: feature_flag:discourse_reply_ranker_v2" in ps[
        "rollback_flag"]["description"]
    assert "endpoint:POST /v1/discourse/replies, service:discourse-api" in ps["throttle"][
        "description"]
    assert "toggle_feature_flag(discourse_reply_ranker_v2, value=True, rollout=50)" in ps[
        "rollback_flag"]["rollback_plan"]
    with runner.services.db.session(TENANT) as s:
        gated = {r.action_id: r.request["facts"]["risk_score"] for r in s.scalars(
            select(PolicyDecisionRecord).where(PolicyDecisionRecord.thread_id == view.thread_id,
                                               PolicyDecisionRecord.stage == "gate"))}
        audit = s.scalars(select(OpsAuditLog.action).where(
            OpsAuditLog.actor == f"agent:{view.thread_id}")).all()
    assert gated == {"rollback_flag": 30, "throttle": 30}
    assert sorted(audit) == ["endpoint.throttled", "feature_flag.updated"]
    # The agent events: created, evidence, proposals and both executions, from the writes' own
    # transactions.
    events = agent_events(runner, view.thread_id)
    assert events[0] == "ops.agent_task.created"
    assert events.count("ops.agent_task.proposed_action") == 2
    assert events.count("ops.agent_task.executed") == 2
    assert "ops.agent_task.evidence_attached" in events

    again = runner.submit(GRAPH, signal(2, "SIG-DISC-5XX"))  # same alert, another event id
    assert again.deduplicated and again.thread_id == view.thread_id
    with runner.services.db.session(TENANT) as s:
        calls = s.scalars(select(ToolCall.action_id).where(
            ToolCall.thread_id == view.thread_id)).all()
    assert sorted(calls) == ["rollback_flag", "throttle"]
    # The next day the same alert still fires: the rollback and the throttle are in place,
    # so there is nothing new to try and on-call gets it.
    later = runner.submit(GRAPH, signal(3, "SIG-DISC-5XX") | {"occurred_at": (
        datetime.now(UTC) + timedelta(days=1)).isoformat()})
    assert not later.deduplicated and later.status == "escalated"
    assert later.values["proposals"] == []
    assert "already limited to 1400 rps" in later.values["escalation"]["details"]


# --------------------------------------------------------------------------- approvals


def test_pile_ons_friction_runs_removal_and_ban_wait_and_a_high_reach_ban_is_blocked(
        runner: Runner) -> None:
    view = runner.submit(GRAPH, signal(10, "SIG-DOGPILE-5001"))
    assert view.status == "needs_approval"
    ps = proposals(view)
    assert ps["friction"]["status"] == "executed"  # ran before the approval
    assert ps["remove_reply"]["status"] == ps["ban_offender"]["status"] == "needs_approval"
    assert "PLATFORM_OPS_IRREVERSIBLE" in ps["remove_reply"]["decision"]["reasons"]
    request = view.pending_approval["request"]
    assert request["action_ids"] == ["remove_reply", "ban_offender"]
    assert any("Irreversible" in r for r in request["rollback_plans"])
    friction = row(runner, OpsFriction, ps["friction"]["args"]["friction_id"])
    assert friction.target == "content:C-5001" and friction.friction_type == (
        "NEW_ACCOUNT_REPLY_BLOCK")
    done = runner.decide(view.thread_id, {"decisions": [
        {"type": "approve"}, {"type": "reject", "message": "a ban needs a second reviewer"}]},
        reviewer="tanya@trust-safety")
    assert (done.status, done.outcome) == ("completed", "resolved")
    ps = proposals(done)
    assert (ps["remove_reply"]["status"], ps["ban_offender"]["status"]) == ("executed",
                                                                            "rejected")
    assert row(runner, OpsContent, "C-6000").status == "REMOVED"
    offender = row(runner, OpsUser, "U-2001")
    assert (offender.status, offender.strikes) == ("ACTIVE", 4)
    events = agent_events(runner, view.thread_id)
    assert events.count("ops.agent_task.executed") == 2
    assert "ops.agent_task.approved" in events  # projected by the removal's own write
    with runner.services.db.session(ALL_TENANTS) as s:
        detect(s, None, datetime.now(UTC))  # the tick brings the rest of the outbox up to date
    assert "ops.agent_task.rejected" in agent_events(runner, view.thread_id)

    # Expiry is honoured: once the friction has expired it is no longer in force, and the
    # next burst on the same post gets friction again.
    with runner.services.db.session(TENANT) as s:
        s.execute(update(OpsFriction).where(OpsFriction.id == friction.id).values(
            created_at=datetime.now(UTC) - timedelta(days=2),
            expires_at=datetime.now(UTC) - timedelta(minutes=1)))
    state = runner.services.gateway.read(Principal.autopilot(GRAPH, TENANT), "get_friction",
                                         {"friction_id": friction.id})
    assert state["status"] == "EXPIRED"
    again = runner.submit(GRAPH, signal(11, "SIG-DOGPILE-5001", signal_id="SIG-DOGPILE-5001b"))
    assert proposals(again)["friction"]["status"] == "executed"

    # A pile-on led by an account with 2.4M followers: banning it is above the risk ceiling,
    # so the whole plan (friction included) is held for leadership.
    view = runner.submit(GRAPH, event(40, "safety_triage", {"signal_id": "SIG-X",
                                                            "content_id": "C-5002"}))
    assert view.status == "escalated"
    ps = proposals(view)
    assert ps["ban_offender"]["status"] == "blocked"
    assert ps["ban_offender"]["decision"]["reasons"] == ["PLATFORM_OPS_RISK_CEILING"]
    assert ps["friction"]["status"] == "allowed"  # held with the plan: nothing ran
    with runner.services.db.session(TENANT) as s:
        assert s.scalar(select(OpsFriction.id).where(OpsFriction.target == "content:C-5002")) \
            is None
        exc = s.scalar(select(AgentException).where(AgentException.thread_id == view.thread_id))
    assert exc.context["blocked_rules"] == ["PLATFORM_OPS_RISK_CEILING"]
    assert row(runner, OpsUser, "U-1900").status == "ACTIVE"
    with runner.services.db.session(ALL_TENANTS) as s:
        detect(s, None, datetime.now(UTC))
    assert agent_events(runner, view.thread_id)[-1] == "ops.agent_task.failed"


def test_campaign_edit_within_policy_support_takeover_and_appeals(runner: Runner) -> None:
    view = runner.submit(GRAPH, signal(20, "SIG-GATHER-FRI"))
    assert view.status == "needs_approval"
    [policy] = view.pending_approval["request"]["policy"]
    assert policy["reasons"] == ["PLATFORM_OPS_BROAD_AUDIENCE"]
    campaign = proposals(view)["campaign"]
    assert "notifies ~18,200 of 182,000" in campaign["description"]
    # Halving the stage keeps it under 10,000 recipients: the gate lets it run on its own.
    done = runner.decide(view.thread_id, {"decisions": [{"type": "edit", "edited_action": {
        "name": "toggle_feature_flag",
        "args": {**campaign["args"], "rollout": 5}}}]}, reviewer="gus@growth")
    assert (done.status, done.outcome) == ("completed", "resolved"), done.values.get("escalation")
    campaign = proposals(done)["campaign"]
    assert campaign["decision"]["reasons"] == ["PLATFORM_OPS_REVERSIBLE_AUTO"]
    assert campaign["verify"]["expect"] == {"value": True, "rollout": 5}  # follows the edit
    flag = row(runner, OpsFeatureFlag, "gathering_reminder_push")
    assert (flag.enabled, flag.rollout_pct) == (True, 5)

    login = runner.submit(GRAPH, signal(30, "SIG-T-88121"))
    assert login.status == "needs_approval"
    ps = proposals(login)
    assert ps["revoke_push"]["status"] == "executed"
    assert "device:PT-1003-AND" in ps["revoke_push"]["evidence_refs"]
    with runner.services.db.session(TENANT) as s:
        active = s.scalars(select(OpsPushToken.id).where(OpsPushToken.user_id == "U-1003",
                                                         OpsPushToken.revoked_at.is_(None))).all()
    assert active == []
    assert ps["reset_link"]["decision"]["reasons"] == ["AUTONOMY_LEVEL",
                                                       "PLATFORM_OPS_IRREVERSIBLE"]
    done = runner.decide(login.thread_id, {"decisions": [{"type": "approve"}]}, reviewer="sam")
    assert done.status == "completed" and row(runner, OpsUser, "U-1003").reset_sent_at

    appeal = runner.submit(GRAPH, signal(31, "SIG-T-88140"))
    resolve = proposals(appeal)["resolve"]
    assert (appeal.status, resolve["args"]["resolution"]) == ("needs_approval", "OVERTURNED")
    runner.decide(appeal.thread_id, {"decisions": [{"type": "approve"}]}, reviewer="ines")
    assert row(runner, OpsAppeal, "A-7001").resolution == "OVERTURNED"
    assert row(runner, OpsContent, "C-5003").status == "VISIBLE"
    assert row(runner, OpsUser, "U-1004").strikes == 0
    upheld = runner.submit(GRAPH, event(32, "support_assist", {
        "ticket_id": "T-9", "user_id": "U-1005", "issue": "appeal", "appeal_id": "A-7002"}))
    assert proposals(upheld)["resolve"]["args"]["resolution"] == "UPHELD"


# --------------------------------------------------------------------------- failures


def test_tool_fault_and_failed_verification_escalate(runner: Runner) -> None:
    runner.services.gateway.faults.set("throttle_endpoint", permanent=True)
    view = runner.submit(GRAPH, signal(50, "SIG-DISC-5XX"))
    assert view.status == "escalated"
    assert view.values["escalation"]["title"] == "Tool failed permanently"
    assert "Completed before the failure: rollback_flag" in view.values["escalation"]["details"]
    assert row(runner, OpsEndpoint, "EP-DISC-REPLIES").limit_rps is None
    with runner.services.db.session(ALL_TENANTS) as s:
        detect(s, None, datetime.now(UTC))
    assert "ops.agent_task.failed" in agent_events(runner, view.thread_id)

    # The billing consumer dies again on a message it cannot decode: the restart runs, the
    # re-read finds it crash-looping, and the run escalates.
    lag = runner.submit(GRAPH, event(51, "data_pipeline", {
        "alert_id": "ALERT-BILLING", "queue": "warehouse.billing-consumer"}))
    assert lag.status == "escalated"
    assert lag.values["escalation"]["title"] == "Verification failed"
    assert lag.values["verification"] == [{"action_id": "restart", "ok": False, "diff": {
        "consumer_status": {"expected": "RUNNING", "actual": "CRASH_LOOP"}}}]
    assert [p["tool"] for p in lag.values["proposals"]] == ["restart_consumer"]  # 45 min stall

    # A stall of more than an hour also gets a backfill, which is suggest-only (L1).
    wh = runner.submit(GRAPH, signal(52, "SIG-WH-LAG"))
    ps = proposals(wh)
    assert (ps["restart"]["status"], ps["backfill"]["status"]) == ("executed", "needs_approval")
    assert ps["backfill"]["decision"]["reasons"] == ["AUTONOMY_LEVEL"]
    done = runner.decide(wh.thread_id, {"decisions": [{"type": "approve"}]}, reviewer="dee")
    assert done.status == "completed"
    assert row(runner, OpsQueue, "warehouse.events-consumer").backfill_status == "SCHEDULED"


# --------------------------------------------------------------------------- detector


def test_detector_window_and_schema(runner: Runner) -> None:
    with runner.services.db.session(ALL_TENANTS) as s:
        fired = {i: at for i, at in s.execute(select(OpsSignal.id, OpsSignal.fired_at))}
    assert len(fired) == len(SIGNALS)
    later = max(fired.values()) + timedelta(seconds=1)
    with runner.services.db.session(ALL_TENANTS) as s:
        everything = detect(s, None, later)
        # (since, until]: the signal fired exactly at `since` is out, the one at `until` in.
        since, until = fired["SIG-T-88121"], fired["SIG-DOGPILE-5001"]
        window = detect(s, since, until)
        nothing = detect(s, later, later + timedelta(minutes=1))
    assert sorted(e["event_id"] for e in everything) == sorted(f"signal:{i}" for i in fired)
    expected = sorted(f"signal:{i}" for i, at in fired.items() if since < at <= until)
    assert sorted(e["event_id"] for e in window) == expected and expected
    assert nothing == []
    # A new signal shows up in the next tick only; its task runs; a repeat finds the run.
    with runner.services.db.session(TENANT) as s:
        s.add(OpsSignal(tenant_id=TENANT, id="SIG-NEW", kind="data_pipeline", source="test",
                        payload={"alert_id": "ALERT-NEW", "queue": "moderation.reports"},
                        fired_at=later + timedelta(seconds=30)))
    with runner.services.db.session(ALL_TENANTS) as s:
        [new] = detect(s, later, later + timedelta(minutes=1))
    assert new["event_id"] == "signal:SIG-NEW" and new["event_type"] == "data_pipeline"
    first = runner.submit(GRAPH, new)
    assert (first.status, first.outcome) == ("completed", "nothing_to_do")  # healthy queue
    assert runner.submit(GRAPH, new).deduplicated
    assert SPEC.schedule == "* * * * *" and SPEC.detect is detect

    # The migration creates exactly the models' columns, and the invariants are constraints.
    tables = [t for t in Base.metadata.sorted_tables
              if t.name.startswith("ops_") or t.name == "autonomy_downgrades"]
    assert len(tables) == 14
    found = inspect(runner.services.db.engine)
    for table in tables:
        columns = {c["name"]: c["nullable"] for c in found.get_columns(table.name)}
        assert columns == {c.name: c.nullable for c in table.columns}, table.name
    # The constraints that carry invariants are in the database.
    with pytest.raises(Exception, match=r"(?i)check|constraint"):
        with runner.services.db.session(TENANT) as s:
            s.execute(update(OpsEndpoint).where(OpsEndpoint.id == "EP-DISC-REPLIES").values(
                limit_rps=10))
    with pytest.raises(Exception, match=r"(?i)check|constraint"):
        with runner.services.db.session(TENANT) as s:
            now = datetime.now(UTC)
            s.add(OpsFriction(tenant_id=TENANT, id="FR-BAD", target="content:C-5001",
                              friction_type="REPLY_RATE_LIMIT", reason_code="X_Y",
                              status="ACTIVE", created_at=now, expires_at=now))


# --------------------------------------------------------------------------- policy, schema


def test_irreversible_writes_never_run_alone_under_any_autonomy_config() -> None:
    registry = build_registry()
    mine = {n for n in registry.names() if n in IRREVERSIBLE | REVERSIBLE}
    assert {n for n in mine if not registry.get(n).reversible} == IRREVERSIBLE
    assert {n for n in mine if registry.get(n).reversible} == REVERSIBLE
    every_l4 = PolicyEngine(known_tools=set(registry.names()), strict=True).with_config(
        {"autonomy": {"graphs": {GRAPH: {"default": "L4", "allowL4": True,
                                         "tools": {t: "L4" for t in mine}}}}})
    for tool in sorted(IRREVERSIBLE):
        spec = registry.get(tool)
        facts = ToolFacts(name=tool, kind="write", reversible=False,
                          cost_class=spec.cost_class.value, risk=spec.risk.value)
        for risk in range(0, 100, 7):
            for level in (None, 2, 3, 4):
                d = every_l4.evaluate(PolicyRequest(
                    graph=GRAPH, tenant_id=TENANT, tool=facts, level_override=level,
                    facts=ActionFacts(risk_score=risk, confidence_pct=100)))
                assert d.outcome is not Outcome.ALLOW, (tool, risk, level)
                assert "PLATFORM_OPS_IRREVERSIBLE" in d.reasons or d.outcome is Outcome.BLOCK
    # ... while the same configuration lets a low-risk reversible write run alone.
    spec = registry.get("apply_friction")
    d = every_l4.evaluate(PolicyRequest(graph=GRAPH, tenant_id=TENANT, facts=ActionFacts(
        risk_score=16), tool=ToolFacts(name=spec.name, kind="write", reversible=True,
                                       cost_class=spec.cost_class.value, risk=spec.risk.value)))
    assert d.outcome is Outcome.ALLOW


# --------------------------------------------------------------------------- HTTP


KEYS = {"k-ops": {"tenant": TENANT, "subject": "ines@trust-safety.example",
                  "roles": ["approver", "ingest"]}}
H = {"Authorization": "Bearer k-ops"}


def _poll(base: str, run_id: str, *wanted: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        run = httpx.get(f"{base}/v1/runs/{run_id}", headers=H, timeout=10).json()
        if run["status"] in wanted:
            return run
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} never reached {wanted}: {run['status']}")


@pytest.mark.timeout(120)
def test_appeal_over_http_event_approval_completed(sqlite_env: dict[str, str],
                                                   tmp_path: Path) -> None:
    env = {**sqlite_env, "AUTOPILOT_API_KEYS": json.dumps(KEYS),
           "AUTOPILOT_SCHEDULES": no_ticks(), "AGENT_JOB_POLL_INTERVAL_MS": "100"}
    cli_ok(env, "seed")
    with serve_api(env, tmp_path / "logs") as (base, _stderr):
        posted = httpx.post(f"{base}/v1/events", headers=H, timeout=10,
                            json=signal(60, "SIG-T-88140"))
        assert posted.status_code == 202, posted.text
        assert posted.json()["graph"] == GRAPH
        run_id = posted.json()["run_id"]
        run = _poll(base, run_id, "needs_approval")
        approval_id = run["pending_approval"]["id"]
        pack = httpx.get(f"{base}/v1/approvals/{approval_id}", headers=H,
                         timeout=10).json()["context"]
        [action] = pack["actions"]
        assert (action["tool"], action["reversible"]) == ("resolve_appeal", False)
        assert action["blast_radius"]["records"] == ["appeal:A-7001"]
        assert action["diff"]["status"] == {"before": "OPEN", "after": "RESOLVED"}
        assert re.search(r"risk \d+/100", action["description"])
        decided = httpx.post(f"{base}/v1/approvals/{approval_id}/decision", headers=H,
                             json={"decision": "approve"}, timeout=30)
        assert decided.status_code == 202, decided.text
        done = _poll(base, run_id, "completed", "escalated", "failed_terminal")
        assert (done["status"], done["outcome"]) == ("completed", "resolved"), done
        events = [e["event"] for e in done["timeline"]]
        assert events.count("APPROVAL") == 1 and "VERIFICATION" in events
