"""Two answers to the same approval: exactly one resumes the run, the tool runs once.

The water-heater report needs approval for its dispatch (estimate 1400 > the 750 auto limit).
Two reviewers answer it at the same moment, as two CLI processes and as two threads with
their own connections; the other answer must be refused with a clear error naming who won.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from autopilot.runtime import ApprovalConflict, Runner, RunView
from tests.conftest import RunnerFactory
from tests.helpers import TENANT, approve_all, autopilot_argv, issue, query_app_db, run_cli

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]

ACTIONS = {"create_wo", "dispatch", "ack_resident", "follow_up"}
REVIEWERS = ("alice", "bob")


def water_heater() -> dict[str, Any]:
    return issue(2, unit="P-FLATBUSH-3B",
                 text="Water heater is broken, no hot water since yesterday.")


def _flat(text: str) -> str:
    """Rich wraps long lines at the terminal width; compare messages with whitespace folded."""
    return " ".join(text.split())


def _vendor_load(env: dict[str, str]) -> dict[str, int]:
    return dict(query_app_db(env, "SELECT id, open_work_orders FROM vendors WHERE tenant_id = ?",
                             (TENANT,)))


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value  # SQLite returns JSON as text


def assert_ran_once(env: dict[str, str], thread_id: str, approval_id: str, winner: str,
                    load_before: dict[str, int]) -> None:
    """The run finished on the winner's decision, and every effect happened exactly once."""
    [(run_status,)] = query_app_db(env, "SELECT status FROM runs WHERE thread_id = ?",
                                   (thread_id,))
    assert run_status == "completed"
    approvals = query_app_db(env, "SELECT id, status, decided_by FROM approvals "
                                  "WHERE thread_id = ?", (thread_id,))
    assert approvals == [(approval_id, "decided", winner)]
    calls = query_app_db(env, "SELECT action_id, count(*) FROM tool_calls WHERE thread_id = ? "
                              "GROUP BY action_id", (thread_id,))
    assert dict(calls) == dict.fromkeys(ACTIONS, 1)
    [(auth, args)] = query_app_db(env, 'SELECT "authorization", args FROM tool_calls '
                                       "WHERE thread_id = ? AND action_id = 'dispatch'",
                                  (thread_id,))
    auth, args = _json(auth), _json(args)
    assert (auth["approval_id"], auth["reviewer"]) == (approval_id, winner)
    assert auth["reason_code"].startswith(f"APPROVED:{approval_id}")
    assert isinstance(auth["decision_id"], int)
    load_after = _vendor_load(env)
    changed = {v: load_after[v] - load_before[v] for v in load_before
               if load_after[v] != load_before[v]}
    assert changed == {args["vendor_id"]: 1}, "the dispatch must have been applied exactly once"
    [(wo_count,)] = query_app_db(env, "SELECT count(*) FROM work_orders WHERE source_ref = ?",
                                 ("msg:MSG-2",))
    assert wo_count == 1
    [(outgoing,)] = query_app_db(env, "SELECT count(*) FROM messages WHERE direction = 'out' "
                                      "AND resident_id = ?", ("R-FLATBUSH-3B",))
    assert outgoing == 1, "the resident is acknowledged once"


# A child that is `autopilot` itself, except that each time it loads the approval (the CLI
# does, then `decide` again) it waits until every reviewer has loaded it as often: both see it
# pending right up to the claim, so only the conditional claim can settle the race.
HELD_AFTER_READ = """
import itertools, os, sys, time
from pathlib import Path

import autopilot.runtime as rt

gate, parties, calls = Path(os.environ["TEST_READ_BARRIER"]), 2, itertools.count()
load = rt.Runner.approval_for

def approval_for(self, ref, **kw):
    approval = load(self, ref, **kw)
    n = next(calls)
    (gate / f"{os.getpid()}.{n}").touch()
    deadline = time.monotonic() + 30
    while len(list(gate.glob(f"*.{n}"))) < parties:
        if time.monotonic() > deadline:
            sys.exit("read barrier timed out")
        time.sleep(0.01)
    return approval

rt.Runner.approval_for = approval_for
from autopilot.cli import app
app()
"""


