"""Tenant comms autopilot (seed 001 workflow B) end to end through the runner, on SQLite and
Postgres: grounded auto-replies, routing to staff with drafts a person approves, edits or
rejects, escalation contexts that never auto-reply, quiet hours, observe-only blocks, tool
faults, the overdue-reply scan and its escalation ladder, dedupe, and the HTTP API."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from autopilot.models import Message, Run, WorkOrder
from autopilot.runtime import Runner, RunView
from autopilot.sandbox.tenant_comms import (
    DEMO_MESSAGES,
    OVERDUE_MESSAGE,
    RESPONSE_SLA,
    CommsStaffNotification,
    CommsThread,
    receive_message,
    thread_id_of,
)
from autopilot.seed import seed_tenant
from graphs.tenant_comms import SPEC, demo
from graphs.tenant_comms.classify import classify
from graphs.trigger import parse_trigger, stable_id
from tests.conftest import RunnerFactory, settings_env
from tests.helpers import TENANT, no_ticks, query_app_db, run_cli, serve_api
from tools.gateway import Principal
from tools.registry import PermanentToolError

GRAPH = "tenant_comms"
NOW = datetime(2026, 11, 18, 19, 0, tzinfo=UTC)  # the suite's pinned policy time (14:00 NY)
DEMO = {resident: mid for mid, resident, _, _ in DEMO_MESSAGES}


def event(n: int | str, resident: str, message_id: str,
          at: datetime | None = None) -> dict[str, Any]:
    return {"event_id": f"evt-{n}", "tenant_id": TENANT, "source": "test",
            "event_type": "resident_message",
            "occurred_at": (at or datetime.now(UTC)).isoformat(),
            "payload": {"thread_id": thread_id_of(resident), "message_id": message_id}}


def demo_event(n: int, resident: str) -> dict[str, Any]:
    return event(n, resident, DEMO[resident])


def inbound(runner: Runner, n: int, resident: str, text: str, channel: str = "sms",
            at: datetime | None = None) -> dict[str, Any]:
    """A message arrives through the messaging system; returns the trigger it posts."""
    with runner.services.db.session(TENANT) as s:
        receive_message(s, TENANT, resident_id=resident, text=text, channel=channel,
                        at=at or datetime.now(UTC), message_id=f"MSG-T{n}")
    return event(n, resident, f"MSG-T{n}")


def thread(runner: Runner, resident: str) -> CommsThread:
    with runner.services.db.session(TENANT) as s:
        found = s.get(CommsThread, (TENANT, thread_id_of(resident)))
        assert found is not None
        return found


def outbound(runner: Runner, resident: str) -> list[Message]:
    with runner.services.db.session(TENANT) as s:
        return list(s.scalars(select(Message).where(
            Message.tenant_id == TENANT, Message.thread_id == thread_id_of(resident),
            Message.direction == "out", Message.id.like("RPL-%"))))


def notifications(runner: Runner, resident: str) -> list[CommsStaffNotification]:
    with runner.services.db.session(TENANT) as s:
        return list(s.scalars(select(CommsStaffNotification).where(
            CommsStaffNotification.thread_id == thread_id_of(resident))))


def proposal(view: RunView, action_id: str) -> dict[str, Any]:
    return next(p for p in view.values["proposals"] if p["action_id"] == action_id)


def reasons(view: RunView, action_id: str) -> list[str]:
    return proposal(view, action_id)["decision"]["reasons"]


@pytest.fixture
def sqlite_runner(sqlite_env: dict[str, str], open_runner: RunnerFactory) -> Runner:
    return open_runner(sqlite_env)


# --------------------------------------------------------------------------- classifier


@pytest.mark.parametrize(("text", "topic", "intent"), [
    ("Hi! How do I set up autopay for my rent?", "RENT_PAYMENT", "FAQ"),
    ("I was charged a late fee but I paid rent on the 1st.", "BILLING_DISPUTE",
     "BILLING_DISPUTE"),
    ("The bathroom faucet has been dripping all week.", "MAINTENANCE_REQUEST",
     "MAINTENANCE_INTAKE"),
    ("Any update on the plumber for my kitchen drain?", "MAINTENANCE_STATUS", "STATUS_UPDATE"),
    ("What are the gym hours?", "AMENITY", "FAQ"),
    ("The dryer in the laundry room is broken.", "MAINTENANCE_REQUEST", "MAINTENANCE_INTAKE"),
    ("The people upstairs are blasting music every night.", "NOISE_COMPLAINT", "COMPLAINT"),
    ("Can I sublet my apartment this summer?", "LEASE_CHANGE", "LEASE_CHANGE"),
    ("When will I get my renewal offer? My lease ends in March.", "LEASE_RENEWAL",
     "RENEWAL_INFO"),
    ("Where do packages go when I'm not home?", "PACKAGE", "FAQ"),
    ("Do I need to reserve the service elevator for movers?", "MOVE_IN_OUT", "FAQ"),
    ("Which days is recycling picked up?", "GENERAL_INFO", "FAQ"),
    ("Hello, is anyone there?", "GENERAL", "GENERAL"),
    ("Thanks, that helps!", "ACKNOWLEDGEMENT", "ACKNOWLEDGEMENT"),
    ("Thanks, but the sink is leaking again.", "MAINTENANCE_REQUEST", "MAINTENANCE_INTAKE"),
])
def test_classifier_topics_and_intents(text: str, topic: str, intent: str) -> None:
    cls = classify(text, NOW)
    assert (cls.topic, cls.intent) == (topic, intent)


def test_classifier_confidence_and_emergencies() -> None:
    assert classify("How do I pay rent online?", NOW).confidence == 0.9
    assert classify("The gym treadmill is broken", NOW).confidence == 0.8  # still a repair
    two = classify("What are the gym hours, and where do packages go?", NOW)
    assert two.confidence < 0.7 and set(two.matched) == {"PACKAGE", "AMENITY"}
    assert classify("Hello?", NOW).confidence < 0.7
    gas = classify("I smell gas in the hallway", NOW)
    assert gas.is_emergency and "gas_smell" in gas.safety_signals
    assert not classify("Is smoking allowed on the roof deck?", NOW).is_emergency


# --------------------------------------------------------------------------- allow path


def test_grounded_faq_is_answered_on_its_own_and_verified(runner: Runner) -> None:
    view = runner.submit(GRAPH, demo_event(1, "R-GRAND-1B"))
    assert (view.status, view.outcome) == ("completed", "resolved"), view.values.get(
        "escalation")
    reply = proposal(view, "reply")
    assert reply["status"] == "executed" and reasons(view, "reply") == [
        "COMMS_AUTONOMOUS_REPLY"]
    assert reply["args"]["source_refs"] == ["doc:DOC-RENT-PAYMENT"]  # not the superseded one
    assert "doc:DOC-RENT-PAYMENT" in reply["evidence_refs"] and reply["grounded"]
    assert "AutoPay" in reply["args"]["body"]
    assert reasons(view, "thread_state") == ["COMMS_THREAD_ROUTING"]
    assert all(check["ok"] for check in view.values["verification"])
    [sent] = outbound(runner, "R-GRAND-1B")
    assert sent.body == reply["args"]["body"] and sent.channel == "sms"  # preferred channel
    th = thread(runner, "R-GRAND-1B")
    assert (th.state, th.topic, th.intent, th.reply_due_at) == (
        "awaiting_resident", "RENT_PAYMENT", "FAQ", None)
    assert th.last_outbound_at is not None
    with pytest.raises(PermanentToolError):  # another tenant cannot see the conversation
        runner.services.gateway.read(Principal.autopilot(GRAPH, "other"), "get_resident_thread",
                                     {"thread_id": thread_id_of("R-GRAND-1B")})


def test_status_update_and_maintenance_handover(sqlite_runner: Runner) -> None:
    runner = sqlite_runner
    status = runner.submit(GRAPH, demo_event(2, "R-FLATBUSH-2A"))
    assert status.status == "completed"
    reply = proposal(status, "reply")
    assert reply["args"]["source_refs"] == ["work_order:WO-1001"]
    assert "Boro Pipe & Drain" in reply["args"]["body"]
    with runner.services.db.session(TENANT) as s:
        work_orders = s.scalar(select(func.count()).select_from(WorkOrder))
    intake = runner.submit(GRAPH, demo_event(3, "R-GRAND-2A"))
    assert intake.status == "completed"
    assert "maintenance team" in proposal(intake, "reply")["args"]["body"]
    assert thread(runner, "R-GRAND-2A").handoff == "maintenance"
    with runner.services.db.session(TENANT) as s:  # handed over, nothing started here
        assert s.scalar(select(func.count()).select_from(WorkOrder)) == work_orders
        assert set(s.scalars(select(Run.graph))) == {GRAPH}
    # A status question on a unit without open work orders has nothing to ground it.
    none = runner.submit(GRAPH, inbound(runner, 20, "R-ASTORIA-3A",
                                        "Any update on my repair request?"))
    assert none.status == "needs_approval"
    assert reasons(none, "reply") == ["COMMS_REPLY_UNGROUNDED"]
    assert thread(runner, "R-ASTORIA-3A").assigned_staff_id == "ST-MAINT"


def test_a_thank_you_closes_the_conversation_without_a_reply(sqlite_runner: Runner) -> None:
    runner = sqlite_runner
    assert runner.submit(GRAPH, demo_event(11, "R-GRAND-1B")).status == "completed"
    view = runner.submit(GRAPH, inbound(runner, 12, "R-GRAND-1B", "Thanks, that helps!"))
    assert (view.status, view.outcome) == ("completed", "resolved")
    assert [p["tool"] for p in view.values["proposals"]] == ["set_thread_state"]
    th = thread(runner, "R-GRAND-1B")
    assert (th.state, th.reply_due_at) == ("closed", None)
    assert len(outbound(runner, "R-GRAND-1B")) == 1  # only the earlier answer
    # While staff owe an answer, a thank-you changes nothing.
    routed = runner.submit(GRAPH, demo_event(13, "R-GRAND-3A"))
    assert thread(runner, "R-GRAND-3A").state == "awaiting_staff"
    thanks = runner.submit(GRAPH, inbound(runner, 14, "R-GRAND-3A", "ok thank you"))
    assert thanks.outcome == "nothing_to_do" and routed.status == "needs_approval"
    assert thread(runner, "R-GRAND-3A").state == "awaiting_staff"


# --------------------------------------------------------------------------- approval path


def test_billing_dispute_is_routed_and_an_edited_draft_goes_out_once_approved(
        runner: Runner) -> None:
    view = runner.submit(GRAPH, demo_event(4, "R-GRAND-3A"))
    assert view.status == "needs_approval"
    assert [(p["action_id"], p["status"]) for p in view.values["proposals"]] == [
        ("route", "executed"), ("notify_staff", "executed"), ("reply", "needs_approval"),
        ("thread_state", "allowed")]
    request = view.pending_approval["request"]
    assert [a["name"] for a in request["action_requests"]] == ["send_thread_reply"]
    assert request["policy"][0]["reasons"] == ["INTENT_NOT_AUTO"]
    th = thread(runner, "R-GRAND-3A")
    assert (th.state, th.assigned_staff_id, th.intent) == (
        "awaiting_staff", "ST-BILLING", "BILLING_DISPUTE")
    [note] = notifications(runner, "R-GRAND-3A")
    assert (note.staff_id, note.reason, note.status) == ("ST-BILLING", "INTENT_NOT_AUTO", "SENT")
    assert outbound(runner, "R-GRAND-3A") == []

    args = {**proposal(view, "reply")["args"],
            "body": "Hi Olu, we checked: your payment arrived on the 3rd, so the late fee is "
                    "removed. Sorry for the trouble. - Dana, billing"}
    edited = runner.decide(view.thread_id, {"decisions": [{"type": "edit", "edited_action": {
        "name": "send_thread_reply", "args": args}}]}, reviewer="dana@acme.example")
    # The edited reply is judged again: still a billing dispute, so a fresh approval.
    assert edited.status == "needs_approval"
    assert edited.pending_approval["request"]["action_requests"][0]["args"]["body"] == \
        args["body"]
    done = runner.decide(edited.thread_id, {"decisions": [{"type": "approve"}]},
                         reviewer="maria@acme.example")
    assert (done.status, done.outcome) == ("completed", "resolved")
    [sent] = outbound(runner, "R-GRAND-3A")
    assert sent.body == args["body"]
    assert all(check["ok"] for check in done.values["verification"])
    th = thread(runner, "R-GRAND-3A")
    assert (th.state, th.reply_due_at, th.assigned_staff_id) == (
        "awaiting_resident", None, "ST-BILLING")


def test_a_rejected_draft_is_never_sent_and_the_thread_stays_with_staff(
        sqlite_runner: Runner) -> None:
    runner = sqlite_runner
    view = runner.submit(GRAPH, demo_event(5, "R-FLATBUSH-1B"))  # packages: nothing on file
    assert view.status == "needs_approval"
    assert reasons(view, "reply") == ["COMMS_REPLY_UNGROUNDED"]
    assert thread(runner, "R-FLATBUSH-1B").assigned_staff_id == "ST-PM-FLATBUSH"
    done = runner.decide(view.thread_id, {"decisions": [{
        "type": "reject", "message": "I'll call her about the new lockers"}]}, reviewer="marcus")
    assert done.status == "completed"
    assert proposal(done, "reply")["status"] == "rejected"
    assert proposal(done, "thread_state")["status"] == "skipped"
    assert outbound(runner, "R-FLATBUSH-1B") == []
    assert thread(runner, "R-FLATBUSH-1B").state == "awaiting_staff"


def test_a_draft_citing_another_property_s_record_is_still_held(sqlite_runner: Runner) -> None:
    runner = sqlite_runner
    view = runner.submit(GRAPH, demo_event(6, "R-FLATBUSH-1B"))
    args = {**proposal(view, "reply")["args"], "source_refs": ["doc:DOC-GRAND-PACKAGES"]}
    again = runner.decide(view.thread_id, {"decisions": [{"type": "edit", "edited_action": {
        "name": "send_thread_reply", "args": args}}]}, reviewer="marcus")
    assert again.status == "needs_approval"  # the risk model re-read the cited record
    assert again.pending_approval["request"]["policy"][0]["reasons"] == [
        "COMMS_REPLY_UNGROUNDED"]


# --------------------------------------------------------------------------- escalation


ESCALATIONS = [  # (resident, message, reason every write is held for, approval severity)
    ("R-ASTORIA-1B", "The heat keeps going out. If it isn't fixed by Friday my lawyer will be "
                     "in touch.", "LEGAL_KEYWORD", "HIGH"),
    ("R-ASTORIA-2A", "Any update on my repair? Your porter keeps harassing my daughter.",
     "HARASSMENT_KEYWORD", "HIGH"),
    ("R-FLATBUSH-3A", "You fix everyone's sink but mine. This is discrimination.",
     "DISCRIMINATION_CLAIM", "HIGH"),
    ("R-FLATBUSH-3B", "The stair railing is loose and my son got hurt on it.",
     "INJURY_REPORTED", "CRITICAL"),  # an injury is an emergency too
    ("R-GRAND-3B", "When is my renewal due? I got a notice to quit taped to my door.",
     "EVICTION_CONTEXT", "HIGH"),
    ("R-GRAND-2B", "I smell gas in the hallway outside my door.", "EMERGENCY_ALWAYS_ESCALATE",
     "CRITICAL"),
]


def test_escalation_contexts_never_auto_reply(sqlite_runner: Runner) -> None:
    runner = sqlite_runner
    for n, (resident, text, code, severity) in enumerate(ESCALATIONS, start=30):
        view = runner.submit(GRAPH, inbound(runner, n, resident, text))
        assert view.status == "needs_approval", text
        assert view.pending_approval["request"]["severity"] == severity, text
        assert {p["status"] for p in view.values["proposals"]} == {"needs_approval"}, text
        assert all(code in p["decision"]["reasons"] for p in view.values["proposals"]), text
        assert outbound(runner, resident) == [], text
        assert notifications(runner, resident) == [], text
        assert thread(runner, resident).state == "open", text  # nothing written on its own
    # The emergency's drafted acknowledgement carries the safety advice for the reviewer.
    assert "call 911" in proposal(view, "reply")["args"]["body"]


def test_quiet_hours_hold_the_reply_for_a_person(open_runner: RunnerFactory,
                                                 tmp_path: Path) -> None:
    night = {**settings_env(tmp_path), "AUTOPILOT_POLICY_TIME": "2026-11-19T04:00:00+00:00"}
    runner = open_runner(night)  # 23:00 in New York
    tools = runner.services.policy_for(TENANT).config["messaging"]["quietHours"]["tools"]
    # send_thread_reply belongs in messaging.quietHours.tools; a tenant may add it (stricter).
    runner.services.policy_store.create(
        scope_type="tenant", scope_id=TENANT, cedar="", author="ops", activate=True,
        config={"messaging": {"quietHours": {"tools": sorted({*tools, "send_thread_reply"})}}})
    view = runner.submit(GRAPH, demo_event(7, "R-ASTORIA-3B"))
    assert view.status == "needs_approval"
    assert reasons(view, "reply") == ["QUIET_HOURS"]
    assert proposal(view, "thread_state")["status"] == "allowed"  # waits on the reply
    assert outbound(runner, "R-ASTORIA-3B") == []
    done = runner.decide(view.thread_id, {"decisions": [{"type": "approve"}]},
                         reviewer="irene")
    assert done.status == "completed" and len(outbound(runner, "R-ASTORIA-3B")) == 1
    assert thread(runner, "R-ASTORIA-3B").state == "awaiting_resident"


# --------------------------------------------------------------------------- block, failure


def test_observe_only_blocks_every_write_and_escalates(runner: Runner) -> None:
    runner.services.policy_store.create(
        scope_type="tenant", scope_id=TENANT, cedar="", author="ops", activate=True,
        config={"autonomy": {"graphs": {GRAPH: {"default": "L0", "tools": {
            "send_thread_reply": "L0", "notify_thread_staff": "L0"}}}}})
    view = runner.submit(GRAPH, demo_event(8, "R-GRAND-3A"))
    assert view.status == "escalated"
    assert {p["status"] for p in view.values["proposals"]} == {"blocked"}
    assert view.values["escalation"]["blocked_rules"] == ["AUTONOMY_OBSERVE_ONLY"]
    [exc] = runner.exceptions(TENANT)
    assert exc.thread_id == view.thread_id and exc.graph == GRAPH
    assert outbound(runner, "R-GRAND-3A") == [] and notifications(runner, "R-GRAND-3A") == []
    assert thread(runner, "R-GRAND-3A").state == "open"


def test_a_reply_that_keeps_failing_escalates_and_leaves_nothing_half_written(
        sqlite_runner: Runner) -> None:
    runner = sqlite_runner
    runner.services.gateway.faults.set("send_thread_reply", transient=3)
    view = runner.submit(GRAPH, demo_event(9, "R-GRAND-1B"))
    assert view.status == "escalated"
    assert view.values["escalation"]["title"] == "Tool kept failing after 3 tries"
    assert outbound(runner, "R-GRAND-1B") == []
    th = thread(runner, "R-GRAND-1B")
    assert th.state == "open" and th.reply_due_at is not None  # still owed, still watched


def test_a_message_that_is_not_on_the_thread_escalates(sqlite_runner: Runner) -> None:
    view = sqlite_runner.submit(GRAPH, event(10, "R-GRAND-1B", DEMO["R-GRAND-3A"]))
    assert view.status == "escalated"
    assert view.values["escalation"]["title"] == "Message does not belong to the thread"


# --------------------------------------------------------------------------- detector


def test_overdue_scan_is_set_based_delta_only_and_escalates_twice(runner: Runner) -> None:
    now = datetime.now(UTC)
    overdue = thread_id_of(OVERDUE_MESSAGE[1])

    def scan(since: datetime | None, until: datetime) -> list[dict[str, Any]]:
        with runner.services.db.session("*") as s:
            return SPEC.detect(s, since, until)

    first = scan(None, now)
    assert [e["payload"]["thread_id"] for e in first] == [overdue]  # only what is due
    fresh = inbound(runner, 40, "R-GRAND-3B", "Is the community room free on Saturday?",
                    at=now - RESPONSE_SLA + timedelta(hours=1))
    assert [e["payload"]["thread_id"] for e in scan(now, now + timedelta(hours=2))] == [
        fresh["payload"]["thread_id"]]  # delta-only: the earlier deadline is not repeated
    assert scan(now + timedelta(hours=2), now + timedelta(hours=3)) == []
    runner.submit(GRAPH, demo_event(41, "R-GRAND-1B"))  # answered: owes nothing any more
    later = {e["payload"]["thread_id"] for e in scan(None, now + timedelta(days=2))}
    assert thread_id_of("R-GRAND-1B") not in later and thread_id_of("R-GRAND-1A") not in later
    assert overdue in later

    view = runner.submit(GRAPH, first[0])
    assert (view.status, view.outcome) == ("completed", "resolved"), view.values.get(
        "escalation")
    assert reasons(view, "notify_staff") == ["COMMS_THREAD_ROUTING"]
    [note] = notifications(runner, OVERDUE_MESSAGE[1])
    assert (note.staff_id, note.severity, note.reason) == ("ST-PM-ASTORIA", "HIGH",
                                                           "REPLY_OVERDUE")
    th = thread(runner, OVERDUE_MESSAGE[1])
    assert (th.state, th.escalation_level, th.assigned_staff_id) == (
        "awaiting_staff", 1, "ST-PM-ASTORIA")
    assert runner.submit(GRAPH, first[0]).deduplicated

    [second] = [e for e in scan(now, th.reply_due_at) if e["payload"]["thread_id"] == overdue]
    again = runner.submit(GRAPH, second)
    assert again.status == "escalated"
    assert again.values["escalation"]["category"] == "SLA"
    assert len(notifications(runner, OVERDUE_MESSAGE[1])) == 1
    stale = runner.submit(GRAPH, {**second, "event_id": "stale", "payload": {
        "thread_id": thread_id_of("R-GRAND-1B"), "reply_due_at": now.isoformat()}})
    assert stale.outcome == "nothing_to_do"


# --------------------------------------------------------------------------- dedupe


def test_a_repeated_trigger_is_one_run_and_a_late_redelivery_sends_nothing(
        runner: Runner) -> None:
    first = runner.submit(GRAPH, demo_event(50, "R-ASTORIA-3B"))
    assert first.status == "completed"
    same = runner.submit(GRAPH, demo_event(50, "R-ASTORIA-3B"))
    assert same.deduplicated and same.thread_id == first.thread_id
    tomorrow = runner.submit(GRAPH, event(51, "R-ASTORIA-3B", DEMO["R-ASTORIA-3B"],
                                          at=datetime.now(UTC) + timedelta(days=1)))
    assert tomorrow.thread_id != first.thread_id
    assert tomorrow.outcome == "nothing_to_do"
    assert [m.id for m in outbound(runner, "R-ASTORIA-3B")] == [
        stable_id("RPL", TENANT, DEMO["R-ASTORIA-3B"])]


def test_seed_is_idempotent_and_the_demo_triggers_are_valid(sqlite_runner: Runner) -> None:
    with sqlite_runner.services.db.session(TENANT) as s:
        assert SPEC.seed is not None and SPEC.seed(s, TENANT, datetime.now(UTC)) is False
    assert seed_tenant(sqlite_runner.services.db, TENANT) is False
    triggers = demo(TENANT, datetime.now(UTC))
    assert len(triggers) == len(DEMO_MESSAGES) + 1 and triggers[-1][1] == triggers[0][1]
    for _, raw in triggers:
        parse_trigger(raw, SPEC.event_types)


# --------------------------------------------------------------------------- HTTP API

KEYS = {"k-approver": {"tenant": TENANT, "subject": "dana@acme.example", "roles": ["approver"]},
        "k-ingest": {"tenant": TENANT, "subject": "messaging", "roles": ["ingest"]}}


def test_http_api_event_to_approval_to_completed(sqlite_env: dict[str, str],
                                                tmp_path: Path) -> None:
    env = {**sqlite_env, "AUTOPILOT_SCHEDULES": no_ticks(), "AUTOPILOT_API_KEYS": json.dumps(KEYS),
           "AGENT_JOB_POLL_INTERVAL_MS": "100"}
    assert run_cli(env, "seed").returncode == 0
    approver = {"Authorization": "Bearer k-approver"}
    with serve_api(env, tmp_path / "logs") as (base, _stderr):
        def wait(run_id: str, *wanted: str) -> dict[str, Any]:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                body = httpx.get(f"{base}/v1/runs/{run_id}", headers=approver,
                                 timeout=10).json()
                if body["status"] in wanted:
                    return body
                time.sleep(0.1)
            raise AssertionError(f"{run_id} never reached {wanted}: {body}")

        posted = httpx.post(f"{base}/v1/events", json=demo_event(60, "R-GRAND-3A"),
                            headers={"Authorization": "Bearer k-ingest"}, timeout=10)
        assert posted.status_code == 202, posted.text
        assert posted.json()["graph"] == GRAPH
        run_id = posted.json()["run_id"]
        wait(run_id, "needs_approval")
        approvals = httpx.get(f"{base}/v1/approvals", headers=approver, timeout=10).json()
        [mine] = [a for a in approvals["approvals"] if a["run_id"] == run_id]
        decided = httpx.post(f"{base}/v1/approvals/{mine['id']}/decision", headers=approver,
                             json={"decision": "approve"}, timeout=30)
        assert decided.status_code == 202, decided.text
        done = wait(run_id, "completed", "escalated", "failed_terminal")
        assert (done["status"], done["outcome"]) == ("completed", "resolved"), done
        bad = httpx.post(f"{base}/v1/events", headers={"Authorization": "Bearer k-ingest"},
                         timeout=10, json={**demo_event(61, "R-GRAND-3A"), "payload": {
                             "thread_id": thread_id_of("R-GRAND-3A")}})
        assert bad.status_code == 422 and "payload.message_id" in bad.text
    reply_id = stable_id("RPL", TENANT, DEMO["R-GRAND-3A"])
    assert query_app_db(env, "SELECT direction FROM messages WHERE id = ?", (reply_id,)) == [
        ("out",)]
    assert query_app_db(env, "SELECT state, assigned_staff_id FROM comms_threads WHERE id = ?",
                        (thread_id_of("R-GRAND-3A"),)) == [("awaiting_resident", "ST-BILLING")]
    assert query_app_db(env, "SELECT count(*) FROM tool_calls WHERE thread_id = ?",
                        (run_id,)) == [(4,)]
