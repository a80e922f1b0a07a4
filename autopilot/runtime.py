"""The runner: starts runs from triggers (deduplicated), records approvals, resumes runs.

It owns the app-side records of a run (`runs`, `approvals`); the graph state itself lives in
the checkpointer. Claiming an approval is one conditional UPDATE, so of two concurrent
answers exactly one resumes the run and the other gets `ApprovalConflict`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
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
from graphs.trigger import TriggerError, dedupe_key, parse_trigger, thread_id_for
from tools.registry import ToolArgumentError, pydantic_errors

SEVERITY_RANK = {"CRITICAL": 0, "HIGH": 1, "MEDIUM": 2, "LOW": 3}
TERMINAL = {"completed", "escalated", "rejected", "nothing_to_do", "failed_terminal"}


class RunNotFound(LookupError):
    pass


class ApprovalNotFound(LookupError):
    pass


class ApprovalConflict(RuntimeError):
    """The approval was already decided (by someone else, or by an earlier call)."""


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
            self._compiled[name] = builder.compile(checkpointer=self.checkpointer)
        return self._compiled[name]

    @staticmethod
    def config(thread_id: str) -> dict[str, Any]:
        return {"configurable": {"thread_id": thread_id}}

    def _invoke(self, run: Run, graph_input: Any, status: str | None = "running") -> RunView:
        """Drive the graph until it finishes or interrupts, then mirror its state."""
        if status is not None:
            self._set_status(run.thread_id, status)
        with self.services.db.session(run.tenant_id) as s:
            replaying = bool(s.scalar(select(Run.replaying).where(
                Run.thread_id == run.thread_id)))
        context = RunContext(self.services, replay=True) if replaying else self._context
        self.graph(run.graph).invoke(graph_input, self.config(run.thread_id),
                                     context=context, durability="sync")
        return self._sync(run)

    # ------------------------------------------------------------------ runs

    def submit(self, graph_name: str, raw_event: Any) -> RunView:
        """Validate a trigger and start its run, or return the run it already started."""
        spec = get_spec(graph_name)
        envelope, payload = parse_trigger(raw_event, spec.event_types)
        ref, scope = spec.dedupe_ref(envelope, payload)
        key = dedupe_key(graph_name, envelope, ref, scope)
        thread_id = thread_id_for(graph_name, key)
        trigger = envelope.model_dump(mode="json")
        trigger["trace_id"] = trace_id = envelope.trace_id or uuid.uuid4().hex
        try:
            with self.services.db.session(envelope.tenant_id) as s:
                existing = s.get(Run, thread_id)
                if existing is None:
                    run = Run(thread_id=thread_id, tenant_id=envelope.tenant_id,
                              graph=graph_name, dedupe_key=key, trigger=trigger,
                              status="running", trace_id=trace_id)
                    s.add(run)
                    self.services.ledger.append(
                        s, tenant_id=envelope.tenant_id, event_type="INTENT",
                        thread_id=thread_id, trace_id=trace_id, event_key=f"{thread_id}:intent",
                        payload={"graph": graph_name, "event_type": envelope.event_type,
                                 "source": envelope.source, "event_id": envelope.event_id,
                                 "occurred_at": trigger.get("occurred_at"),
                                 "dedupe_key": key, "payload": trigger.get("payload")})
        except IntegrityError:  # a concurrent submit of the same trigger won the insert
            return self.view(thread_id, deduplicated=True)
        if existing is None:
            return self._invoke(run, {"trigger": trigger}, status=None)
        view = self.view(thread_id, deduplicated=True)
        if view.status in ("queued", "running", "executing", "needs_approval"):
            view = self.resume(thread_id)  # the first attempt may have died part-way: finish it
            view.deduplicated = True
        return view

    def resume(self, thread_id: str) -> RunView:
        """Continue a run that stopped part-way (crash, kill), from its last checkpoint.

        A run parked on an approval that was already claimed is resumed with the recorded
        decision, so a crash between claim and resume loses nothing.
        """
        run = self._run(thread_id)
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
        pending = None
        with self.services.db.session(run.tenant_id) as s:
            if state.interrupts:
                status, intr = "needs_approval", state.interrupts[0]
                approval = s.get(Approval, intr.id)
                if approval is None:
                    approval = Approval(id=intr.id, thread_id=thread_id, tenant_id=run.tenant_id,
                                        graph=run.graph, status="pending",
                                        severity=intr.value.get("severity", "MEDIUM"),
                                        request=intr.value)
                    s.add(approval)
                if approval.status == "pending":
                    pending = {"id": intr.id, "severity": approval.severity,
                               "request": intr.value}
            elif state.next:
                status = "running"
            else:
                status = values.get("outcome", "completed")
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
                status=status, current_node=state.next[0] if state.next else None,
                summary=summary, updated_at=datetime.now(UTC),
                policy_version=gated[-1] if gated else None))
        return RunView(thread_id=thread_id, graph=run.graph, tenant_id=run.tenant_id,
                       status=status, summary=summary, values=values,
                       pending_approval=pending)

    def _set_status(self, thread_id: str, status: str) -> None:
        with self.services.db.session(ALL_TENANTS) as s:
            s.execute(update(Run).where(Run.thread_id == thread_id).values(
                status=status, updated_at=datetime.now(UTC)))

    def _run(self, thread_id: str) -> Run:
        with self.services.db.session(ALL_TENANTS) as s:
            run = s.get(Run, thread_id)
        if run is None:
            raise RunNotFound(f"no run {thread_id!r}")
        return run

    def run_record(self, thread_id: str) -> Run:
        """The `runs` row of a run (raises RunNotFound)."""
        return self._run(thread_id)

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
                       values=state.values, pending_approval=pending)

    def unfinished(self) -> list[str]:
        """Runs a crash may have stopped part-way (including a claimed, unapplied approval)."""
        with self.services.db.session(ALL_TENANTS) as s:
            return list(s.scalars(select(Run.thread_id).where(Run.status.in_(
                ("queued", "running", "executing", "needs_approval"))).order_by(Run.created_at)))

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

    def approval_for(self, run_or_approval_id: str) -> Approval:
        """Find a pending approval by its id or its run's thread id (the newest for a run)."""
        with self.services.db.session(ALL_TENANTS) as s:
            approval = s.get(Approval, run_or_approval_id)
            if approval is None:
                approval = s.scalar(select(Approval).where(
                    Approval.thread_id == run_or_approval_id).order_by(
                    Approval.created_at.desc()).limit(1))
        if approval is None:
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
        """Record a human decision exactly once and resume the run with it."""
        approval = self.approval_for(run_or_approval_id)
        if approval.status != "pending":
            raise ApprovalConflict(f"approval {approval.id} was already decided by "
                                   f"{approval.decided_by} at {approval.decided_at:%c}")
        response = self.validate_decision(approval, raw_decision)
        response.reviewer, response.approval_id = reviewer, approval.id
        payload = response.model_dump(mode="json")
        # The claim and the status change commit together.
        with self.services.db.session(approval.tenant_id) as s:
            claimed = s.execute(
                update(Approval).where(Approval.id == approval.id,
                                       Approval.status == "pending")
                .values(status="decided", decision=payload, decided_by=reviewer,
                        decided_at=datetime.now(UTC))).rowcount
            if claimed == 1:
                run_row = s.get(Run, approval.thread_id)
                s.execute(update(Run).where(Run.thread_id == approval.thread_id).values(
                    status="executing", updated_at=datetime.now(UTC)))
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
        run = Run(thread_id=approval.thread_id, graph=approval.graph,
                  tenant_id=approval.tenant_id)  # what _invoke needs; no second read
        return self._invoke(run, Command(resume={approval.id: payload}), status=None)

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

    def replay(self, thread_id: str, checkpoint_id: str | None = None, *,
               by: str = "") -> RunView:
        """Re-run a run from one of its checkpoints (default: the first, before perceive), as
        a fork of the same thread. The gate decides afresh under today's policies; every write
        that already ran returns its recorded result (the idempotency key is per run and
        action), so a replay never repeats a side effect. The ledger records the replay and
        each write it did not repeat."""
        run = self._run(thread_id)
        checkpoints = self.history(thread_id)
        if not checkpoints:
            raise RunNotFound(f"run {thread_id} has no checkpoints")
        chosen = checkpoint_id or next(
            (c["checkpoint_id"] for c in checkpoints if "perceive" in c["next"]),
            checkpoints[0]["checkpoint_id"])
        if chosen not in {c["checkpoint_id"] for c in checkpoints}:
            raise RunNotFound(f"run {thread_id} has no checkpoint {chosen!r}")
        self.services.ledger.record(
            tenant_id=run.tenant_id, event_type="INTENT", thread_id=thread_id,
            trace_id=run.trace_id, payload={"replay": True, "from_checkpoint": chosen,
                                            "by": by or "unidentified", "graph": run.graph})
        config = {"configurable": {"thread_id": thread_id, "checkpoint_id": chosen}}
        with self.services.db.session(run.tenant_id) as s:
            s.execute(update(Run).where(Run.thread_id == thread_id).values(
                replaying=True, status="running", updated_at=datetime.now(UTC)))
        self.graph(run.graph).invoke(None, config, context=RunContext(self.services, replay=True),
                                     durability="sync")
        return self._sync(run)


__all__ = ["ApprovalConflict", "ApprovalNotFound", "DecisionError", "RunNotFound", "RunView",
           "Runner", "TriggerError"]
