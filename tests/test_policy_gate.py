"""The gate on real runs: every decision recorded with redacted inputs, scopes that refine in
order, rate windows that count writes in flight (under concurrency), quiet hours in the
property's time zone, keyword screening, shadow versions, simulation, audited errors.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from autopilot.db import ALL_TENANTS
from autopilot.models import AgentException, PolicyDecisionRecord, Property
from autopilot.runtime import Runner
from policy.engine import PolicyBundle, PolicyRequest, ToolFacts
from policy.schema import PolicyLoadError
from policy.simulate import shadow_report
from tests.conftest import RunnerFactory
from tests.helpers import TENANT, issue

LEAK = "Kitchen sink is leaking."  # dispatch estimate 250.00: under the 750 auto limit


def _decisions(runner: Runner, thread_id: str | None = None) -> list[PolicyDecisionRecord]:
    with runner.services.db.session(ALL_TENANTS) as s:
        q = select(PolicyDecisionRecord).order_by(PolicyDecisionRecord.id)
        if thread_id:
            q = q.where(PolicyDecisionRecord.thread_id == thread_id)
        return list(s.scalars(q))


def _pending_reasons(view: object) -> dict[str, list[str]]:
    request = view.pending_approval["request"]  # type: ignore[attr-defined]
    return {p["action_id"]: p["reasons"] for p in request["policy"]}


def _global_with_auto_limit(limit: float) -> tuple[str, dict]:
    base = PolicyBundle.load()
    config = json.loads(json.dumps(base.config))
    config["spend"]["autoApproveMax"] = config["spend"]["requireApprovalAbove"] = limit
    return base.cedar, config


def test_every_decision_is_recorded_with_redacted_inputs(runner: Runner) -> None:
    text = f"{LEAK} Call me at (212) 555-0199 or mail ann.lee@example.com"
    view = runner.submit("maintenance", issue(1, text=text))
    assert view.status == "completed"
    rows = _decisions(runner, view.thread_id)
    stages = Counter(r.stage for r in rows)
    assert stages["gate"] == stages["execute"] == 4  # WO, dispatch, ack, follow-up
    assert all(r.proceeds for r in rows if r.stage == "execute")
    assert not any(r.proceeds for r in rows if r.stage == "gate")
    assert {r.policy_version for r in rows} == {
        runner.services.policy_store.engine_for(TENANT, "PF-NYC", "P-GRAND").version}
    stored = json.dumps([r.request for r in rows])
    assert "555-0199" not in stored and "ann.lee@example.com" not in stored
    assert "[phone]" in stored and "[email]" in stored and "leaking" in stored
    dispatch = next(r for r in rows if r.tool == "dispatch_vendor" and r.stage == "gate")
    assert dispatch.spend_cents == 25000 and dispatch.outcome == "ALLOW"
    assert dispatch.request["portfolio_id"] == "PF-NYC"


def test_a_legal_threat_inside_a_repair_request_reaches_a_person(runner: Runner) -> None:
    view = runner.submit("maintenance", issue(
        2, text="Sink is leaking again, third time this month. My lawyer will hear about it."))
    assert view.status == "needs_approval"
    assert all("LEGAL_KEYWORD" in reasons for reasons in _pending_reasons(view).values())
    screened = next(r for r in _decisions(runner, view.thread_id) if r.stage == "gate")
    assert screened.request["run"]["text"].endswith("hear about it.")
    decision = runner.services.policy_store.engine_for(TENANT).evaluate(
        PolicyRequest.model_validate(screened.request))
    assert decision.inputs["context"]["screen"]["matched"] == ["legal:lawyer"]


def test_quiet_hours_hold_messages_in_the_property_time_zone(
        sqlite_env: dict[str, str], open_runner: RunnerFactory) -> None:
    runner = open_runner({**sqlite_env, "AUTOPILOT_POLICY_TIME": "2026-11-19T03:30:00+00:00"})
    night = runner.submit("maintenance", issue(3))  # 22:30 in New York
    assert night.status == "needs_approval"
    assert _pending_reasons(night) == {"ack_resident": ["QUIET_HOURS"]}
    executed = {r.action_id for r in _decisions(runner, night.thread_id) if r.proceeds}
    assert executed == {"create_wo", "dispatch", "follow_up"}  # the repair does not wait
    with runner.services.db.session(ALL_TENANTS) as s:
        s.execute(update(Property).where(Property.id == "P-ASTORIA")
                  .values(timezone="Pacific/Honolulu"))  # 17:30 there
    day = runner.submit("maintenance", issue(4, unit="P-ASTORIA-2A"))
    assert day.status == "completed"


def _message_args(n: int) -> dict[str, str]:
    return {"message_id": f"MSG-W-{n}", "resident_id": "R-GRAND-2B", "channel": "sms",
            "body": "Your repair is booked."}


def test_rate_window_counts_writes_in_flight_under_concurrency(
        backend_env: dict[str, str], open_runner: RunnerFactory) -> None:
    runner = open_runner(backend_env)
    runner.services.policy_store.create(
        scope_type="tenant", scope_id=TENANT, cedar="", author="ops", activate=True,
        config={"windows": {"perToolWrites": {"send_resident_message": 3}}})
    gate = runner.services.gate
    results: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def write(n: int) -> None:
        barrier.wait()
        d = gate.decide(graph="maintenance", tenant_id=TENANT, thread_id=f"t-{n}",
                        action_id="ack", tool="send_resident_message", args=_message_args(n),
                        run_facts={"property_id": "P-GRAND"}, stage="execute")
        with lock:
            results.append(f"{d.outcome.value} {','.join(d.reasons)}")

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert Counter(results) == {"ALLOW MAINTENANCE_AUTONOMOUS_WRITE": 3,
                                "REQUIRE_APPROVAL RATE_LIMIT_TOOL": 5}
    # A retried call (same run and action) is not counted against itself...
    again = gate.decide(graph="maintenance", tenant_id=TENANT, thread_id="t-retry",
                        action_id="ack", tool="send_resident_message", args=_message_args(9),
                        run_facts={}, stage="execute")
    assert again.outcome.value == "REQUIRE_APPROVAL"  # ...but the window is still full
    first = next(r for r in _decisions(runner) if r.proceeds)
    retry = gate.decide(graph="maintenance", tenant_id=TENANT, thread_id=first.thread_id,
                        action_id="ack", tool="send_resident_message", args=_message_args(0),
                        run_facts={}, stage="execute")
    assert retry.outcome.value == "ALLOW"
    # Writes older than the window stop counting.
    with runner.services.db.session(ALL_TENANTS) as s:
        s.execute(update(PolicyDecisionRecord).values(
            created_at=datetime.now(UTC) - timedelta(minutes=61)))
    later = gate.decide(graph="maintenance", tenant_id=TENANT, thread_id="t-later",
                        action_id="ack", tool="send_resident_message", args=_message_args(10),
                        run_facts={}, stage="execute")
    assert later.outcome.value == "ALLOW"


def test_portfolio_and_property_versions_refine_in_order(runner: Runner) -> None:
    store, gate = runner.services.policy_store, runner.services.gate
    store.create(scope_type="portfolio", tenant_id=TENANT, scope_id="PF-NYC", cedar="",
                 config={"spend": {"autoApproveMax": 200, "requireApprovalAbove": 200}},
                 author="portfolio-lead", activate=True)
    store.create(scope_type="property", tenant_id=TENANT, scope_id="P-FLATBUSH", author="pm",
                 cedar='@id("FLATBUSH_NO_AUTO_MESSAGES")\nforbid (principal, action == '
                       'Action::"execute", resource == Tool::"send_resident_message");\n',
                 config={}, activate=True)

    def outcome(tool: str, args: dict, property_id: str) -> str:
        _, d = gate.dry_run(graph="maintenance", tenant_id=TENANT, tool=tool, args=args,
                            run_facts={"property_id": property_id})
        return f"{d.outcome.value} {','.join(d.reasons)}"

    wo = {"work_order_id": "WO-X", "property_id": "P-GRAND", "unit_id": "P-GRAND-2B",
          "category": "PLUMBING", "priority": "URGENT", "title": "Leak", "description": "Leak",
          "estimated_cost": 250.0, "source_ref": "test", "sla_due_at": "2026-12-01T00:00:00Z"}
    assert outcome("create_work_order", wo, "") == "ALLOW MAINTENANCE_AUTONOMOUS_WRITE"
    assert outcome("send_resident_message", _message_args(1), "P-GRAND") == (
        "ALLOW MAINTENANCE_AUTONOMOUS_WRITE")
    assert outcome("send_resident_message", _message_args(1), "P-FLATBUSH") == (
        "REQUIRE_APPROVAL FLATBUSH_NO_AUTO_MESSAGES")
    # The portfolio's lower auto limit holds the 250.00 leak dispatch in every building of it.
    view = runner.submit("maintenance", issue(5))
    assert _pending_reasons(view) == {"dispatch": ["SPEND_OVER_AUTO_LIMIT"]}
    version = store.engine_for(TENANT, "PF-NYC", "P-FLATBUSH").version
    assert "PF-NYC.pf1" in version and "P-FLATBUSH.p1" in version
    assert store.engine_for("other", "PF-NYC", "P-FLATBUSH").version.startswith("shipped-")
    with pytest.raises(PolicyLoadError, match="narrower scope may only add forbid"):
        store.create(scope_type="property", tenant_id=TENANT, scope_id="P-GRAND", author="pm",
                     config={}, cedar='@id("WIDEN")\npermit (principal, action, resource);\n')
    with pytest.raises(PolicyLoadError, match="needs the tenant id and the portfolio id"):
        store.create(scope_type="portfolio", tenant_id=TENANT, cedar="", config={},
                     author="pm")


def test_rules_resolve_by_priority_then_scope(runner: Runner) -> None:
    store = runner.services.policy_store
    store.create(scope_type="tenant", scope_id=TENANT, cedar="", author="ops", activate=True,
                 config={"rules": [{"id": "ACME_FOLLOW_UP_OK", "autopilot": "bookings",
                                    "action": "send_follow_up", "effect": "allow",
                                    "priority": 10}]})
    follow_up = ToolFacts(name="send_follow_up", kind="write", reversible=False,
                          cost_class="CHEAP", risk="LOW")

    def decide(tenant: str) -> str:
        d = store.engine_for(tenant).evaluate(PolicyRequest(  # at 14:00 in New York
            graph="bookings", tenant_id=tenant, tool=follow_up, level_override=4,
            at=datetime(2026, 11, 18, 19, 0, tzinfo=UTC)))
        return f"{d.outcome.value} {','.join(d.reasons)}"

    # Same priority as the seeded deny: the narrower (tenant) scope wins, for that tenant only.
    assert decide(TENANT) == "ALLOW ACME_FOLLOW_UP_OK"
    assert decide("other") == "BLOCK BOOKING_SEND_FOLLOW_UP"
    with pytest.raises(PolicyLoadError, match=r"rules\.0 \(BAD\)\.effect"):
        store.create(scope_type="tenant", scope_id=TENANT, cedar="", author="ops",
                     config={"rules": [{"id": "BAD", "action": "send_follow_up",
                                        "effect": "maybe"}]})
    with pytest.raises(PolicyLoadError, match="'wire_money' is not a registered tool"):
        store.create(scope_type="tenant", scope_id=TENANT, cedar="", author="ops",
                     config={"rules": [{"id": "WIRE", "action": "wire_money",
                                        "effect": "allow"}]})


def test_shadow_version_is_logged_beside_the_live_one_and_reported(runner: Runner) -> None:
    store = runner.services.policy_store
    cedar, config = _global_with_auto_limit(200)
    candidate = store.create(scope_type="global", cedar=cedar, config=config, author="alice",
                             note="lower the auto limit?")
    store.set_shadow(candidate.id)
    view = runner.submit("maintenance", issue(6))
    assert view.status == "completed"  # the live policy decided
    rows = [r for r in _decisions(runner, view.thread_id) if r.stage == "gate"]
    assert all(r.shadow_version and r.shadow_version.startswith("g1-") for r in rows)
    flipped = [(r.tool, r.outcome, r.shadow_outcome, r.shadow_reasons) for r in rows
               if r.outcome != r.shadow_outcome]
    assert flipped == [("dispatch_vendor", "ALLOW", "REQUIRE_APPROVAL",
                        ["SPEND_OVER_AUTO_LIMIT"])]
    report = shadow_report(runner.services.db)
    total = len(_decisions(runner, view.thread_id))
    assert report.total == total
    assert report.headlines()[0] == (
        f"would flip ALLOW -> REQUIRE_APPROVAL for 2 of {total} decisions")  # gate + execute
    store.set_shadow(candidate.id, on=False)
    later = runner.submit("maintenance", issue(7, unit="P-ASTORIA-1A"))
    assert not any(r.shadow_version for r in _decisions(runner, later.thread_id))
    store.activate(candidate.id)
    with pytest.raises(PolicyLoadError, match="is active"):
        store.set_shadow(candidate.id)


def test_an_evaluation_error_blocks_and_is_audited(runner: Runner) -> None:
    with runner.services.db.session(ALL_TENANTS) as s:
        s.execute(update(Property).where(Property.id == "P-GRAND")
                  .values(timezone="Mars/Olympus_Mons"))
    view = runner.submit("maintenance", issue(8))
    assert view.status == "escalated"
    rows = _decisions(runner, view.thread_id)
    assert rows and all(r.outcome == "BLOCK" and r.reasons == ["POLICY_ERROR"] for r in rows)
    assert "Mars/Olympus_Mons" in rows[0].errors[0]
    with runner.services.db.session(ALL_TENANTS) as s:
        exc = s.scalars(select(AgentException).where(
            AgentException.thread_id == view.thread_id)).one()
    assert exc.category == "SYSTEM" and "POLICY_ERROR" in exc.context["blocked_rules"]


@pytest.mark.slow
def test_simulate_and_decisions_cli(sqlite_env: dict[str, str], tmp_path: Path) -> None:
    def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "autopilot", *args], input=stdin,
                              env={**sqlite_env, "COLUMNS": "200"}, capture_output=True,
                              text=True, timeout=120)

    assert cli("seed").returncode == 0
    for n, unit in ((1, "P-GRAND-2B"), (2, "P-ASTORIA-1A")):
        assert cli("run", "maintenance", stdin=json.dumps(issue(n, unit=unit))).returncode == 0
    folder = tmp_path / "candidate"
    folder.mkdir()
    cedar, config = _global_with_auto_limit(200)
    (folder / "all.cedar").write_text(cedar)
    (folder / "config.json").write_text(json.dumps(config))
    result = cli("policy", "simulate", "--candidate", str(folder), "--days", "1")
    assert result.returncode == 0, result.stderr
    assert "would flip ALLOW -> REQUIRE_APPROVAL for 2 of 8 decisions" in result.stdout
    assert "dispatch_vendor" in result.stdout and "SPEND_OVER_AUTO_LIMIT" in result.stdout
    as_json = json.loads(cli("policy", "simulate", "--candidate", str(folder), "--json").stdout)
    assert (as_json["total"], as_json["flipped"]) == (8, 2)
    shown = json.loads(cli("policy", "decisions", "--json").stdout)
    assert len(shown) == 16 and {d["stage"] for d in shown} == {"gate", "execute"}
    (folder / "all.cedar").write_text(cedar + '\n@id("TYPO")\nforbid (principal, action, '
                                              'resource) when { context.facts.spnd > 1 };\n')
    refused = cli("policy", "simulate", "--candidate", str(folder))
    assert refused.returncode == 2 and "TYPO (" in refused.stderr and "spnd" in refused.stderr


@pytest.mark.parametrize("config, message", [
    ({"spend": {"hardBlockAbove": 100000}}, "spend.hardBlockAbove: 100000 is above"),
    ({"workOrders": {"autoAssignAllowedCategories": ["PLUMBING", "STRUCTURAL"]}},
     "adds ['STRUCTURAL']"),
    ({"workOrders": {"emergencyAlwaysEscalate": False}}, "cannot be turned off"),
    ({"windows": {"perTenantWrites": 0}}, "no limit is looser"),
    ({"messaging": {"quietHours": {"start": "23:00", "end": "06:00"}}}, "must cover"),
    ({"messaging": {"keywords": {"legal": ["lawyer*"]}}}, "drops"),
    ({"autonomy": {"graphs": {"maintenance": {"default": "L4", "allowL4": True}}}},
     "L4 is above the broader scope's L3"),
])
def test_a_narrower_scope_cannot_widen_condition_data(runner: Runner, config: dict,
                                                      message: str) -> None:
    with pytest.raises(PolicyLoadError, match=message.replace("[", r"\[").replace("]", r"\]")):
        runner.services.policy_store.create(scope_type="tenant", scope_id=TENANT, cedar="",
                                            author="ops", config=config)
    # Tightening the same settings is accepted.
    runner.services.policy_store.create(
        scope_type="tenant", scope_id=TENANT, cedar="", author="ops",
        config={"spend": {"hardBlockAbove": 3000}, "workOrders": {
            "autoAssignAllowedCategories": ["PLUMBING"]},
            "autonomy": {"graphs": {"maintenance": {"default": "L1"}}}})
