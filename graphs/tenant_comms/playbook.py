"""Deterministic tenant comms playbook: read the conversation, classify the message, ground a
reply in the property's own records, and keep the thread's state and owner up to date.

Two shapes of plan, both judged again by the gate:

- **answer**: the intent is an allowed auto intent, a live record answers it (a policy
  document / FAQ record, or the unit's open work orders for a status question) and the
  classification is confident. Reply quoting those records, then mark the thread as
  answered (`awaiting_resident`; a repair report is handed to maintenance).
- **route**: anything else. Assign the thread to the staff member who owns the topic
  (`awaiting_staff`, with its reply deadline), notify them, and draft a reply a person
  approves, edits or rejects; only an approved reply moves the thread on.

Escalation contexts (legal threats, harassment, discrimination, injury, eviction) are not
decided here: the gate screens the inbound text and holds every write of such a run for a
person. The overdue scan's runs only ever write to staff and the thread, never to the
resident: a first missed deadline notifies the owner and gives them a short grace period, a
second goes to the exception inbox.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from autopilot.sandbox.tenant_comms import OWES_REPLY, RESPONSE_SLA
from graphs.maintenance.playbook import SAFETY_NOTE
from graphs.spine import NodeIO, Perception
from graphs.state import Escalation, PlanResult, Proposal, VerifySpec
from graphs.tenant_comms.classify import (
    TOPIC_LABEL,
    TOPIC_ROLE,
    Classification,
    classify,
    keyword_hits,
)
from graphs.tenant_comms.events import ReplyOverdue, ResidentMessage
from graphs.trigger import TriggerEnvelope, stable_id

# After a first missed deadline the thread's owner gets this long before a manager is asked.
ESCALATION_GRACE = timedelta(hours=4)
# Below this confidence a reply is drafted for a person (mirrors COMMS_LOW_CONFIDENCE).
MIN_AUTO_CONFIDENCE = 0.7
STAFF_CHANNELS = ["in_app", "email"]  # seed 001 section 6 escalation.channels
REPLY_CHANNELS = ("sms", "email", "in_app", "portal")
ROLE_LABEL = {"PROPERTY_MANAGER": "property management", "BILLING": "billing",
              "LEASING": "leasing", "MAINTENANCE_COORDINATOR": "maintenance"}
WO_STATUS = {"OPEN": "is logged and waiting to be scheduled",
             "BIDDING": "is out for quotes from qualified contractors",
             "IN_PROGRESS": "is being worked on"}
IRREVERSIBLE = "Irreversible: a sent message cannot be unsent; send a correction on the " \
               "same thread if anything in it was wrong"


def dedupe_ref(envelope: TriggerEnvelope, payload: BaseModel) -> tuple[str, str]:
    if isinstance(payload, ResidentMessage):
        return payload.message_id, payload.thread_id
    if isinstance(payload, ReplyOverdue):
        return (f"{payload.thread_id}@{payload.reply_due_at.astimezone(UTC).isoformat()}",
                "overdue")
    raise TypeError(f"no dedupe rule for {type(payload).__name__}")


# --------------------------------------------------------------------------- perceive


def _thread_evidence(thread: dict[str, Any]) -> dict[str, Any]:
    owner = f", owned by {thread['assigned_staff_id']}" if thread["assigned_staff_id"] else ""
    return {"ref": f"thread:{thread['id']}", "source": "messaging",
            "summary": f"conversation {thread['id']} is {thread['state']}{owner}, reply due "
                       f"{thread['reply_due_at'] or 'none'}"}


def perceive(io: NodeIO, envelope: TriggerEnvelope, payload: BaseModel) -> Perception:
    if isinstance(payload, ReplyOverdue):
        thread = io.read("get_resident_thread", thread_id=payload.thread_id, limit=20)
        staff = io.read("get_comms_staff", property_id=thread["property_id"])["staff_members"]
        return Perception({"kind": "overdue", "thread": thread, "staff": staff},
                          [_thread_evidence(thread)])
    assert isinstance(payload, ResidentMessage)
    message = io.read("get_message", message_id=payload.message_id)
    thread = io.read("get_resident_thread", thread_id=payload.thread_id, limit=50)
    evidence = [{"ref": f"message:{message['id']}", "source": f"resident:{message['channel']}",
                 "summary": message["body"][:280]}, _thread_evidence(thread)]
    if message["thread_id"] != thread["id"] or message["direction"] != "in":
        return Perception({"kind": "message", "thread": thread, "message": message,
                           "problem": f"{message['id']} is not an inbound message of "
                                      f"{thread['id']}"}, evidence)
    cls = classify(message["body"], envelope.occurred_at)
    unit = io.read("get_unit_context", unit_id=thread["unit_id"])
    docs = io.read("get_comms_policy_docs", property_id=thread["property_id"])["docs"]
    staff = io.read("get_comms_staff", property_id=thread["property_id"])["staff_members"]
    work_orders = unit["open_work_orders"]
    if cls.topic == "MAINTENANCE_STATUS":
        named = {w["id"] for w in work_orders if w["id"].lower() in message["body"].lower()}
        work_orders = [w for w in work_orders if w["id"] in named] if named else work_orders
    vendors = {w["vendor_id"]: io.read("get_vendor", vendor_id=w["vendor_id"])["name"]
               for w in work_orders
               if cls.topic == "MAINTENANCE_STATUS" and w["vendor_id"]}
    evidence += [{"ref": f"work_order:{w['id']}", "source": "maintenance",
                  "summary": f"{w['title']} [{w['status']}], SLA due {w['sla_due_at']}"}
                 for w in work_orders]
    evidence += [{"ref": f"doc:{d['id']}", "source": d["source"],
                  "summary": f"{d['title']} (v{d['version']})"} for d in docs]
    return Perception({"kind": "message", "thread": thread, "message": message,
                       "classification": asdict(cls), "docs": docs, "staff": staff,
                       "work_orders": work_orders, "vendors": vendors}, evidence)


# --------------------------------------------------------------------------- plan


def plan(io: NodeIO, envelope: TriggerEnvelope, payload: BaseModel,
         seen: Perception) -> PlanResult:
    ctx = seen.context
    if ctx["kind"] == "overdue":
        assert isinstance(payload, ReplyOverdue)
        return _plan_overdue(io, envelope, payload, ctx)
    return _plan_message(io, envelope, ctx)


def _local(moment: str | datetime, tz: str) -> datetime:
    value = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    return value.astimezone(ZoneInfo(tz))


def _first_name(thread: dict[str, Any]) -> str:
    return str(thread["resident_name"]).split()[0]


def _channel(thread: dict[str, Any], message: dict[str, Any]) -> str:
    """The resident's preferred channel, else the one they wrote on."""
    for channel in (thread["preferred_channel"], message["channel"]):
        if channel in REPLY_CHANNELS:
            return str(channel)
    return "in_app"


