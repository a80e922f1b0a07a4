"""Typed tool registry and gateway: clear errors, catalogue export, authorised exactly-once."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from autopilot.services import Services
from tests.conftest import make_settings
from tools.catalog import build_registry
from tools.gateway import Authorization, Principal
from tools.registry import (
    CostClass,
    PermanentToolError,
    RiskClass,
    ToolArgumentError,
    ToolKind,
    ToolRegistry,
    ToolSpec,
    UnauthorizedWriteError,
    UnknownToolError,
)

ACME = Principal.autopilot("maintenance", "acme")


def test_unknown_tool_names_what_exists() -> None:
    with pytest.raises(UnknownToolError) as err:
        build_registry().get("rm_rf")
    assert "rm_rf" in str(err.value) and "create_work_order" in str(err.value)


def test_invalid_args_name_each_field() -> None:
    with pytest.raises(ToolArgumentError) as err:
        build_registry().validate("dispatch_vendor", {"work_order_id": "WO-1",
                                                      "not_to_exceed": "lots",
                                                      "category": "ROCKETS"})
    fields = {f["field"] for f in err.value.fields}
    assert {"not_to_exceed", "category", "vendor_id", "priority", "scheduled_for"} <= fields
    assert "not_to_exceed" in str(err.value)


def test_catalogue_exports_json_schema_with_governance_metadata() -> None:
    catalogue = build_registry().catalogue()["tools"]
    by_name = {t["name"]: t for t in catalogue}
    assert by_name["send_resident_message"]["reversible"] is False
    assert by_name["dispatch_vendor"]["kind"] == "write"
    assert by_name["dispatch_vendor"]["cost_class"] == "MED"
    assert "not_to_exceed" in by_name["dispatch_vendor"]["input_schema"]["properties"]
    assert by_name["get_work_order"]["kind"] == "read"
    # No tool reaches a shell, the filesystem or arbitrary network.
    assert not any(word in name for name in by_name for word in ("shell", "exec", "file", "http"))


def test_registry_refuses_duplicates_and_irreversible_reads() -> None:
    class In(BaseModel):
        x: int

    reg = ToolRegistry()
    spec = ToolSpec("t", "d", In, In, ToolKind.READ, True, CostClass.CHEAP, RiskClass.LOW,
                    lambda ctx, a: a)
    reg.register(spec)
    with pytest.raises(ValueError):
        reg.register(spec)
    with pytest.raises(ValueError):
        reg.register(ToolSpec("r", "d", In, In, ToolKind.READ, False, CostClass.CHEAP,
                              RiskClass.LOW, lambda ctx, a: a))


@pytest.fixture
def services(sqlite_env: dict[str, str]) -> Services:
    from autopilot.seed import seed_tenant

    svc = Services.create(make_settings(sqlite_env))
    seed_tenant(svc.db, "acme")
    yield svc
    svc.close()


def _wo_args(wo: str = "WO-T1") -> dict:
    return {"work_order_id": wo, "property_id": "P-GRAND", "unit_id": "P-GRAND-1A",
            "category": "PLUMBING", "priority": "ROUTINE", "title": "Dripping tap",
            "description": "Bathroom tap drips", "estimated_cost": 120,
            "sla_due_at": "2026-12-01T12:00:00+00:00"}


def allow(services: Services, thread_id: str, action_id: str, tool: str,
          args: dict) -> Authorization:
    """The authorization a real execute-stage gate decision gives."""
    d = services.gate.decide(graph="maintenance", tenant_id="acme", thread_id=thread_id,
                             action_id=action_id, tool=tool, args=args, run_facts={},
                             stage="execute")
    assert d.outcome.value == "ALLOW" and d.decision_id is not None
    return Authorization(decision_id=d.decision_id, reason_code=",".join(d.reasons),
                         policy_version=d.policy_version)


def test_write_without_authorization_is_refused(services: Services) -> None:
    forged = Authorization(decision_id=999, reason_code="TRUST_ME")
    for auth in (None, forged):
        with pytest.raises(UnauthorizedWriteError):
            services.gateway.write(ACME, "create_work_order", _wo_args(), thread_id="t",
                                   action_id="a", authorization=auth)
    with pytest.raises(PermanentToolError):
        services.gateway.read(ACME, "get_work_order", {"work_order_id": "WO-T1"})


def test_write_is_exactly_once_per_run_and_action(services: Services) -> None:
    auth = allow(services, "run-1", "create", "create_work_order", _wo_args())
    kwargs = dict(thread_id="run-1", action_id="create", authorization=auth)
    first, replayed = services.gateway.write(ACME, "create_work_order", _wo_args(), **kwargs)
    again, replayed_again = services.gateway.write(ACME, "create_work_order", _wo_args(),
                                                   **kwargs)
    assert (replayed, replayed_again) == (False, True)
    assert again == first
    with pytest.raises(UnauthorizedWriteError):
        services.gateway.read(ACME, "create_work_order", _wo_args())


def test_reads_are_tenant_scoped(services: Services) -> None:
    args = _wo_args("WO-T2")
    services.gateway.write(ACME, "create_work_order", args, thread_id="r", action_id="c",
                           authorization=allow(services, "r", "c", "create_work_order", args))
    assert services.gateway.read(ACME, "get_work_order", {"work_order_id": "WO-T2"})
    other = Principal.autopilot("maintenance", "other-tenant")
    with pytest.raises(PermanentToolError):
        services.gateway.read(other, "get_work_order", {"work_order_id": "WO-T2"})


def test_transient_and_permanent_faults(services: Services) -> None:
    from tools.registry import TransientToolError

    services.gateway.faults.set("get_vendor", transient=1)
    with pytest.raises(TransientToolError):
        services.gateway.read(ACME, "get_vendor", {"vendor_id": "V-AQUA"})
    assert services.gateway.read(ACME, "get_vendor", {"vendor_id": "V-AQUA"})["id"] == "V-AQUA"
    services.gateway.faults.set("get_vendor", permanent=True)
    with pytest.raises(PermanentToolError):
        services.gateway.read(ACME, "get_vendor", {"vendor_id": "V-AQUA"})
