"""The tool gateway: only registered tools, roles, the tenant from the principal, writes only
with a recorded decision (every refusal ledgered), budgets that count calls in flight under
concurrency, timeouts."""

from __future__ import annotations

import dataclasses
import threading
from collections import Counter

import pytest
from sqlalchemy import select

from autopilot.db import ALL_TENANTS
from autopilot.models import LedgerEntry
from autopilot.services import Services
from tests.conftest import RunnerFactory
from tests.helpers import TENANT
from tools.gateway import Authorization, Principal
from tools.registry import (
    BudgetExceededError,
    ForbiddenToolError,
    ToolKind,
    TransientToolError,
    UnauthorizedWriteError,
    UnknownToolError,
)

ACME = Principal.autopilot("maintenance", TENANT)
WO_ARGS = {"work_order_id": "WO-G1", "property_id": "P-GRAND", "unit_id": "P-GRAND-1A",
           "category": "PLUMBING", "priority": "ROUTINE", "title": "Dripping tap",
           "description": "Bathroom tap drips", "estimated_cost": 120,
           "sla_due_at": "2026-12-01T12:00:00+00:00"}
VALID_ARGS = {
    "create_work_order": WO_ARGS,
    "update_work_order": {"work_order_id": "WO-G1", "priority": "URGENT", "note": "worse"},
    "dispatch_vendor": {"work_order_id": "WO-G1", "vendor_id": "V-AQUA", "category": "PLUMBING",
                        "priority": "ROUTINE", "not_to_exceed": 200,
                        "scheduled_for": "2026-12-01T12:00:00+00:00"},
    "request_bids": {"work_order_id": "WO-G1", "vendor_ids": ["V-AQUA"], "due_in_days": 3},
    "send_resident_message": {"message_id": "M-G1", "resident_id": "R-GRAND-1A",
                              "channel": "sms", "body": "Hello"},
    "schedule_follow_up": {"follow_up_id": "F-G1", "work_order_id": "WO-G1",
                           "kind": "sla_check", "due_at": "2026-12-01T12:00:00+00:00"},
    "close_work_order": {"work_order_id": "WO-G1", "final_cost": 100, "resolution": "fixed"},
    "remember": {"scope": "vendor", "scope_id": "V-AQUA", "key": "performance",
                 "value": {"jobs": 1}, "reason": "close-out"},
}
# The maintenance and memory tools; every other autopilot's write tools go through the same
# `ToolGateway.write` path and are refused the same way (its own tests exercise them).
COVERED_MODULES = ("tools.maintenance", "tools.memory")


def _ledgered(services: Services, thread_id: str) -> list[dict]:
    with services.db.session(ALL_TENANTS) as s:
        return [e.payload for e in s.scalars(select(LedgerEntry).where(
            LedgerEntry.thread_id == thread_id, LedgerEntry.event_type == "TOOL_CALL"))]


def test_every_write_tool_is_refused_without_a_decision_and_ledgered(
        backend_env: dict[str, str], open_runner: RunnerFactory) -> None:
    services = open_runner(backend_env).services
    writes = [n for n in services.registry.names(ToolKind.WRITE)
              if services.registry.get(n).handler.__module__ in COVERED_MODULES]
    assert set(writes) == set(VALID_ARGS), "add the new write tool to VALID_ARGS"
    # A real decision for another action, to show it cannot be borrowed.
    other = services.gate.decide(graph="maintenance", tenant_id=TENANT, thread_id="t-other",
                                 action_id="x", tool="create_work_order", args=WO_ARGS,
                                 run_facts={}, stage="execute")
    attempts = {
        "none": None,
        "forged": Authorization(decision_id=10**6, reason_code="TRUST_ME"),
        "borrowed": Authorization(decision_id=other.decision_id or 0, reason_code="BORROWED"),
        "no reason": Authorization(decision_id=other.decision_id or 0, reason_code=" "),
    }
    for tool in writes:
        for label, auth in attempts.items():
            thread = f"t-{tool}-{label.replace(' ', '-')}"
            with pytest.raises(UnauthorizedWriteError):
                services.gateway.write(ACME, tool, VALID_ARGS[tool], thread_id=thread,
                                       action_id="a", authorization=auth)
            [entry] = _ledgered(services, thread)
            assert (entry["tool"], entry["status"]) == (tool, "refused")
            assert entry["error_type"] == "UnauthorizedWriteError"
    assert services.gateway.recorded("t-create_work_order-none:a", TENANT) is None