@pytest.mark.parametrize("held", [False, True], ids=["free_race", "both_read_pending"])
def test_two_processes_approve_the_same_action(backend_env: dict[str, str], tmp_path: Path,
                                               open_runner: RunnerFactory, held: bool) -> None:
    env = backend_env
    # Seed and submit in this process (as `autopilot seed` / `run` would; it saves two child
    # start-ups); the answers below are two separate `autopilot approve` processes.
    view = open_runner(env).submit("maintenance", water_heater())
    load_before = _vendor_load(env)
    assert view.status == "needs_approval"
    thread_id, approval_id = view.thread_id, view.pending_approval["id"]
    assert view.pending_approval["request"]["action_ids"] == ["dispatch"]
    # Only the allowed work ran before the approval: the work order, not the held dispatch.
    assert query_app_db(env, "SELECT action_id FROM tool_calls") == [("create_wo",)]

    child_env = env
    if held:
        barrier = tmp_path / "read-barrier"
        barrier.mkdir()
        child_env = {**env, "TEST_READ_BARRIER": str(barrier)}

    def argv(who: str) -> list[str]:
        args = ("approve", thread_id, "--as", who)
        return [sys.executable, "-c", HELD_AFTER_READ, *args] if held else autopilot_argv(*args)

    procs = {who: subprocess.Popen(argv(who), env=child_env, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, cwd=tmp_path)
             for who in REVIEWERS}
    answers: dict[str, tuple[int, str, str]] = {}
    try:
        for who, proc in procs.items():
            out, err = proc.communicate(timeout=90)
            answers[who] = (proc.returncode, out, err)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)

    codes = sorted(code for code, _, _ in answers.values())
    assert codes == [0, 3], answers
    [winner] = [who for who, (code, _, _) in answers.items() if code == 0]
    [loser] = [who for who in REVIEWERS if who != winner]
    refused = _flat(answers[loser][2])
    assert f"error: approval {approval_id} was already decided by {winner}" in refused, refused
    if held:  # refused by the conditional claim, not by the earlier status check
        assert refused.endswith(f"already decided by {winner}"), refused
    assert f"decided by {winner}" in _flat(answers[winner][1])
    assert_ran_once(env, thread_id, approval_id, winner, load_before)

    if not held:  # a late third answer is refused the same way and changes nothing
        late = run_cli(env, "approve", thread_id, "--reject", "too late", "--as", "carol")
        assert late.returncode == 3, (late.stdout, late.stderr)
        assert f"already decided by {winner}" in _flat(late.stderr)
        assert_ran_once(env, thread_id, approval_id, winner, load_before)


def test_two_threads_decide_concurrently(backend_env: dict[str, str],
                                         open_runner: RunnerFactory) -> None:
    env = backend_env
    runners = {who: open_runner(env) for who in REVIEWERS}  # separate engines and connections
    load_before = _vendor_load(env)
    view = runners["alice"].submit("maintenance", water_heater())
    assert view.status == "needs_approval"
    approval_id = view.pending_approval["id"]

    # Both reviewers have loaded the approval and seen it pending before either claims it,
    # so the early status check cannot save the loser: the claim itself must decide.
    both_read = threading.Barrier(len(REVIEWERS), timeout=30)
    for runner in runners.values():
        def approval_for(ref: str, _load: Any = runner.approval_for, **kw: Any) -> Any:
            approval = _load(ref, **kw)
            assert approval.status == "pending"
            both_read.wait()
            return approval
        runner.approval_for = approval_for  # type: ignore[method-assign]

    def answer(who: str, runner: Runner) -> RunView | ApprovalConflict:
        try:
            return runner.decide(view.thread_id, approve_all(view), reviewer=who)
        except ApprovalConflict as exc:
            return exc

    with ThreadPoolExecutor(max_workers=len(REVIEWERS)) as pool:
        futures = {who: pool.submit(answer, who, r) for who, r in runners.items()}
        results = {who: f.result(timeout=90) for who, f in futures.items()}

    wins = [who for who, r in results.items() if isinstance(r, RunView)]
    conflicts = [who for who, r in results.items() if isinstance(r, ApprovalConflict)]
    assert len(wins) == 1 and len(conflicts) == 1, results
    [winner], [loser] = wins, conflicts
    assert results[winner].status == "completed"
    assert str(results[loser]) == f"approval {approval_id} was already decided by {winner}"
    assert_ran_once(env, view.thread_id, approval_id, winner, load_before)
