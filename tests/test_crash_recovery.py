"""Crash recovery with real processes: SIGKILL a run mid-execute, resume it, nothing doubles.

The child process is stalled by a sandbox fault at a precise moment of `execute` (just after
the work order's write committed, or just before the dispatch commits), while the last
checkpoint still says "execute is next". It is then killed with SIGKILL (no cleanup, no
`finally`), a new process resumes the run from its checkpoint, and the database must show
every effect exactly once: one work order, one `tool_calls` row per action, one dispatch.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RunnerFactory
from tests.helpers import TENANT, autopilot_argv, issue, query_app_db, run_cli

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]

SOURCE_REF = "msg:MSG-1"  # issue(1): routine kitchen-sink leak, every action ALLOWed
ACTIONS = {"create_wo", "dispatch", "ack_resident", "follow_up"}
STALL_S = 60  # the fault's stall: far longer than the test needs to observe and kill
WAIT_S = 30  # bound on every wait for the child to reach the stall point


def _wait_until(what: str, probe: Callable[[], Any], child: subprocess.Popen[bytes],
                logs: Path, timeout: float = WAIT_S) -> Any:
    """Poll `probe` until it returns something truthy; fail if the child exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        if child.poll() is not None:
            pytest.fail(f"child exited ({child.returncode}) before {what}:\n"
                        f"{(logs / 'stdout').read_text()}\n{(logs / 'stderr').read_text()}")
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")


def _vendor_load(env: dict[str, str]) -> dict[str, int]:
    return dict(query_app_db(env, "SELECT id, open_work_orders FROM vendors WHERE tenant_id = ?",
                             (TENANT,)))


def _tool_calls(env: dict[str, str], thread_id: str) -> dict[str, int]:
    return dict(query_app_db(env, "SELECT action_id, count(*) FROM tool_calls "
                                  "WHERE thread_id = ? GROUP BY action_id", (thread_id,)))


def _work_orders(env: dict[str, str]) -> list[tuple[Any, ...]]:
    return query_app_db(env, "SELECT id, status, vendor_id FROM work_orders "
                             "WHERE tenant_id = ? AND source_ref = ?", (TENANT, SOURCE_REF))


def _run_status(env: dict[str, str], thread_id: str) -> str:
    [(status,)] = query_app_db(env, "SELECT status FROM runs WHERE thread_id = ?", (thread_id,))
    return status


def crash_then_recover(env: dict[str, str], tmp_path: Path, open_runner: RunnerFactory, *,
                       fault: dict[str, dict[str, float]], recover_with: str) -> None:
    seeded = run_cli(env, "seed")
    assert seeded.returncode == 0, seeded.stderr
    load_before = _vendor_load(env)
    assert load_before, "seed created no vendors"
    event = tmp_path / "event.json"
    event.write_text(json.dumps(issue(1)))
    logs = tmp_path / "child"
    logs.mkdir()

    with (logs / "stdout").open("wb") as out, (logs / "stderr").open("wb") as err:
        child = subprocess.Popen(
            autopilot_argv("run", "maintenance", "--event-file", str(event)),
            env={**env, "AUTOPILOT_SANDBOX_FAULTS": json.dumps(fault)},
            stdout=out, stderr=err, cwd=tmp_path)
    try:
        # The work order's write (effect + tool_calls record, one transaction) has committed.
        [(thread_id,)] = _wait_until(
            "the create_wo write to commit",
            lambda: query_app_db(env, "SELECT thread_id FROM tool_calls WHERE action_id = ?",
                                 ("create_wo",)), child, logs)
        # ...and the plan is checkpointed, but execute is not: its effects are ahead of the graph.
        history = open_runner(env).history(thread_id)
        nodes = [h["node"] for h in history]
        assert "plan" in nodes and "gate" in nodes, nodes
        assert "execute" not in nodes, nodes
        assert history[-1]["next"] == ["execute"], history[-1]
        assert child.poll() is None, "the child should be stalled inside execute"
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=10) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=10)

    # What the crash left: the work order and nothing after it; the run looks unfinished.
    assert _run_status(env, thread_id) == "running"
    assert len(_work_orders(env)) == 1
    assert _tool_calls(env, thread_id) == {"create_wo": 1}
    assert _vendor_load(env) == load_before

    if recover_with == "resume":  # every unfinished run, from its last checkpoint
        done = run_cli(env, "resume")
        assert done.returncode == 0, done.stderr
        assert "Nothing to resume" not in done.stdout
    else:  # the same trigger again: dedupe finds the unfinished run and finishes it
        done = run_cli(env, "run", "maintenance", "--event-file", str(event), "--json")
        assert done.returncode == 0, done.stderr
        view = json.loads(done.stdout)
        assert (view["thread_id"], view["status"]) == (thread_id, "completed")

    assert _run_status(env, thread_id) == "completed"
    [(wo_id, wo_status, vendor_id)] = _work_orders(env)  # exactly one work order
    assert wo_status == "DISPATCHED" and vendor_id
    assert _tool_calls(env, thread_id) == dict.fromkeys(ACTIONS, 1)
    load_after = _vendor_load(env)
    changed = {v: load_after[v] - load_before[v] for v in load_before
               if load_after[v] != load_before[v]}
    assert changed == {vendor_id: 1}, "the dispatch must have been applied exactly once"
    [(outgoing,)] = query_app_db(env, "SELECT count(*) FROM messages WHERE direction = 'out' "
                                      "AND related_work_order_id = ?", (wo_id,))
    assert outgoing == 1

    # The resumed execute found the committed write and replayed it instead of acting again.
    view = open_runner(env).view(thread_id)
    replayed = {p["action_id"]: p["replayed"] for p in view.values["proposals"]}
    assert replayed == {"create_wo": True, "dispatch": False, "ack_resident": False,
                        "follow_up": False}
    assert all(check["ok"] for check in view.values["verification"])


AFTER_WO_COMMIT = {"create_work_order": {"delay_after_s": STALL_S}}
BEFORE_DISPATCH_COMMIT = {"dispatch_vendor": {"delay_before_s": STALL_S}}


@pytest.mark.postgres
@pytest.mark.parametrize("recover_with", ["resume", "run"])
def test_kill_after_work_order_commit_postgres(postgres_env: dict[str, str], tmp_path: Path,
                                               open_runner: RunnerFactory,
                                               recover_with: str) -> None:
    crash_then_recover(postgres_env, tmp_path, open_runner, fault=AFTER_WO_COMMIT,
                       recover_with=recover_with)


@pytest.mark.postgres
def test_kill_before_dispatch_commit_postgres(postgres_env: dict[str, str], tmp_path: Path,
                                              open_runner: RunnerFactory) -> None:
    crash_then_recover(postgres_env, tmp_path, open_runner, fault=BEFORE_DISPATCH_COMMIT,
                       recover_with="resume")


def test_kill_after_work_order_commit_sqlite(sqlite_env: dict[str, str], tmp_path: Path,
                                             open_runner: RunnerFactory) -> None:
    crash_then_recover(sqlite_env, tmp_path, open_runner, fault=AFTER_WO_COMMIT,
                       recover_with="resume")
