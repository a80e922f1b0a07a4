"""The shared spine: perceive -> plan -> gate -> approval (interrupt) -> execute -> verify.

`build_graph(spec)` returns an uncompiled `StateGraph`; whoever hosts it compiles it with
its checkpointer (our runtime with SQLite/Postgres, `langgraph dev` with its own). An
autopilot supplies only its trigger types, a perceive step and a planner; the gate,
approvals, exactly-once execution, retries, verification and escalation live here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from langgraph.config import get_config
from langgraph.errors import NodeError
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Command, RetryPolicy, interrupt
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from autopilot.config import Settings
from autopilot.logs import bind_trace
from autopilot.models import AgentException, Approval, Run
from autopilot.services import RunContext, Services, default_services
from graphs.hitl import (
    ActionRequest,
    EditDecision,
    HITLRequest,
    HITLResponse,
    RejectDecision,
    ReviewConfig,
)
from graphs.state import AutopilotInput, AutopilotState, Escalation, PlanResult, Proposal
from graphs.trigger import TriggerEnvelope, parse_trigger
from policy.engine import (
    POLICY_ERROR,
    Outcome,
    PolicyDecision,
    RunFacts,
)
from tools.gateway import Authorization, Principal, idempotency_key
from tools.registry import ToolError, ToolKind, TransientToolError

NODES = ("perceive", "plan", "gate", "approval", "execute", "verify")  # the spine, in order

# Which exception-inbox category a blocking reason belongs to.
REASON_CATEGORY = {
    POLICY_ERROR: "SYSTEM",
    "SPEND_HARD_BLOCK": "FINANCIAL",
    "SPEND_OVER_AUTO_LIMIT": "FINANCIAL",
    "SPEND_WINDOW_EXCEEDED": "FINANCIAL",
    "EMERGENCY_ALWAYS_ESCALATE": "SAFETY",
    "INJURY_REPORTED": "SAFETY",
    "LEGAL_KEYWORD": "LEGAL",
    "HARASSMENT_KEYWORD": "LEGAL",
    "DISCRIMINATION_CLAIM": "LEGAL",
    "EVICTION_CONTEXT": "LEGAL",
    "VENDOR_AT_CAPACITY": "SLA",
    "SLA_BREACHED": "SLA",
    "COMPLIANCE_OVERDUE": "SLA",
    "COMPLIANCE_CRITICAL_WINDOW": "SLA",
    "RATE_LIMIT_TOOL": "SYSTEM",
    "RATE_LIMIT_TENANT": "SYSTEM",
}
# Reasons that put an approval above the routine MEDIUM severity.
HIGH_SEVERITY_REASONS = frozenset({
    "SPEND_OVER_AUTO_LIMIT", "SPEND_WINDOW_EXCEEDED", "LEGAL_KEYWORD", "HARASSMENT_KEYWORD",
    "DISCRIMINATION_CLAIM", "INJURY_REPORTED", "EVICTION_CONTEXT", "SLA_BREACHED",
    "COMPLIANCE_OVERDUE", "RATE_LIMIT_TENANT"})


@dataclass(frozen=True)
class Perception:
    context: dict[str, Any]
    evidence: list[dict[str, Any]] = field(default_factory=list)  # {ref, source, summary}


class NodeIO:
    """What perceive and plan may touch: read tools through the gateway, as the autopilot,
    in the run's tenant; nothing else."""

    def __init__(self, services: Services, tenant_id: str, thread_id: str, graph: str = "",
                 trace_id: str = "") -> None:
        self._services = services
        self.tenant_id = tenant_id
        self.thread_id = thread_id
        self.trace_id = trace_id
        self.principal = Principal.autopilot(graph, tenant_id)
        self.now = datetime.now(UTC)
        self.reads: list[dict[str, Any]] = []  # what perceive saw, captured as evidence

    def read(self, tool: str, **args: Any) -> dict[str, Any]:
        out = self._services.gateway.read(self.principal, tool, args,
                                          thread_id=self.thread_id, trace_id=self.trace_id)
        self.reads.append({"tool": tool, "args": args, "output": out})
        return out

    @property
    def policy_limits(self) -> dict[str, Any]:
        """The active policy thresholds, so a planner can avoid proposing what will be blocked."""
        return self._services.policy_for(self.tenant_id).limits


