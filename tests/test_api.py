"""The HTTP API, served by a real uvicorn process: API-key principals, tenant-scoped reads of
runs (with their ledger timeline), approvals and exceptions."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.helpers import TENANT, issue, pm_due

KEYS = {"k-acme": {"tenant": TENANT, "subject": "maria@acme.example", "roles": ["approver"]},
        "k-other": {"tenant": "other", "subject": "eve@other.example", "roles": ["viewer"]}}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cli(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    done = subprocess.run([sys.executable, "-m", "autopilot", *args], env=env, input=stdin,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def server(sqlite_env: dict[str, str]) -> Iterator[tuple[str, dict[str, str]]]:
    env = {**sqlite_env, "AUTOPILOT_API_KEYS": json.dumps(KEYS),
           "AUTOPILOT_SCHEDULES": json.dumps({"maintenance": "0 0 29 2 *"})}  # no tick mid-test
    _cli(env, "seed")
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "autopilot", "api", "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise AssertionError("the API did not start")
        yield base, env
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_reads_are_authenticated_and_scoped_to_the_key_s_tenant(
        server: tuple[str, dict[str, str]]) -> None:
    base, env = server
    leak = json.loads(_cli(env, "run", "maintenance", "--json", stdin=json.dumps(issue(1))))
    heater = json.loads(_cli(env, "run", "maintenance", "--json", stdin=json.dumps(
        issue(2, unit="P-FLATBUSH-3B", text="Water heater is broken, no hot water."))))
    _cli(env, "run", "maintenance", stdin=json.dumps(pm_due(3, "PM-GRAND-BOILER")))
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
                           str(_free_port())], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and "AUTOPILOT_API_KEYS" in done.stderr
    assert "tenant" in done.stderr
