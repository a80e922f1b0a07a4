"""The kill switch: environment and persistent (global / per tenant), read at every decision,
so flipping it holds writes that were already queued."""

from __future__ import annotations

import subprocess
import sys

from sqlalchemy import select

from autopilot.config import Settings
from autopilot.db import ALL_TENANTS
from autopilot.models import LedgerEntry
from autopilot.runtime import Runner
from tests.conftest import RunnerFactory
from tests.helpers import TENANT, approve_all, issue

WATER_HEATER = "Water heater is broken, no hot water since yesterday."


def _reasons(view: object) -> dict[str, list[str]]:
    request = view.pending_approval["request"]  # type: ignore[attr-defined]
    return {p["action_id"]: p["reasons"] for p in request["policy"]}


def test_environment_default_is_off_in_production_on_elsewhere() -> None:
    assert Settings(AUTOPILOT_ENV="production").autonomy_enabled is False
    assert Settings(AUTOPILOT_ENV="production", AUTONOMY_ENABLED="true").autonomy_enabled
    assert Settings().autonomy_enabled is True
    assert Settings(AUTONOMY_ENABLED="false").autonomy_enabled is False


def test_env_switch_off_turns_autonomous_writes_into_suggestions(
        sqlite_env: dict[str, str], open_runner: RunnerFactory) -> None:
    runner = open_runner({**sqlite_env, "AUTONOMY_ENABLED": "false"})
    view = runner.submit("maintenance", issue(1))  # a cheap leak: normally all automatic
    assert view.status == "needs_approval"
    assert set(_reasons(view)) == {"create_wo", "dispatch", "ack_resident", "follow_up"}
    assert all(r == ["KILL_SWITCH"] for r in _reasons(view).values())
    done = runner.decide(view.thread_id, approve_all(view), reviewer="ops@acme.example")
    assert done.status == "completed"  # a person approved each write


def test_persistent_switch_per_tenant_and_global(runner: Runner) -> None:
    switch = runner.services.kill_switch
    switch.set(TENANT, False, by="ops@acme.example", reason="vendor dispute")
    assert not switch.enabled(TENANT) and switch.enabled("other")
    assert "vendor dispute" in switch.state(TENANT).why
    held = runner.submit("maintenance", issue(2))
    assert held.status == "needs_approval"
    switch.set(TENANT, True, by="ops@acme.example", reason="resolved")
    assert runner.submit("maintenance", issue(3, unit="P-ASTORIA-1A")).status == "completed"
    switch.set("global", False, by="cto@platform.example", reason="incident")
    assert not switch.enabled(TENANT) and not switch.enabled("other")
    with runner.services.db.session(ALL_TENANTS) as s:
        controls = [e.payload for e in s.scalars(select(LedgerEntry).where(
            LedgerEntry.event_type == "CONTROL").order_by(LedgerEntry.id))]
    assert [(c["scope"], c["autonomous_writes"], c["by"]) for c in controls] == [
        (TENANT, "off", "ops@acme.example"), (TENANT, "on", "ops@acme.example"),
        ("global", "off", "cto@platform.example")]


def test_flipping_the_switch_holds_writes_already_queued(runner: Runner) -> None:
    view = runner.submit("maintenance", issue(4, unit="P-FLATBUSH-3B", text=WATER_HEATER))
    assert _reasons(view) == {"dispatch": ["SPEND_OVER_AUTO_LIMIT"]}
    queued = [p["action_id"] for p in view.values["proposals"] if p["status"] == "allowed"]
    assert {"ack_resident", "follow_up"} <= set(queued)  # allowed, waiting on the dispatch
    runner.services.kill_switch.set(TENANT, False, by="ops@acme.example", reason="audit")
    after = runner.decide(view.thread_id, approve_all(view), reviewer="maria@acme.example")
    assert after.status == "needs_approval"  # the dispatch ran (approved); the rest is held
    assert _reasons(after) == {"ack_resident": ["KILL_SWITCH"]}
    statuses = {p["action_id"]: p["status"] for p in after.values["proposals"]}
    assert statuses["dispatch"] == "executed"
    assert statuses["follow_up"] != "executed"  # still queued; it is re-checked in its turn


def test_autonomy_cli(sqlite_env: dict[str, str]) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "autopilot", "autonomy", *args],
                              env={**sqlite_env, "COLUMNS": "200"}, capture_output=True,
                              text=True, timeout=120)

    assert "ON" in cli("status").stdout
    off = cli("off", "--tenant", TENANT, "--as", "ops", "--reason", "drill")
    assert off.returncode == 0, off.stderr
    assert "OFF" in cli("status").stdout and "drill" in cli("status").stdout
    assert cli("off", "--as", "ops").returncode == 2  # needs --tenant or --global
    assert cli("on", "--global", "--as", "ops").returncode == 0
    assert "OFF" in cli("status").stdout  # the tenant's own switch is still off
