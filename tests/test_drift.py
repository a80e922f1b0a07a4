"""Drift (policy/drift.py): an action type whose verifications keep failing, or whose proposals
keep being rejected, drops from L2 to L1 on its own, is recorded with its reason and counts,
is applied by the gate to any autopilot, and comes back only when an admin resets it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from autopilot.models import LedgerEntry
from autopilot.runtime import Runner
from policy import drift
from policy.drift import AutonomyDowngrade, DriftError, DriftRule
from policy.engine import PolicyEngine
from policy.schema import PolicyLoadError
from tests.helpers import TENANT

GRAPH = "platform_ops"


def event(n: int | str, event_type: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {"event_id": f"drift-{n}", "tenant_id": TENANT, "source": "test",
            "event_type": event_type, "occurred_at": datetime.now(UTC).isoformat(),
            "payload": payload}


def billing_lag(n: int) -> dict[str, Any]:
    return event(n, "data_pipeline", {"alert_id": f"ALERT-BILLING-{n}",
                                      "queue": "warehouse.billing-consumer"})


def campaign(n: int) -> dict[str, Any]:
    return event(n, "growth_ops", {"signal_id": f"SIG-GATHER-{n}",
                                   "dashboard_id": "gathering-engagement",
                                   "flag_key": "gathering_reminder_push"})


def controls(runner: Runner) -> list[dict[str, Any]]:
    with runner.services.db.session(TENANT) as s:
        return [e.payload for e in s.scalars(select(LedgerEntry).where(
            LedgerEntry.tenant_id == TENANT, LedgerEntry.event_type == "CONTROL")
            .order_by(LedgerEntry.seq)) if e.payload.get("control", "").startswith("autonomy")]


def test_drift_rules_are_validated() -> None:
    config = PolicyEngine().config
    assert drift.rule_for(config, GRAPH) == DriftRule(window_minutes=1440,
                                                      verification_failures=2, rejections=3)
    assert drift.rule_for(config, "maintenance") is None  # no rule: nothing is counted
    fallback = {"drift": {"graphs": {"*": {"rejections": 5}}}}
    assert drift.rule_for(fallback, "crm") == DriftRule(1440, 0, 5)
    for bad, field in [({"rejections": -1}, "drift.graphs.x.rejections"),
                       ({"windowMinutes": 0}, "drift.graphs.x.windowMinutes"),
                       ({"rejections": True}, "drift.graphs.x.rejections"),
                       ({"threshold": 2}, "drift.graphs.x.threshold")]:
        with pytest.raises(PolicyLoadError, match=field):
            drift.parse_rules({"drift": {"graphs": {"x": bad}}})


def test_failed_verifications_downgrade_restart_until_an_admin_resets_it(
        runner: Runner) -> None:
    # The billing consumer crash-loops after every restart: each run's verification fails.
    for n in (1, 2):
        view = runner.submit(GRAPH, billing_lag(n))
        assert view.status == "escalated", view.values.get("escalation")
        [restart] = view.values["proposals"]
        assert restart["decision"]["reasons"] == ["PLATFORM_OPS_REVERSIBLE_AUTO"]
        assert view.values["escalation"]["title"] == "Verification failed"
    assert drift.list_downgrades(runner.services.db, TENANT) == []  # not before it is needed

    third = runner.submit(GRAPH, billing_lag(3))
    assert third.status == "needs_approval"
    [restart] = third.values["proposals"]
    assert restart["decision"]["reasons"] == ["AUTONOMY_DOWNGRADED"]
    [row] = drift.list_downgrades(runner.services.db, TENANT)
    assert (row.graph, row.tool, row.from_level, row.to_level) == (GRAPH, "restart_consumer",
                                                                  2, 1)
    assert (row.verification_failures, row.rejections, row.active) == (2, 0, True)
    assert "2 failed verifications (threshold 2)" in row.reason
    assert row.thresholds == {"window_minutes": 1440, "verification_failures": 2,
                              "rejections": 3}
    assert [c["control"] for c in controls(runner)] == ["autonomy_downgrade"]
    # The action type is downgraded whatever it targets; other action types keep their level.
    lag = runner.submit(GRAPH, event(9, "data_pipeline", {"alert_id": "A-WH",
                                                          "queue": "warehouse.events-consumer"}))
    assert lag.values["proposals"][0]["decision"]["reasons"] == ["AUTONOMY_DOWNGRADED"]
    _, flag = runner.services.gate.dry_run(
        graph=GRAPH, tenant_id=TENANT, tool="toggle_feature_flag", run_facts={},
        args={"flag_key": "discourse_reply_ranker_v2", "value": False, "rollout": 0})
    assert flag.reasons == ["PLATFORM_OPS_REVERSIBLE_AUTO"]

    with pytest.raises(DriftError):
        drift.reset(runner.services.db, runner.services.ledger, tenant_id=TENANT, graph=GRAPH,
                    tool="restart_consumer", by=" ")
    reset = drift.reset(runner.services.db, runner.services.ledger, tenant_id=TENANT,
                        graph=GRAPH, tool="restart_consumer", by="dee@data",
                        note="poison message skipped")
    assert (reset.active, reset.reset_by) == (False, "dee@data")
    assert drift.list_downgrades(runner.services.db, TENANT) == []
    assert len(drift.list_downgrades(runner.services.db, TENANT, include_reset=True)) == 1
    with pytest.raises(DriftError, match="not downgraded"):
        drift.reset(runner.services.db, runner.services.ledger, tenant_id=TENANT, graph=GRAPH,
                    tool="restart_consumer", by="dee@data")
    assert [c["control"] for c in controls(runner)] == ["autonomy_downgrade",
                                                        "autonomy_downgrade_reset"]
    # The counts start afresh: the failures before the reset no longer count.
    fourth = runner.submit(GRAPH, billing_lag(4))
    assert fourth.values["proposals"][0]["decision"]["reasons"] == [
        "PLATFORM_OPS_REVERSIBLE_AUTO"]
    assert fourth.values["proposals"][0]["status"] == "executed"


def test_rejections_downgrade_and_the_gate_applies_downgrades_to_any_autopilot(
        runner: Runner) -> None:
    services = runner.services
    # Three rejected campaign proposals downgrade toggle_feature_flag ...
    for n in (1, 2, 3):
        view = runner.submit(GRAPH, campaign(n))
        assert view.status == "needs_approval"
        runner.decide(view.thread_id, {"decisions": [{"type": "reject",
                                                      "message": "not this week"}]},
                      reviewer="gus@growth")
    # ... which a dry run reports without recording it ...
    args = {"flag_key": "discourse_reply_ranker_v2", "value": False, "rollout": 0}
    _, dry = services.gate.dry_run(graph=GRAPH, tenant_id=TENANT, tool="toggle_feature_flag",
                                   args=args, run_facts={})
    assert dry.reasons == ["AUTONOMY_DOWNGRADED"]
    assert drift.list_downgrades(services.db, TENANT) == []
    # ... and the next real decision records and applies: the flag rollback, low risk as it
    # is, now waits for a person; the throttle of the same incident still runs on its own.
    outage = runner.submit(GRAPH, event(4, "reliability_triage", {
        "alert_id": "ALERT-DISC-5XX", "service": "discourse-api",
        "route": "POST /v1/discourse/replies", "dashboard_id": "discourse-api",
        "correlation_id": "corr-7f3a9c"}))
    reasons = {p["action_id"]: (p["status"], p["decision"]["reasons"])
               for p in outage.values["proposals"]}
    assert reasons == {"rollback_flag": ("needs_approval", ["AUTONOMY_DOWNGRADED"]),
                       "throttle": ("executed", ["PLATFORM_OPS_REVERSIBLE_AUTO"])}
    [row] = drift.list_downgrades(services.db, TENANT)
    assert (row.tool, row.rejections, row.verification_failures) == ("toggle_feature_flag", 3,
                                                                     0)
    assert drift.describe(row)["to_level"] == "L1"

    # The gate applies a downgrade to any autopilot: pinned by hand for maintenance here.
    def decide_maintenance(action: str) -> list[str]:
        return services.gate.decide(
            graph="maintenance", tenant_id=TENANT, thread_id="drift-maint", action_id=action,
            tool="create_work_order", run_facts={"property_id": "P-GRAND"}, stage="gate",
            args={"work_order_id": "WO-D1", "property_id": "P-GRAND", "category": "PLUMBING",
                  "priority": "ROUTINE", "title": "Dripping tap", "description": "drips",
                  "estimated_cost": 120,
                  "sla_due_at": (datetime.now(UTC) + timedelta(days=3)).isoformat()}).reasons

    assert decide_maintenance("a") == ["MAINTENANCE_AUTONOMOUS_WRITE"]
    assert drift.downgrade(services.db, services.ledger, tenant_id=TENANT, graph="maintenance",
                           tool="create_work_order", by="ops-lead", reason="audit") is True
    assert drift.downgrade(services.db, services.ledger, tenant_id=TENANT, graph="maintenance",
                           tool="create_work_order", by="ops-lead", reason="again") is False
    assert decide_maintenance("b") == ["AUTONOMY_DOWNGRADED"]
    drift.reset(services.db, services.ledger, tenant_id=TENANT, graph="maintenance",
                tool="create_work_order", by="ops-lead")
    assert decide_maintenance("c") == ["MAINTENANCE_AUTONOMOUS_WRITE"]

    # At most one active downgrade per action type, whoever writes it (a constraint).
    with pytest.raises(IntegrityError):
        with services.db.session(TENANT) as s:
            for _ in range(2):
                s.add(AutonomyDowngrade(tenant_id=TENANT, graph=GRAPH, tool="ban_user",
                                        from_level=2, to_level=1, reason="x", thresholds={},
                                        active=True))
                s.flush()


def test_drift_is_listed_and_restored_from_the_cli(sqlite_env: dict[str, str],
                                                   open_runner: Any) -> None:
    from tests.helpers import run_cli

    runner = open_runner(sqlite_env)
    assert drift.downgrade(runner.services.db, runner.services.ledger, tenant_id=TENANT,
                           graph="platform_ops", tool="throttle_endpoint", by="sre-lead",
                           reason="investigating a bad throttle")
    listed = run_cli(sqlite_env, "autonomy", "drift")
    assert listed.returncode == 0, listed.stderr
    assert "platform_ops/throttle_endpoint" in listed.stdout and "manual" in listed.stdout
    restored = run_cli(sqlite_env, "autonomy", "restore", "platform_ops", "throttle_endpoint",
                       "--as", "sre-lead", "--note", "fixed")
    assert restored.returncode == 0, restored.stderr
    assert drift.list_downgrades(runner.services.db, TENANT) == []
    again = run_cli(sqlite_env, "autonomy", "restore", "platform_ops", "throttle_endpoint",
                    "--as", "sre-lead")
    assert again.returncode != 0 and "not downgraded" in (again.stdout + again.stderr)


def test_a_tenant_overlay_cannot_change_drift_rules_or_custom_limits(runner: Runner) -> None:
    store = runner.services.policy_store
    for config in ({"drift": {"graphs": {"platform_ops": {"rejections": 99}}}},
                   {"limits": {"revenue_mutation_min_confidence_pct": 1}}):
        with pytest.raises(PolicyLoadError, match="only be changed by the global policy"):
            store.create(scope_type="tenant", scope_id=TENANT, cedar="", author="t",
                         config=config)
