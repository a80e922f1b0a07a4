"""Policies and the kill switch over HTTP (in-process app, lifespan running), on SQLite and
Postgres: tenant overlays that only narrow, global policy kept to the CLI, dry runs that record
nothing, and a tenant kill switch that is ledgered and felt by the next decision."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from autopilot.seed import seed_tenant
from autopilot.services import Services
from policy.engine import PolicyBundle
from tests.conftest import make_settings
from tests.helpers import TENANT, issue, query_app_db

KEYS = {
    "k-admin": {"tenant": TENANT, "subject": "ann@acme.example", "roles": ["admin"]},
    "k-approver": {"tenant": TENANT, "subject": "maria@acme.example", "roles": ["approver"]},
    "k-viewer": {"tenant": TENANT, "subject": "vic@acme.example", "roles": ["viewer"]},
    "k-other": {"tenant": "other", "subject": "eve@other.example", "roles": ["admin"]},
}
ADMIN = {"Authorization": "Bearer k-admin"}
APPROVER = {"Authorization": "Bearer k-approver"}
VIEWER = {"Authorization": "Bearer k-viewer"}
OTHER = {"Authorization": "Bearer k-other"}

# A routine plumbing dispatch at 250: ALLOW under the shipped policies (auto limit 750).
DISPATCH = {"tool": "dispatch_vendor", "run_facts": {"property_id": "P-GRAND"},
            "args": {"work_order_id": "WO-NEW", "vendor_id": "V-AQUA", "category": "PLUMBING",
                     "priority": "ROUTINE", "not_to_exceed": 250,
                     "scheduled_for": "2026-11-19T15:00:00+00:00"}}
NO_AUTO_WORK_ORDER = ('@id("PF_NO_AUTO_WORK_ORDER")\nforbid (principal, action == '
                      'Action::"execute", resource == Tool::"create_work_order");\n')
NO_AUTO_DISPATCH = ('@id("PF_NO_AUTO_DISPATCH")\nforbid (principal, action == Action::"execute",'
                    ' resource == Tool::"dispatch_vendor");\n')


@pytest.fixture
def client(backend_env: dict[str, str]) -> Iterator[TestClient]:
    """The app on a migrated, seeded backend; `with` runs the lifespan (runner, services)."""
    env = {**backend_env, "AUTOPILOT_API_KEYS": json.dumps(KEYS)}
    settings = make_settings(env)
    services = Services.create(settings)
    seed_tenant(services.db, TENANT)
    services.close()
    with TestClient(create_app(settings, worker=False)) as c:
        c.env = env  # type: ignore[attr-defined]
        yield c


def _error(response: Any) -> dict[str, Any]:
    return response.json()["error"]  # type: ignore[no-any-return]


def _fields(response: Any) -> list[str]:
    return [f["field"] for f in _error(response)["fields"]]


def test_overlay_lifecycle_list_get_activate_evaluate(client: TestClient) -> None:
    store = client.app.state.runner.services.policy_store  # type: ignore[attr-defined]
    base = PolicyBundle.load()
    glob = store.create(scope_type="global", cedar=base.cedar, config=base.config,
                        author="ops@platform.example", note="baseline", activate=True)

    before = client.post("/v1/policies/evaluate", headers=VIEWER, json=DISPATCH)
    assert before.status_code == 200, before.text
    assert before.json()["outcome"] == "ALLOW" and before.json()["recorded"] is False

    created = client.post("/v1/policies", headers=ADMIN, json={
        "config": {"spend": {"autoApproveMax": 200, "requireApprovalAbove": 200}},
        "note": "owner wants to see anything above 200"})
    assert created.status_code == 201, created.text
    tenant_v = created.json()
    assert (tenant_v["scope"], tenant_v["scope_id"], tenant_v["author"], tenant_v["active"]) == (
        "tenant", TENANT, "ann@acme.example", False)
    assert tenant_v["config"]["spend"]["autoApproveMax"] == 200

    # Not active yet: the evaluation is unchanged, unless asked about that very version.
    assert client.post("/v1/policies/evaluate", headers=VIEWER, json=DISPATCH
                       ).json()["outcome"] == "ALLOW"
    candidate = client.post("/v1/policies/evaluate", headers=VIEWER,
                            json={**DISPATCH, "version_id": tenant_v["id"]}).json()
    assert candidate["outcome"] == "REQUIRE_APPROVAL"

    activated = client.post(f"/v1/policies/{tenant_v['id']}/activate", headers=ADMIN)
    assert activated.status_code == 200 and activated.json()["active"] is True
    after = client.post("/v1/policies/evaluate", headers=VIEWER, json=DISPATCH).json()
    assert (after["outcome"], after["reasons"]) == ("REQUIRE_APPROVAL",
                                                    ["SPEND_OVER_AUTO_LIMIT"])
    assert f"{TENANT}.t1" in after["policy_version"]
    assert after["inputs"]["context"]["facts"]["spend_cents"] == 25000

    # A portfolio overlay of forbid rules, shadowed: real decisions record what it would do.
    pf = client.post("/v1/policies", headers=ADMIN, json={
        "scope": "portfolio", "scope_id": "PF-NYC", "cedar": NO_AUTO_WORK_ORDER})
    assert pf.status_code == 201, pf.text
    pf_id = pf.json()["id"]
    assert client.post(f"/v1/policies/{pf_id}/shadow", headers=ADMIN).json()["shadow"] is True
    assert client.get("/v1/policies/decisions", headers=VIEWER).json()["decisions"] == []
    client.app.state.runner.submit("maintenance", issue(1))  # type: ignore[attr-defined]
    report = client.get("/v1/policies/shadow-report", headers=VIEWER).json()
    assert report["total"] > 0 and "PF-NYC.pf1" in report["candidate"]
    assert {"tool": "create_work_order", "from": "ALLOW", "to": "REQUIRE_APPROVAL",
            "reasons": "PF_NO_AUTO_WORK_ORDER"} in [
        {k: f[k] for k in ("tool", "from", "to", "reasons")} for f in report["flips"]]
    assert report["headlines"][0].startswith("would flip ALLOW -> REQUIRE_APPROVAL")
    assert client.get("/v1/policies/shadow-report", headers=OTHER).json()["total"] == 0
    assert client.delete(f"/v1/policies/{pf_id}/shadow", headers=ADMIN
                         ).json()["shadow"] is False

    listed = client.get("/v1/policies", headers=VIEWER).json()
    assert {(v["scope"], v["id"]) for v in listed["versions"]} == {
        ("global", glob.id), ("tenant", tenant_v["id"]), ("portfolio", pf_id)}
    assert listed["in_force"].startswith(f"g1+{TENANT}.t1")
    only = client.get("/v1/policies", headers=VIEWER, params={"scope": "portfolio"}).json()
    assert [v["id"] for v in only["versions"]] == [pf_id]
    detail = client.get(f"/v1/policies/{pf_id}", headers=VIEWER).json()
    assert detail["cedar"] == NO_AUTO_WORK_ORDER and detail["config"] == {}
    assert client.get(f"/v1/policies/{glob.id}", headers=VIEWER).json()["note"] == "baseline"

    # Dry runs recorded nothing; the run's decisions are there, for this tenant only.
    decisions = client.get("/v1/policies/decisions", headers=VIEWER,
                           params={"tool": "dispatch_vendor"}).json()["decisions"]
    assert decisions and {d["tool"] for d in decisions} == {"dispatch_vendor"}
    assert all(d["run_id"].startswith("maintenance-") for d in decisions)
    held = client.get("/v1/policies/decisions", headers=VIEWER,
                      params={"outcome": "REQUIRE_APPROVAL"}).json()["decisions"]
    assert held and all(d["outcome"] == "REQUIRE_APPROVAL" for d in held)
    assert any(d["shadow"] and d["shadow"]["outcome"] == "REQUIRE_APPROVAL"
               for d in client.get("/v1/policies/decisions", headers=VIEWER,
                                   params={"tool": "create_work_order"}).json()["decisions"])
    assert client.get("/v1/policies/decisions", headers=OTHER).json()["decisions"] == []


def test_refusals_widening_global_roles_and_other_tenants(client: TestClient) -> None:
    widening = client.post("/v1/policies", headers=ADMIN, json={
        "config": {"spend": {"autoApproveMax": 900}}})
    assert widening.status_code == 422
    assert "autoApproveMax" in _error(widening)["message"]
    assert _fields(widening) == ["config.spend.autoApproveMax"]
    permit = client.post("/v1/policies", headers=ADMIN, json={
        "cedar": '@id("WIDEN")\npermit (principal, action, resource);\n'})
    assert permit.status_code == 422 and _fields(permit) == ["cedar"]
    assert "may only add forbid rules" in _error(permit)["message"]
    typo = client.post("/v1/policies", headers=ADMIN, json={
        "scope": "property", "scope_id": "P-GRAND",
        "cedar": '@id("TYPO")\nforbid (principal, action, resource) when { context.nope };'})
    assert typo.status_code == 422 and "TYPO" in _error(typo)["message"]
    assert client.post("/v1/policies", headers=ADMIN, json={
        "scope": "property", "scope_id": "P-NOWHERE", "cedar": NO_AUTO_DISPATCH}
                       ).status_code == 422
    assert client.get("/v1/policies", headers=ADMIN).json()["versions"] == []  # none stored

    glob = client.post("/v1/policies", headers=ADMIN, json={
        "scope": "global", "cedar": PolicyBundle.load().cedar})
    assert glob.status_code == 403
    assert "`autopilot policy` CLI" in _error(glob)["message"]
    assert "every tenant" in _error(glob)["message"]
    store = client.app.state.runner.services.policy_store  # type: ignore[attr-defined]
    base = PolicyBundle.load()
    g = store.create(scope_type="global", cedar=base.cedar, config=base.config,
                     author="ops@platform.example")
    assert client.post(f"/v1/policies/{g.id}/activate", headers=ADMIN).status_code == 403
    assert client.post(f"/v1/policies/{g.id}/shadow", headers=ADMIN).status_code == 403

    overlay = {"cedar": NO_AUTO_DISPATCH}
    assert client.post("/v1/policies", headers=VIEWER, json=overlay).status_code == 403
    assert client.post("/v1/policies", headers=APPROVER, json=overlay).status_code == 403
    assert client.post("/v1/policies", json=overlay).status_code == 401
    mine = client.post("/v1/policies", headers=ADMIN, json=overlay).json()
    assert client.post(f"/v1/policies/{mine['id']}/activate", headers=VIEWER
                       ).status_code == 403

    # Another tenant's overlay is a 404, exactly like a missing one, and never listed.
    for path in (f"/v1/policies/{mine['id']}", "/v1/policies/9999"):
        assert client.get(path, headers=OTHER).status_code == 404
    assert client.post(f"/v1/policies/{mine['id']}/activate", headers=OTHER
                       ).status_code == 404
    assert [v["scope"] for v in client.get("/v1/policies", headers=OTHER).json()["versions"]
            ] == ["global"]
    wrong = client.post("/v1/policies", headers=OTHER, json={"scope_id": TENANT, **overlay})
    assert wrong.status_code == 403 and _fields(wrong) == ["scope_id"]

    bad_tool = client.post("/v1/policies/evaluate", headers=VIEWER,
                           json={**DISPATCH, "tool": "launch_rocket"})
    assert bad_tool.status_code == 422 and _fields(bad_tool) == ["tool"]
    bad_args = client.post("/v1/policies/evaluate", headers=VIEWER, json={
        **DISPATCH, "args": {**DISPATCH["args"], "not_to_exceed": -5}})
    assert bad_args.status_code == 422 and _fields(bad_args) == ["args.not_to_exceed"]
    bad_run = client.post("/v1/policies/evaluate", headers=VIEWER, json={
        **DISPATCH, "run_facts": {"is_emergency": "maybe"}})
    assert bad_run.status_code == 422 and _fields(bad_run) == ["run_facts.is_emergency"]


def test_tenant_kill_switch_over_http(client: TestClient) -> None:
    state = client.get("/v1/autonomy", headers=ADMIN)
    assert state.status_code == 200
    assert state.json()["enabled"] is True and state.json()["tenant"]["changed_by"] is None
    assert client.get("/v1/autonomy", headers=VIEWER).status_code == 403
    refused = client.put("/v1/autonomy", headers=APPROVER,
                         json={"enabled": False, "reason": "not mine to flip"})
    assert refused.status_code == 403
    no_reason = client.put("/v1/autonomy", headers=ADMIN, json={"enabled": False,
                                                                "reason": "  "})
    assert no_reason.status_code == 422 and _fields(no_reason) == ["reason"]
    no_global = client.put("/v1/autonomy", headers=ADMIN, json={
        "enabled": False, "reason": "x", "scope": "global"})
    assert no_global.status_code == 422

    off = client.put("/v1/autonomy", headers=ADMIN,
                     json={"enabled": False, "reason": "vendor dispute"})
    assert off.status_code == 200, off.text
    body = off.json()
    assert body["enabled"] is False and body["global"]["enabled"] is True
    assert (body["tenant"]["enabled"], body["tenant"]["changed_by"], body["tenant"]["reason"]
            ) == (False, "ann@acme.example", "vendor dispute")
    assert "vendor dispute" in body["why"]
    assert client.get("/v1/autonomy", headers=ADMIN).json() == body
    assert client.get("/v1/autonomy", headers=OTHER).json()["enabled"] is True

    held = client.post("/v1/policies/evaluate", headers=VIEWER, json=DISPATCH).json()
    assert (held["outcome"], held["reasons"]) == ("REQUIRE_APPROVAL", ["KILL_SWITCH"])

    rows = query_app_db(client.env, "SELECT tenant_id, payload FROM ledger_entries "  # type: ignore[attr-defined]
                        "WHERE event_type = 'CONTROL'")
    controls = [(t, json.loads(p) if isinstance(p, str) else p) for t, p in rows]
    assert [(t, c["scope"], c["autonomous_writes"], c["by"], c["reason"])
            for t, c in controls] == [(TENANT, TENANT, "off", "ann@acme.example",
                                       "vendor dispute")]

    on = client.put("/v1/autonomy", headers=ADMIN, json={"enabled": True, "reason": "resolved"})
    assert on.json()["enabled"] is True
    assert client.post("/v1/policies/evaluate", headers=VIEWER, json=DISPATCH
                       ).json()["outcome"] == "ALLOW"
