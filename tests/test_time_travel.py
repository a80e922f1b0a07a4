"""Forks: replay from a checkpoint with edited state or under a pinned policy version, and
never an effect that was not there before."""

from __future__ import annotations

import pytest

from autopilot.runtime import Runner
from tests.helpers import TENANT, issue, query_app_db


def _writes(runner: Runner) -> int:
    with runner.services.db.session(TENANT) as s:
        from sqlalchemy import func, select

        from autopilot.models import ToolCall

        return int(s.scalar(select(func.count()).select_from(ToolCall)) or 0)


def test_replay_under_a_pinned_policy_version(runner: Runner, backend_env: dict[str, str]
                                              ) -> None:
    done = runner.submit("maintenance", issue(1))
    assert (done.status, done.outcome) == ("completed", "resolved")
    writes = _writes(runner)
    stricter = runner.services.policy_store.create(
        scope_type="tenant", tenant_id=TENANT, cedar="", author="test",
        config={"spend": {"autoApproveMax": 50}}, note="candidate, not active")
    assert not stricter.active
    replayed = runner.replay(done.thread_id, by="auditor", policy_version=stricter.id)
    # Under the candidate the 250 dispatch would need a person; it ran before, so the replay
    # keeps its recorded result and nothing new is written.
    assert _writes(runner) == writes
    versions = {v for (v,) in query_app_db(
        backend_env, "SELECT DISTINCT policy_version FROM policy_decisions WHERE thread_id = ?",
        (done.thread_id,))}
    assert len(versions) == 2  # the original decisions and the pinned replay's
    assert replayed.status in ("completed", "needs_approval")
    assert runner.run_record(done.thread_id).replay_policy_version == stricter.id


def test_fork_with_edited_state_and_bad_edits(runner: Runner) -> None:
    view = runner.submit("maintenance", issue(2, unit="P-FLATBUSH-3B",
                                              text="Water heater is broken, no hot water."))
    assert view.status == "needs_approval"
    history = runner.history(view.thread_id)
    before_gate = next(c for c in history if c["next"] == ["gate"])
    with pytest.raises(ValueError, match="unknown state key"):
        runner.fork(view.thread_id, before_gate["checkpoint_id"], values={"nonsense": 1})
    state = runner.graph("maintenance").get_state(
        {"configurable": {"thread_id": view.thread_id,
                          "checkpoint_id": before_gate["checkpoint_id"]}})
    proposals = [dict(p) for p in state.values["proposals"]]
    kept = [p for p in proposals if p["tool"] == "create_work_order"]
    assert kept and len(kept) < len(proposals)
    writes = _writes(runner)
    runner.fork(view.thread_id, before_gate["checkpoint_id"], values={"proposals": kept},
                by="auditor")
    forked = runner.resume(view.thread_id)
    # The edited plan has only the work order, which had already been written: the fork
    # completes with it (recorded result) and adds nothing.
    assert (forked.status, forked.outcome) == ("completed", "resolved")
    assert [p["tool"] for p in forked.values["proposals"]] == ["create_work_order"]
    assert _writes(runner) == writes