PerceiveFn = Callable[[NodeIO, TriggerEnvelope, BaseModel], Perception]
PlanFn = Callable[[NodeIO, TriggerEnvelope, BaseModel, Perception], PlanResult]
DedupeFn = Callable[[TriggerEnvelope, BaseModel], tuple[str, str]]
# Scheduled trigger detection: (all-tenant session, since (None: everything), until) -> raw
# trigger events. Set-based SQL over indexed columns, limited to what changed in the window.
DetectFn = Callable[[Session, datetime | None, datetime], list[dict[str, Any]]]
# Sandbox data for one tenant: (session in that tenant, tenant id, now) -> True if it seeded
# anything. Must be idempotent (check its own rows first).
SeedFn = Callable[[Session, str, datetime], bool]
# Demo triggers: (tenant id, now) -> [(what this shows, raw trigger event)].
DemoFn = Callable[[str, datetime], list[tuple[str, dict[str, Any]]]]


@dataclass(frozen=True)
class AutopilotSpec:
    """Everything that differs between autopilots."""

    name: str
    description: str
    event_types: dict[str, type[BaseModel]]
    dedupe_ref: DedupeFn  # (trigger ref, scope) for the dedupe key
    perceive: PerceiveFn
    plan: PlanFn
    detect: DetectFn | None = None
    schedule: str = "0 * * * *"  # the scheduler tick (cron); AUTOPILOT_SCHEDULES overrides
    seed: SeedFn | None = None  # its sandbox data (the shared property data is always seeded)
    demo: DemoFn | None = None  # what `autopilot demo` fires for it
    # The planner half of the graph version (evals): bump when the playbook's behaviour or a
    # prompt changes on purpose, so reports say which planner they measured.
    planner_version: str = "1"
    model: str = "rule-based (no LLM)"


def _services(runtime: Runtime[RunContext] | None) -> Services:
    ctx = getattr(runtime, "context", None)
    return ctx.services if isinstance(ctx, RunContext) else default_services()


def _thread_id() -> str:
    return str(get_config()["configurable"]["thread_id"])


def _trace(state: AutopilotState) -> str:
    """The trace id of the run: the trigger's, else the thread id (hosts without our runner)."""
    return str((state.get("trigger") or {}).get("trace_id") or _thread_id())


def _tenant(state: AutopilotState) -> str:
    return str(state.get("tenant_id") or (state.get("trigger") or {}).get("tenant_id", ""))


def _ledger(services: Services, state: AutopilotState, event_type: str,
            payload: dict[str, Any], key: str | None = None) -> None:
    """Record one run event (a re-run node's repeat is skipped by key)."""
    _ledger_many(services, state, [(event_type, payload, key)])


def _ledger_many(services: Services, state: AutopilotState,
                 events: list[tuple[str, dict[str, Any], str | None]]) -> None:
    """Run events in one transaction, in order (repeats skipped by key)."""
    thread_id, tenant = _thread_id(), _tenant(state)
    with services.db.session(tenant) as s:
        for event_type, payload, key in events:
            services.ledger.append(s, tenant_id=tenant, event_type=event_type,
                                   thread_id=thread_id, trace_id=_trace(state),
                                   event_key=f"{thread_id}:{key}" if key else None,
                                   payload=payload)


def _proposals(state: AutopilotState) -> list[Proposal]:
    return [Proposal.model_validate(p) for p in state.get("proposals", [])]


def _dump(proposals: list[Proposal]) -> list[dict[str, Any]]:
    return [p.model_dump(mode="json") for p in proposals]


def _escalation(**kwargs: Any) -> dict[str, Any]:
    return Escalation(**kwargs).model_dump(mode="json")


