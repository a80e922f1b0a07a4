"""Typed tool registry and executor: clear errors, catalogue export, authorised exactly-once."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from autopilot.services import Services
from tests.conftest import make_settings
from tools.catalog import build_registry
from tools.executor import Authorization
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

ALLOW = Authorization(kind="policy", policy_version="test", reasons=["TEST"])


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


def test_write_without_authorization_is_refused(services: Services) -> None:
    for auth in (None, Authorization(kind="approval", policy_version="v")):
        with pytest.raises(UnauthorizedWriteError):
            services.executor.write(tenant_id="acme", thread_id="t", action_id="a",
                                    name="create_work_order", args=_wo_args(),
                                    authorization=auth)
    with pytest.raises(PermanentToolError):
        services.executor.read("acme", "get_work_order", {"work_order_id": "WO-T1"})


def test_write_is_exactly_once_per_run_and_action(services: Services) -> None:
    kwargs = dict(tenant_id="acme", thread_id="run-1", action_id="create",
                  name="create_work_order", args=_wo_args(), authorization=ALLOW)
    first, replayed = services.executor.write(**kwargs)
    again, replayed_again = services.executor.write(**kwargs)
    assert (replayed, replayed_again) == (False, True)
    assert again == first
    with pytest.raises(UnauthorizedWriteError):
        services.executor.read("acme", "create_work_order", _wo_args())


def test_reads_are_tenant_scoped(services: Services) -> None:
    services.executor.write(tenant_id="acme", thread_id="r", action_id="c",
                            name="create_work_order", args=_wo_args("WO-T2"),
                            authorization=ALLOW)
    assert services.executor.read("acme", "get_work_order", {"work_order_id": "WO-T2"})
    with pytest.raises(PermanentToolError):
        services.executor.read("other-tenant", "get_work_order", {"work_order_id": "WO-T2"})


def test_transient_and_permanent_faults(services: Services) -> None:
    from tools.registry import TransientToolError

    services.executor.faults.set("get_vendor", transient=1)
    with pytest.raises(TransientToolError):
        services.executor.read("acme", "get_vendor", {"vendor_id": "V-AQUA"})
    assert services.executor.read("acme", "get_vendor", {"vendor_id": "V-AQUA"})["id"] == "V-AQUA"
    services.executor.faults.set("get_vendor", permanent=True)
    with pytest.raises(PermanentToolError):
        services.executor.read("acme", "get_vendor", {"vendor_id": "V-AQUA"})