def pick_doc(docs: list[dict[str, Any]], topic: str, text: str) -> dict[str, Any] | None:
    """The live record that answers this message: same topic, and either it uses one of the
    record's keywords or the record answers everything on its topic. Most keywords first,
    then the property's own record over the tenant-wide one."""
    scored = []
    for doc in docs:
        if doc["topic"] != topic:
            continue
        hits = keyword_hits(text, doc["keywords"])
        if hits or not doc["keywords"]:
            scored.append((hits, doc["property_id"] is not None, doc["id"], doc))
    if not scored:
        return None
    return max(scored, key=lambda s: s[:3])[3]


def pick_staff(staff: list[dict[str, Any]], topic: str,
               prefer: str | None = None) -> dict[str, Any] | None:
    """Who owns the thread: `prefer` if still active, else the topic's role (the property's
    own person before a tenant-wide one), else the property manager."""
    by_id = {s["id"]: s for s in staff}
    if prefer and prefer in by_id:
        return by_id[prefer]
    for role in (TOPIC_ROLE.get(topic, "PROPERTY_MANAGER"), "PROPERTY_MANAGER"):
        found = sorted((s for s in staff if s["role"] == role),
                       key=lambda s: (s["property_id"] is None, s["id"]))
        if found:
            return found[0]
    return None


