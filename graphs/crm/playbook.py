"""The Suggestion Engine (seed 000 section 2.2, `propose_actions` mode) as a deterministic
playbook.

Perceive re-reads the trigger's record through the 360 read tools; the trigger's context is
what the detector saw, the plan acts on what is true now (a lead touched since is no longer
stagnant). Every suggestion becomes two proposals: `suggest_N` queues it (the autopilot's
own reversible write, which runs on its own) and `apply_N` is the CRM write itself, which
depends on it and always waits for a person (seed 000 section 6). Each carries confidence,
reasoning, evidence, expected outcome, rollback and a VerifySpec that re-reads the record.
A suggestion of the same action for the same record already waiting is not queued again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from pydantic import BaseModel

from autopilot.sandbox.crm import ACTIVE_LEAD_STATUSES, CLOSED_STAGES, STAGE_RANK
from graphs.crm.detect import (
    ACCOUNT_QUIET_DAYS,
    AMOUNT_DROP_MIN,
    CLOSE_SLIP_MIN_DAYS,
    LEAD_STAGNANT_DAYS,
    RENEWAL_WINDOW_DAYS,
)
from graphs.crm.events import (
    AccountAtRisk,
    CrmTrigger,
    DealRegressed,
    LeadStagnant,
    ReengagementOpportunity,
    SuggestionOutcome,
)
from graphs.spine import NodeIO, Perception
from graphs.state import PlanResult, Proposal, VerifySpec
from graphs.trigger import TriggerEnvelope, stable_id

REOPEN_CYCLE_DAYS = 60  # expected close of a reopened deal (typical engage-to-close span)
REGRESSION_LOOKBACK_DAYS = 30  # regressions considered together on a deal


@dataclass
class Candidate:
    """One suggestion before it is queued: the seed's output format plus what the spine
    needs to review, execute and verify it."""

    tool: str
    payload: dict[str, Any]
    confidence: float
    reasoning: str
    description: str
    expected_outcome: str
    rollback_plan: str
    verify: VerifySpec
    evidence_refs: list[str] = field(default_factory=list)


def dedupe_ref(envelope: TriggerEnvelope, payload: BaseModel) -> tuple[str, str]:
    if isinstance(payload, SuggestionOutcome):
        return payload.suggestion_id, envelope.event_id  # one run per run-ending seen
    assert isinstance(payload, CrmTrigger)
    return payload.record_id, "crm"  # one run per trigger, record and UTC day


# --------------------------------------------------------------------------- perceive


def _d(value: str) -> date:
    return date.fromisoformat(value)


def _t(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _activity_evidence(acts: list[dict[str, Any]], limit: int = 3) -> list[dict[str, Any]]:
    return [{"ref": f"activity:{a['activity_id']}", "source": "crm",
             "summary": f"{a['kind']} {a['occurred_at'][:10]} by {a['owner']}: {a['subject']}"
                        + (f" (due {a['due_date']})" if a["due_date"] else "")}
            for a in acts[:limit]]


def _queue_evidence(pending: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"ref": f"suggestion:{s['suggestion_id']}", "source": "suggestion_queue",
             "summary": f"pending {s['action_name']} ({s['trigger_id']})"} for s in pending]


def perceive(io: NodeIO, envelope: TriggerEnvelope, payload: BaseModel) -> Perception:
    if isinstance(payload, SuggestionOutcome):
        s = io.read("get_suggestion", suggestion_id=payload.suggestion_id)
        review = s["review"]
        evidence = [{"ref": f"suggestion:{s['suggestion_id']}", "source": "suggestion_queue",
                     "summary": f"{s['status']} {s['action_name']} on {s['record_id']}; run "
                                f"{s['thread_id']} is {review['run_status']}"}]
        if review["approval_id"]:
            evidence.append({"ref": f"approval:{review['approval_id']}", "source": "approvals",
                             "summary": f"{review['approval_status']}: {review['decision']} "
                                        f"by {review['reviewer']}"})
        return Perception({"kind": "outcome", "suggestion": s}, evidence)
    assert isinstance(payload, CrmTrigger)
    if payload.tenant_id is not None and payload.tenant_id != envelope.tenant_id:
        raise ValueError(f"payload.tenant_id {payload.tenant_id!r} is not the event's tenant "
                         f"{envelope.tenant_id!r}")
    trigger = {"trigger_id": payload.trigger_id, "tenant_id": envelope.tenant_id,
               "record_id": payload.record_id,
               "context": payload.context.model_dump(mode="json")}
    evidence = [{"ref": f"trigger:{envelope.event_id}", "source": envelope.source,
                 "summary": f"{payload.trigger_id} on {payload.record_id}: "
                            f"{trigger['context']}"}]
    context: dict[str, Any] = {"kind": payload.trigger_id, "trigger": trigger}
    is_lead = isinstance(payload, LeadStagnant) or (
        isinstance(payload, ReengagementOpportunity) and payload.context.record_type == "lead")
    if is_lead:
        lead = io.read("get_lead_360", lead_id=payload.record_id)
        context["record"] = lead
        evidence += [{"ref": f"lead:{lead['lead_id']}", "source": "crm",
                      "summary": f"{lead['name']} ({lead['company']}), {lead['status']}, owner "
                                 f"{lead['owner']}, last activity {lead['days_since_activity']}"
                                 " days ago"},
                     *_activity_evidence(lead["activities"]),
                     *_activity_evidence(lead["open_tasks"]),
                     *_queue_evidence(lead["pending_suggestions"])]
    elif isinstance(payload, AccountAtRisk):
        acct = io.read("get_account_360", account_id=payload.record_id)
        context["record"] = acct
        evidence += [{"ref": f"account:{acct['account_id']}", "source": "crm",
                      "summary": f"{acct['name']}: renewal {acct['renewal_date']}, "
                                 f"{acct['open_support_issues']} open support issues, last "
                                 f"activity {acct['days_since_activity']} days ago"},
                     *[{"ref": f"contact:{c['contact_id']}", "source": "crm",
                        "summary": f"{c['name']}, {c['title']}"
                                   + (" (do not contact)" if c["do_not_contact"] else "")}
                       for c in acct["contacts"]],
                     *_activity_evidence(acct["activities"]),
                     *_activity_evidence(acct["open_tasks"]),
                     *_queue_evidence(acct["pending_suggestions"])]
    else:
        deal = io.read("get_deal_360", deal_id=payload.record_id)
        context["record"] = deal
        evidence += [{"ref": f"deal:{deal['deal_id']}", "source": "crm",
                      "summary": f"{deal['name']}: {deal['stage']}, {deal['amount']:.0f}, "
                                 f"close {deal['close_date']}, owner {deal['owner']}"},
                     *[{"ref": f"deal_change:{h['change_id']}", "source": "crm",
                        "summary": _change_text(h) + f" ({h['changed_at'][:10]}, "
                                                     f"{h['changed_by']})"}
                       for h in deal["history"][:5]],
                     *_activity_evidence(deal["activities"]),
                     *_activity_evidence(deal["open_tasks"]),
                     *_queue_evidence(deal["pending_suggestions"])]
    if isinstance(payload, ReengagementOpportunity):
        act = io.read("get_crm_activity", activity_id=payload.context.activity_id)
        if act[f"{payload.context.record_type}_id"] != payload.record_id:
            raise ValueError(f"activity {act['activity_id']} is not on {payload.record_id}")
        context["activity"] = act
        evidence += _activity_evidence([act])
    return Perception(context, _unique(evidence))


def _unique(evidence: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """First item per ref (a task can be both a recent activity and an open task)."""
    out: dict[str, dict[str, Any]] = {}
    for e in evidence:
        out.setdefault(e["ref"], e)
    return list(out.values())


# --------------------------------------------------------------------------- plan


def plan(io: NodeIO, envelope: TriggerEnvelope, payload: BaseModel,
         seen: Perception) -> PlanResult:
    ctx = seen.context
    refs = [e["ref"] for e in seen.evidence]
    if isinstance(payload, SuggestionOutcome):
        return _plan_outcome(ctx["suggestion"], refs)
    if isinstance(payload, LeadStagnant):
        facts, found = _lead_stagnant(io, envelope, ctx, refs)
    elif isinstance(payload, DealRegressed):
        facts, found = _deal_regressed(io, envelope, payload, ctx, refs)
    elif isinstance(payload, AccountAtRisk):
        facts, found = _account_at_risk(io, envelope, ctx, refs)
    else:
        assert isinstance(payload, ReengagementOpportunity)
        facts, found = _reengagement(io, envelope, payload, ctx, refs)
    if isinstance(found, str):
        return PlanResult(run_facts=facts, summary=found)
    return _queue(io, envelope, ctx, facts, found)


def _queue(io: NodeIO, env: TriggerEnvelope, ctx: dict[str, Any], facts: dict[str, Any],
           candidates: list[Candidate]) -> PlanResult:
    trigger, record = ctx["trigger"], ctx["record"]
    waiting = {s["action_name"]: s["suggestion_id"] for s in record["pending_suggestions"]}
    proposals: list[Proposal] = []
    skipped = []
    for n, c in enumerate(candidates, start=1):
        if c.tool in waiting:
            skipped.append(f"{c.tool} already waiting as {waiting[c.tool]}")
            continue
        queue_id, apply_id = f"suggest_{n}", f"apply_{n}"
        sid = stable_id("SUG", env.tenant_id, io.thread_id, apply_id)
        proposals.append(Proposal(
            action_id=queue_id, tool="enqueue_suggestion",
            args={"suggestion_id": sid, "trigger_id": trigger["trigger_id"],
                  "record_id": trigger["record_id"], "trigger_context": trigger["context"],
                  "event_id": env.event_id,
                  "action": {"action": c.tool, "payload": c.payload},
                  "confidence": c.confidence, "reasoning": c.reasoning,
                  "apply_action_id": apply_id},
            description=f"Queue suggestion {sid}: {c.description}",
            confidence=c.confidence, reasoning=c.reasoning, evidence_refs=c.evidence_refs,
            expected_outcome=f"{sid} waits for review in the suggestion queue",
            rollback_plan=f"Close {sid} as rejected (close_suggestion)",
            verify=VerifySpec(tool="get_suggestion", args={"suggestion_id": sid},
                              expect={"trigger_id": trigger["trigger_id"],
                                      "record_id": trigger["record_id"],
                                      "action_name": c.tool})))
        verify = c.verify.model_copy(deep=True)
        verify.expect = {k: (sid if v == "{suggestion_id}" else v)
                         for k, v in verify.expect.items()}
        proposals.append(Proposal(
            action_id=apply_id, tool=c.tool, args={**c.payload, "suggestion_id": sid},
            description=c.description, confidence=c.confidence, reasoning=c.reasoning,
            evidence_refs=c.evidence_refs, expected_outcome=c.expected_outcome,
            rollback_plan=c.rollback_plan, depends_on=[queue_id], verify=verify))
    note = f" (not queued again: {'; '.join(skipped)})" if skipped else ""
    if not proposals:
        return PlanResult(run_facts=facts, summary=f"{trigger['trigger_id']} on "
                                                   f"{trigger['record_id']}: nothing new{note}")
    tools = ", ".join(p.tool for p in proposals if p.tool != "enqueue_suggestion")
    return PlanResult(proposals=proposals, run_facts=facts,
                      summary=f"{trigger['trigger_id']} on {trigger['record_id']}: suggest "
                              f"{tools}{note}")


def _facts(trigger_id: str, high: bool) -> dict[str, Any]:
    return {"category": trigger_id, "priority": "HIGH" if high else "NORMAL"}


def _business_days(start: date, n: int) -> date:
    day = start
    while n > 0:
        day += timedelta(days=1)
        if day.weekday() < 5:
            n -= 1
    return day


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def _first(name: str) -> str:
    return name.split()[0]


def _task(io: NodeIO, env: TriggerEnvelope, *, owner: str, description: str, due: date,
          high: bool, links: dict[str, str | None], confidence: float, reasoning: str,
          refs: list[str]) -> Candidate:
    act_id = stable_id("ACT", env.tenant_id, io.thread_id, "task")
    record = next(v for v in links.values() if v)
    return Candidate(
        tool="create_crm_task",
        payload={"activity_id": act_id, "owner": owner, "description": _clip(description, 300),
                 "due_date": due.isoformat(), "priority": "high" if high else "normal",
                 "lead_id": links.get("lead_id"), "contact_id": links.get("contact_id"),
                 "account_id": links.get("account_id"), "deal_id": links.get("deal_id")},
        confidence=confidence, reasoning=reasoning,
        description=f"Task for {owner} due {due}: {_clip(description, 160)}",
        expected_outcome=f"Open task {act_id} on {record} for {owner}, due {due}",
        rollback_plan=f"Cancel task {act_id}",
        verify=VerifySpec(tool="get_crm_activity", args={"activity_id": act_id},
                          expect={"kind": "task", "status": "open", "owner": owner,
                                  "suggestion_id": "{suggestion_id}"}),
        evidence_refs=refs)


def _email(io: NodeIO, env: TriggerEnvelope, *, to: dict[str, Any], to_key: str, sender: str,
           subject: str, body: str, deal_id: str | None, confidence: float, reasoning: str,
           refs: list[str]) -> Candidate:
    act_id = stable_id("ACT", env.tenant_id, io.thread_id, "email")
    return Candidate(
        tool="send_outreach_email",
        payload={"activity_id": act_id, "lead_id": to[to_key] if to_key == "lead_id" else None,
                 "contact_id": to[to_key] if to_key == "contact_id" else None,
                 "deal_id": deal_id, "sender": sender, "subject": _clip(subject, 200),
                 "body": body},
        confidence=confidence, reasoning=reasoning,
        description=f"Email {to['name']} <{to['email']}> from {sender}: {_clip(subject, 120)}",
        expected_outcome=f"{to['name']} receives the email; logged as {act_id}",
        rollback_plan="Irreversible once sent: follow up with a correction if needed",
        verify=VerifySpec(tool="get_crm_activity", args={"activity_id": act_id},
                          expect={"kind": "email_out", "suggestion_id": "{suggestion_id}",
                                  to_key: to[to_key]}),
        evidence_refs=refs)


def _contactable(person: dict[str, Any]) -> bool:
    return bool(person.get("email")) and not person.get("do_not_contact")


# ----------------------------------------------------------------------- lead stagnation


def _lead_stagnant(io: NodeIO, env: TriggerEnvelope, ctx: dict[str, Any],
                   refs: list[str]) -> tuple[dict[str, Any], list[Candidate] | str]:
    lead = ctx["record"]
    days = lead["days_since_activity"]
    long = days >= 2 * LEAD_STAGNANT_DAYS
    facts = _facts("lead_stagnant", long)
    if lead["status"] not in ACTIVE_LEAD_STATUSES:
        return facts, f"{lead['lead_id']} is {lead['status']} now: not an open lead"
    if days < LEAD_STAGNANT_DAYS:
        return facts, f"{lead['lead_id']} had activity {days} days ago: no longer stagnant"
    today = io.now.date()
    upcoming = [t for t in lead["open_tasks"] if _d(t["due_date"]) >= today]
    if upcoming:
        t = upcoming[0]
        return facts, (f"{lead['lead_id']} is quiet for {days} days but {t['owner']} already "
                       f"plans '{t['subject']}' by {t['due_date']}")
    overdue = [t for t in lead["open_tasks"] if _d(t["due_date"]) < today]
    last = lead["activities"][0] if lead["activities"] else None
    why = (f"Lead inactive for {days} days"
           + (f" (last: {last['kind']} '{last['subject']}' on {last['occurred_at'][:10]})"
              if last else "")
           + f"; status {lead['status']}, owner {lead['owner']}"
           + (f"; {len(overdue)} overdue task(s)" if overdue else "") + ".")
    found = [_task(io, env, owner=lead["owner"],
                   description=f"Follow up with {lead['name']} ({lead['company']}): no "
                               f"activity for {days} days",
                   due=_business_days(today, 1), high=long or bool(overdue),
                   links={"lead_id": lead["lead_id"]}, confidence=0.92 if long else 0.88,
                   reasoning=why, refs=refs)]
    if long and _contactable(lead):
        product = lead["product_interest"] or "our products"
        found.append(_email(
            io, env, to=lead, to_key="lead_id", sender=lead["owner"],
            subject=f"Still looking at {product}?",
            body=(f"Hi {_first(lead['name'])},\n\nIt has been a few weeks since we last spoke "
                  f"about {product} for {lead['company']}. Is it still on your list this "
                  f"quarter? If it helps, I can send a short summary of what similar teams "
                  f"rolled out, or find 20 minutes for questions.\n\nBest,\n{lead['owner']}"),
            deal_id=None, confidence=0.7,
            reasoning=f"{why} After {days} days a short check-in keeps the lead warm; it "
                      "goes out only if a person approves it.", refs=refs))
    return facts, found


# ----------------------------------------------------------------------- deal regression


def _regressions(change: dict[str, Any]) -> list[str]:
    kinds = []
    if 0 < STAGE_RANK.get(change["to_stage"], 0) < STAGE_RANK.get(change["from_stage"], 0):
        kinds.append("stage_moved_back")
    if (_d(change["to_close_date"]) - _d(change["from_close_date"])).days >= \
            CLOSE_SLIP_MIN_DAYS:
        kinds.append("close_date_slipped")
    if change["to_amount"] <= change["from_amount"] * (1 - AMOUNT_DROP_MIN):
        kinds.append("amount_dropped")
    return kinds


def _change_text(h: dict[str, Any]) -> str:
    parts = []
    if h["from_stage"] != h["to_stage"]:
        parts.append(f"stage {h['from_stage']} -> {h['to_stage']}")
    if h["from_close_date"] != h["to_close_date"]:
        slip = (_d(h["to_close_date"]) - _d(h["from_close_date"])).days
        parts.append(f"close date {h['from_close_date']} -> {h['to_close_date']} "
                     f"({slip:+d} days)")
    if h["from_amount"] != h["to_amount"]:
        pct = (h["to_amount"] - h["from_amount"]) / h["from_amount"] * 100 \
            if h["from_amount"] else 0.0
        parts.append(f"amount {h['from_amount']:.0f} -> {h['to_amount']:.0f} ({pct:+.0f}%)")
    return ", ".join(parts) or "no change"


def _deal_regressed(io: NodeIO, env: TriggerEnvelope, payload: DealRegressed,
                    ctx: dict[str, Any],
                    refs: list[str]) -> tuple[dict[str, Any], list[Candidate] | str]:
    deal = ctx["record"]
    since = io.now - timedelta(days=REGRESSION_LOOKBACK_DAYS)
    recent = [h for h in deal["history"] if _t(h["changed_at"]) > since
              and not h["changed_by"].startswith("autopilot:") and _regressions(h)]
    kinds = sorted({k for h in recent for k in _regressions(h)})
    high = "stage_moved_back" in kinds or any(
        h["to_amount"] <= h["from_amount"] * 0.75 for h in recent)
    facts = _facts("deal_regressed", high)
    if deal["stage"] in CLOSED_STAGES:
        return facts, f"{deal['deal_id']} is {deal['stage']} now: nothing to recover"
    if not any(h["change_id"] == payload.context.change_id for h in recent):
        return facts, (f"{deal['deal_id']}: change {payload.context.change_id} is not a recent "
                       "regression in the deal's history")
    contact = deal["primary_contact"]
    who = contact["name"] if contact else "the buyer"
    lines = "; ".join(_change_text(h) + f" on {h['changed_at'][:10]}"
                      + (f" ({h['note']})" if h["note"] else "") for h in recent)
    why = (f"{deal['name']} ({deal['stage']}, {deal['amount']:.0f}, close {deal['close_date']}) "
           f"regressed in the last {REGRESSION_LOOKBACK_DAYS} days: {lines}. Last activity "
           f"{deal['days_since_activity']} days ago.")
    regressed = {f"deal_change:{h['change_id']}" for h in recent}
    change_refs = [r for r in refs if not r.startswith("deal_change:") or r in regressed]
    found = [_task(io, env, owner=deal["owner"],
                   description=f"{deal['name']} regressed ({', '.join(kinds)}): confirm the "
                               f"blocker with {who} and reset the next step and close date",
                   due=_business_days(io.now.date(), 1), high=high,
                   links={"deal_id": deal["deal_id"], "account_id": deal["account_id"],
                          "contact_id": contact["contact_id"] if contact else None},
                   confidence=0.85, reasoning=why, refs=change_refs)]
    if len(recent) >= 2:
        found.append(_note(io, env, owner=deal["owner"],
                           subject=f"{len(recent)} regressions in {REGRESSION_LOOKBACK_DAYS} days",
                           body=why, links={"deal_id": deal["deal_id"],
                                            "account_id": deal["account_id"]},
                           confidence=0.8, reasoning=f"A pattern, not a blip: {why}",
                           refs=change_refs))
    return facts, found


def _note(io: NodeIO, env: TriggerEnvelope, *, owner: str, subject: str, body: str,
          links: dict[str, str | None], confidence: float, reasoning: str,
          refs: list[str]) -> Candidate:
    act_id = stable_id("ACT", env.tenant_id, io.thread_id, "note")
    record = next(v for v in links.values() if v)
    return Candidate(
        tool="log_activity",
        payload={"activity_id": act_id, "kind": "note", "owner": owner,
                 "subject": _clip(subject, 300), "body": _clip(body, 5000),
                 "lead_id": links.get("lead_id"), "contact_id": links.get("contact_id"),
                 "account_id": links.get("account_id"), "deal_id": links.get("deal_id")},
        confidence=confidence, reasoning=reasoning,
        description=f"Note on {record}: {_clip(subject, 160)}",
        expected_outcome=f"Note {act_id} on the timeline of {record}",
        rollback_plan=f"Delete note {act_id}",
        verify=VerifySpec(tool="get_crm_activity", args={"activity_id": act_id},
                          expect={"kind": "note", "suggestion_id": "{suggestion_id}"}),
        evidence_refs=refs)


# ----------------------------------------------------------------------- account risk


def _account_at_risk(io: NodeIO, env: TriggerEnvelope, ctx: dict[str, Any],
                     refs: list[str]) -> tuple[dict[str, Any], list[Candidate] | str]:
    acct = ctx["record"]
    quiet, issues, to_renewal = (acct["days_since_activity"], acct["open_support_issues"],
                                 acct["days_to_renewal"])
    facts = _facts("account_at_risk", True)
    if not (quiet >= ACCOUNT_QUIET_DAYS and issues > 0 and to_renewal is not None
            and 0 < to_renewal <= RENEWAL_WINDOW_DAYS):
        return facts, (f"{acct['account_id']} is no longer at risk: {quiet} days quiet, "
                       f"{issues} open issues, renewal in {to_renewal} days")
    contact = next((c for c in acct["contacts"] if _contactable(c)), None)
    since = acct["support_open_since"][:10] if acct["support_open_since"] else "?"
    why = (f"{acct['name']} renews on {acct['renewal_date']} ({to_renewal} days), has "
           f"{issues} open support issue(s) since {since} and no activity for {quiet} days.")
    found = [_task(io, env, owner=acct["owner"],
                   description=f"Renewal risk at {acct['name']}: call "
                               f"{contact['name'] if contact else 'the account'} about the "
                               f"{issues} open support issue(s) before the {acct['renewal_date']}"
                               " renewal",
                   due=_business_days(io.now.date(), 1), high=True,
                   links={"account_id": acct["account_id"],
                          "contact_id": contact["contact_id"] if contact else None},
                   confidence=0.9, reasoning=why, refs=refs),
             _note(io, env, owner=acct["owner"], subject="Renewal risk flagged",
                   body=f"{why} Signals: no activity >= {ACCOUNT_QUIET_DAYS} days, open "
                        f"support issues, renewal within {RENEWAL_WINDOW_DAYS} days.",
                   links={"account_id": acct["account_id"]}, confidence=0.9,
                   reasoning=f"Puts the risk on the account timeline for everyone: {why}",
                   refs=refs)]
    if contact is not None:
        found.append(_email(
            io, env, to=contact, to_key="contact_id", sender=acct["owner"],
            subject=f"Ahead of your renewal on {acct['renewal_date']}",
            body=(f"Hi {_first(contact['name'])},\n\nYour renewal with us comes up on "
                  f"{acct['renewal_date']}. I know there are open support items on your side "
                  "and I want to make sure they are resolved well before then. Could we find "
                  "30 minutes this week to go through them and your plans for next year?"
                  f"\n\nBest,\n{acct['owner']}"),
            deal_id=None, confidence=0.7,
            reasoning=f"{why} A personal check-in before renewal; it goes out only if a "
                      "person approves it.", refs=refs))
    return facts, found


# ----------------------------------------------------------------------- re-engagement


def _reengagement(io: NodeIO, env: TriggerEnvelope, payload: ReengagementOpportunity,
                  ctx: dict[str, Any],
                  refs: list[str]) -> tuple[dict[str, Any], list[Candidate] | str]:
    act, record = ctx["activity"], ctx["record"]
    facts = _facts("reengagement_opportunity", True)
    when = act["occurred_at"][:10]
    if payload.context.record_type == "lead":
        lead = record
        if lead["status"] != "nurture":
            return facts, f"{lead['lead_id']} is {lead['status']} now, not in nurture"
        earlier = [a for a in lead["activities"] if a["occurred_at"] < act["occurred_at"]]
        dormant = ((_t(act["occurred_at"]) - _t(earlier[0]["occurred_at"])).days
                   if earlier else None)
        why = (f"{lead['name']} ({lead['company']}, nurture) sent '{act['subject']}' on {when}"
               + (f" after {dormant} days of silence" if dormant is not None else "") + ".")
        found = [_task(io, env, owner=lead["owner"],
                       description=f"Call {lead['name']} ({lead['company']}): re-engaged on "
                                   f"{when} ({act['kind']}); requalify and move out of nurture",
                       due=_business_days(io.now.date(), 1), high=True,
                       links={"lead_id": lead["lead_id"]}, confidence=0.85, reasoning=why,
                       refs=refs)]
        if _contactable(lead):
            subject = act["subject"] if act["subject"].lower().startswith("re:") else \
                f"Re: {act['subject']}"
            found.insert(0, _email(
                io, env, to=lead, to_key="lead_id", sender=lead["owner"], subject=subject,
                body=(f"Hi {_first(lead['name'])},\n\nGreat to hear from you. Happy to walk you "
                      f"through {lead['product_interest'] or 'the options'} and current pricing "
                      f"for {lead['company']}. Would a 30-minute call this week or next "
                      f"work?\n\nBest,\n{lead['owner']}"),
                deal_id=None, confidence=0.75,
                reasoning=f"{why} A prompt reply while the interest is fresh.", refs=refs))
        return facts, found
    deal = record
    if deal["stage"] != "Lost":
        return facts, f"{deal['deal_id']} is {deal['stage']} now, not lost"
    contact = deal["primary_contact"]
    who = contact["name"] if contact and contact["contact_id"] == act["contact_id"] else \
        act["owner"]
    lost_days = (io.now.date() - _d(deal["close_date"])).days
    why = (f"{who} at {deal['account']['name']} sent '{act['subject']}' on {when}, "
           f"{lost_days} days after {deal['name']} ({deal['amount']:.0f}) was lost.")
    reopen_close = io.now.date() + timedelta(days=REOPEN_CYCLE_DAYS)
    return facts, [
        _task(io, env, owner=deal["owner"],
              description=f"{who} wrote about the lost {deal['name']} deal: call back, "
                          "find out what changed and requalify",
              due=_business_days(io.now.date(), 1), high=True,
              links={"deal_id": deal["deal_id"], "account_id": deal["account_id"],
                     "contact_id": act["contact_id"]},
              confidence=0.85, reasoning=why, refs=refs),
        Candidate(
            tool="update_deal_stage",
            payload={"deal_id": deal["deal_id"], "expected_stage": "Lost",
                     "stage": "Prospecting", "close_date": reopen_close.isoformat(),
                     "reason": _clip(f"Re-engaged: {why}", 1000)},
            confidence=0.6,
            reasoning=f"{why} Reopening at Prospecting puts it back in the pipeline; lower "
                      "confidence because the owner has not spoken to them yet.",
            description=f"Reopen {deal['name']}: Lost -> Prospecting, close {reopen_close}",
            expected_outcome=f"{deal['deal_id']} is Prospecting again, expected close "
                             f"{reopen_close}",
            rollback_plan=f"Move {deal['deal_id']} back to Lost with its old close date "
                          f"{deal['close_date']}",
            verify=VerifySpec(tool="get_deal_360", args={"deal_id": deal["deal_id"]},
                              expect={"stage": "Prospecting"}),
            evidence_refs=refs),
    ]


# ----------------------------------------------------------------------- queue outcome


def _plan_outcome(s: dict[str, Any], refs: list[str]) -> PlanResult:
    """Close a pending suggestion whose run ended without applying it."""
    review = s["review"]
    facts = {"category": "crm_suggestion_outcome", "priority": "NORMAL"}
    sid = s["suggestion_id"]
    if s["status"] != "pending":
        return PlanResult(run_facts=facts, summary=f"{sid} is already {s['status']}")
    if review["open"]:
        return PlanResult(run_facts=facts, summary=f"{sid} is still under review "
                                                   f"(run {review['run_status']}, approval "
                                                   f"{review['approval_status']})")
    if review["decision"] == "reject" or review["approval_status"] == "cancelled":
        status = "rejected"
        note = (review["message"] if review["decision"] == "reject"
                else f"run cancelled by {review['reviewer']} before the review")
        why = f"The reviewer {'rejected' if review['decision'] == 'reject' else 'withdrew'} it"
    else:
        status = "failed"
        note = review["problem"] or f"the run ended {review['run_status']} without applying it"
        why = f"The run ended {review['run_status']} without applying it"
    note = _clip(note or status, 2000)
    return PlanResult(
        proposals=[Proposal(
            action_id="close", tool="close_suggestion",
            args={"suggestion_id": sid, "status": status, "reviewed_by": review["reviewer"],
                  "note": note},
            description=f"Mark {sid} ({s['action_name']} on {s['record_id']}) {status}",
            confidence=0.99, reasoning=f"{why}: {note}", evidence_refs=refs,
            expected_outcome=f"{sid} is {status} in the suggestion queue",
            rollback_plan=f"Set {sid} back to pending",
            verify=VerifySpec(tool="get_suggestion", args={"suggestion_id": sid},
                              expect={"status": status}))],
        run_facts=facts, summary=f"{sid} {status}: {_clip(note, 120)}")