def build_graph(spec: AutopilotSpec, settings: Settings | None = None) -> StateGraph:
    """The spine for one autopilot, uncompiled."""
    settings = settings or Settings()

    def perceive(state: AutopilotState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        bind_trace(_trace(state), _thread_id())
        services = _services(runtime)
        envelope, payload = parse_trigger(state["trigger"], spec.event_types)
        io = NodeIO(services, envelope.tenant_id, _thread_id(), spec.name, _trace(state))
        seen = spec.perceive(io, envelope, payload)
        captured = services.evidence.capture_all(
            tenant_id=envelope.tenant_id, thread_id=_thread_id(), trace_id=_trace(state),
            items=seen.evidence, reads=io.reads, principal=io.principal.label)
        return {"graph": spec.name, "tenant_id": envelope.tenant_id,
                "context": seen.context, "evidence": captured, "approval_round": 0}

    def plan(state: AutopilotState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        bind_trace(_trace(state), _thread_id())
        services = _services(runtime)
        envelope, payload = parse_trigger(state["trigger"], spec.event_types)
        io = NodeIO(services, envelope.tenant_id, _thread_id(), spec.name, _trace(state))
        seen = Perception(state.get("context", {}), state.get("evidence", []))
        result = spec.plan(io, envelope, payload, seen)
        RunFacts.model_validate(result.run_facts)  # a planner typo fails here, not in Cedar
        ids = [p.action_id for p in result.proposals]
        problems = [f"duplicate action_id {i!r}" for i in {i for i in ids if ids.count(i) > 1}]
        for p in result.proposals:
            try:
                spec_ = services.registry.get(p.tool)
                if spec_.kind is not ToolKind.WRITE:
                    problems.append(f"{p.action_id}: {p.tool} is a read tool; reads belong "
                                    "in perceive")
                p.args = services.registry.validate(p.tool, p.args).model_dump(mode="json")
            except ToolError as exc:
                problems.append(f"{p.action_id}: {exc}")
            problems += [f"{p.action_id}: depends on unknown action {d!r}"
                         for d in p.depends_on if d not in ids]
        evidence = [*state.get("evidence", []), *services.evidence.capture_all(
            tenant_id=envelope.tenant_id, thread_id=_thread_id(), trace_id=_trace(state),
            items=[], reads=io.reads, principal=io.principal.label)]  # what plan read too
        known_refs = {e["ref"] for e in evidence}
        for p in result.proposals:  # grounding: every claim must cite evidence we captured
            missing = [r for r in p.evidence_refs if r not in known_refs]
            p.grounded = bool(p.evidence_refs) and not missing
            p.grounding = ("" if p.grounded else "cites no evidence" if not p.evidence_refs
                           else f"cites evidence this run did not capture: {', '.join(missing)}")
        update: dict[str, Any] = {"proposals": _dump(result.proposals), "evidence": evidence,
                                  "run_facts": result.run_facts, "plan_summary": result.summary}
        signal = {k: v for k, v in result.run_facts.items() if k != "text"}
        events = [("SIGNAL", {"run_facts": signal, "summary": result.summary,
                              "escalation": update.get("escalation")}, "signal")]
        events += [("PROPOSAL", {
            "action_id": p.action_id, "tool": p.tool, "args": p.args,
            "description": p.description, "reasoning": p.reasoning,
            "confidence": p.confidence, "evidence_refs": p.evidence_refs,
            "grounded": p.grounded, "grounding": p.grounding,
            "expected_outcome": p.expected_outcome, "rollback_plan": p.rollback_plan,
            "depends_on": p.depends_on}, f"proposal:{p.action_id}") for p in result.proposals]
        _ledger_many(services, state, events)
        if problems:
            update["escalation"] = _escalation(
                severity="HIGH", category="SYSTEM", title="Planner produced invalid proposals",
                details="; ".join(problems), decision_requested="Handle this trigger by hand")
        elif result.escalation is not None:
            update["escalation"] = result.escalation.model_dump(mode="json")
        return update

    def route_after_plan(state: AutopilotState) -> str:
        if state.get("escalation"):
            return "escalate"
        return "gate" if state.get("proposals") else "finish"

    def gate(state: AutopilotState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        bind_trace(_trace(state), _thread_id())
        services = _services(runtime)
        proposals = _proposals(state)
        for p in proposals:
            if p.status != "proposed":
                continue
            decision = _decide(services, spec.name, state, p, "gate", runtime)
            p.decision = decision.model_dump(mode="json")
            p.status = {Outcome.ALLOW: "allowed", Outcome.REQUIRE_APPROVAL: "needs_approval",
                        Outcome.BLOCK: "blocked"}[decision.outcome]
        update: dict[str, Any] = {"proposals": _dump(proposals)}
        escalation = _blocked_escalation(proposals, state.get("run_facts", {}))
        if escalation:
            update["escalation"] = escalation
        return update

    def route_after_gate(state: AutopilotState) -> str:
        statuses = {p["status"] for p in state.get("proposals", [])}
        if "blocked" in statuses:
            return "escalate"  # a plan with a blocked action is held whole
        if "allowed" in statuses or "needs_approval" not in statuses:
            # Allowed actions that do not wait on a held one run now (so e.g. the work order
            # exists while the dispatch waits); execute then hands over to approval.
            return "execute"
        return "approval"

    def approval(state: AutopilotState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        # Nothing before interrupt() may have a side effect: this node re-runs on resume.
        proposals = _proposals(state)
        pending = [p for p in proposals if p.status == "needs_approval"]
        request = _approval_request(_services(runtime), state, proposals, pending)
        response = interrupt(request.model_dump(mode="json"), response_schema=HITLResponse)
        if not isinstance(response, HITLResponse):
            response = HITLResponse.model_validate(response)
        if len(response.decisions) != len(pending):
            raise ValueError(f"expected {len(pending)} decisions, got {len(response.decisions)}")
        services = _services(runtime)
        round_ = state.get("approval_round", 0) + 1
        reviewer = response.reviewer or "unidentified-client"
        approval_id = response.approval_id or f"{_thread_id()}:approval-{round_}"
        _record_approval(services, state, approval_id, request, response, reviewer)
        for p, d in zip(pending, response.decisions, strict=True):
            p.review = {"type": d.type, "reviewer": reviewer, "approval_id": approval_id,
                        "round": round_, "at": datetime.now(UTC).isoformat()}
            if isinstance(d, RejectDecision):
                p.status, p.review["message"] = "rejected", d.message
            elif isinstance(d, EditDecision):
                if d.edited_action.name != p.tool:
                    raise ValueError(f"edit of {p.action_id} must keep tool {p.tool!r}")
                _apply_edit(p, services.registry.validate(p.tool, d.edited_action.args)
                            .model_dump(mode="json"))
                p.status, p.decision = "proposed", None  # edited args go back through the gate
            else:
                p.status = "approved"
        return {"proposals": _dump(proposals), "approval_round": round_}

    def route_after_approval(state: AutopilotState) -> str:
        statuses = {p["status"] for p in state.get("proposals", [])}
        return "gate" if "proposed" in statuses else "execute"

    def execute(state: AutopilotState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        bind_trace(_trace(state), _thread_id())
        services = _services(runtime)
        proposals = _proposals(state)
        tenant, thread_id = state["tenant_id"], _thread_id()
        status = {p.action_id: p.status for p in proposals}
        replaying = bool(getattr(runtime.context, "replay", False))
        for p in proposals:
            if p.status not in ("allowed", "approved"):
                continue
            if _cancelled(services, tenant, thread_id):  # a person stopped the run
                for q in proposals:
                    if q.status in ("allowed", "approved", "needs_approval", "proposed"):
                        q.status = status[q.action_id] = "cancelled"
                break
            deps = [status[d] for d in p.depends_on]
            if any(d in ("rejected", "blocked", "skipped") for d in deps):
                p.status = status[p.action_id] = "skipped"
                continue
            if any(d not in ("executed", "simulated") for d in deps):
                continue  # waits for an action still in front of a person
            # Re-gate at the moment of the write: facts (vendor load, policy version) may
            # have moved since the gate or the approval, and state may have been edited.
            fresh = _decide(services, spec.name, state, p, "execute", runtime)
            stricter = not (fresh.outcome is Outcome.ALLOW or (
                p.status == "approved" and fresh.outcome is Outcome.REQUIRE_APPROVAL))
            prior = (services.gateway.recorded(idempotency_key(thread_id, p.action_id), tenant)
                     if stricter else None)
            if prior is not None:  # it ran before a crash or retry: its recorded result stands
                p.result, p.replayed, p.status = prior.output, True, "executed"
                status[p.action_id] = "executed"
                continue
            if stricter or fresh.decision_id is None:  # hold this action and all after it
                p.decision = fresh.model_dump(mode="json")
                p.status = ("blocked" if fresh.outcome is Outcome.BLOCK
                            else "needs_approval")
                status[p.action_id] = p.status
                break
            key = idempotency_key(thread_id, p.action_id)
            if replaying and services.gateway.recorded(key, tenant) is None:
                # A replay never acts anew: it shows what it would do, on the ledger.
                p.status = status[p.action_id] = "simulated"
                _ledger(services, state, "TOOL_CALL", {
                    "tool": p.tool, "kind": "write", "action_id": p.action_id,
                    "status": "simulated", "principal": f"autopilot:{spec.name}",
                    "note": "replay: the gate let it go ahead, but it had not run before, "
                            "so it was not executed", "input": p.args})
                continue
            review = p.review or {}  # an edit that re-gated to ALLOW keeps its author
            approved = fresh.outcome is Outcome.REQUIRE_APPROVAL
            auth = Authorization(
                decision_id=fresh.decision_id, policy_version=fresh.policy_version,
                reason_code=(f"APPROVED:{review.get('approval_id')} "
                             f"({','.join(fresh.reasons)})" if approved
                             else ",".join(fresh.reasons)),
                approval_id=review.get("approval_id"), reviewer=review.get("reviewer"))
            p.result, p.replayed = services.gateway.write(
                Principal.autopilot(spec.name, tenant), p.tool, p.args, thread_id=thread_id,
                action_id=p.action_id, authorization=auth, trace_id=_trace(state))
            p.status = status[p.action_id] = "executed"
        update: dict[str, Any] = {"proposals": _dump(proposals)}
        escalation = _blocked_escalation(proposals, state.get("run_facts", {}))
        if escalation:
            update["escalation"] = escalation
        return update

    def route_after_execute(state: AutopilotState) -> str:
        statuses = {p["status"] for p in state.get("proposals", [])}
        if "blocked" in statuses:
            return "escalate"
        return "approval" if "needs_approval" in statuses else "verify"


    def execute_failed(state: AutopilotState, error: NodeError,
                       runtime: Runtime[RunContext]) -> Command:
        services = _services(runtime)
        thread_id = _thread_id()
        executed = [p.action_id for p in _proposals(state)
                    if services.gateway.recorded(idempotency_key(thread_id, p.action_id),
                                                 _tenant(state))]
        transient = isinstance(error.error, TransientToolError)
        _ledger(services, state, "ERROR", {"node": error.node, "error": str(error.error),
                                           "error_type": type(error.error).__name__,
                                           "transient": transient, "executed": executed})
        return Command(goto="escalate", update={"escalation": _escalation(
            severity="HIGH", category="SYSTEM",
            title=("Tool kept failing after 3 tries" if transient
                   else "Tool failed permanently"),
            details=f"{type(error.error).__name__}: {error.error}. "
                    f"Completed before the failure: {', '.join(executed) or 'nothing'}.",
            decision_requested="Finish the remaining steps by hand; `autopilot show` and "
                               "`autopilot history` list what was done")})

    def verify(state: AutopilotState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        bind_trace(_trace(state), _thread_id())
        services = _services(runtime)
        checks, failures = [], []
        principal = Principal.autopilot(spec.name, state["tenant_id"])
        for p in _proposals(state):
            if p.status != "executed" or p.verify is None:
                continue
            actual = services.gateway.read(principal, p.verify.tool, p.verify.args,
                                           thread_id=_thread_id(), trace_id=_trace(state))
            diff = {k: {"expected": v, "actual": actual.get(k)}
                    for k, v in p.verify.expect.items() if actual.get(k) != v}
            checks.append({"action_id": p.action_id, "ok": not diff, "diff": diff})
            if diff:
                failures.append(f"{p.action_id} {p.tool}: {diff}")
        update: dict[str, Any] = {"verification": checks}
        _ledger(services, state, "VERIFICATION", {"checks": checks, "ok": not failures},
                f"verify:{state.get('approval_round', 0)}")
        if failures:
            update["escalation"] = _escalation(
                severity="HIGH", category="SYSTEM", title="Verification failed",
                details="; ".join(failures),
                decision_requested="Check the records and correct them by hand")
        return update

    def route_after_verify(state: AutopilotState) -> str:
        return "escalate" if state.get("escalation") else "finish"

    def node_failed(state: AutopilotState, error: NodeError,
                    runtime: Runtime[RunContext]) -> Command:
        _ledger(_services(runtime), state, "ERROR", {
            "node": error.node, "error": str(error.error),
            "error_type": type(error.error).__name__})
        return Command(goto="escalate", update={"escalation": _escalation(
            severity="HIGH", category="SYSTEM", title=f"{error.node} failed",
            details=f"{type(error.error).__name__}: {error.error}",
            decision_requested="Handle this trigger by hand")})

    def escalate(state: AutopilotState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        bind_trace(_trace(state), _thread_id())
        services = _services(runtime)
        esc = Escalation.model_validate(state["escalation"])
        thread_id = _thread_id()
        tenant = state.get("tenant_id") or state["trigger"].get("tenant_id", "unknown")
        with services.db.session(tenant) as s:
            if s.get(AgentException, f"EXC-{thread_id}") is None:
                services.ledger.append(
                    s, tenant_id=tenant, event_type="ESCALATION", thread_id=thread_id,
                    trace_id=_trace(state), event_key=f"{thread_id}:escalation",
                    payload={"exception_id": f"EXC-{thread_id}", **esc.model_dump(mode="json")})
                s.add(AgentException(
                    id=f"EXC-{thread_id}", tenant_id=tenant, thread_id=thread_id,
                    graph=spec.name, severity=esc.severity, category=esc.category,
                    title=esc.title, details=esc.details,
                    context={"blocked_rules": esc.blocked_rules,
                             "decision_requested": esc.decision_requested,
                             "evidence_refs": esc.evidence_refs,
                             "proposals": state.get("proposals", [])},
                    status="OPEN"))
        return {"outcome": "escalated", "summary": f"Escalated: {esc.title}"}

    def finish(state: AutopilotState) -> dict[str, Any]:
        proposals = _proposals(state)
        executed = [p for p in proposals if p.status in ("executed", "simulated")]
        if not proposals:
            return {"outcome": "nothing_to_do", "summary": state.get("plan_summary", "")}
        cancelled = [p.action_id for p in proposals if p.status == "cancelled"]
        if cancelled:
            return {"outcome": "cancelled",
                    "summary": f"Cancelled before {', '.join(cancelled)} ran "
                               f"({len(executed)}/{len(proposals)} actions executed)"}
        if not executed:
            return {"outcome": "rejected", "summary": "Every proposed action was rejected"}
        rejected = [f"{p.action_id} rejected by {(p.review or {}).get('reviewer')}: "
                    f"{(p.review or {}).get('message')}" for p in proposals
                    if p.status == "rejected"]
        skipped = [p.action_id for p in proposals if p.status == "skipped"]
        simulated = [p.action_id for p in proposals if p.status == "simulated"]
        if simulated:
            skipped += [f"{a} (replay: not executed)" for a in simulated]
        return {"outcome": "completed",
                "summary": f"{state.get('plan_summary', '')} "
                           f"({len(executed)}/{len(proposals)} actions executed and verified"
                           + (f"; {'; '.join(rejected)}" if rejected else "")
                           + (f"; skipped as dependent: {', '.join(skipped)}" if skipped else "")
                           + ")"}

    retry = RetryPolicy(max_attempts=3, initial_interval=settings.retry_initial_interval,
                        backoff_factor=2.0, max_interval=5.0, retry_on=TransientToolError)
    # No context_schema: the runtime context carries live services, which have no JSON schema.
    graph = StateGraph(AutopilotState, input_schema=AutopilotInput)
    graph.add_node("perceive", perceive, retry_policy=retry, error_handler=node_failed)
    graph.add_node("plan", plan, error_handler=node_failed)
    graph.add_node("gate", gate, error_handler=node_failed)
    graph.add_node("approval", approval)
    graph.add_node("execute", execute, retry_policy=retry, error_handler=execute_failed)
    graph.add_node("verify", verify, retry_policy=retry, error_handler=node_failed)
    graph.add_node("escalate", escalate)
    graph.add_node("finish", finish)
    graph.add_edge(START, "perceive")
    graph.add_edge("perceive", "plan")
    graph.add_conditional_edges("plan", route_after_plan, ["gate", "escalate", "finish"])
    graph.add_conditional_edges("gate", route_after_gate, ["approval", "execute", "escalate"])
    graph.add_conditional_edges("approval", route_after_approval, ["gate", "execute"])
    graph.add_conditional_edges("execute", route_after_execute,
                                ["verify", "approval", "escalate"])
    graph.add_conditional_edges("verify", route_after_verify, ["escalate", "finish"])
    graph.add_edge("escalate", END)
    graph.add_edge("finish", END)
    return graph


def _apply_edit(p: Proposal, new_args: dict[str, Any]) -> None:
    """Replace a proposal's args; keep what was derived from them (verify, description) true."""
    old_args = p.args
    changed = {k: (old_args.get(k), v) for k, v in new_args.items() if old_args.get(k) != v}
    if p.verify is not None:  # an expectation copied from an edited argument follows it
        for key, expected in list(p.verify.expect.items()):
            if key in changed and old_args.get(key) == expected:
                p.verify.expect[key] = new_args[key]
        for key, value in list(p.verify.args.items()):
            if key in changed and old_args.get(key) == value:
                p.verify.args[key] = new_args[key]
    if p.review is not None:
        p.review["original_args"] = old_args
    if changed:
        p.description += " [edited: " + ", ".join(
            f"{k} {a} -> {b}" for k, (a, b) in changed.items()) + "]"
    p.args = new_args


def _record_approval(services: Services, state: AutopilotState, approval_id: str,
                     request: HITLRequest, response: HITLResponse, reviewer: str) -> None:
    """Make sure the decision is on record before anything acts on it.

    Our runner records (claims) it before resuming; a host that resumes the interrupt
    directly (`langgraph dev`, an SDK client) gets it recorded here. The executor accepts an
    approval only if this row exists, is decided, and approves that action.
    """
    with services.db.session(state["tenant_id"]) as s:
        if s.get(Approval, approval_id) is None:
            s.add(Approval(id=approval_id, thread_id=_thread_id(), tenant_id=state["tenant_id"],
                           graph=state.get("graph", ""), status="decided",
                           severity=request.severity, request=request.model_dump(mode="json"),
                           decision=response.model_dump(mode="json"), decided_by=reviewer,
                           decided_at=datetime.now(UTC)))
            record_approval_event(services, s, tenant_id=state["tenant_id"],
                                  thread_id=_thread_id(), trace_id=_trace(state),
                                  approval_id=approval_id, reviewer=reviewer,
                                  request=request.model_dump(mode="json"),
                                  decision=response.model_dump(mode="json"))


def _cancelled(services: Services, tenant: str, thread_id: str) -> bool:
    """Was the run cancelled (`POST /v1/runs/{id}/cancel`)? Checked before every write."""
    with services.db.session(tenant) as s:
        return s.scalar(select(Run.status).where(Run.thread_id == thread_id)) == "cancelled"


def record_approval_event(services: Services, session: Any, *, tenant_id: str, thread_id: str,
                          trace_id: str, approval_id: str, reviewer: str,
                          request: dict[str, Any], decision: dict[str, Any]) -> None:
    """The APPROVAL ledger entry (once per approval, whichever path records it first)."""
    ids = request.get("action_ids", [])
    decisions = decision.get("decisions", [])
    services.ledger.append(
        session, tenant_id=tenant_id, event_type="APPROVAL", thread_id=thread_id,
        trace_id=trace_id, event_key=f"approval:{approval_id}",
        payload={"approval_id": approval_id, "reviewer": reviewer,
                 "decisions": [{"action_id": a, **d} for a, d in zip(ids, decisions,
                                                                      strict=False)]})


def _blocked_escalation(proposals: list[Proposal],
                        run_facts: dict[str, Any]) -> dict[str, Any] | None:
    """The exception for a plan with blocked actions (held whole; nothing else runs)."""
    blocked = [p for p in proposals if p.status == "blocked"]
    if not blocked:
        return None
    reasons = sorted({r for p in blocked for r in (p.decision or {}).get("reasons", [])})
    done = [p.action_id for p in proposals if p.status == "executed"]
    return _escalation(
        severity="CRITICAL" if run_facts.get("is_emergency") else "HIGH",
        category=next((REASON_CATEGORY[r] for r in reasons if r in REASON_CATEGORY),
                      "SYSTEM"),
        title=f"Policy blocked {', '.join(p.tool for p in blocked)}",
        details="; ".join(f"{p.action_id} {p.tool}: {p.description} -> BLOCK "
                          f"({', '.join((p.decision or {}).get('reasons', []))})"
                          for p in blocked)
        + (f". Already executed: {', '.join(done)}; the rest is held for a manager."
           if done else ". Nothing in this plan was executed: a plan with a blocked action "
                        "is held whole for a manager."),
        blocked_rules=reasons,
        decision_requested="Decide how to proceed outside the autopilot's authority "
                           "(e.g. approve spend through the owner, pick another vendor)",
        evidence_refs=sorted({r for p in blocked for r in p.evidence_refs}))


def _decide(services: Services, graph: str, state: AutopilotState, p: Proposal,
            stage: str, runtime: Runtime[RunContext] | None) -> PolicyDecision:
    """Gate one proposal; facts come from its (possibly edited) args, never from the planner.
    A replay takes no window slot and may be pinned to a policy version."""
    ctx = getattr(runtime, "context", None)
    replaying = bool(getattr(ctx, "replay", False))
    return services.gate.decide(graph=graph, tenant_id=state["tenant_id"],
                                thread_id=_thread_id(), action_id=p.action_id, tool=p.tool,
                                args=p.args, run_facts=state.get("run_facts", {}), stage=stage,
                                approved=p.status == "approved", grounded=p.grounded,
                                trace_id=_trace(state), counts=not replaying,
                                policy_version=getattr(ctx, "policy_version", None),
                                confidence=p.confidence)


@lru_cache(maxsize=256)
def _args_schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema()


def _approval_request(services: Services, state: AutopilotState, proposals: list[Proposal],
                      pending: list[Proposal]) -> HITLRequest:
    run_facts = state.get("run_facts", {})
    severity = "CRITICAL" if run_facts.get("is_emergency") else (
        "HIGH" if any(HIGH_SEVERITY_REASONS & set((p.decision or {}).get("reasons", []))
                      for p in pending) else "MEDIUM")
    risks = []
    for p in pending:
        tool = services.registry.get(p.tool)
        risks.append(f"{p.tool}: {tool.risk.value} risk, "
                     f"{'reversible' if tool.reversible else 'irreversible'}, "
                     f"cost class {tool.cost_class.value}")
    return HITLRequest(
        action_requests=[ActionRequest(name=p.tool, args=p.args, description=p.description)
                         for p in pending],
        review_configs=[ReviewConfig(action_name=p.tool,
                                     allowed_decisions=["approve", "edit", "reject"],
                                     args_schema=_args_schema(services.registry.get(p.tool)
                                                              .input_model))
                        for p in pending],
        action_ids=[p.action_id for p in pending],
        summary=state.get("plan_summary", ""),
        severity=severity,
        risk="; ".join(risks),
        policy=[{"action_id": p.action_id, "outcome": (p.decision or {}).get("outcome"),
                 "reasons": (p.decision or {}).get("reasons", []),
                 "policy_version": (p.decision or {}).get("policy_version")} for p in pending],
        evidence_refs=sorted({r for p in pending for r in p.evidence_refs}),
        reasoning=[f"{p.action_id}: {p.reasoning} (confidence {p.confidence:.2f})"
                   for p in pending],
        rollback_plans=[f"{p.action_id}: {p.rollback_plan}" for p in pending],
        also_runs_on_approval=[{"action_id": p.action_id, "tool": p.tool,
                                "description": p.description}
                               for p in proposals if p.status == "allowed"],
        round=state.get("approval_round", 0) + 1,
    )