def _grounding(cls: Classification, ctx: dict[str, Any],
               text: str) -> tuple[list[str], str, str]:
    """(source refs, answer text, where it comes from) for this message; no refs when no
    live record answers it."""
    if cls.topic == "MAINTENANCE_STATUS":
        wos = ctx["work_orders"][:5]  # a text message, not a report
        if not wos:
            return [], "", "the unit has no open work order"
        tz = ctx["thread"]["timezone"]
        parts = []
        for w in wos:
            phrase = (f"is assigned to {ctx['vendors'].get(w['vendor_id'], 'a vendor')}"
                      if w["status"] == "DISPATCHED" else WO_STATUS.get(w["status"],
                                                                         "is open"))
            target = (f", target date {_local(w['sla_due_at'], tz):%a %d %b}"
                      if w["sla_due_at"] else "")
            parts.append(f"work order {w['id']} ({w['title'][:80]}) {phrase}{target}")
        return ([f"work_order:{w['id']}" for w in wos], "; ".join(parts),
                f"open work orders {', '.join(w['id'] for w in wos)}")
    doc = pick_doc(ctx["docs"], cls.topic, text)
    if doc is None:
        return [], "", f"no live policy document or FAQ record answers {cls.topic}"
    return [f"doc:{doc['id']}"], doc["answer"], f"{doc['title']}, {doc['source']}"


def _answer_body(cls: Classification, thread: dict[str, Any], answer: str,
                 where: str) -> str:
    name = _first_name(thread)
    if cls.topic == "MAINTENANCE_STATUS":
        return (f"Hi {name}, here is the latest on your repair: {answer}. We'll message you "
                "if anything changes.")
    if cls.topic == "MAINTENANCE_REQUEST":
        safety = " ".join(SAFETY_NOTE[s] for s in cls.safety_signals if s in SAFETY_NOTE)
        return (f"Hi {name}, thanks for letting us know. We've passed this to our maintenance "
                "team, who will contact you with a work order number and an appointment "
                f"window. {answer} {safety}").strip()
    return f"Hi {name}, thanks for asking. {answer} (Source: {where}.)"


def _plan_message(io: NodeIO, env: TriggerEnvelope, ctx: dict[str, Any]) -> PlanResult:
    thread, message = ctx["thread"], ctx["message"]
    tid, mid = thread["id"], message["id"]
    base = {"property_id": thread["property_id"], "text": message["body"]}
    refs = [f"message:{mid}", f"thread:{tid}"]
    if "problem" in ctx:
        return PlanResult(run_facts=base, summary=ctx["problem"], escalation=Escalation(
            severity="MEDIUM", category="SYSTEM", title="Message does not belong to the thread",
            details=ctx["problem"], decision_requested="Check the messaging system's record "
                                                       "and re-submit", evidence_refs=refs))
    cls = Classification(**ctx["classification"])
    facts = {**base, "intent": cls.intent, "category": cls.topic,
             "is_emergency": cls.is_emergency,
             "priority": "EMERGENCY" if cls.is_emergency else ""}
    reply_id = stable_id("RPL", env.tenant_id, mid)
    inbound_at = next((m["created_at"] for m in thread["messages"] if m["id"] == mid), None)
    if any(m["id"] == reply_id for m in thread["messages"]):
        return PlanResult(run_facts=facts, summary=f"{mid} was already answered ({reply_id})")
    if (thread["state"] not in OWES_REPLY and inbound_at and thread["last_outbound_at"]
            and datetime.fromisoformat(thread["last_outbound_at"])
            > datetime.fromisoformat(inbound_at)):
        return PlanResult(run_facts=facts,
                          summary=f"{mid} was already answered on {tid} (thread is "
                                  f"{thread['state']})")
    if cls.topic == "ACKNOWLEDGEMENT":
        return _close(thread, cls, facts, refs, mid)
    sources, answer, where = _grounding(cls, ctx, message["body"])
    allowed = set(io.policy_limits["allowed_auto_intents"])
    hold = ("INTENT_NOT_AUTO" if cls.intent not in allowed else
            "NO_GROUNDING_SOURCE" if not sources else
            "LOW_CONFIDENCE" if cls.confidence < MIN_AUTO_CONFIDENCE else None)
    reply_args = {"reply_id": reply_id, "thread_id": tid, "resident_id": thread["resident_id"],
                  "in_reply_to": mid, "channel": _channel(thread, message),
                  "topic": cls.topic, "source_refs": sources}
    why = cls.why() + (f" Grounded in {where}." if sources else f" Not grounded: {where}.")
    if hold is None:
        return _answer(io, ctx, cls, facts, reply_args, answer, where, refs, why)
    return _route(io, env, ctx, cls, facts, reply_args, answer, where, refs, why, hold)


