"""The `autopilot` CLI as a user runs it: real subprocesses on a fresh SQLite data dir."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import issue

pytestmark = pytest.mark.slow


def cli(env: dict[str, str], *args: str, stdin: str | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "autopilot", *args], env={**env,
                          "COLUMNS": "200"}, input=stdin, capture_output=True, text=True,
                          timeout=timeout)


def write_event(tmp_path: Path, event: Any, name: str = "event.json") -> str:
    path = tmp_path / name
    path.write_text(event if isinstance(event, str) else json.dumps(event))
    return str(path)


def _without(d: dict[str, Any], *path: str) -> dict[str, Any]:
    d = json.loads(json.dumps(d))
    target = d
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return d


MALFORMED = [
    ("missing payload field", _without(issue(1), "payload", "unit_id"), "payload.unit_id"),
    ("missing envelope field", _without(issue(1), "tenant_id"), "tenant_id"),
    ("wrong type", {**issue(1), "occurred_at": "yesterday-ish"}, "occurred_at"),
    ("naive timestamp", {**issue(1), "occurred_at": "2026-11-21T10:00:00"}, "occurred_at"),
    ("wrong payload type", {**issue(1), "payload": {**issue(1)["payload"], "text": 42}},
     "payload.text"),
    ("unknown event type", {**issue(1), "event_type": "alien_invasion"}, "event_type"),
    ("extra field", {**issue(1), "surprise": True}, "surprise"),
    ("not an object", [1, 2, 3], "(root)"),
    ("not JSON", "{not json", "not valid JSON"),
]


@pytest.mark.parametrize(("case", "event", "field"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_events_exit_nonzero_naming_the_field_and_write_nothing(
        sqlite_env: dict[str, str], tmp_path: Path, case: str, event: Any, field: str) -> None:
    result = cli(sqlite_env, "run", "maintenance", "--event-file", write_event(tmp_path, event))
    assert result.returncode == 2, result.stdout + result.stderr
    assert field in result.stderr
    assert "Traceback" not in result.stderr
    assert not Path(sqlite_env["AUTOPILOT_DATA_DIR"]).exists()  # not even a database file


def test_unknown_graph_is_refused(sqlite_env: dict[str, str], tmp_path: Path) -> None:
    result = cli(sqlite_env, "run", "bookkeeping", "--event-file",
                 write_event(tmp_path, issue(1)))
    assert result.returncode == 2
    assert "unknown graph 'bookkeeping'" in result.stderr and "maintenance" in result.stderr
    assert not Path(sqlite_env["AUTOPILOT_DATA_DIR"]).exists()


def test_run_approve_history_round_trip(sqlite_env: dict[str, str], tmp_path: Path) -> None:
    assert cli(sqlite_env, "seed").returncode == 0
    event = issue(7, unit="P-FLATBUSH-3B",
                  text="Water heater is broken, no hot water since yesterday.")
    result = cli(sqlite_env, "run", "maintenance", "--json", stdin=json.dumps(event))
    assert result.returncode == 0, result.stderr
    run = json.loads(result.stdout)
    assert run["status"] == "needs_approval"
    listed = cli(sqlite_env, "approvals", "--json")
    [pending] = json.loads(listed.stdout)
    assert pending["thread_id"] == run["thread_id"]
    assert pending["request"]["policy"][0]["reasons"] == ["SPEND_OVER_AUTO_LIMIT"]
    bad = cli(sqlite_env, "approve", run["thread_id"], "--edit", '{"not_to_exceed": -5}')
    assert bad.returncode == 2 and "not_to_exceed" in bad.stderr
    done = cli(sqlite_env, "approve", run["thread_id"], "--edit", '{"not_to_exceed": 700}',
               "--as", "maria")
    assert done.returncode == 0, done.stderr
    assert "completed" in done.stdout and "edit by maria" in done.stdout
    again = cli(sqlite_env, "approve", run["thread_id"], "--as", "bob")
    assert again.returncode == 3 and "already decided by maria" in again.stderr
    history = cli(sqlite_env, "history", run["thread_id"])
    assert history.returncode == 0
    for node in ("perceive", "plan", "gate", "approval", "execute", "verify"):
        assert node in history.stdout
    dup = cli(sqlite_env, "run", "maintenance", "--json", stdin=json.dumps(event))
    assert json.loads(dup.stdout)["deduplicated"] is True


def test_reject_from_the_cli(sqlite_env: dict[str, str]) -> None:
    cli(sqlite_env, "seed")
    event = issue(8, unit="P-ASTORIA-2A", text="Smell of gas near the boiler room door")
    run = json.loads(cli(sqlite_env, "run", "maintenance", "--json",
                         stdin=json.dumps(event)).stdout)
    result = cli(sqlite_env, "approve", run["thread_id"], "--reject", "false alarm, checked")
    assert result.returncode == 0, result.stderr
    assert "rejected" in result.stdout


def test_tools_catalogue_is_json_schema(sqlite_env: dict[str, str]) -> None:
    result = cli(sqlite_env, "tools", "--json")
    tools = {t["name"]: t for t in json.loads(result.stdout)["tools"]}
    assert tools["dispatch_vendor"]["input_schema"]["type"] == "object"


def test_demo_shows_every_path_in_under_a_minute(sqlite_env: dict[str, str]) -> None:
    started = time.monotonic()
    result = cli(sqlite_env, "demo", timeout=60)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert elapsed < 60
    out = result.stdout
    assert "ALLOW (MAINTENANCE_AUTONOMOUS_WRITE)" in out
    assert "REQUIRE_APPROVAL (EMERGENCY_ALWAYS_ESCALATE)" in out
    assert "BLOCK (SPEND_HARD_BLOCK)" in out
    assert "escalated" in out and "Gas smell: approved and finished" in out
    assert "deduplicated" in out
    from graphs import autopilots

    for name, spec in autopilots().items():  # every autopilot's demo triggers ran
        if name != "maintenance":
            assert spec.demo is not None, f"{name} has no demo triggers"
            assert f"{name} autopilot" in out and f"{name}: " in out, name
    inbox = cli(sqlite_env, "exceptions")
    assert inbox.returncode == 0 and "SPEND_HARD_BLOCK" in inbox.stdout


def test_empty_or_conflicting_decisions_never_approve(sqlite_env: dict[str, str]) -> None:
    cli(sqlite_env, "seed")
    event = issue(9, unit="P-FLATBUSH-3B",
                  text="Water heater is broken, no hot water since yesterday.")
    run = json.loads(cli(sqlite_env, "run", "maintenance", "--json",
                         stdin=json.dumps(event)).stdout)
    for args in (["--reject", ""], ["--edit", ""], ["--edit", "{}"],
                 ["--reject", "no", "--edit", '{"not_to_exceed": 700}'],
                 ["--decisions", '[{"type": "approve"}]', "--reject", "no"]):
        result = cli(sqlite_env, "approve", run["thread_id"], *args)
        assert result.returncode == 2, (args, result.stdout)
    listed = json.loads(cli(sqlite_env, "approvals", "--json").stdout)
    assert [a["thread_id"] for a in listed] == [run["thread_id"]]  # still pending


def test_envelope_and_payload_errors_are_reported_together(sqlite_env: dict[str, str],
                                                           tmp_path: Path) -> None:
    event = _without(issue(1), "source")
    del event["payload"]["text"]
    result = cli(sqlite_env, "run", "maintenance", "--event-file", write_event(tmp_path, event))
    assert result.returncode == 2
    assert "source" in result.stderr and "payload.text" in result.stderr
