"""The audit ledger: every run event on record, hash-chained per tenant, append-only,
tampering named by `ledger verify`, trace ids from trigger to tool call."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

import pytest
from sqlalchemy import select

from autopilot.db import ALL_TENANTS
from autopilot.models import LedgerEntry, ToolCall
from autopilot.runtime import Runner
from tests.conftest import RunnerFactory
from tests.helpers import TENANT, approve_all, execute_app_db, issue, query_app_db

WATER_HEATER = "Water heater is broken, no hot water since yesterday."


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "autopilot", *args], capture_output=True,
                          text=True, timeout=120, env={**env, "COLUMNS": "200"})


def test_a_run_tells_its_whole_story_with_one_trace_id(runner: Runner) -> None:
    event = issue(1, unit="P-FLATBUSH-3B", text=WATER_HEATER)
    event["trace_id"] = "trace-water-heater"
    view = runner.submit("maintenance", event)
    assert view.status == "needs_approval"
    done = runner.decide(view.thread_id, approve_all(view), reviewer="maria@acme.example")
    assert done.status == "completed"
    story = runner.services.ledger.story(view.thread_id)
    kinds = [e.event_type for e in story]
    assert kinds[0] == "INTENT" and kinds[-1] == "VERIFICATION"
    assert {"EVIDENCE", "SIGNAL", "PROPOSAL", "POLICY_DECISION", "APPROVAL",
            "TOOL_CALL"} <= set(kinds)
    assert {e.trace_id for e in story} == {"trace-water-heater"}
    approval = next(e for e in story if e.event_type == "APPROVAL")
    assert approval.payload["reviewer"] == "maria@acme.example"
    assert {"action_id": "dispatch", "type": "approve"} in approval.payload["decisions"]
    calls = [e.payload for e in story if e.event_type == "TOOL_CALL"]
    assert [c["status"] for c in calls] == ["ok"] * 4
    dispatch = next(c for c in calls if c["tool"] == "dispatch_vendor")
    assert dispatch["reason_code"].startswith("APPROVED:")
    with runner.services.db.session(ALL_TENANTS) as s:
        traces = set(s.scalars(select(ToolCall.trace_id).where(
            ToolCall.thread_id == view.thread_id)))
    assert traces == {"trace-water-heater"}
    # The resident's name and the message body are redacted on the ledger.
    ack = next(c for c in calls if c["tool"] == "send_resident_message")
    assert ack["input"]["body"].startswith("Hi [name], we received")
    assert runner.services.ledger.verify(TENANT).ok


def test_chain_verifies_and_names_an_altered_entry(
        backend_env: dict[str, str], open_runner: RunnerFactory) -> None:
    runner = open_runner(backend_env)
    for n, unit in ((2, "P-GRAND-2B"), (3, "P-ASTORIA-1A")):
        runner.submit("maintenance", issue(n, unit=unit))
    verified = _cli(backend_env, "ledger", "verify")
    assert verified.returncode == 0 and "intact" in verified.stdout
    [(target_id, seq)] = query_app_db(
        backend_env, "SELECT id, seq FROM ledger_entries WHERE tenant_id = ? AND "
                     "event_type = 'TOOL_CALL' ORDER BY seq LIMIT 1", (TENANT,))
    if backend_env["DATABASE_URL"]:  # as a superuser, with the append-only trigger disabled
        execute_app_db(backend_env,
                       "ALTER TABLE ledger_entries DISABLE TRIGGER ledger_entries_no_change",
                       "UPDATE ledger_entries SET payload = '{\"status\": \"ok\", \"tool\": "
                       f"\"nothing_to_see\"}}' WHERE id = {target_id}",
                       "ALTER TABLE ledger_entries ENABLE TRIGGER ledger_entries_no_change")
    else:
        execute_app_db(backend_env, "DROP TRIGGER ledger_entries_no_update",
                       "UPDATE ledger_entries SET payload = '{\"status\": \"ok\", \"tool\": "
                       f"\"nothing_to_see\"}}' WHERE id = {target_id}")
    broken = _cli(backend_env, "ledger", "verify", "--tenant", TENANT)
    assert broken.returncode == 1
    assert f"entry #{seq} (TOOL_CALL) was altered (row id {target_id})" in broken.stdout
    report = runner.services.ledger.verify(TENANT)
    assert (report.ok, report.seq, report.entry_id) == (False, seq, target_id)


def test_a_missing_entry_is_named(sqlite_env: dict[str, str],
                                  open_runner: RunnerFactory) -> None:
    runner = open_runner(sqlite_env)
    runner.submit("maintenance", issue(4))
    execute_app_db(sqlite_env, "DROP TRIGGER ledger_entries_no_delete",
                   f"DELETE FROM ledger_entries WHERE tenant_id = '{TENANT}' AND seq = 5")
    report = runner.services.ledger.verify(TENANT)
    assert not report.ok and report.problem == "entry #5 is missing (next is #6)"


def test_ledger_and_evidence_refuse_update_and_delete(
        backend_env: dict[str, str], open_runner: RunnerFactory) -> None:
    runner = open_runner(backend_env)
    runner.submit("maintenance", issue(5))
    for sql in ("UPDATE ledger_entries SET event_type = 'ERROR'",
                "DELETE FROM ledger_entries", "UPDATE evidence SET summary = 'x'",
                "DELETE FROM evidence"):
        with pytest.raises(Exception, match="append-only"):
            execute_app_db(backend_env, sql)
    if backend_env["DATABASE_URL"]:
        with pytest.raises(Exception, match="append-only"):
            execute_app_db(backend_env, "TRUNCATE ledger_entries")
    assert runner.services.ledger.verify(TENANT).ok


def test_ledger_show_prints_the_story(sqlite_env: dict[str, str],
                                      open_runner: RunnerFactory) -> None:
    runner = open_runner(sqlite_env)
    view = runner.submit("maintenance", issue(6, text="I smell gas near the stove"))
    shown = _cli(sqlite_env, "ledger", "show", view.thread_id)
    assert shown.returncode == 0, shown.stderr
    for phrase in ("trigger tenant_issue", "EMERGENCY_ALWAYS_ESCALATE", "proposed dispatch",
                   "gate create_wo create_work_order -> REQUIRE_APPROVAL"):
        assert phrase in shown.stdout
    missing = _cli(sqlite_env, "ledger", "show", "maintenance-nope")
    assert missing.returncode == 2 and "no ledger entries" in missing.stderr


def test_concurrent_appends_keep_one_chain(backend_env: dict[str, str],
                                           open_runner: RunnerFactory) -> None:
    import threading

    runner = open_runner(backend_env)
    ledger = runner.services.ledger

    def burst(n: int) -> None:
        for i in range(10):
            ledger.record(tenant_id="chain-test", event_type="SIGNAL",
                          payload={"worker": n, "i": i})

    threads = [threading.Thread(target=burst, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    report = ledger.verify("chain-test")
    assert report.ok and report.entries == 60
    with runner.services.db.session(ALL_TENANTS) as s:
        seqs = list(s.scalars(select(LedgerEntry.seq).where(
            LedgerEntry.tenant_id == "chain-test").order_by(LedgerEntry.seq)))
    assert seqs == list(range(1, 61))


def test_replaying_a_finished_run_repeats_no_write_and_is_ledgered(runner: Runner) -> None:
    view = runner.submit("maintenance", issue(7))
    assert view.status == "completed"
    with runner.services.db.session(ALL_TENANTS) as s:
        calls_before = s.scalars(select(ToolCall.idempotency_key)).all()
    load_before = query_app_db_vendor_load(runner)
    replayed = runner.replay(view.thread_id, by="auditor@acme.example")
    assert replayed.status == "completed"
    # The world moved on (the work order now exists), so the replay plans differently: the
    # action that ran before returns its recorded result; the new one is only simulated.
    statuses = {p["action_id"]: (p["status"], p["replayed"])
                for p in replayed.values["proposals"]}
    assert statuses["ack_resident"] == ("executed", True)
    assert statuses["update_wo"] == ("simulated", False)
    with runner.services.db.session(ALL_TENANTS) as s:
        assert s.scalars(select(ToolCall.idempotency_key)).all() == calls_before
    assert query_app_db_vendor_load(runner) == load_before  # nothing ran twice
    story = runner.services.ledger.story(view.thread_id)
    intents = [e.payload for e in story if e.event_type == "INTENT"]
    assert intents[-1]["replay"] is True and intents[-1]["by"] == "auditor@acme.example"
    calls = Counter(e.payload["status"] for e in story if e.event_type == "TOOL_CALL")
    assert calls == {"ok": 4, "replayed": 1, "simulated": 1}
    assert runner.services.ledger.verify(TENANT).ok


def query_app_db_vendor_load(runner: Runner) -> dict[str, int]:
    from autopilot.models import Vendor

    with runner.services.db.session(ALL_TENANTS) as s:
        return {v.id: v.open_work_orders for v in s.scalars(select(Vendor).where(
            Vendor.tenant_id == TENANT))}


def test_a_replay_paused_at_an_approval_still_acts_on_nothing(runner: Runner) -> None:
    view = runner.submit("maintenance", issue(8, unit="P-FLATBUSH-3B", text=WATER_HEATER))
    assert view.status == "needs_approval"  # the work order exists; the dispatch waits
    with runner.services.db.session(ALL_TENANTS) as s:
        calls_before = s.scalars(select(ToolCall.idempotency_key)).all()
    replayed = runner.replay(view.thread_id, by="auditor@acme.example")
    assert replayed.status == "needs_approval"
    after = runner.decide(replayed.thread_id, approve_all(replayed), reviewer="maria@acme.example")
    assert after.status == "completed"
    assert {p["status"] for p in after.values["proposals"]} <= {"executed", "simulated"}
    with runner.services.db.session(ALL_TENANTS) as s:
        assert s.scalars(select(ToolCall.idempotency_key)).all() == calls_before
        from autopilot.models import PolicyDecisionRecord

        replay_rows = s.scalars(select(PolicyDecisionRecord).where(
            PolicyDecisionRecord.thread_id == view.thread_id,
            PolicyDecisionRecord.stage == "execute")).all()
    assert sum(r.proceeds for r in replay_rows) == 1  # only the original create_wo counted