def test_only_registered_tools_and_granted_roles(sqlite_env: dict[str, str],
                                                 open_runner: RunnerFactory) -> None:
    services = open_runner(sqlite_env).services
    for name in ("run_shell", "read_file", "http_get"):
        with pytest.raises(UnknownToolError):
            services.gateway.read(ACME, name, {})
    assert not any(n for n in services.registry.names()
                   if any(w in n for w in ("shell", "exec", "file", "http", "url")))
    viewer = Principal("user", "vic", TENANT, frozenset({"viewer"}))
    assert services.gateway.read(viewer, "get_vendor", {"vendor_id": "V-AQUA"})["id"] == "V-AQUA"
    with pytest.raises(ForbiddenToolError, match="user:vic .* may not call this write tool"):
        services.gateway.write(viewer, "create_work_order", WO_ARGS, thread_id="t-v",
                               action_id="a", authorization=None)
    nobody = Principal("service", "cron", TENANT, frozenset())
    with pytest.raises(ForbiddenToolError):
        services.gateway.read(nobody, "get_vendor", {"vendor_id": "V-AQUA"})


def test_the_tenant_comes_from_the_principal_never_from_arguments(
        sqlite_env: dict[str, str], open_runner: RunnerFactory) -> None:
    services = open_runner(sqlite_env).services
    for name in services.registry.names():
        fields = services.registry.get(name).input_model.model_fields
        assert "tenant_id" not in fields, f"{name} takes a tenant id in its arguments"
    from tools.registry import ToolArgumentError

    with pytest.raises(ToolArgumentError, match="tenant_id"):
        services.gateway.read(ACME, "get_vendor", {"vendor_id": "V-AQUA", "tenant_id": "other"})


def test_budget_counts_calls_in_flight_exactly(backend_env: dict[str, str],
                                               open_runner: RunnerFactory) -> None:
    services = open_runner(backend_env).services
    services.policy_store.create(scope_type="tenant", scope_id=TENANT, cedar="", author="ops",
                                 activate=True,
                                 config={"budgets": {"perTenant": {"CHEAP": 10}}})
    services.gateway.faults.set("get_vendor", delay_before_s=0.3)  # all 50 overlap
    results: Counter[str] = Counter()
    lock = threading.Lock()
    barrier = threading.Barrier(50)

    def call() -> None:
        barrier.wait()
        try:
            services.gateway.read(ACME, "get_vendor", {"vendor_id": "V-AQUA"})
            outcome = "ok"
        except BudgetExceededError:
            outcome = "refused"
        with lock:
            results[outcome] += 1

    threads = [threading.Thread(target=call) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {"ok": 10, "refused": 40}
    with pytest.raises(BudgetExceededError, match="budget of 10 CHEAP calls"):
        services.gateway.read(ACME, "get_vendor", {"vendor_id": "V-AQUA"})
    # The budget is the tenant's: another tenant's calls get through (to its own data).
    from tools.registry import PermanentToolError

    other = Principal.autopilot("maintenance", "other-tenant")
    with pytest.raises(PermanentToolError, match="V-AQUA"):
        services.gateway.read(other, "get_vendor", {"vendor_id": "V-AQUA"})


def test_a_call_that_overruns_its_timeout_is_a_retryable_failure(
        sqlite_env: dict[str, str], open_runner: RunnerFactory) -> None:
    services = open_runner(sqlite_env).services
    spec = services.registry.get("get_vendor")
    services.registry._tools["get_vendor"] = dataclasses.replace(spec, timeout_s=0.2)
    services.gateway.faults.set("get_vendor", delay_before_s=1.0)
    with pytest.raises(TransientToolError, match="timed out after 0.2s"):
        services.gateway.read(ACME, "get_vendor", {"vendor_id": "V-AQUA"}, thread_id="t-slow")
    [entry] = _ledgered(services, "t-slow")
    assert entry["status"] == "failed" and "timed out" in entry["error"]


def test_per_tool_budget_and_budget_validation(sqlite_env: dict[str, str],
                                               open_runner: RunnerFactory) -> None:
    from policy.schema import PolicyLoadError

    services = open_runner(sqlite_env).services
    store = services.policy_store
    store.create(scope_type="tenant", scope_id=TENANT, cedar="", author="ops", activate=True,
                 config={"budgets": {"perTool": {"get_vendor": 3}}})
    for _ in range(3):
        services.gateway.read(ACME, "get_vendor", {"vendor_id": "V-AQUA"})
    with pytest.raises(BudgetExceededError, match="budget of 3 get_vendor calls"):
        services.gateway.read(ACME, "get_vendor", {"vendor_id": "V-AQUA"})
    assert services.gateway.read(ACME, "get_unit_context", {"unit_id": "P-GRAND-1A"})
    for bad, field in (({"perTenant": {"HUGE": 1}}, "budgets.perTenant.HUGE"),
                       ({"perTool": {"wire_money": 1}}, "budgets.perTool: 'wire_money'"),
                       ({"windowMinutes": 0}, "budgets.windowMinutes")):
        with pytest.raises(PolicyLoadError, match=field):
            store.create(scope_type="tenant", scope_id=TENANT, cedar="", author="ops",
                         config={"budgets": bad})
