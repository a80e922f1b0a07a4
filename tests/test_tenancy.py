"""Tenant isolation: through every tool, every repository function, and (on Postgres) row-level
security that holds even for a query that forgets its `WHERE tenant_id = ...`."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from autopilot.db import ALL_TENANTS
from autopilot.models import Base
from autopilot.runtime import Runner
from tests.conftest import RunnerFactory
from tests.helpers import TENANT, issue
from tools.gateway import Principal
from tools.registry import PermanentToolError, ToolKind

INTRUDER = "intruder"
OURS = sorted(t.name for t in Base.metadata.sorted_tables)


def _acme_run(runner: Runner) -> dict[str, str]:
    view = runner.submit("maintenance", issue(1))
    assert view.status == "completed"
    args = {p["action_id"]: p["args"] for p in view.values["proposals"]}
    return {"thread": view.thread_id, "wo": args["create_wo"]["work_order_id"],
            "message": args["ack_resident"]["message_id"],
            "follow_up": args["follow_up"]["follow_up_id"]}


def _maintenance_tools(runner: Runner, kind: ToolKind) -> set[str]:
    """Every maintenance tool of that kind (each other autopilot's tests cover its own)."""
    registry = runner.services.registry
    return {n for n in registry.names(kind)
            if registry.get(n).handler.__module__ == "tools.maintenance"}


def test_every_tool_refuses_another_tenants_records(runner: Runner) -> None:
    acme = _acme_run(runner)
    gateway, gate = runner.services.gateway, runner.services.gate
    intruder = Principal.autopilot("maintenance", INTRUDER)
    reads = {
        "get_unit_context": {"unit_id": "P-GRAND-2B"},
        "get_work_order": {"work_order_id": acme["wo"]},
        "find_open_work_orders": {"property_id": "P-GRAND"},
        "list_vendors": {"category": "PLUMBING"},
        "get_vendor": {"vendor_id": "V-AQUA"},
        "get_pm_schedule": {"pm_schedule_id": "PM-GRAND-BOILER"},
        "get_message": {"message_id": acme["message"]},
        "get_follow_up": {"follow_up_id": acme["follow_up"]},
    }
    assert set(reads) == _maintenance_tools(runner, ToolKind.READ)
    for tool, args in reads.items():
        assert gateway.read(Principal.autopilot("maintenance", TENANT), tool, args)
        try:
            seen = gateway.read(intruder, tool, args)
        except PermanentToolError:
            continue
        leaked = json.dumps(seen)
        assert all(v not in leaked for v in (acme["wo"], "V-AQUA", "P-GRAND-2B")), tool
    writes = {
        "create_work_order": {"work_order_id": "WO-X", "property_id": "P-GRAND",
                              "unit_id": "P-GRAND-2B", "category": "PLUMBING",
                              "priority": "ROUTINE", "title": "Leak", "description": "Leak",
                              "estimated_cost": 100, "sla_due_at": "2026-12-01T00:00:00Z"},
        "update_work_order": {"work_order_id": acme["wo"], "priority": "EMERGENCY",
                              "note": "hijack"},
        "dispatch_vendor": {"work_order_id": acme["wo"], "vendor_id": "V-AQUA",
                            "category": "PLUMBING", "priority": "ROUTINE", "not_to_exceed": 10,
                            "scheduled_for": "2026-12-01T00:00:00Z"},
        "request_bids": {"work_order_id": acme["wo"], "vendor_ids": ["V-AQUA"],
                         "due_in_days": 2},
        "send_resident_message": {"message_id": "M-X", "resident_id": "R-GRAND-2B",
                                  "channel": "sms", "body": "hello from elsewhere"},
        "schedule_follow_up": {"follow_up_id": "F-X", "work_order_id": acme["wo"],
                               "kind": "sla_check", "due_at": "2026-12-01T00:00:00Z"},
        "close_work_order": {"work_order_id": acme["wo"], "final_cost": 1,
                             "resolution": "closed by someone else"},
    }
    assert set(writes) == _maintenance_tools(runner, ToolKind.WRITE)
    before = gateway.read(Principal.autopilot("maintenance", TENANT), "get_work_order",
                          {"work_order_id": acme["wo"]})
    for tool, args in writes.items():
        d = gate.decide(graph="maintenance", tenant_id=INTRUDER, thread_id=f"x-{tool}",
                        action_id="a", tool=tool, args=args, run_facts={}, stage="execute")
        if d.decision_id is None or d.outcome.value == "BLOCK":
            continue  # the gate could not even compute facts about acme's record
        from tools.gateway import Authorization

        auth = Authorization(decision_id=d.decision_id, reason_code=",".join(d.reasons))
        with pytest.raises(PermanentToolError):
            gateway.write(intruder, tool, args, thread_id=f"x-{tool}", action_id="a",
                          authorization=auth)
    after = gateway.read(Principal.autopilot("maintenance", TENANT), "get_work_order",
                         {"work_order_id": acme["wo"]})
    assert after == before


def test_repository_functions_are_scoped(runner: Runner) -> None:
    acme = _acme_run(runner)
    services = runner.services
    if services.db.is_postgres:  # by thread id alone: only row-level security stops it
        assert services.ledger.story(acme["thread"], tenant_id=INTRUDER) == []
    assert services.evidence.for_run(INTRUDER, acme["thread"]) == []
    assert runner.pending_approvals(INTRUDER) == []
    assert runner.exceptions(INTRUDER) == [] and runner.list_runs(INTRUDER) == []
    services.kill_switch.set(TENANT, False, by="ops", reason="acme only")
    assert services.kill_switch.enabled(INTRUDER)
    assert services.ledger.verify(INTRUDER).entries == 0


@pytest.mark.postgres
def test_row_level_security_holds_without_a_where_clause(
        postgres_env: dict[str, str], open_runner: RunnerFactory) -> None:
    runner = open_runner(postgres_env)
    _acme_run(runner)
    runner.services.kill_switch.set(TENANT, False, by="ops", reason="rls test")
    db = runner.services.db
    with db.session(INTRUDER) as s:
        assert s.scalar(text("SELECT current_user")) == "autopilot_app"
        assert not s.scalar(text("SELECT rolbypassrls OR rolsuper FROM pg_roles "
                                 "WHERE rolname = current_user"))
    counts = {}
    for table in OURS:
        with db.session(ALL_TENANTS) as s:
            everyone = s.scalar(text(f"SELECT count(*) FROM {table}"))
        with db.session(INTRUDER) as s:
            theirs = s.scalar(text(f"SELECT count(*) FROM {table}"))  # no WHERE on purpose
        with db.session() as s:
            nobody = s.scalar(text(f"SELECT count(*) FROM {table}"))
        counts[table] = (everyone, theirs, nobody)
    for table, (_everyone, theirs, nobody) in counts.items():
        assert theirs == 0 and nobody == 0, (table, counts[table])
    assert all(counts[t][0] > 0 for t in ("work_orders", "runs", "ledger_entries", "evidence",
                                          "tool_calls", "policy_decisions", "gateway_calls",
                                          "autonomy_switches")), counts
    # Writes: an insert for another tenant is refused; blanket updates and deletes touch
    # nothing of theirs.
    with pytest.raises(Exception, match="row-level security"), db.session(INTRUDER) as s:
        s.execute(text("INSERT INTO vendors (tenant_id, id, name, categories, hourly_rate, "
                       "callout_fee, score, completed_jobs, open_work_orders, "
                       "emergency_service, active, email, phone) VALUES ('acme', 'V-EVIL', "
                       "'Evil', '[]', 1, 1, 5, 0, 0, false, true, 'e@x', '1')"))
    with db.session(INTRUDER) as s:
        assert s.execute(text("UPDATE work_orders SET title = 'pwned'")).rowcount == 0
        assert s.execute(text("DELETE FROM vendors")).rowcount == 0
    with db.session(ALL_TENANTS) as s:
        assert s.scalar(text("SELECT count(*) FROM work_orders WHERE title = 'pwned'")) == 0
