"""The revenue autopilot (seed 003) end to end through the runner, on SQLite and Postgres:
every decision-protocol outcome, the three action classes under policy, the meeting brief,
signals with TTL, the scan, faults, dedupe, and the HTTP API with a real server."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from autopilot.db import ALL_TENANTS
from autopilot.models import AgentException, ToolCall
from autopilot.runtime import Runner
from autopilot.sandbox.revenue import (
    RevAccount,
    RevAccountState,
    RevDecision,
    RevDocument,
    RevMeeting,
    RevOutreach,
    RevSignal,
    RevTask,
    RevTicket,
)
from graphs.revenue.detect import detect
from graphs.revenue.events import EVENT_TYPES
from graphs.trigger import TriggerError, parse_trigger
from tests.helpers import TENANT, cli_ok, no_ticks, query_app_db, serve_api
from tools.revenue import SIGNALS


def event(n: int | str, event_type: str, payload: dict[str, Any],
          at: datetime | None = None) -> dict[str, Any]:
    return {"event_id": f"rev-{n}", "tenant_id": TENANT, "source": "test",
            "event_type": event_type, "occurred_at": (at or datetime.now(UTC)).isoformat(),
            "payload": payload}


def changed(n: int | str, account: str, at: datetime | None = None) -> dict[str, Any]:
    at = at or datetime.now(UTC)
    return event(n, "account_changed", {"account_id": account, "changed_through": at.isoformat(),
                                        "sources": ["crm"]}, at)


def vertex(n: int) -> dict[str, Any]:
    return event(n, "next_best_action", {"request_id": f"ask-{n}", "account_id": "ACC-VERTEX",
                                         "requested_by": "marco.rossi@seller.example"})


def rows(runner: Runner, model: Any, *where: Any) -> list[Any]:
    with runner.services.db.session(ALL_TENANTS) as s:
        return list(s.scalars(select(model).where(model.tenant_id == TENANT, *where)))


def steps(view: Any) -> dict[str, dict[str, Any]]:
    return {p["action_id"]: p for p in view.values["proposals"]}


def decision(runner: Runner, view: Any) -> RevDecision:
    [found] = rows(runner, RevDecision, RevDecision.thread_id == view.thread_id)
    return found


def answer(view: Any, **by_action: dict[str, Any]) -> dict[str, Any]:
    """A decision per pending action (approve unless named)."""
    ids = view.pending_approval["request"]["action_ids"]
    return {"decisions": [by_action.get(a, {"type": "approve"}) for a in ids]}


def test_signal_catalogue_and_payloads_are_typed() -> None:
    assert len(SIGNALS) >= 10 and all(k.ttl_hours > 0 for k in SIGNALS.values())
    bad = event(1, "signal_batch_ready", {
        "batch_id": "b1", "account_id": "ACC-ORBIT", "source": "feed",
        "signals": [{"signal_type": "OPPORTUNITY_STAGE_CHANGED", "severity": 9, "confidence": 2,
                     "summary": "moved", "evidence": []}]})
    with pytest.raises(TriggerError) as err:
        parse_trigger(bad, EVENT_TYPES)
    fields = {f["field"] for f in err.value.fields}
    assert {"payload.signals.0.severity", "payload.signals.0.confidence",
            "payload.signals.0.evidence"} <= fields


def test_allow_path_acts_alone_ignores_expired_signals_and_then_rests(runner: Runner) -> None:
    view = runner.submit("revenue", changed(1, "ACC-NORTHWIND"))
    assert (view.status, view.outcome) == ("completed", "resolved"), view.values.get("escalation")
    assert view.values["run_facts"]["intent"] == "ACTION_PROPOSALS"
    assert view.summary.startswith("ACTION_PROPOSALS")
    by = steps(view)
    assert all(p["status"] == "executed" for p in by.values())
    assert all(c["ok"] for c in view.values["verification"])
    assert by["update_health"]["decision"]["reasons"] == ["REVENUE_CONFIDENT_MUTATION"]
    assert by["update_health"]["confidence"] >= 0.8
    assert by["emit_signals"]["decision"]["reasons"] == ["REVENUE_INTERNAL_AUTONOMOUS"]

    signals = {s.signal_type: s for s in rows(runner, RevSignal,
                                              RevSignal.account_id == "ACC-NORTHWIND")}
    assert {"SUPPORT_SEV2_AGING", "USAGE_DROP_PERCENT", "RENEWAL_WINDOW_ENTERED"} <= set(signals)
    aging = signals["SUPPORT_SEV2_AGING"]
    assert aging.severity == 3 and float(aging.confidence) == 0.95
    assert aging.evidence_refs == ["ticket:T-NW-4411"] and aging.expires_at > aging.detected_at
    [state] = rows(runner, RevAccountState, RevAccountState.id == "ACC-NORTHWIND")
    assert state.posture == "AT_RISK" and state.version == 1
    assert "SIG-SEED-NW-1" not in state.signal_ids  # expired: ignored
    assert {r["signal_type"] for r in state.top_risks} == {"USAGE_DROP_PERCENT",
                                                          "SUPPORT_SEV2_AGING"}
    assert all(r["why"] and r["evidence_refs"] for r in state.top_risks)
    assert any(c.startswith("New signal USAGE_DROP_PERCENT") for c in state.recent_changes)
    recorded = decision(runner, view)
    assert recorded.outcome == "ACTION_PROPOSALS"
    assert recorded.validators["expired_ignored"] == ["SIG-SEED-NW-1"]
    assert recorded.validators["freshness"]["ok"] and recorded.validators["grounding"]["ok"]
    [account] = rows(runner, RevAccount, RevAccount.id == "ACC-NORTHWIND")
    assert account.health_score == state.health_estimate < 82
    tasks = rows(runner, RevTask, RevTask.account_id == "ACC-NORTHWIND")
    assert sorted(t.task_key.split("|")[1] for t in tasks) == ["SUPPORT_SEV2_AGING",
                                                               "USAGE_DROP_PERCENT"]

    later = datetime.now(UTC) + timedelta(minutes=5)
    again = runner.submit("revenue", changed(2, "ACC-NORTHWIND", later))
    assert again.values["run_facts"]["intent"] == "NO_ACTION"
    assert [p["tool"] for p in again.values["proposals"]] == ["revenue_record_decision"]
    assert len(rows(runner, RevTask, RevTask.account_id == "ACC-NORTHWIND")) == 2


def test_meeting_brief_runs_alone_while_the_agenda_email_waits_for_approval(
        runner: Runner) -> None:
    trigger = event(3, "meeting_upcoming", {"account_id": "ACC-HELIOS",
                                            "meeting_id": "M-HE-EXEC"})
    view = runner.submit("revenue", trigger)
    assert view.status == "needs_approval"
    assert view.values["run_facts"]["intent"] == "APPROVAL_REQUEST"
    request = view.pending_approval["request"]
    assert [a["name"] for a in request["action_requests"]] == ["revenue_send_email"]
    assert request["policy"][0]["reasons"] == ["AUTONOMY_LEVEL", "REVENUE_HUMAN_TOUCH"]
    assert rows(runner, RevOutreach) == []  # nothing reached the customer yet
    [doc] = rows(runner, RevDocument, RevDocument.meeting_id == "M-HE-EXEC")
    brief = doc.content
    assert brief["account_state"]["posture"] == "WATCH"
    assert {s["signal_type"] for s in brief["signals"]} >= {"CLOSE_DATE_SLIPPED",
                                                           "FUNDING_ANNOUNCEMENT"}
    assert all(s["evidence_refs"] for s in brief["signals"]) and brief["top_risks"]
    assert brief["talking_points"] and brief["last_meeting"]["id"] == "M-HE-DEMO"
    [account] = rows(runner, RevAccount, RevAccount.id == "ACC-HELIOS")
    assert account.next_step.startswith("Re-confirm the close plan")  # confident: on its own

    same = runner.submit("revenue", trigger)
    assert same.deduplicated and same.thread_id == view.thread_id

    done = runner.decide(view.thread_id, answer(view), reviewer="marco")
    assert (done.status, done.outcome) == ("completed", "resolved")
    [sent] = rows(runner, RevOutreach)
    assert (sent.kind, sent.contact_id, sent.cc, sent.status) == ("EMAIL", "C-HE-1",
                                                                  ["C-HE-2"], "SENT")
    assert decision(runner, view).outcome == "APPROVAL_REQUEST"
    with runner.services.db.session(ALL_TENANTS) as s:
        calls = s.scalars(select(ToolCall.action_id).where(
            ToolCall.thread_id == view.thread_id)).all()
    assert sorted(calls) == sorted(set(calls)) and "agenda" in calls  # each write once


def test_edit_past_policy_is_blocked_then_reject_edit_and_approve(runner: Runner) -> None:
    view = runner.submit("revenue", vertex(4))
    assert view.status == "needs_approval"
    policy = {p["action_id"]: p["reasons"] for p in view.pending_approval["request"]["policy"]}
    assert policy["update_health"] == ["REVENUE_MUTATION_LOW_CONFIDENCE",
                                       "UNGROUNDED_PROPOSAL"]
    assert "REVENUE_HUMAN_TOUCH" in policy["check_in"]
    assert "REVENUE_HUMAN_TOUCH" in policy["offer_discount"]
    grounding = decision(runner, view).validators["grounding"]
    assert not grounding["ok"] and "call_transcript:CALL-8812" in json.dumps(grounding)
    # An approver cannot edit past policy: a 30% discount is blocked, the plan held whole.
    discount = steps(view)["offer_discount"]["args"]
    assert discount["discount_pct"] == 10
    blocked = runner.decide(view.thread_id, answer(view, offer_discount={
        "type": "edit", "edited_action": {"name": "revenue_offer_discount",
                                          "args": {**discount, "discount_pct": 30}}}),
        reviewer="marco")
    assert blocked.status == "escalated"
    assert steps(blocked)["offer_discount"]["decision"]["reasons"] == [
        "REVENUE_DISCOUNT_OVER_LIMIT"]
    [exc] = rows(runner, AgentException, AgentException.thread_id == view.thread_id)
    assert "REVENUE_DISCOUNT_OVER_LIMIT" in exc.context["blocked_rules"]
    assert rows(runner, RevOutreach) == []
    [account] = rows(runner, RevAccount, RevAccount.id == "ACC-VERTEX")
    assert account.health_score == 70  # approved, but held with the blocked discount

    # Asked again: reject two, edit the discount within policy (a person sees it again).
    view = runner.submit("revenue", vertex(5))
    discount = steps(view)["offer_discount"]["args"]
    edited = runner.decide(view.thread_id, answer(
        view, update_health={"type": "reject", "message": "call notes not verified"},
        check_in={"type": "reject", "message": "I will call Omar myself"},
        offer_discount={"type": "edit", "edited_action": {
            "name": "revenue_offer_discount", "args": {**discount, "discount_pct": 12}}}),
        reviewer="marco")
    assert edited.status == "needs_approval"
    assert edited.pending_approval["request"]["action_ids"] == ["offer_discount"]
    done = runner.decide(edited.thread_id, answer(edited), reviewer="marco")
    assert (done.status, done.outcome) == ("completed", "resolved")
    by = steps(done)
    assert by["update_health"]["status"] == by["check_in"]["status"] == "rejected"
    [offer] = rows(runner, RevOutreach)
    assert (offer.kind, offer.discount_pct, offer.contact_id) == ("DISCOUNT_OFFER", 12, "C-VX-2")
    [account] = rows(runner, RevAccount, RevAccount.id == "ACC-VERTEX")
    assert account.health_score == 70  # the rejected CRM change never ran
    notes = rows(runner, RevTask, RevTask.kind == "NOTE", RevTask.thread_id == view.thread_id)
    assert len(notes) == 1 and notes[0].assignee == "marco.rossi@seller.example"


def test_every_other_protocol_outcome_and_an_external_signal_batch(
        runner: Runner) -> None:
    stale = runner.submit("revenue", changed(6, "ACC-BRIGHTLINE"))
    assert stale.values["run_facts"]["intent"] == "DATA_REQUEST"
    assert [p["tool"] for p in stale.values["proposals"]] == ["revenue_request_data",
                                                              "revenue_record_decision"]
    [ask] = rows(runner, RevTask, RevTask.account_id == "ACC-BRIGHTLINE")
    assert (ask.kind, ask.assignee) == ("DATA_REQUEST", "connector:crm")
    assert rows(runner, RevSignal, RevSignal.account_id == "ACC-BRIGHTLINE") == []
    assert not decision(runner, stale).validators["freshness"]["ok"]

    conflict = runner.submit("revenue", changed(7, "ACC-QUANTA"))
    assert conflict.values["run_facts"]["intent"] == "CLARIFICATION_REQUEST"
    tools = {p["tool"] for p in conflict.values["proposals"]}
    assert "revenue_update_account" not in tools and "revenue_create_task" not in tools
    [question] = rows(runner, RevTask, RevTask.account_id == "ACC-QUANTA")
    assert question.kind == "CLARIFICATION" and len(question.questions) == 1
    assert "SIG-SEED-QU-1" in question.body and "down 37%" in question.questions[0]

    runner.services.gateway.faults.set("revenue_record_decision", transient=2)  # retried
    quiet = runner.submit("revenue", changed(8, "ACC-ORBIT"))
    assert (quiet.status, quiet.outcome) == ("completed", "resolved")
    assert quiet.values["run_facts"]["intent"] == "NO_ACTION"
    assert decision(runner, quiet).outcome == "NO_ACTION"
    assert [p["tool"] for p in quiet.values["proposals"]] == ["revenue_record_decision"]

    cedar = runner.submit("revenue", changed(9, "ACC-CEDAR"))
    assert cedar.status == "completed", cedar.values.get("escalation")
    assert cedar.values["run_facts"]["intent"] == "ACTION_PROPOSALS"
    [account] = rows(runner, RevAccount, RevAccount.id == "ACC-CEDAR")
    assert account.next_step.startswith("Recover Cedar telehealth add-on")

    # Another system pushes a signal batch: its evidence is captured, so it is grounded.
    view = runner.submit("revenue", event(10, "signal_batch_ready", {
        "batch_id": "news-10", "account_id": "ACC-SUMMIT", "source": "news-feed",
        "signals": [{"signal_type": "FUNDING_ANNOUNCEMENT", "severity": 2, "confidence": 0.75,
                     "summary": "Summit Pay closes a $25M round",
                     "evidence": [{"ref": "news:summit-25m", "source": "FinNews",
                                   "summary": "Summit Pay closes a $25M round"}]}]}))
    assert view.status == "needs_approval"
    by = steps(view)
    assert by["emit_signals"]["grounded"] and "news:summit-25m" in by["emit_signals"][
        "evidence_refs"]
    assert by["update_health"]["status"] == "executed"  # 80%: exactly the threshold
    assert view.pending_approval["request"]["action_ids"] == ["add_seats"]
    [pushed] = rows(runner, RevSignal, RevSignal.signal_type == "FUNDING_ANNOUNCEMENT",
                    RevSignal.account_id == "ACC-SUMMIT")
    assert pushed.source == "external:news-feed" and pushed.evidence_refs == ["news:summit-25m"]


def test_scan_finds_exactly_what_changed_and_a_failing_tool_escalates(
        runner: Runner) -> None:
    now = datetime.now(UTC)
    with runner.services.db.session(ALL_TENANTS) as s:
        full = detect(s, None, now)
        assert detect(s, now, now + timedelta(hours=1)) == []
        with pytest.raises(IntegrityError):  # a signal must expire after it was detected
            with s.begin_nested():
                s.add(RevSignal(tenant_id=TENANT, id="SIG-BAD", account_id="ACC-ORBIT",
                                signal_type="USAGE_DROP_PERCENT", severity=3, confidence=0.9,
                                direction=-1, dimension="usage", subject="usage",
                                summary="x", source="test", evidence_refs=["x:1"],
                                dedupe_key="bad", batch_id="b", detected_at=now,
                                expires_at=now))
    changes = {e["payload"]["account_id"] for e in full if e["event_type"] == "account_changed"}
    assert len(changes) == 8
    assert [e["payload"]["meeting_id"] for e in full
            if e["event_type"] == "meeting_upcoming"] == ["M-HE-EXEC"]

    with runner.services.db.session(ALL_TENANTS) as s:
        s.execute(update(RevTicket).where(RevTicket.id == "T-NW-4411")
                  .values(updated_at=now + timedelta(minutes=10)))
        s.add(RevMeeting(tenant_id=TENANT, id="M-OR-NEW", account_id="ACC-ORBIT",
                         title="Renewal kickoff", starts_at=now + timedelta(hours=48, minutes=30),
                         status="SCHEDULED", attendee_ids=["C-OR-1"],
                         updated_at=now - timedelta(days=1)))
    with runner.services.db.session(ALL_TENANTS) as s:
        found = detect(s, now, now + timedelta(hours=1))
    assert [(e["event_type"], e["payload"]["account_id"]) for e in found] == [
        ("account_changed", "ACC-NORTHWIND"), ("meeting_upcoming", "ACC-ORBIT")]
    assert found[0]["payload"]["sources"] == ["support"]
    # The scan's trigger runs; a tool that fails for good escalates with what was done.
    runner.services.gateway.faults.set("revenue_draft_meeting_brief", permanent=True)
    failed = runner.submit("revenue", {**found[1], "occurred_at": datetime.now(UTC).isoformat()})
    assert failed.status == "escalated"
    assert failed.values["escalation"]["title"] == "Tool failed permanently"
    assert "record_decision" in failed.values["escalation"]["details"]
    assert rows(runner, RevDocument, RevDocument.meeting_id == "M-OR-NEW") == []
    assert len(rows(runner, RevDecision, RevDecision.thread_id == failed.thread_id)) == 1


KEYS = {"k-rev": {"tenant": TENANT, "subject": "marco@seller.example",
                  "roles": ["approver", "ingest"]}}
H = {"Authorization": "Bearer k-rev"}


def _poll(base: str, run_id: str, *wanted: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    run: dict[str, Any] = {}
    while time.monotonic() < deadline:
        run = httpx.get(f"{base}/v1/runs/{run_id}", headers=H, timeout=10).json()
        if run.get("status") in wanted:
            return run
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} never reached {wanted}: {run}")


@pytest.mark.slow
def test_through_the_http_api(sqlite_env: dict[str, str], tmp_path: Path) -> None:
    env = {**sqlite_env, "AUTOPILOT_API_KEYS": json.dumps(KEYS),
           "AUTOPILOT_SCHEDULES": no_ticks(), "AGENT_JOB_POLL_INTERVAL_MS": "100"}
    cli_ok(env, "seed")
    trigger = event(20, "meeting_upcoming", {"account_id": "ACC-HELIOS",
                                             "meeting_id": "M-HE-EXEC"})
    with serve_api(env, tmp_path / "logs") as (base, _stderr):
        posted = httpx.post(f"{base}/v1/events", params={"graph": "revenue"}, json=trigger,
                            headers=H, timeout=10)
        assert posted.status_code == 202, posted.text
        run_id = posted.json()["run_id"]
        again = httpx.post(f"{base}/v1/events", params={"graph": "revenue"}, json=trigger,
                           headers=H, timeout=10)
        assert again.status_code == 200 and again.json()["deduplicated"] is True
        _poll(base, run_id, "needs_approval")
        [approval] = [a for a in httpx.get(f"{base}/v1/approvals", headers=H,
                                           timeout=10).json()["approvals"]
                      if a["run_id"] == run_id]
        decided = httpx.post(f"{base}/v1/approvals/{approval['id']}/decision", headers=H,
                             json={"decision": "approve"}, timeout=30)
        assert decided.status_code == 202, decided.text
        run = _poll(base, run_id, "completed", "escalated", "failed_terminal")
        assert (run["status"], run["outcome"]) == ("completed", "resolved"), run
    assert query_app_db(env, "SELECT kind, status FROM rev_outreach WHERE tenant_id = ?",
                        (TENANT,)) == [("EMAIL", "SENT")]
    assert query_app_db(env, "SELECT outcome FROM rev_decisions WHERE thread_id = ?",
                        (run_id,)) == [("APPROVAL_REQUEST",)]
