"""The runner: starts runs from triggers (deduplicated), records approvals, resumes runs.

It owns the app-side records of a run (`runs`, `approvals`); the graph state itself lives in
the checkpointer. Claiming an approval is one conditional UPDATE, so of two concurrent
answers exactly one resumes the run and the other gets `ApprovalConflict`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.types import Command
from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from autopilot.db import ALL_TENANTS
from autopilot.models import AgentException, Approval, Run
from autopilot.services import RunContext, Services
from graphs import get_spec
from graphs.hitl import EditDecision, HITLResponse
from graphs.spine import build_graph, record_approval_event
from graphs.state import AutopilotState
from graphs.trigger import TriggerError, dedupe_key, parse_trigger, thread_id_for
from tools.registry import ToolArgumentError, pydantic_errors

SEVERITY_RANK = {"CRITICAL": 0, "HIGH": 1, "MEDIUM": 2, "LOW": 3}
# The seed 004 task state machine. `outcome` says how a completed run ended.
ACTIVE = ("queued", "running", "needs_approval", "executing", "failed_retryable")
TERMINAL = ("completed", "escalated", "failed_terminal", "cancelled")
STATUSES = (*ACTIVE, *TERMINAL)
# The graph's final `outcome` -> (run status, run outcome).
_FINAL = {"completed": ("completed", "resolved"), "rejected": ("completed", "rejected"),
          "nothing_to_do": ("completed", "nothing_to_do"), "escalated": ("escalated", None),
          "cancelled": ("cancelled", "cancelled")}


class RunNotFound(LookupError):
    pass


class ApprovalNotFound(LookupError):
    pass


class ApprovalConflict(RuntimeError):
    """The approval was already decided (by someone else, or by an earlier call)."""


class RunStateError(RuntimeError):
    """The run is not in a state that allows this (e.g. cancelling a finished run)."""


class DecisionError(ValueError):
    """A decision that does not fit the pending request; `fields` names what is wrong."""

    def __init__(self, fields: list[dict[str, str]]) -> None:
        self.fields = fields
        super().__init__("invalid decision: " + "; ".join(
            f"{f['field']}: {f['message']}" for f in fields))


@dataclass
class RunView:
    thread_id: str
    graph: str
    tenant_id: str
    status: str
    summary: str | None
    deduplicated: bool = False
    outcome: str | None = None
    values: dict[str, Any] | None = None
    pending_approval: dict[str, Any] | None = None


class Runner:
    def __init__(self, services: Services, checkpointer: BaseCheckpointSaver) -> None:
        self.services = services
        self.checkpointer = checkpointer
        self._compiled: dict[str, Any] = {}
        self._context = RunContext(services)

    # ------------------------------------------------------------------ graph plumbing

    def graph(self, name: str) -> Any:
        if name not in self._compiled:
            builder = build_graph(get_spec(name), self.services.settings)
            self._compiled[name] = builder.compile(checkpointer=self.checkpointer,
                                                   store=self.services.memory.store)
        return self._compiled[name]

    @staticmethod
    def config(thread_id: str) -> dict[str, Any]:
        return {"configurable": {"thread_id": thread_id}}

    def _invoke(self, run: Run, graph_input: Any, status: str | None = "running") -> RunView:
        """Drive the graph until it finishes or interrupts, then mirror its state."""
        if status is not None:
            self._set_status(run.thread_id, status)
        with self.services.db.session(run.tenant_id) as s:
            replaying, pin = s.execute(select(Run.replaying, Run.replay_policy_version).where(
                Run.thread_id == run.thread_id)).one()
        context = (RunContext(self.services, replay=True, policy_version=pin) if replaying
                   else self._context)
        self.graph(run.graph).invoke(graph_input, self.config(run.thread_id),
                                     context=context, durability="sync")
        return self._sync(run)

    # ------------------------------------------------------------------ runs

    def submit(self, graph_name: str, raw_event: Any) -> RunView:
        """Validate a trigger and run it here to its first stop, or return the run it
        already started (finishing it if a crash stopped it part-way)."""
        view, created = self.enqueue(graph_name, raw_event)
        if created or view.status in ACTIVE:
            deduplicated = not created
            view = self.resume(view.thread_id)
            view.deduplicated = deduplicated
        return view

    def enqueue(self, graph_name: str, raw_event: Any, *,
                dedupe_suffix: str = "") -> tuple[RunView, bool]:
        """Validate a trigger and record its run as `queued` (with its INTENT on the ledger),
        or find the run the same trigger already started. Returns (run, created)."""
        spec = get_spec(graph_name)
        envelope, payload = parse_trigger(raw_event, spec.event_types)
        ref, scope = spec.dedupe_ref(envelope, payload)
        key = dedupe_key(graph_name, envelope, ref, scope) + dedupe_suffix
        thread_id = thread_id_for(graph_name, key)
        trigger = envelope.model_dump(mode="json")
        trigger["trace_id"] = trace_id = envelope.trace_id or uuid.uuid4().hex
        try:
            with self.services.db.session(envelope.tenant_id) as s:
                existing = s.get(Run, thread_id)
                if existing is None:
                    run = Run(thread_id=thread_id, tenant_id=envelope.tenant_id,
                              graph=graph_name, dedupe_key=key, trigger=trigger,
                              status="queued", trace_id=trace_id)
                    s.add(run)
                    self.services.ledger.append(
                        s, tenant_id=envelope.tenant_id, event_type="INTENT",
                        thread_id=thread_id, trace_id=trace_id, event_key=f"{thread_id}:intent",
                        payload={"graph": graph_name, "event_type": envelope.event_type,
                                 "source": envelope.source, "event_id": envelope.event_id,
                                 "occurred_at": trigger.get("occurred_at"),
                                 "dedupe_key": key, "payload": trigger.get("payload")})
        except IntegrityError:  # a concurrent submit of the same trigger won the insert
            return self.view(thread_id, deduplicated=True), False
        if existing is None:
            return RunView(thread_id=thread_id, graph=graph_name, tenant_id=envelope.tenant_id,
                           status="queued", summary=None), True
        return self.view(thread_id, deduplicated=True), False

    def resume(self, thread_id: str) -> RunView:
        """Continue a run that stopped part-way (crash, kill), from its last checkpoint.

        A run parked on an approval that was already claimed is resumed with the recorded
        decision, so a crash between claim and resume loses nothing.
        """
        run = self._run(thread_id)
        if run.status in ("cancelled", "failed_terminal"):
            return self.view(thread_id)
        state = self.graph(run.graph).get_state(self.config(thread_id))
        if not state.values and not state.next:
            return self._invoke(run, {"trigger": run.trigger})
        if state.interrupts:
            with self.services.db.session(run.tenant_id) as s:
                approval = s.get(Approval, state.interrupts[0].id)
            if approval is None or approval.status != "decided" or approval.decision is None:
                return self._sync(run)
            return self._invoke(run, Command(resume={approval.id: approval.decision}),
                                status="executing")
        if state.next:
            return self._invoke(run, None)
        return self._sync(run)

    def _sync(self, run: Run) -> RunView:
        """Mirror the checkpoint into the runs/approvals tables (idempotent) and return it."""
        thread_id = run.thread_id
        state = self.graph(run.graph).get_state(self.config(thread_id))
        values = state.values or {}
        pending, outcome = None, None
        now = datetime.now(UTC)
        ttl = self.services.settings.approval_ttl_s
        with self.services.db.session(run.tenant_id) as s:
            current = s.get(Run, thread_id)
            if state.interrupts:
                status, intr = "needs_approval", state.interrupts[0]
                approval = s.get(Approval, intr.id)
                if approval is None:
                    approval = Approval(id=intr.id, thread_id=thread_id, tenant_id=run.tenant_id,
                                        graph=run.graph, status="pending",
                                        severity=intr.value.get("severity", "MEDIUM"),
                                        request=intr.value, created_at=now,
                                        expires_at=now + timedelta(seconds=ttl) if ttl else None)
                    s.add(approval)
                if approval.status == "pending":
                    pending = {"id": intr.id, "severity": approval.severity,
                               "request": intr.value}
                elif approval.status == "expired":
                    status = "escalated"  # the expiry escalated it; the exception inbox decides
            elif state.next:
                status = "running"
            else:
                status, outcome = _FINAL[values.get("outcome", "completed")]
            if current is not None and current.status == "cancelled":
                status, outcome = "cancelled", "cancelled"
            # A pending row whose interrupt is gone was answered elsewhere (e.g. by a client
            # resuming the graph directly): it can no longer be decided here.
            live = [i.id for i in state.interrupts]
            s.execute(update(Approval).where(Approval.thread_id == thread_id,
                                             Approval.status == "pending",
                                             Approval.id.not_in(live))
                      .values(status="superseded"))
            summary = values.get("summary") or values.get("plan_summary")
            gated = [p["decision"]["policy_version"] for p in values.get("proposals", [])
                     if p.get("decision")]
            s.execute(update(Run).where(Run.thread_id == thread_id).values(
                status=status, outcome=outcome, error=None,
                current_node=state.next[0] if state.next else None,
                summary=summary, updated_at=now,
                policy_version=gated[-1] if gated else None))
        return RunView(thread_id=thread_id, graph=run.graph, tenant_id=run.tenant_id,
                       status=status, summary=summary, values=values,
                       pending_approval=pending, outcome=outcome)

    def _set_status(self, thread_id: str, status: str) -> None:
        with self.services.db.session(ALL_TENANTS) as s:
            s.execute(update(Run).where(Run.thread_id == thread_id).values(
                status=status, updated_at=datetime.now(UTC)))

    def _run(self, thread_id: str, tenant_id: str | None = None) -> Run:
        """A run by id; with `tenant_id`, another tenant's run does not exist."""
        with self.services.db.session(tenant_id or ALL_TENANTS) as s:
            run = s.get(Run, thread_id)
        if run is None or (tenant_id is not None and run.tenant_id != tenant_id):
            raise RunNotFound(f"no run {thread_id!r}")
        return run

    def run_record(self, thread_id: str, tenant_id: str | None = None) -> Run:
        """The `runs` row of a run (raises RunNotFound)."""
        return self._run(thread_id, tenant_id)

    def view(self, thread_id: str, *, deduplicated: bool = False) -> RunView:
        run = self._run(thread_id)
        state = self.graph(run.graph).get_state(self.config(thread_id))
        pending = None
        with self.services.db.session(run.tenant_id) as s:
            approval = s.scalar(select(Approval).where(Approval.thread_id == thread_id,
                                                       Approval.status == "pending"))
            if approval is not None:
                pending = {"id": approval.id, "severity": approval.severity,
                           "request": approval.request}
        return RunView(thread_id=run.thread_id, graph=run.graph, tenant_id=run.tenant_id,
                       status=run.status, summary=run.summary, deduplicated=deduplicated,
                       values=state.values, pending_approval=pending, outcome=run.outcome)

    def unfinished(self) -> list[str]:
        """Runs a crash may have stopped part-way (including a claimed, unapplied approval)."""
        with self.services.db.session(ALL_TENANTS) as s:
            return list(s.scalars(select(Run.thread_id).where(Run.status.in_(ACTIVE))
                                  .order_by(Run.created_at)))

    def list_runs(self, tenant_id: str | None = None) -> list[Run]:
        with self.services.db.session(tenant_id or ALL_TENANTS) as s:
            q = select(Run).order_by(Run.created_at)
            if tenant_id:
                q = q.where(Run.tenant_id == tenant_id)
            return list(s.scalars(q))

    def exceptions(self, tenant_id: str | None = None) -> list[AgentException]:
        with self.services.db.session(tenant_id or ALL_TENANTS) as s:
            q = select(AgentException).order_by(AgentException.created_at)
            if tenant_id:
                q = q.where(AgentException.tenant_id == tenant_id)
            return list(s.scalars(q))

    # ------------------------------------------------------------------ approvals

    def pending_approvals(self, tenant_id: str | None = None) -> list[Approval]:
        with self.services.db.session(tenant_id or ALL_TENANTS) as s:
            q = select(Approval).where(Approval.status == "pending")
            if tenant_id:
                q = q.where(Approval.tenant_id == tenant_id)
            rows = list(s.scalars(q))
        return sorted(rows, key=lambda a: (SEVERITY_RANK.get(a.severity, 9), a.created_at))

    def approval_for(self, run_or_approval_id: str, tenant_id: str | None = None) -> Approval:
        """Find an approval by its id or its run's thread id (the newest for a run)."""
        with self.services.db.session(tenant_id or ALL_TENANTS) as s:
            approval = s.get(Approval, run_or_approval_id)
            if approval is None:
                approval = s.scalar(select(Approval).where(
                    Approval.thread_id == run_or_approval_id).order_by(
                    Approval.created_at.desc()).limit(1))
        if approval is None or (tenant_id is not None and approval.tenant_id != tenant_id):
            raise ApprovalNotFound(f"no approval for {run_or_approval_id!r}")
        return approval

    def validate_decision(self, approval: Approval, raw: Any) -> HITLResponse:
        """Check a decision against the request it answers, before anything is claimed."""
        try:
            response = HITLResponse.model_validate(raw)
        except ValidationError as exc:
            raise DecisionError(pydantic_errors(exc)) from None
        requests = approval.request.get("action_requests", [])
        if len(response.decisions) != len(requests):
            raise DecisionError([{"field": "decisions", "message": (
                f"expected {len(requests)} decision(s), one per action request, "
                f"got {len(response.decisions)}")}])
        problems = []
        for i, (decision, req) in enumerate(zip(response.decisions, requests, strict=True)):
            if isinstance(decision, EditDecision):
                if decision.edited_action.name != req["name"]:
                    problems.append({"field": f"decisions.{i}.edited_action.name",
                                     "message": f"must stay {req['name']!r}"})
                    continue
                try:
                    self.services.registry.validate(req["name"], decision.edited_action.args)
                except ToolArgumentError as exc:
                    problems += [{"field": f"decisions.{i}.edited_action.args.{f['field']}",
                                  "message": f["message"]} for f in exc.fields]
        if problems:
            raise DecisionError(problems)
        return response

    def decide(self, run_or_approval_id: str, raw_decision: Any, reviewer: str) -> RunView:
        """Record a human decision exactly once and resume the run with it, here."""
        approval = self.claim(run_or_approval_id, raw_decision, reviewer)
        run = Run(thread_id=approval.thread_id, graph=approval.graph,
                  tenant_id=approval.tenant_id)  # what _invoke needs; no second read
        return self._invoke(run, Command(resume={approval.id: approval.decision}), status=None)

    def claim(self, run_or_approval_id: str, raw_decision: Any, reviewer: str, *,
              tenant_id: str | None = None, allow_expired: bool = False) -> Approval:
        """Validate a decision and record it exactly once (pending -> decided, the run to
        `executing`, the APPROVAL on the ledger, all in one transaction). Whoever resumes
        the run next (this process or a worker) applies it. A second claim raises
        `ApprovalConflict`; an expired approval is decided only through its exception."""
        approval = self.approval_for(run_or_approval_id, tenant_id=tenant_id)
        open_states = ("pending", "expired") if allow_expired else ("pending",)
        if approval.status not in open_states:
            if approval.status == "decided":
                raise ApprovalConflict(f"approval {approval.id} was already decided by "
                                       f"{approval.decided_by} at {approval.decided_at:%c}")
            raise ApprovalConflict(f"approval {approval.id} is {approval.status} and can no "
                                   "longer be decided" + (
                                       " here; decide it through its exception"
                                       if approval.status == "expired" else ""))
        response = self.validate_decision(approval, raw_decision)
        response.reviewer, response.approval_id = reviewer, approval.id
        payload = response.model_dump(mode="json")
        now = datetime.now(UTC)
        with self.services.db.session(approval.tenant_id) as s:
            claimed = s.execute(
                update(Approval).where(Approval.id == approval.id,
                                       Approval.status.in_(open_states))
                .values(status="decided", decision=payload, decided_by=reviewer,
                        decided_at=now)).rowcount
            if claimed == 1:
                run_row = s.get(Run, approval.thread_id)
                s.execute(update(Run).where(Run.thread_id == approval.thread_id).values(
                    status="executing", updated_at=now))
                record_approval_event(
                    self.services, s, tenant_id=approval.tenant_id,
                    thread_id=approval.thread_id,
                    trace_id=run_row.trace_id if run_row else "", approval_id=approval.id,
                    reviewer=reviewer, request=approval.request, decision=payload)
        if claimed != 1:
            with self.services.db.session(approval.tenant_id) as s:
                winner = s.get(Approval, approval.id)
            raise ApprovalConflict(f"approval {approval.id} was already decided by "
                                   f"{winner.decided_by if winner else 'someone else'}")
        approval.status, approval.decision, approval.decided_by = "decided", payload, reviewer
        approval.decided_at = now
        return approval

    # ------------------------------------------------------------------ lifecycle

    def cancel(self, thread_id: str, *, by: str, reason: str = "",
               tenant_id: str | None = None) -> RunView:
        """Stop a run: no further step starts and no write that has not begun runs (execute
        checks before each write). Pending approvals are withdrawn. Ledgered as CONTROL."""
        run = self._run(thread_id, tenant_id=tenant_id)
        now = datetime.now(UTC)
        with self.services.db.session(run.tenant_id) as s:
            done = s.execute(update(Run).where(Run.thread_id == thread_id,
                                               Run.status.in_(ACTIVE))
                             .values(status="cancelled", outcome="cancelled",
                                     updated_at=now)).rowcount
            if done != 1:
                current = s.get(Run, thread_id)
                raise RunStateError(f"run {thread_id} is {current.status if current else '?'}"
                                    " and can no longer be cancelled")
            s.execute(update(Approval).where(Approval.thread_id == thread_id,
                                             Approval.status == "pending")
                      .values(status="cancelled", decided_by=by, decided_at=now))
            self.services.ledger.append(
                s, tenant_id=run.tenant_id, event_type="CONTROL", thread_id=thread_id,
                trace_id=run.trace_id, event_key=f"{thread_id}:cancel",
                payload={"action": "cancel_run", "by": by, "reason": reason,
                         "status_before": run.status})
        return self.view(thread_id)

    def mark_failed(self, thread_id: str, error: str, *, retryable: bool) -> None:
        """A job that raised: `failed_retryable` while the queue will try again, else
        `failed_terminal` (with an ERROR on the ledger and a SYSTEM exception to look at)."""
        run = self._run(thread_id)
        status = "failed_retryable" if retryable else "failed_terminal"
        with self.services.db.session(run.tenant_id) as s:
            s.execute(update(Run).where(Run.thread_id == thread_id,
                                        Run.status.not_in(TERMINAL))
                      .values(status=status, error=error[:2000],
                              updated_at=datetime.now(UTC)))
            if retryable:
                return
            self.services.ledger.append(
                s, tenant_id=run.tenant_id, event_type="ERROR", thread_id=thread_id,
                trace_id=run.trace_id, event_key=f"{thread_id}:failed_terminal",
                payload={"error": error[:2000], "status": status})
            if s.get(AgentException, f"EXC-{thread_id}") is None:
                s.add(AgentException(
                    id=f"EXC-{thread_id}", tenant_id=run.tenant_id, thread_id=thread_id,
                    graph=run.graph, severity="HIGH", category="SYSTEM",
                    title=f"Run failed after retries: {error[:200]}", details=error[:4000],
                    context={"blocked_rules": [], "evidence_refs": [],
                             "decision_requested": "Retry the run once the cause is fixed, "
                                                   "or close it."},
                    status="OPEN"))

    def expire_approvals(self, now: datetime | None = None) -> list[str]:
        """Escalate pending approvals past their TTL: each becomes `expired`, its run
        `escalated`, with an SLA exception in the inbox whose decision can still resume it."""
        now = now or datetime.now(UTC)
        with self.services.db.session(ALL_TENANTS) as s:
            due = list(s.scalars(select(Approval).where(Approval.status == "pending",
                                                        Approval.expires_at <= now)))
        expired = []
        for approval in due:
            with self.services.db.session(approval.tenant_id) as s:
                if s.execute(update(Approval).where(Approval.id == approval.id,
                                                    Approval.status == "pending")
                             .values(status="expired")).rowcount != 1:
                    continue  # decided meanwhile
                run = s.get(Run, approval.thread_id)
                s.execute(update(Run).where(Run.thread_id == approval.thread_id)
                          .values(status="escalated", updated_at=now))
                exc_id = f"EXC-{approval.id}"
                title = (f"Approval expired unanswered after "
                         f"{self.services.settings.approval_ttl_s:.0f}s: "
                         + str(approval.request.get("description", ""))[:200])
                s.add(AgentException(
                    id=exc_id, tenant_id=approval.tenant_id, thread_id=approval.thread_id,
                    graph=approval.graph, severity=approval.severity, category="SLA",
                    title=title, details="No reviewer decided in time; the run is held.",
                    context={"approval_id": approval.id, "blocked_rules": [],
                             "evidence_refs": [], "request": approval.request,
                             "decision_requested": "approve, edit or reject the held "
                                                   "actions (resumes the run), or close"},
                    status="OPEN", requires_by=None))
                self.services.ledger.append(
                    s, tenant_id=approval.tenant_id, event_type="ESCALATION",
                    thread_id=approval.thread_id, trace_id=run.trace_id if run else "",
                    event_key=f"approval:{approval.id}:expired",
                    payload={"exception_id": exc_id, "category": "SLA",
                             "approval_id": approval.id, "reason": "APPROVAL_EXPIRED"})
            expired.append(approval.id)
        return expired

    # ------------------------------------------------------------------ time travel

    def history(self, thread_id: str) -> list[dict[str, Any]]:
        """Checkpoints oldest first: step, the node that produced it, what runs next, time."""
        run = self._run(thread_id)
        snaps = list(self.graph(run.graph).get_state_history(self.config(thread_id)))
        snaps.reverse()
        out, produced_by = [], "(input)"
        for snap in snaps:
            out.append({"checkpoint_id": snap.config["configurable"]["checkpoint_id"],
                        "step": snap.metadata.get("step") if snap.metadata else None,
                        "source": snap.metadata.get("source") if snap.metadata else None,
                        "node": produced_by, "next": list(snap.next),
                        "created_at": snap.created_at,
                        "interrupted": bool(snap.interrupts)})
            produced_by = ", ".join(snap.next) if snap.next else "-"
        return out

    def view_at(self, thread_id: str, checkpoint_id: str) -> RunView:
        """The run as it stood at one of its checkpoints (for time-travel debugging)."""
        run = self._run(thread_id)
        config = {"configurable": {"thread_id": thread_id, "checkpoint_ns": "",
                                   "checkpoint_id": checkpoint_id}}
        snap = self.graph(run.graph).get_state(config)
        if not snap.config or not (snap.values or snap.next):
            raise RunNotFound(f"run {thread_id} has no checkpoint {checkpoint_id!r}")
        step = (snap.metadata or {}).get("step")
        nxt = ", ".join(snap.next) or "(end)"
        return RunView(thread_id=thread_id, graph=run.graph, tenant_id=run.tenant_id,
                       status=f"step {step}, next {nxt}",
                       summary=(snap.values or {}).get("summary"), values=snap.values or {})

    def replay(self, thread_id: str, checkpoint_id: str | None = None, *,
               by: str = "", values: dict[str, Any] | None = None,
               policy_version: int | None = None) -> RunView:
        """Re-run a run from one of its checkpoints, here (see `fork`)."""
        self.fork(thread_id, checkpoint_id, by=by, values=values, policy_version=policy_version)
        return self.resume(thread_id)

    def fork(self, thread_id: str, checkpoint_id: str | None = None, *, by: str = "",
             values: dict[str, Any] | None = None, policy_version: int | None = None) -> None:
        """Make a checkpoint of a run (default: the first, before perceive) its head again,
        optionally with edited state, and mark the run replaying (queued to advance). The
        gate decides afresh under today's policies (or `policy_version`); every write that
        already ran returns its recorded result (the idempotency key is per run and action)
        and every write that did not is only simulated, so a replay never repeats or adds a
        side effect. The ledger records the replay and each write it did not repeat."""
        run = self._run(thread_id)
        checkpoints = self.history(thread_id)
        if not checkpoints:
            raise RunNotFound(f"run {thread_id} has no checkpoints")
        chosen = checkpoint_id or next(
            (c["checkpoint_id"] for c in checkpoints if "perceive" in c["next"]),
            checkpoints[0]["checkpoint_id"])
        if chosen not in {c["checkpoint_id"] for c in checkpoints}:
            raise RunNotFound(f"run {thread_id} has no checkpoint {chosen!r}")
        if values:
            unknown = sorted(set(values) - set(AutopilotState.__annotations__))
            if unknown:
                raise ValueError(f"unknown state key(s) {unknown}; the state has "
                                 f"{', '.join(sorted(AutopilotState.__annotations__))}")
        if policy_version is not None:
            self.services.policy_store.engine_for_version(policy_version)  # must exist & load
        self.services.ledger.record(
            tenant_id=run.tenant_id, event_type="INTENT", thread_id=thread_id,
            trace_id=run.trace_id, payload={"replay": True, "from_checkpoint": chosen,
                                            "by": by or "unidentified", "graph": run.graph,
                                            "edited": sorted(values or {}),
                                            "policy_version": policy_version})
        config = {"configurable": {"thread_id": thread_id, "checkpoint_ns": "",
                                   "checkpoint_id": chosen}}
        self.graph(run.graph).update_state(config, values or None)  # the fork's new head
        with self.services.db.session(run.tenant_id) as s:
            s.execute(update(Run).where(Run.thread_id == thread_id).values(
                replaying=True, replay_policy_version=policy_version, status="queued",
                outcome=None, updated_at=datetime.now(UTC)))


__all__ = ["ACTIVE", "STATUSES", "TERMINAL", "ApprovalConflict", "ApprovalNotFound",
           "DecisionError", "RunNotFound", "RunStateError", "RunView", "Runner", "TriggerError"]