def _close(thread: dict[str, Any], cls: Classification, facts: dict[str, Any],
           refs: list[str], mid: str) -> PlanResult:
    """A thank-you asks for nothing: close the conversation (no reply), unless staff still
    owe an answer to an earlier message."""
    if thread["state"] == "awaiting_staff":
        return PlanResult(run_facts=facts, summary=f"{mid} is a thank-you; {thread['id']} "
                                                   "stays with staff, who still owe a reply")
    close = Proposal(
        action_id="thread_state", tool="set_thread_state",
        args={"thread_id": thread["id"], "state": "closed", "intent": cls.intent,
              "topic": cls.topic, "escalation_level": 0,
              "note": f"{mid} acknowledged the answer; nothing more was asked"},
        description=f"Close {thread['id']}: the resident only said thanks",
        confidence=cls.confidence,
        reasoning=f"{cls.why()} The message asks nothing, so no reply is owed and no "
                  "deadline should run.",
        evidence_refs=refs, expected_outcome=f"{thread['id']} closed, no reply deadline",
        rollback_plan=f"Set {thread['id']} back to {thread['state']}",
        verify=VerifySpec(tool="get_resident_thread", args={"thread_id": thread["id"]},
                          expect={"state": "closed", "reply_due_at": None}))
    return PlanResult(proposals=[close], run_facts=facts,
                      summary=f"{mid} is a thank-you: close {thread['id']}")


def _reply(reply_args: dict[str, Any], body: str, cls: Classification, refs: list[str],
           why: str, description: str, expected: str) -> Proposal:
    args = {**reply_args, "body": body}
    return Proposal(
        action_id="reply", tool="send_thread_reply", args=args, description=description,
        confidence=cls.confidence, reasoning=why,
        evidence_refs=[*refs, *args["source_refs"]], expected_outcome=expected,
        rollback_plan=IRREVERSIBLE,
        verify=VerifySpec(tool="get_message", args={"message_id": args["reply_id"]},
                          expect={"direction": "out", "thread_id": args["thread_id"],
                                  "body": body}))


