"""The HTTP API, served by a real uvicorn process: API-key principals, tenant-scoped reads of
runs (with their ledger timeline), approvals and exceptions."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import TENANT, cli_ok, free_port, issue, no_ticks, pm_due, serve_api

KEYS = {"k-acme": {"tenant": TENANT, "subject": "maria@acme.example", "roles": ["approver"]},
        "k-other": {"tenant": "other", "subject": "eve@other.example", "roles": ["viewer"]}}


@pytest.fixture
def server(sqlite_env: dict[str, str], tmp_path: Path
           ) -> Iterator[tuple[str, dict[str, str]]]:
    env = {**sqlite_env, "AUTOPILOT_API_KEYS": json.dumps(KEYS),
           "AUTOPILOT_SCHEDULES": no_ticks()}
    cli_ok(env, "seed")
    with serve_api(env, tmp_path / "logs") as (base, _stderr):
        yield base, env


def test_reads_are_authenticated_and_scoped_to_the_key_s_tenant(
        server: tuple[str, dict[str, str]]) -> None:
    base, env = server
    leak = json.loads(cli_ok(env, "run", "maintenance", "--json", stdin=json.dumps(issue(1))))
    heater = json.loads(cli_ok(env, "run", "maintenance", "--json", stdin=json.dumps(
        issue(2, unit="P-FLATBUSH-3B", text="Water heater is broken, no hot water."))))
    cli_ok(env, "run", "maintenance", stdin=json.dumps(pm_due(3, "PM-GRAND-BOILER")))
    acme = {"Authorization": "Bearer k-acme"}
    other = {"Authorization": "Bearer k-other"}

    assert httpx.get(f"{base}/v1/runs").status_code == 401
    assert httpx.get(f"{base}/v1/runs", headers={"Authorization": "Bearer nope"}
                     ).status_code == 401
    runs = httpx.get(f"{base}/v1/runs", headers=acme).json()["runs"]
    assert {r["status"] for r in runs} == {"completed", "needs_approval", "escalated"}
    waiting = httpx.get(f"{base}/v1/runs", params={"status": "needs_approval"},
                        headers=acme).json()["runs"]
    assert [r["id"] for r in waiting] == [heater["thread_id"]]

    detail = httpx.get(f"{base}/v1/runs/{leak['thread_id']}", headers=acme).json()
    events = [e["event"] for e in detail["timeline"]]
    assert events[0] == "INTENT" and "POLICY_DECISION" in events and "TOOL_CALL" in events
    assert {p["status"] for p in detail["proposals"]} == {"executed"}

    [approval] = httpx.get(f"{base}/v1/approvals", headers=acme).json()["approvals"]
    assert approval["run_id"] == heater["thread_id"] and approval["severity"] == "HIGH"
    [exc] = httpx.get(f"{base}/v1/exceptions", headers=acme).json()["exceptions"]
    assert exc["category"] == "FINANCIAL" and exc["blocked_rules"] == ["SPEND_HARD_BLOCK"]

    # Another tenant's key sees none of it, and a run id of acme is a 404 for it.
    assert httpx.get(f"{base}/v1/runs", headers=other).json()["runs"] == []
    assert httpx.get(f"{base}/v1/approvals", headers=other).json()["approvals"] == []
    assert httpx.get(f"{base}/v1/exceptions", headers=other).json()["exceptions"] == []
    assert httpx.get(f"{base}/v1/runs/{leak['thread_id']}", headers=other).status_code == 404
    assert httpx.get(f"{base}/v1/runs/maintenance-nope", headers=acme).status_code == 404


def test_bad_api_keys_setting_is_refused_with_the_field(sqlite_env: dict[str, str]) -> None:
    env = {**sqlite_env, "AUTOPILOT_API_KEYS": json.dumps({"k": {"subject": "x"}})}
    done = subprocess.run([sys.executable, "-m", "autopilot", "api", "--port",
                           str(free_port())], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and "AUTOPILOT_API_KEYS" in done.stderr
    assert "tenant" in done.stderr


def test_openapi_documents_every_endpoint_with_its_errors(sqlite_env: dict[str, str]) -> None:
    """Every /v1 operation names its success schema, needs the bearer key, and documents the
    error body; `POST /v1/events` has one envelope schema per event type."""
    from api.app import create_app
    from graphs import autopilots
    from tests.conftest import make_settings

    spec = create_app(make_settings(sqlite_env)).openapi()
    schemas = spec["components"]["schemas"]
    assert "ErrorResponse" in schemas
    operations = [(path, method, op) for path, item in spec["paths"].items()
                  if path.startswith("/v1/") for method, op in item.items()]
    assert len(operations) >= 25
    for path, method, op in operations:
        where = f"{method.upper()} {path}"
        ok = [code for code in op["responses"] if code.startswith("2")]
        assert ok, where
        assert any("content" in op["responses"][c] for c in ok) or op["responses"][ok[0]] \
            .get("description"), where
        assert op.get("security"), f"{where} is not authenticated"
        for code in ("401", "403", "422"):
            body = op["responses"].get(code, {}).get("content", {}).get("application/json", {})
            assert body.get("schema", {}).get("$ref", "").endswith("/ErrorResponse"), \
                f"{where} does not document {code}"
    event_body = spec["paths"]["/v1/events"]["post"]["requestBody"]["content"][
        "application/json"]["schema"]
    types = {t for spec_ in autopilots().values() for t in spec_.event_types}
    assert set(event_body["discriminator"]["mapping"]) == types
    for ref in event_body["oneOf"]:
        assert ref["$ref"].split("/")[-1] in schemas
