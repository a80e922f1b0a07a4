"""Deterministic revenue playbook: perceive the account through read tools, then run the
seed 003 decision protocol and propose what follows from it.

    freshness -> signals -> account state -> contradiction -> actions -> outcome

- a source older than its limit: **DATA_REQUEST** (ask its connector for a sync; nothing is
  decided on stale data);
- signals that contradict each other: **CLARIFICATION_REQUEST** (the owner gets the few
  questions that settle it; no account action);
- actions that need a person (anything customer-facing, a CRM change below the confidence
  threshold, a claim on evidence this run could not read): **APPROVAL_REQUEST**;
- actions that may all run on their own: **ACTION_PROPOSALS**;
- nothing to do: **NO_ACTION**.

Every run records its outcome: in the plan's run facts (`intent`, so the policies see it),
in the plan summary, and as a `rev_decisions` row written by `revenue_record_decision`.
Signals, the account state and the decision are internal bookkeeping that runs on its own.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel

from graphs.revenue import brief
from graphs.revenue.events import (
    AccountChanged,
    MeetingUpcoming,
    NextBestAction,
    SignalBatchReady,
)
from graphs.revenue.signals import OPEN_STAGES, Described, Signal, at, describe, detect
from graphs.revenue.world import (
    AccountState,
    SignalView,
    assess,
    basis_confidence,
    claim_refs,
    contradictions,
    freshness,
    grounding,
    merge,
    signal_label,
    state_changed,
    stored_signals,
)
from graphs.spine import NodeIO, Perception
from graphs.state import PlanResult, Proposal, VerifySpec
from graphs.trigger import TriggerEnvelope, stable_id
from tools.revenue import ACTION_CLASS, EXTERNAL, MUTATION, SIGNALS

BRIEF_LEAD = timedelta(hours=48)
HEALTH_GAP = 15  # points between the CRM's health and the estimate worth a correction
MAX_TASKS = 4
RECENT_EMAIL = timedelta(days=14)
# Internal follow-up per signal type: (title, body, due in days). `{...}` from `describe`.
TASKS: dict[str, tuple[str, str, int]] = {
    "SUPPORT_SEV2_AGING": ("Escalate aging ticket {ticket_id} with the support lead",
                           "{summary}. Agree a fix date with support and tell the customer "
                           "before they chase.", 1),
    "SUPPORT_TICKET_ESCALATION": ("Join the escalation on {ticket_id}",
                                  "{summary}. Get on the bridge with support and own the "
                                  "customer update.", 1),
    "USAGE_DROP_PERCENT": ("Run an adoption review with {account}",
                           "{summary}. Find which teams stopped using the product and offer "
                           "an enablement session.", 5),
    "STAKEHOLDER_CHANGED": ("Re-map stakeholders at {account}: {contact} has left",
                           "{summary}. Find the new owner and ask for an introduction.", 3),
    "CHAMPION_ENGAGEMENT_DROPPED": ("Re-engage champion {contact}",
                                    "{summary}. Call, do not email.", 3),
    "EXECUTIVE_CHANGE": ("Meet the new leadership at {account}",
                         "{summary}. Ask for a meeting to restate the value delivered.", 7),
    "COMPETITIVE_THREAT_DETECTED": ("Prepare a competitive response for {account}",
                                    "{summary}. Pull the value summary and the competitive "
                                    "battlecard before the next call.", 3),
    "NO_MEETING_IN_21_DAYS": ("Book a check-in with {account}", "{summary}.", 2),
    "RENEWAL_WINDOW_ENTERED": ("Build the renewal plan for {account}",
                               "{summary}. The account is not healthy: plan the renewal "
                               "conversation now.", 5),
    "FUNDING_ANNOUNCEMENT": ("Explore expansion at {account}", "{summary}.", 7),
    "PARTNERSHIP_ANNOUNCEMENT": ("Explore expansion at {account}", "{summary}.", 7),
}


def dedupe_ref(envelope: TriggerEnvelope, payload: BaseModel) -> tuple[str, str]:
    if isinstance(payload, AccountChanged):
        return (f"{payload.account_id}@{payload.changed_through.astimezone(UTC).isoformat()}",
                "scan")
    if isinstance(payload, SignalBatchReady):
        return payload.batch_id, payload.account_id
    if isinstance(payload, MeetingUpcoming):
        return payload.meeting_id, payload.account_id
    if isinstance(payload, NextBestAction):
        return payload.request_id, payload.account_id
    raise TypeError(f"no dedupe rule for {type(payload).__name__}")


# --------------------------------------------------------------------------- perceive


def perceive(io: NodeIO, envelope: TriggerEnvelope, payload: BaseModel) -> Perception:
    """Read the account from every source (CRM, support, telemetry, news), its signals
    (expired ones too, flagged) and its maintained state; an external batch's evidence is
    captured as evidence of this run."""
    assert isinstance(payload, AccountChanged | SignalBatchReady | MeetingUpcoming |
                      NextBestAction)
    account_id = payload.account_id
    as_of = envelope.occurred_at.astimezone(UTC)
    account = io.read("get_revenue_account", account_id=account_id)
    context: dict[str, Any] = {
        "trigger": envelope.event_type, "as_of": as_of.isoformat(), "account": account,
        "support": io.read("get_revenue_support_summary", account_id=account_id),
        "usage": io.read("get_revenue_usage_summary", account_id=account_id, weeks=8),
        "market": io.read("list_revenue_market_events", account_id=account_id, days=60),
        "signals": io.read("list_revenue_signals", account_id=account_id,
                           as_of=as_of.isoformat(), include_expired=True),
        "state": io.read("get_revenue_account_state", account_id=account_id),
    }
    items: list[dict[str, Any]] = []
    if isinstance(payload, MeetingUpcoming):
        if payload.meeting_id not in {m["id"] for m in account["meetings"]}:
            raise ValueError(f"payload.meeting_id {payload.meeting_id} is not a recent or "
                             f"upcoming meeting of {account_id}")
        context["meeting_id"] = payload.meeting_id
    if isinstance(payload, SignalBatchReady):
        context["batch"] = payload.model_dump(mode="json")
        items = [e.model_dump() for s in payload.signals for e in s.evidence]
    if isinstance(payload, NextBestAction):
        context["requested_by"], context["question"] = payload.requested_by, payload.question
    return Perception(context, items)


# --------------------------------------------------------------------------- plan


def plan(io: NodeIO, envelope: TriggerEnvelope, payload: BaseModel,
         seen: Perception) -> PlanResult:
    return _Planner(io, seen).run()


def _unique(refs: list[str]) -> list[str]:
    return list(dict.fromkeys(refs))


def observed(ctx: dict[str, Any]) -> list[Signal]:
    """The signals of an external batch, as the planner reasons about them."""
    batch = ctx.get("batch")
    if not batch:
        return []
    out = []
    for s in batch["signals"]:
        kind = SIGNALS[s["signal_type"]]
        out.append(Signal(
            signal_type=s["signal_type"], severity=s["severity"], confidence=s["confidence"],
            direction=kind.direction if kind.direction is not None else s["direction"],
            subject=s["subject"], summary=s["summary"],
            source=f"external:{batch['source']}"[:100],
            evidence_refs=[e["ref"] for e in s["evidence"]],
            ttl_hours=s["ttl_hours"] or kind.ttl_hours, account_id=batch["account_id"]))
    return out


class _Planner:
    """One planning pass over the perceived context."""

    def __init__(self, io: NodeIO, seen: Perception) -> None:
        self.io, self.ctx = io, seen.context
        self.as_of = datetime.fromisoformat(self.ctx["as_of"])
        self.account = self.ctx["account"]
        self.acc = self.account["id"]
        self.a_ref = f"revenue_account:{self.acc}"
        self.captured = {e["ref"] for e in seen.evidence}
        self.limits = io.policy_limits
        self.owner = self.account["owner"]
        self.open_keys = {t["task_key"] for t in self.account["tasks"]}
        self.proposals: list[Proposal] = []
        self.reasons: list[str] = []

    # ------------------------------------------------------------------ protocol

    def run(self) -> PlanResult:
        previous = self.ctx["state"]
        stale = freshness(self.account, self.as_of, self.limits)
        if stale:
            return self._data_request(stale, previous)
        detected = {s.key: s for s in sorted([*detect(self.ctx, self.as_of),
                                              *observed(self.ctx)],
                                             key=lambda s: s.weight)}  # heaviest per key
        batch_id = stable_id("SB", self.io.thread_id)
        view = merge(stored_signals(self.ctx), list(detected.values()), batch_id, self.as_of)
        conflicts = contradictions(view.effective)
        ungrounded = grounding(view.effective, self.captured)
        unknowns = [f"Conflicting {c['dimension']} signals: {c['risk'].summary} vs "
                    f"{c['opportunity'].summary}" for c in conflicts]
        unknowns += [f"{signal_label(key.split('|')[1])} rests on evidence this run could "
                     f"not read ({', '.join(missing)})" for key, missing in ungrounded.items()]
        state = assess(self.account, view, previous, unknowns)
        self._bookkeeping(view, state, previous, batch_id)
        self.reasons.append(f"posture {state.posture} ({state.risk_points} risk points, "
                            f"health estimate {state.health_estimate}, "
                            f"{len(view.effective)} active signals)")
        if view.expired:
            self.reasons.append("ignored expired signals: " + ", ".join(
                f"{s.signal_type} ({s.signal_id})" for s in view.expired))
        validators = {
            "freshness": {"ok": True, "stale": []},
            "contradiction": {"ok": not conflicts, "conflicts": [
                {"dimension": c["dimension"], "subject": c["subject"],
                 "signals": [c["risk"].signal_id, c["opportunity"].signal_id]}
                for c in conflicts]},
            "grounding": {"ok": not ungrounded, "ungrounded": ungrounded},
            "expired_ignored": [s.signal_id for s in view.expired],
        }
        if conflicts:
            return self._clarify(conflicts, state, view, validators)
        actions = self._actions(view, state)
        held = [p for p in actions if self._needs_person(p)]
        outcome = ("APPROVAL_REQUEST" if held else "ACTION_PROPOSALS" if actions
                   else "NO_ACTION")
        for p in actions:
            self.reasons.append(f"{p.action_id} ({p.tool}): " + (
                self._why_held(p) if p in held else "may run on its own"))
        if not actions:
            self.reasons.append("no signal calls for an action")
        self._decision(outcome, view, validators, actions)
        self.proposals += actions
        summary = (f"{outcome} for {self.account['name']} ({state.posture}): " + (
            "; ".join(p.description for p in actions) if actions
            else "nothing to do beyond keeping the account state current"))
        return self._result(outcome, state.posture, summary)

    def _result(self, outcome: str, posture: str, summary: str) -> PlanResult:
        facts = {"intent": outcome, "category": posture,
                 "priority": "HIGH" if posture == "AT_RISK" else "NORMAL"}
        return PlanResult(proposals=self.proposals, run_facts=facts, summary=summary[:1000])

    def _data_request(self, stale: list[dict[str, Any]], previous: dict[str, Any]) -> PlanResult:
        asked = []
        for s in stale:
            why = (f"{s['source']} data of {self.account['name']} was last synced "
                   f"{s['age_hours'] / 24:.1f} days ago (limit {s['max_age_hours']} hours); "
                   "nothing is decided on it until a fresh sync")
            self.reasons.append(why)
            if f"data:{s['source']}" in self.open_keys:
                self.reasons.append(f"a {s['source']} data request is already open")
                continue
            task_id = stable_id("RTD", self.io.thread_id, s["source"])
            asked.append(s["source"])
            self.proposals.append(self._proposal(
                f"request_{s['source']}", "revenue_request_data",
                {"task_id": task_id, "account_id": self.acc, "source": s["source"],
                 "reason": why},
                f"DATA_REQUEST: ask the {s['source']} connector for a fresh sync", 0.99,
                why, [self.a_ref], f"A {s['source']} sync is requested for {self.acc}",
                f"Cancel data request {task_id}",
                VerifySpec(tool="get_revenue_task", args={"task_id": task_id},
                           expect={"kind": "DATA_REQUEST",
                                   "assignee": f"connector:{s['source']}"})))
        validators = {"freshness": {"ok": False, "stale": stale},
                      "contradiction": {"ok": None, "skipped": "stale data"},
                      "grounding": {"ok": None, "skipped": "stale data"}}
        self._decision("DATA_REQUEST", None, validators, [])
        summary = (f"DATA_REQUEST for {self.account['name']}: "
                   f"{', '.join(s['source'] for s in stale)} data too old"
                   + (f"; sync requested ({', '.join(asked)})" if asked else ""))
        return self._result("DATA_REQUEST", previous["posture"] or "", summary)

    def _clarify(self, conflicts: list[dict[str, Any]], state: AccountState, view: SignalView,
                 validators: dict[str, Any]) -> PlanResult:
        questions, ids, refs = [], [], []
        for c in conflicts[:3]:
            risk, opp = c["risk"], c["opportunity"]
            questions.append(f"{risk.summary} [{risk.source}], but {opp.summary} "
                             f"[{opp.source}]. Which is true for {self.account['name']}?")
            ids += [risk.signal_id, opp.signal_id]
            refs += claim_refs(risk) + claim_refs(opp)
            self.reasons.append(f"conflicting {c['dimension']} signals on {c['subject']}: "
                                f"{risk.signal_type} vs {opp.signal_type}")
        key = "clarify:" + ",".join(sorted(f"{c['dimension']}/{c['subject']}"
                                           for c in conflicts))
        actions = []
        if key not in self.open_keys:
            task_id = stable_id("RTC", self.io.thread_id)
            actions.append(self._proposal(
                "clarify", "revenue_request_clarification",
                {"task_id": task_id, "account_id": self.acc, "task_key": key,
                 "assignee": self.owner, "questions": questions,
                 "conflicting_signal_ids": ids},
                f"CLARIFICATION_REQUEST: ask {self.owner} which of the conflicting signals "
                "holds", 0.95, "Signals point opposite ways on the same subject; acting on "
                "either could be wrong, so the owner is asked first.", _unique(refs),
                f"{self.owner} has {len(questions)} question(s) to answer",
                f"Cancel clarification {task_id}",
                VerifySpec(tool="get_revenue_task", args={"task_id": task_id},
                           expect={"kind": "CLARIFICATION", "status": "OPEN"}),
                depends_on=["emit_signals"] if self._has("emit_signals") else []))
        else:
            self.reasons.append("the clarification is already with the owner")
        self._decision("CLARIFICATION_REQUEST", view, validators, actions)
        self.proposals += actions
        return self._result("CLARIFICATION_REQUEST", state.posture,
                            f"CLARIFICATION_REQUEST for {self.account['name']}: "
                            + "; ".join(questions))

    # ------------------------------------------------------------------ bookkeeping

    def _has(self, action_id: str) -> bool:
        return any(p.action_id == action_id for p in self.proposals)

    def _state_refs(self, view: SignalView) -> list[str]:
        """What the state rests on: the stored signals read this run, the evidence of
        signals this run writes, the account and its previous state."""
        refs = [self.a_ref, f"revenue_account_state:{self.acc}"]
        for s in view.effective:
            refs += ([f"signal:{s.signal_id}"] if s.extra.get("stored") and s not in view.emit
                     else s.evidence_refs)
        return _unique(refs)

    def _bookkeeping(self, view: SignalView, state: AccountState, previous: dict[str, Any],
                     batch_id: str) -> None:
        if view.emit or view.resolved:
            resolved = [s.signal_id for s in view.resolved if s.signal_id]
            self.proposals.append(self._proposal(
                "emit_signals", "revenue_emit_signals",
                {"batch_id": batch_id, "account_id": self.acc,
                 "detected_at": self.as_of.isoformat(),
                 "signals": [s.wire() for s in view.emit], "resolved_signal_ids": resolved},
                f"Record {len(view.emit)} signal(s)"
                + (f", resolve {len(resolved)}" if resolved else "")
                + ": " + ", ".join(sorted({s.signal_type for s in view.emit})),
                0.95, "Detected from the sources read this run (each with severity, "
                      "confidence, evidence and TTL); resolved ones no longer show in "
                      "their source.",
                _unique([r for s in view.emit for r in s.evidence_refs]
                        + [f"signal:{i}" for i in resolved]) or [self.a_ref],
                f"Signal batch {batch_id} recorded",
                f"Expire the signals of batch {batch_id}",
                VerifySpec(tool="get_revenue_signal_batch", args={"batch_id": batch_id},
                           expect={"count": len(view.emit) + len(resolved),
                                   "account_id": self.acc})))
        if state_changed(state, previous):
            version = previous["version"]
            self.proposals.append(self._proposal(
                "refresh_state", "revenue_refresh_account_state",
                {"account_id": self.acc, "expected_version": version, **state.args()},
                f"Refresh account state: {state.posture}, {state.momentum.lower()}, "
                f"health estimate {state.health_estimate}", 0.9,
                "Account state is recomputed from the active signals: "
                + "; ".join(state.recent_changes[:5] or ["first state of the account"]),
                self._state_refs(view), f"State of {self.acc} at version {version + 1}",
                f"Restore state version {version}" if version else "Delete the state",
                VerifySpec(tool="get_revenue_account_state", args={"account_id": self.acc},
                           expect={"posture": state.posture, "version": version + 1}),
                depends_on=["emit_signals"] if self._has("emit_signals") else []))

    def _decision(self, outcome: str, view: SignalView | None, validators: dict[str, Any],
                  actions: list[Proposal]) -> None:
        decision_id = stable_id("DEC", self.io.thread_id)
        signal_ids = sorted(s.signal_id for s in view.effective if s.signal_id) if view else []
        self.proposals.append(self._proposal(
            "record_decision", "revenue_record_decision",
            {"decision_id": decision_id, "account_id": self.acc,
             "trigger_type": self.ctx["trigger"], "outcome": outcome,
             "reasons": [r[:500] for r in self.reasons[:20]] or [outcome],
             "validators": validators, "signal_ids": signal_ids[:50],
             "actions": [{"action_id": p.action_id, "tool": p.tool,
                          "class": ACTION_CLASS[p.tool], "confidence": p.confidence,
                          "needs_person": self._needs_person(p),
                          "description": p.description[:300]} for p in actions]},
            f"Record decision {outcome}", 0.99,
            "Every run records its decision-protocol outcome and why.",
            self._state_refs(view) if view else [self.a_ref],
            f"Decision {decision_id}: {outcome}", f"Delete decision {decision_id}",
            VerifySpec(tool="get_revenue_decision", args={"decision_id": decision_id},
                       expect={"outcome": outcome, "account_id": self.acc}),
            depends_on=["emit_signals"] if self._has("emit_signals") else []))

    # ------------------------------------------------------------------ actions

    def _actions(self, view: SignalView, state: AccountState) -> list[Proposal]:
        out = self._briefs(view, state)
        out += [p for p in (self._health(view, state), self._next_step(view)) if p]
        out += [p for p in (self._check_in(view, state), self._agenda(state),
                            self._discount(view, state), self._seats(view)) if p]
        emailing = any(p.tool == "revenue_send_email" for p in out)
        out += self._tasks(view, state, skip_check_in=emailing)
        if self.ctx["trigger"] == "next_best_action" and out:
            out.append(self._answer(out))
        return out

    def _needs_person(self, p: Proposal) -> bool:
        cls = ACTION_CLASS[p.tool]
        if any(r not in self.captured for r in p.evidence_refs):
            return True
        if cls == EXTERNAL:
            return True
        return cls == MUTATION and self._low_confidence(p)

    def _low_confidence(self, p: Proposal) -> bool:
        return round(p.confidence * 100) < self.limits["revenue_mutation_min_confidence_pct"]

    def _why_held(self, p: Proposal) -> str:
        why = []
        missing = [r for r in p.evidence_refs if r not in self.captured]
        if missing:
            why.append(f"cites evidence this run could not read ({', '.join(missing)})")
        if ACTION_CLASS[p.tool] == EXTERNAL:
            why.append("customer-facing: always approved by a person")
        if ACTION_CLASS[p.tool] == MUTATION and self._low_confidence(p):
            why.append(f"confidence {p.confidence:.0%} is below the "
                       f"{self.limits['revenue_mutation_min_confidence_pct']}% needed to "
                       "change the CRM on its own")
        return "; ".join(why)

    def _active(self, view: SignalView, signal_type: str) -> Signal | None:
        return next((s for s in view.effective if s.signal_type == signal_type), None)

    def _contact(self, *roles: str) -> dict[str, Any] | None:
        for role in roles:
            found = next((c for c in self.account["contacts"] if c["role"] == role
                          and c["status"] == "ACTIVE"), None)
            if found is not None:
                return found
        return None

    def _sent(self, kind: str, within: timedelta, contact_id: str | None = None) -> bool:
        return any(o["kind"] == kind and self.as_of - at(o["sent_at"]) <= within
                   and (contact_id is None or o["contact_id"] == contact_id)
                   for o in self.account["outreach"])

    def _briefs(self, view: SignalView, state: AccountState) -> list[Proposal]:
        wanted = self.ctx.get("meeting_id")
        out = []
        for m in self.account["meetings"]:
            start = at(m["starts_at"])
            if m["brief_id"] or m["status"] != "SCHEDULED" or start <= self.as_of:
                continue
            if (m["id"] != wanted) if wanted else (start > self.as_of + BRIEF_LEAD):
                continue
            doc_id = stable_id("DOC", self.io.thread_id, m["id"])
            content = brief.build(self.ctx, m, state, view.effective, self.as_of)
            out.append(self._proposal(
                f"brief_{m['id']}", "revenue_draft_meeting_brief",
                {"document_id": doc_id, "account_id": self.acc, "meeting_id": m["id"],
                 "title": f"Meeting brief: {m['title']} ({start:%Y-%m-%d})"[:300],
                 "content": content},
                f"Draft the meeting brief for {m['title']} on {start:%a %d %b %H:%M} UTC", 0.9,
                f"{m['title']} starts within {BRIEF_LEAD.total_seconds() / 3600:.0f} hours and "
                f"has no brief; it carries the state ({state.posture}), "
                f"{len(content['top_risks'])} top risk(s), {len(content['signals'])} signal(s) "
                f"and {len(content['talking_points'])} talking point(s).",
                _unique([f"meeting:{m['id']}", *self._state_refs(view)]),
                f"Brief {doc_id} ready for the account team", f"Delete brief {doc_id}",
                VerifySpec(tool="get_revenue_document", args={"document_id": doc_id},
                           expect={"kind": "MEETING_BRIEF", "meeting_id": m["id"]}),
                depends_on=["refresh_state"] if self._has("refresh_state") else []))
        return out

    def _health(self, view: SignalView, state: AccountState) -> Proposal | None:
        crm = self.account["health_score"]
        if abs(state.health_estimate - crm) < HEALTH_GAP:
            return None
        basis = [s for s in view.effective if s.direction]
        confidence = basis_confidence(basis)
        refs = _unique([self.a_ref, *(r for s in basis for r in claim_refs(s))])
        return self._proposal(
            "update_health", "revenue_update_account",
            {"account_id": self.acc, "health_score": state.health_estimate,
             "reason": f"Signals put health at {state.health_estimate}, CRM says {crm}"},
            f"Set CRM health {crm} -> {state.health_estimate}", confidence,
            f"{len(basis)} active signal(s) put health at {state.health_estimate} "
            f"({state.posture}); the CRM still says {crm}. Confidence is the signals' "
            "confidence weighted by severity.", refs,
            f"CRM health of {self.acc} is {state.health_estimate}",
            f"Set health_score back to {crm}",
            VerifySpec(tool="get_revenue_account", args={"account_id": self.acc},
                       expect={"health_score": state.health_estimate}))

    def _next_step(self, view: SignalView) -> Proposal | None:
        s = next((x for x in view.effective if x.signal_type == "CLOSE_DATE_SLIPPED" or (
            x.signal_type == "OPPORTUNITY_STAGE_CHANGED" and x.direction < 0)), None)
        deal = next((d for d in self.account["deals"] if s and d["id"] == s.subject), None)
        if s is None or deal is None or deal["stage"] not in OPEN_STAGES:
            return None
        step = (f"Re-confirm the close plan for {deal['name']} (close now "
                f"{at(deal['close_date']):%Y-%m-%d})" if s.signal_type == "CLOSE_DATE_SLIPPED"
                else f"Recover {deal['name']}: agree what it takes to return to "
                     f"{deal['prior_stage']}")[:500]
        if self.account["next_step"] == step:
            return None
        due = (self.as_of + timedelta(days=3)).replace(microsecond=0)
        return self._proposal(
            "update_next_step", "revenue_update_account",
            {"account_id": self.acc, "next_step": step, "next_step_due": due.isoformat(),
             "reason": s.summary}, f"Set next step: {step}", s.confidence,
            f"{s.summary}. The current next step ({self.account['next_step'] or 'none'}) "
            "no longer fits.", _unique([self.a_ref, *claim_refs(s)]),
            f"Next step of {self.acc} updated, due {due:%Y-%m-%d}",
            f"Restore next step {self.account['next_step']!r}",
            VerifySpec(tool="get_revenue_account", args={"account_id": self.acc},
                       expect={"next_step": step}))

    def _email(self, action_id: str, contact: dict[str, Any], subject: str, body: str,
               description: str, reasoning: str, confidence: float, refs: list[str],
               cc: list[str] | None = None) -> Proposal:
        outreach_id = stable_id("OUT", self.io.thread_id, action_id)
        return self._proposal(
            action_id, "revenue_send_email",
            {"outreach_id": outreach_id, "account_id": self.acc, "contact_id": contact["id"],
             "subject": subject, "body": body, "cc": cc or []},
            description, confidence, reasoning, refs,
            f"{contact['name']} receives the email", "Irreversible: an email cannot be unsent",
            VerifySpec(tool="get_revenue_outreach", args={"outreach_id": outreach_id},
                       expect={"kind": "EMAIL", "status": "SENT", "contact_id": contact["id"]}))

    def _check_in(self, view: SignalView, state: AccountState) -> Proposal | None:
        silent = self._active(view, "NO_MEETING_IN_21_DAYS")
        renewal = self._active(view, "RENEWAL_WINDOW_ENTERED")
        contact = self._contact("CHAMPION", "ECONOMIC_BUYER")
        if silent is None or contact is None or not (renewal or state.posture == "AT_RISK"):
            return None
        if self._sent("EMAIL", RECENT_EMAIL, contact["id"]):
            return None
        first = contact["name"].split()[0]
        why = "; ".join(s.summary for s in (silent, renewal) if s)
        return self._email(
            "check_in", contact, f"Time for a check-in, {first}?",
            f"Hi {first},\n\nIt has been a while since we last met. Could we find 30 minutes "
            f"in the next two weeks to review how {self.account['name']} is getting on"
            + (" and plan the upcoming renewal" if renewal else "") + "?\n\nBest,\n"
            + self.owner.split("@")[0].replace(".", " ").title(),
            f"Email {contact['name']} to book a check-in", why, 0.8,
            _unique([self.a_ref, f"contact:{contact['id']}",
                     *(r for s in (silent, renewal) if s for r in claim_refs(s))]))

    def _agenda(self, state: AccountState) -> Proposal | None:
        meeting = next((m for m in self.account["meetings"]
                        if m["id"] == self.ctx.get("meeting_id")), None)
        if meeting is None or meeting["status"] != "SCHEDULED":
            return None
        people = {c["id"]: c for c in self.account["contacts"] if c["status"] == "ACTIVE"}
        attendees = [people[i] for i in meeting["attendee_ids"] if i in people]
        if not attendees:
            return None
        attendees.sort(key=lambda c: c["role"] != "CHAMPION")
        to, cc = attendees[0], [c["id"] for c in attendees[1:3]]
        if self._sent("EMAIL", timedelta(days=2), to["id"]):
            return None
        start = at(meeting["starts_at"])
        first = to["name"].split()[0]
        return self._email(
            "agenda", to, f"Agenda for {meeting['title']} ({start:%a %d %b})",
            f"Hi {first},\n\nLooking forward to {meeting['title']} on "
            f"{start:%A %d %B at %H:%M} UTC. I suggest we cover:\n- progress since we last "
            "met\n- anything open with support\n- next steps\n\nAnything you would like to "
            "add?",
            f"Send {to['name']} the agenda for {meeting['title']}",
            f"Meeting prep: confirm the agenda ahead of {meeting['title']} "
            f"(account {state.posture}).", 0.85,
            [f"meeting:{meeting['id']}", *(f"contact:{c['id']}" for c in attendees[:3])], cc)

    def _open_deal(self, *kinds: str, within: timedelta | None = None) -> dict[str, Any] | None:
        for d in self.account["deals"]:
            if d["kind"] in kinds and d["stage"] in OPEN_STAGES and (
                    within is None or at(d["close_date"]) - self.as_of <= within):
                return d
        return None

    def _discount(self, view: SignalView, state: AccountState) -> Proposal | None:
        threat = self._active(view, "COMPETITIVE_THREAT_DETECTED")
        deal = self._open_deal("RENEWAL", within=timedelta(days=120))
        contact = self._contact("ECONOMIC_BUYER", "CHAMPION")
        if threat is None or state.posture != "AT_RISK" or deal is None or contact is None:
            return None
        if self._sent("DISCOUNT_OFFER", timedelta(days=30)):
            return None
        dropping = self._active(view, "USAGE_DROP_PERCENT")
        pct = min(10 + (5 if dropping else 0), int(self.limits["revenue_max_discount_pct"]))
        outreach_id = stable_id("OUT", self.io.thread_id, "discount")
        first = contact["name"].split()[0]
        basis = [threat, *([dropping] if dropping else [])]
        return self._proposal(
            "offer_discount", "revenue_offer_discount",
            {"outreach_id": outreach_id, "account_id": self.acc, "contact_id": contact["id"],
             "deal_id": deal["id"], "discount_pct": pct,
             "subject": f"Your {self.account['name']} renewal",
             "body": f"Hi {first},\n\nAhead of your renewal on "
                     f"{at(deal['close_date']):%d %B}, we would like to offer {pct}% off the "
                     f"renewal if signed by then. Happy to walk you through it.\n\nBest,\n"
                     + self.owner.split("@")[0].replace(".", " ").title()},
            f"Offer {contact['name']} {pct}% off renewal {deal['name']}", threat.confidence,
            f"Renewal at risk ({state.posture}) with a competitor in the picture: "
            + "; ".join(s.summary for s in basis), _unique(
                [f"deal:{deal['id']}", f"contact:{contact['id']}",
                 *(r for s in basis for r in claim_refs(s))]),
            f"{contact['name']} receives a {pct}% renewal offer",
            "Irreversible once sent: the offer can only be withdrawn by a person",
            VerifySpec(tool="get_revenue_outreach", args={"outreach_id": outreach_id},
                       expect={"kind": "DISCOUNT_OFFER", "status": "SENT",
                               "discount_pct": pct}))

    def _seats(self, view: SignalView) -> Proposal | None:
        spike = self._active(view, "PRODUCT_USAGE_SPIKE")
        weeks = self.ctx["usage"]["usage_weeks"][-2:]
        users = sum(w["active_users"] for w in weeks) / max(1, len(weeks))
        seats = self.account["seats"]
        deal = self._open_deal("RENEWAL", "EXPANSION")
        contact = self._contact("ECONOMIC_BUYER", "CHAMPION")
        if spike is None or users <= seats or deal is None or contact is None:
            return None
        if self._sent("CONTRACT_CHANGE", timedelta(days=30)):
            return None
        new_seats = int(math.ceil(users * 1.1 / 5) * 5)
        outreach_id = stable_id("OUT", self.io.thread_id, "seats")
        return self._proposal(
            "add_seats", "revenue_propose_contract_change",
            {"outreach_id": outreach_id, "account_id": self.acc, "contact_id": contact["id"],
             "deal_id": deal["id"], "new_seats": new_seats,
             "subject": f"Updating your {self.account['name']} licence",
             "body": f"Hi {contact['name'].split()[0]},\n\n{users:.0f} people now use the "
                     f"product every week on {seats} seats. Attached is an order form for "
                     f"{new_seats} seats on {deal['name']}."},
            f"Send {contact['name']} an order form for {new_seats} seats (now {seats})",
            spike.confidence, f"{spike.summary}: usage is above the licence.",
            _unique([f"deal:{deal['id']}", f"contact:{contact['id']}", *claim_refs(spike)]),
            f"{deal['name']} re-priced for {new_seats} seats and sent for signature",
            f"Irreversible once sent: a person withdraws the order form; deal back to {seats} "
            "seats",
            VerifySpec(tool="get_revenue_outreach", args={"outreach_id": outreach_id},
                       expect={"kind": "CONTRACT_CHANGE", "new_seats": new_seats}))

    def _tasks(self, view: SignalView, state: AccountState,
               skip_check_in: bool) -> list[Proposal]:
        picked = []
        for s in view.effective:
            template = TASKS.get(s.signal_type)
            key = f"task:{s.key}"
            if template is None or key in self.open_keys:
                continue
            if s.direction < 0 and s.severity < 3 or s.direction > 0 and s.severity < 2:
                continue
            if s.signal_type == "RENEWAL_WINDOW_ENTERED" and (
                    s.severity < 3 or state.posture not in ("AT_RISK", "WATCH")):
                continue
            if s.signal_type == "NO_MEETING_IN_21_DAYS" and skip_check_in:
                continue
            picked.append((s, key, template))
        out: list[Proposal] = []
        titles: set[str] = set()
        for s, key, (title, body, days) in picked:
            names = Described(describe(s, self.ctx))
            if title.format_map(names) in titles or len(out) >= MAX_TASKS:
                continue  # one task per follow-up, however many signals call for it
            titles.add(title.format_map(names))
            task_id = stable_id("RTK", self.io.thread_id, key)
            due = (self.as_of + timedelta(days=days)).replace(microsecond=0)
            out.append(self._proposal(
                f"task_{s.signal_type.lower()}_{len(out) + 1}", "revenue_create_task",
                {"task_id": task_id, "account_id": self.acc, "kind": "TASK", "task_key": key,
                 "title": title.format_map(names)[:300], "body": body.format_map(names),
                 "assignee": self.owner, "due_at": due.isoformat()},
                f"Task for {self.owner}: {title.format_map(names)}"[:300], s.confidence,
                f"{signal_label(s.signal_type)} (severity {s.severity}, confidence "
                f"{s.confidence:.0%}): {s.summary}", _unique(claim_refs(s)),
                f"Task {task_id} open for {self.owner}, due {due:%Y-%m-%d}",
                f"Cancel task {task_id}",
                VerifySpec(tool="get_revenue_task", args={"task_id": task_id},
                           expect={"kind": "TASK", "status": "OPEN", "task_key": key})))
        return out

    def _answer(self, actions: list[Proposal]) -> Proposal:
        who = str(self.ctx["requested_by"])
        task_id = stable_id("RTN", self.io.thread_id)
        lines = [f"{i}. {p.description} - why: {p.reasoning[:200]} (confidence "
                 f"{p.confidence:.0%}; evidence {', '.join(p.evidence_refs[:4])})"
                 for i, p in enumerate(actions, start=1)]
        return self._proposal(
            "answer", "revenue_create_task",
            {"task_id": task_id, "account_id": self.acc, "kind": "NOTE",
             "task_key": f"answer:{task_id}", "title": f"Next best actions for "
                                                       f"{self.account['name']}"[:300],
             "body": f"Q: {self.ctx['question']}\n" + "\n".join(lines), "assignee": who},
            f"Answer {who}: {len(actions)} ranked action(s)", 0.9,
            "A person asked what to do next: the answer lists the proposed actions with why "
            "and evidence.", _unique([self.a_ref, *(r for p in actions
                                                     for r in p.evidence_refs
                                                     if r in self.captured)]),
            f"{who} has the answer as a note", f"Delete note {task_id}",
            VerifySpec(tool="get_revenue_task", args={"task_id": task_id},
                       expect={"kind": "NOTE", "assignee": who}))

    @staticmethod
    def _proposal(action_id: str, tool: str, args: dict[str, Any], description: str,
                  confidence: float, reasoning: str, refs: list[str], expected: str,
                  rollback: str, verify: VerifySpec,
                  depends_on: list[str] | None = None) -> Proposal:
        return Proposal(action_id=action_id, tool=tool, args=args,
                        description=description[:500], confidence=round(confidence, 2),
                        reasoning=reasoning, evidence_refs=refs, expected_outcome=expected,
                        rollback_plan=rollback, verify=verify, depends_on=depends_on or [])