def _answer(io: NodeIO, ctx: dict[str, Any], cls: Classification,
            facts: dict[str, Any], reply_args: dict[str, Any], answer: str, where: str,
            refs: list[str], why: str) -> PlanResult:
    thread = ctx["thread"]
    body = _answer_body(cls, thread, answer, where)
    reply = _reply(reply_args, body, cls, refs, why,
                   f"Answer {_first_name(thread)} by {reply_args['channel']} from {where}",
                   f"{thread['resident_id']} has a reply grounded in "
                   f"{', '.join(reply_args['source_refs'])}")
    staff_owes = thread["state"] == "awaiting_staff"  # another question is still with staff
    state = "awaiting_staff" if staff_owes else "awaiting_resident"
    handoff = "maintenance" if cls.topic == "MAINTENANCE_REQUEST" else None
    record = Proposal(
        action_id="thread_state", tool="set_thread_state",
        args={"thread_id": thread["id"], "state": state, "intent": cls.intent,
              "topic": cls.topic, "handoff": handoff,
              "escalation_level": None if staff_owes else 0,
              "reply_due_at": (thread["reply_due_at"] or (io.now + RESPONSE_SLA).isoformat())
              if staff_owes else None,
              "note": f"answered {reply_args['in_reply_to']}"
                      + (" and handed to maintenance" if handoff else "")},
        description=f"Mark {thread['id']} {state}"
                    + (" (handed to maintenance)" if handoff else ""),
        confidence=cls.confidence,
        reasoning="The question is answered; " + (
            "staff still owe a reply on an earlier message, so they keep the thread."
            if staff_owes else "the conversation now waits on the resident."),
        evidence_refs=refs, expected_outcome=f"{thread['id']} is {state}",
        rollback_plan=f"Set {thread['id']} back to {thread['state']}", depends_on=["reply"],
        verify=VerifySpec(tool="get_resident_thread", args={"thread_id": thread["id"]},
                          expect={"state": state, "topic": cls.topic}))
    return PlanResult(proposals=[reply, record], run_facts=facts,
                      summary=f"{cls.intent}/{cls.topic}: answer {reply_args['in_reply_to']} "
                              f"on {thread['id']} from {where}")


