"""The job queue's semantics, on the in-process worker the embedded default runs: one step of
a run at a time (per-run lock), retries with backoff then `failed_terminal`, duplicate
queueing absorbed, and unfinished runs re-queued at start-up."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from typing import Any

import pytest

from autopilot.jobs import JobQueue
from autopilot.runtime import Runner
from tests.conftest import RunnerFactory, make_settings
from tests.helpers import issue, no_ticks, query_app_db

pytestmark = pytest.mark.timeout(120)


def _queue(runner: Runner, **overrides: Any) -> JobQueue:
    # No scheduler tick may add runs of its own while a test counts steps.
    overrides.setdefault("schedules", json.loads(no_ticks()))
    settings = runner.services.settings.model_copy(update=overrides)
    queue = JobQueue(settings)
    queue.runner = runner
    return queue


def _wait(what: str, probe: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (found := probe()):
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_one_step_of_a_run_at_a_time(sqlite_env: dict[str, str],
                                     open_runner: RunnerFactory) -> None:
    runner = open_runner(sqlite_env)
    active: Counter[str] = Counter()
    peak: Counter[str] = Counter()
    done: list[str] = []
    lock = threading.Lock()
    overall = {"now": 0, "peak": 0}

    def resume(thread_id: str) -> None:
        with lock:
            active[thread_id] += 1
            overall["now"] += 1
            peak[thread_id] = max(peak[thread_id], active[thread_id])
            overall["peak"] = max(overall["peak"], overall["now"])
        time.sleep(0.4)
        with lock:
            active[thread_id] -= 1
            overall["now"] -= 1
            done.append(thread_id)

    runner.resume = resume  # type: ignore[method-assign]
    queue = _queue(runner, max_concurrent_jobs=4, job_poll_interval_ms=50)
    queue.start(worker=False)
    try:
        assert queue.defer_advance("run-a") is True
        assert queue.defer_advance("run-a") is False  # already waiting: absorbed
        assert queue.defer_advance("run-b") is True
        queue.start_worker()
        _wait("run-a to start", lambda: active["run-a"] == 1)
        assert queue.defer_advance("run-a") is True  # a second step while the first runs
        _wait("three steps", lambda: len(done) == 3)
    finally:
        queue.stop()
    assert Counter(done) == {"run-a": 2, "run-b": 1}
    assert peak["run-a"] == 1  # never two steps of one run at once
    assert overall["peak"] == 2  # but different runs do run in parallel


def test_a_failing_step_retries_then_fails_terminally(sqlite_env: dict[str, str],
                                                      open_runner: RunnerFactory) -> None:
    runner = open_runner(sqlite_env)
    view, created = runner.enqueue("maintenance", issue(1))
    assert created and view.status == "queued"
    attempts: list[str] = []
    statuses: list[str] = []

    def resume(thread_id: str) -> None:
        attempts.append(thread_id)
        statuses.append(runner.run_record(thread_id).status)
        raise ConnectionError("backend unreachable")

    runner.resume = resume  # type: ignore[method-assign]
    queue = _queue(runner, job_max_attempts=3, job_retry_wait_s=0, job_poll_interval_ms=50)
    queue.start(worker=True)  # start-up re-queues the queued run by itself
    try:
        run = _wait("the run to fail terminally", lambda: (
            (r := runner.run_record(view.thread_id)).status == "failed_terminal" and r))
    finally:
        queue.stop()
    assert len(attempts) == 3
    assert statuses == ["queued", "failed_retryable", "failed_retryable"]
    assert "ConnectionError: backend unreachable" in (run.error or "")
    exc = query_app_db(sqlite_env, "SELECT category, status FROM agent_exceptions WHERE "
                                   "thread_id = ?", (view.thread_id,))
    assert exc == [("SYSTEM", "OPEN")]
    ledger = [r[0] for r in query_app_db(sqlite_env, "SELECT event_type FROM ledger_entries "
                                                     "WHERE thread_id = ? ORDER BY seq",
                                         (view.thread_id,))]
    assert ledger == ["INTENT", "ERROR"]


def test_start_up_requeues_unfinished_runs_and_they_complete(
        sqlite_env: dict[str, str], open_runner: RunnerFactory) -> None:
    runner = open_runner(sqlite_env)
    ids = [runner.enqueue("maintenance", issue(n, unit=u, text=t))[0].thread_id
           for n, u, t in ((1, "P-GRAND-2B", "Kitchen sink is leaking."),
                           (2, "P-ASTORIA-1A", "I smell gas in the hallway."))]
    queue = _queue(runner, job_poll_interval_ms=50)
    queue.start(worker=True)
    try:
        finals = _wait("both runs to stop", lambda: (
            all((s := [runner.run_record(i).status for i in ids])[k] in
                ("completed", "needs_approval") for k in range(2)) and s))
    finally:
        queue.stop()
    assert finals == ["completed", "needs_approval"]  # routine leak; gas smell waits


def test_settings_validate_worker_knobs() -> None:
    with pytest.raises(ValueError, match="AGENT_MAX_CONCURRENT_JOBS"):
        make_settings({"AGENT_MAX_CONCURRENT_JOBS": "0"})
    with pytest.raises(ValueError, match="not a cron expression"):
        make_settings({"AUTOPILOT_SCHEDULES": '{"maintenance": "every hour"}'})
    with pytest.raises(ValueError, match="must be a JSON object"):
        make_settings({"AUTOPILOT_SCHEDULES": "hourly"})
    assert make_settings({"AUTOPILOT_SCHEDULES": ""}).schedules == {}  # as in .env.example


def test_an_empty_schedules_variable_in_the_environment_means_defaults(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from autopilot.config import Settings

    monkeypatch.setenv("AUTOPILOT_SCHEDULES", "")  # what .env.example sets
    assert Settings().schedules == {}