def _route(io: NodeIO, env: TriggerEnvelope, ctx: dict[str, Any], cls: Classification,
           facts: dict[str, Any], reply_args: dict[str, Any], answer: str, where: str,
           refs: list[str], why: str, hold: str) -> PlanResult:
    thread, message = ctx["thread"], ctx["message"]
    staff = pick_staff(ctx["staff"], cls.topic, thread["assigned_staff_id"])
    if staff is None:
        return PlanResult(run_facts=facts, summary="No staff to route the conversation to",
                          escalation=Escalation(
                              severity="HIGH", category="SYSTEM",
                              title=f"No active staff for {thread['property_id']}",
                              details=f"{message['id']} ({cls.topic}) needs a person and no "
                                      "active staff member covers the property.",
                              decision_requested="Assign someone to the conversation",
                              evidence_refs=refs))
    due = thread["reply_due_at"] or (io.now + RESPONSE_SLA).isoformat()
    tz = thread["timezone"]
    held_because = {"INTENT_NOT_AUTO": f"{cls.intent} is not an intent replies go out on "
                                       "their own for",
                    "NO_GROUNDING_SOURCE": f"no live record answers it ({where})",
                    "LOW_CONFIDENCE": f"the classification is not confident "
                                      f"({cls.confidence:.2f})"}[hold]
    staff_first = str(staff["name"]).split()[0]
    route = Proposal(
        action_id="route", tool="set_thread_state",
        args={"thread_id": thread["id"], "state": "awaiting_staff", "intent": cls.intent,
              "topic": cls.topic, "assigned_staff_id": staff["id"], "reply_due_at": due,
              "note": f"{message['id']} needs a person: {held_because}"},
        description=f"Assign {thread['id']} to {staff['name']} ({staff['role']}), reply due "
                    f"{_local(due, tz):%a %d %b %H:%M}",
        confidence=cls.confidence,
        reasoning=f"{why} It needs a person because {held_because}; {staff['role']} owns "
                  f"{cls.topic} at this property.",
        evidence_refs=[*refs, f"staff_member:{staff['id']}"],
        expected_outcome=f"{thread['id']} awaiting_staff, owned by {staff['id']}",
        rollback_plan=f"Set {thread['id']} back to {thread['state']} and its previous owner",
        verify=VerifySpec(tool="get_resident_thread", args={"thread_id": thread["id"]},
                          expect={"assigned_staff_id": staff["id"], "topic": cls.topic}))
    severity = "CRITICAL" if cls.is_emergency else "MEDIUM"
    notification_id = stable_id("NTF", env.tenant_id, message["id"])
    notify = Proposal(
        action_id="notify_staff", tool="notify_thread_staff",
        args={"notification_id": notification_id, "staff_id": staff["id"],
              "thread_id": thread["id"], "severity": severity, "reason": hold,
              "summary": f"{thread['resident_name']} ({thread['unit_id']}) wrote about "
                         f"{TOPIC_LABEL[cls.topic]}: \"{message['body'][:300]}\". It needs "
                         f"you because {held_because}. A draft reply is waiting for review; "
                         f"reply due {_local(due, tz):%a %d %b %H:%M}.",
              "channels": STAFF_CHANNELS},
        description=f"Notify {staff['name']} ({', '.join(STAFF_CHANNELS)})",
        confidence=cls.confidence,
        reasoning=f"The owner of the conversation learns it is theirs now, not at the "
                  f"deadline ({hold}).",
        evidence_refs=[*refs, f"staff_member:{staff['id']}"],
        expected_outcome=f"{staff['id']} notified about {thread['id']}",
        rollback_plan="Irreversible: a notification cannot be recalled; send a follow-up if "
                      "it was wrong",
        depends_on=["route"],
        verify=VerifySpec(tool="get_thread_notification",
                          args={"notification_id": notification_id},
                          expect={"status": "SENT", "staff_id": staff["id"]}))
    body = (f"Hi {_first_name(thread)}, thanks for your message about "
            f"{TOPIC_LABEL[cls.topic]}. {staff_first} from our {ROLE_LABEL[staff['role']]} "
            f"team will get back to you by {_local(due, tz):%a %d %b, %H:%M}.")
    if reply_args["source_refs"] and cls.topic != "MAINTENANCE_STATUS":
        body += f" For reference, from {where}: {answer}"
    draft = _reply(reply_args, body, cls, refs,
                   f"{why} Drafted for a person to approve, edit or reject: {held_because}.",
                   f"Draft reply to {_first_name(thread)} by {reply_args['channel']} "
                   f"(needs a person: {held_because})",
                   f"{thread['resident_id']} has the reply a person approved")
    answered = Proposal(
        action_id="thread_state", tool="set_thread_state",
        args={"thread_id": thread["id"], "state": "awaiting_resident", "intent": cls.intent,
              "topic": cls.topic, "escalation_level": 0,
              "note": f"reply to {message['id']} approved by staff"},
        description=f"Mark {thread['id']} awaiting_resident once the reply is sent",
        confidence=cls.confidence,
        reasoning="Only a reply a person let go moves the conversation on; if it is rejected "
                  "the thread stays with its owner.",
        evidence_refs=refs, expected_outcome=f"{thread['id']} is awaiting_resident",
        rollback_plan=f"Set {thread['id']} back to awaiting_staff", depends_on=["reply"],
        verify=VerifySpec(tool="get_resident_thread", args={"thread_id": thread["id"]},
                          expect={"state": "awaiting_resident", "topic": cls.topic}))
    return PlanResult(proposals=[route, notify, draft, answered], run_facts=facts,
                      summary=f"{cls.intent}/{cls.topic}: route {message['id']} to "
                              f"{staff['name']} ({hold})")


def _plan_overdue(io: NodeIO, env: TriggerEnvelope, payload: ReplyOverdue,
                  ctx: dict[str, Any]) -> PlanResult:
    thread = ctx["thread"]
    refs = [f"thread:{thread['id']}"]
    # The overdue run writes only to staff and the thread record: no resident text is in
    # play, so its facts carry none.
    facts = {"property_id": thread["property_id"], "intent": thread["intent"] or "",
             "category": thread["topic"] or ""}
    due = thread["reply_due_at"]
    if thread["state"] not in OWES_REPLY or due is None or (
            datetime.fromisoformat(due) != payload.reply_due_at):
        return PlanResult(run_facts=facts, summary=f"{thread['id']} moved on since its "
                                                   f"deadline (now {thread['state']})")
    last_in = next((m for m in reversed(thread["messages"]) if m["direction"] == "in"), None)
    waiting = f"\"{last_in['body'][:200]}\"" if last_in else "their last message"
    tz = thread["timezone"]
    if thread["escalation_level"] >= 1:
        return PlanResult(run_facts=facts, summary=f"{thread['id']} missed its deadline again",
                          escalation=Escalation(
                              severity="HIGH", category="SLA",
                              title=f"{thread['resident_name']} still has no reply "
                                    f"({thread['id']})",
                              details=f"The message {waiting} was not answered by "
                                      f"{_local(due, tz):%a %d %b %H:%M} although its owner "
                                      f"{thread['assigned_staff_id'] or '(none)'} was notified "
                                      "when the first deadline passed.",
                              blocked_rules=["REPLY_OVERDUE"],
                              decision_requested="Reply to the resident or reassign the "
                                                 "conversation",
                              evidence_refs=refs))
    staff = pick_staff(ctx["staff"], thread["topic"] or "GENERAL", thread["assigned_staff_id"])
    if staff is None:
        return PlanResult(run_facts=facts, summary="No staff to escalate the thread to",
                          escalation=Escalation(
                              severity="HIGH", category="SLA",
                              title=f"{thread['id']} is overdue and no staff covers "
                                    f"{thread['property_id']}",
                              details=f"The message {waiting} is past its reply deadline.",
                              decision_requested="Assign someone and reply",
                              evidence_refs=refs))
    new_due = (max(io.now, payload.reply_due_at) + ESCALATION_GRACE).isoformat()
    route = Proposal(
        action_id="route", tool="set_thread_state",
        args={"thread_id": thread["id"], "state": "awaiting_staff",
              "assigned_staff_id": staff["id"], "escalation_level": 1,
              "reply_due_at": new_due, "note": f"reply deadline {due} missed"},
        description=f"Give {thread['id']} to {staff['name']} with a new deadline "
                    f"{_local(new_due, tz):%a %d %b %H:%M}",
        confidence=0.95,
        reasoning=f"The reply was due {_local(due, tz):%a %d %b %H:%M} and nothing was sent; "
                  f"{staff['name']} owns it and gets {ESCALATION_GRACE} before a manager is "
                  "asked.",
        evidence_refs=[*refs, f"staff_member:{staff['id']}"],
        expected_outcome=f"{thread['id']} awaiting_staff at escalation level 1",
        rollback_plan=f"Set {thread['id']} back to {thread['state']} with deadline {due}",
        verify=VerifySpec(tool="get_resident_thread", args={"thread_id": thread["id"]},
                          expect={"state": "awaiting_staff", "assigned_staff_id": staff["id"],
                                  "escalation_level": 1}))
    notification_id = stable_id("NTF", env.tenant_id, thread["id"], due)
    notify = Proposal(
        action_id="notify_staff", tool="notify_thread_staff",
        args={"notification_id": notification_id, "staff_id": staff["id"],
              "thread_id": thread["id"], "severity": "HIGH", "reason": "REPLY_OVERDUE",
              "summary": f"{thread['resident_name']} ({thread['unit_id']}) has waited past the "
                         f"reply deadline ({_local(due, tz):%a %d %b %H:%M}) for an answer to "
                         f"{waiting}. Please reply by {_local(new_due, tz):%a %d %b %H:%M}, or a "
                         "manager is asked.",
              "channels": STAFF_CHANNELS},
        description=f"Tell {staff['name']} the reply is overdue", confidence=0.95,
        reasoning="A missed response SLA goes to the conversation's owner first.",
        evidence_refs=[*refs, f"staff_member:{staff['id']}"],
        expected_outcome=f"{staff['id']} notified of the overdue reply",
        rollback_plan="Irreversible: a notification cannot be recalled",
        depends_on=["route"],
        verify=VerifySpec(tool="get_thread_notification",
                          args={"notification_id": notification_id},
                          expect={"status": "SENT", "staff_id": staff["id"]}))
    return PlanResult(proposals=[route, notify], run_facts=facts,
                      summary=f"Reply overdue on {thread['id']}: {staff['name']} notified")
