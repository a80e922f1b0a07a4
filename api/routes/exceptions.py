"""The exception inbox: escalations a person must look at, acknowledge, resolve, and decide
(which resumes the held run, retries it, or closes it)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field
from sqlalchemy import select, update

from api.auth import Approver, Reader
from api.deps import QueueDep, RunnerDep
from api.errors import ERRORS, ApiError, not_found
from api.routes.approvals import DecisionIn, decide, owned_approval
from autopilot.models import AgentException, Run
from autopilot.runtime import SEVERITY_RANK, Runner

router = APIRouter(tags=["exceptions"], responses=ERRORS)
ExceptionId = Annotated[str, Path(description="exception id", max_length=100)]
Status = Literal["OPEN", "ACKNOWLEDGED", "RESOLVED"]


class ExceptionOut(BaseModel):
    id: str
    run_id: str
    graph: str
    severity: str
    category: str = Field(description="LEGAL | FINANCIAL | SAFETY | SLA | SYSTEM")
    title: str
    details: str
    status: Status
    blocked_rules: list[str]
    evidence_refs: list[str]
    decision_requested: str
    approval_id: str | None = Field(description="set when an approval expired: deciding the "
                                                "exception decides that approval")
    context: dict[str, Any]
    acked_by: str | None
    acked_at: datetime | None
    resolved_by: str | None
    resolved_at: datetime | None
    resolution: str | None
    decision: dict[str, Any] | None
    created_at: datetime


class ExceptionList(BaseModel):
    exceptions: list[ExceptionOut]


def exception_out(e: AgentException) -> ExceptionOut:
    ctx = e.context or {}
    return ExceptionOut(
        id=e.id, run_id=e.thread_id, graph=e.graph, severity=e.severity, category=e.category,
        title=e.title, details=e.details, status=e.status,  # type: ignore[arg-type]
        blocked_rules=list(ctx.get("blocked_rules", [])),
        evidence_refs=list(ctx.get("evidence_refs", [])),
        decision_requested=str(ctx.get("decision_requested", "")),
        approval_id=ctx.get("approval_id"), context=ctx, acked_by=e.acked_by,
        acked_at=e.acked_at, resolved_by=e.resolved_by, resolved_at=e.resolved_at,
        resolution=e.resolution, decision=e.decision, created_at=e.created_at)


def owned_exception(runner: Runner, exception_id: str, tenant_id: str) -> AgentException:
    with runner.services.db.session(tenant_id) as s:
        row = s.get(AgentException, exception_id)
    if row is None or row.tenant_id != tenant_id:
        raise not_found("exception", exception_id)
    return row


@router.get("/v1/exceptions", response_model=ExceptionList,
            summary="The inbox, most severe first")
def list_exceptions(caller: Reader, runner: RunnerDep,
                    status: Annotated[Status | None, Query()] = None,
                    category: Annotated[str | None, Query()] = None,
                    graph: Annotated[str | None, Query()] = None) -> ExceptionList:
    q = select(AgentException).where(AgentException.tenant_id == caller.tenant_id)
    if status:
        q = q.where(AgentException.status == status)
    if category:
        q = q.where(AgentException.category == category)
    if graph:
        q = q.where(AgentException.graph == graph)
    with runner.services.db.session(caller.tenant_id) as s:
        rows = list(s.scalars(q))
    rows.sort(key=lambda e: (e.status == "RESOLVED", SEVERITY_RANK.get(e.severity, 9),
                             e.created_at))
    return ExceptionList(exceptions=[exception_out(e) for e in rows])


@router.get("/v1/exceptions/{exception_id}", response_model=ExceptionOut)
def get_exception(exception_id: ExceptionId, caller: Reader,
                  runner: RunnerDep) -> ExceptionOut:
    return exception_out(owned_exception(runner, exception_id, caller.tenant_id))


class ExceptionPatch(BaseModel):
    status: Literal["ACKNOWLEDGED", "RESOLVED"]
    note: str = Field(default="", max_length=4000, description="resolution note")


_MOVES = {"OPEN": {"ACKNOWLEDGED", "RESOLVED"}, "ACKNOWLEDGED": {"RESOLVED"}, "RESOLVED": set()}


def _transition(runner: Runner, row: AgentException, to: str, by: str, note: str,
                decision: dict[str, Any] | None = None) -> AgentException:
    """Move an exception on (conditional on its current status) and ledger who did it."""
    if to not in _MOVES[row.status]:
        raise ApiError(409, "invalid_transition", f"exception {row.id} is {row.status}; it "
                       f"cannot become {to}", field="status")
    now = datetime.now(UTC)
    values: dict[str, Any] = ({"acked_by": by, "acked_at": now} if to == "ACKNOWLEDGED" else
                              {"resolved_by": by, "resolved_at": now, "resolution": note,
                               "decision": decision})
    if to == "RESOLVED" and row.acked_by is None:
        values.update(acked_by=by, acked_at=now)
    with runner.services.db.session(row.tenant_id) as s:
        done = s.execute(update(AgentException).where(
            AgentException.id == row.id, AgentException.status == row.status)
            .values(status=to, **values)).rowcount
        if done != 1:
            raise ApiError(409, "conflict", f"exception {row.id} changed meanwhile; reload it")
        trace = s.scalar(select(Run.trace_id).where(Run.thread_id == row.thread_id)) or ""
        runner.services.ledger.append(
            s, tenant_id=row.tenant_id, event_type="CONTROL", thread_id=row.thread_id,
            trace_id=trace, event_key=f"exception:{row.id}:{to}",
            payload={"action": f"exception_{to.lower()}", "exception_id": row.id, "by": by,
                     "note": note, "decision": decision})
        return s.get(AgentException, row.id)  # type: ignore[return-value]


@router.patch("/v1/exceptions/{exception_id}", response_model=ExceptionOut,
              responses={409: {"description": "not allowed from the current status"}},
              summary="Acknowledge or resolve")
def patch_exception(exception_id: ExceptionId, body: ExceptionPatch, caller: Approver,
                    runner: RunnerDep) -> ExceptionOut:
    row = owned_exception(runner, exception_id, caller.tenant_id)
    return exception_out(_transition(runner, row, body.status, caller.id, body.note))


class ExceptionDecisionIn(BaseModel):
    """`approve` / `edit` / `reject` the held actions of an expired approval (resumes the
    run); `retry` starts the trigger again as a new run; `close` ends it as handled."""

    action: Literal["approve", "edit", "reject", "retry", "close"]
    feedback: str = Field(default="", max_length=4000)
    edits: dict[str, dict[str, Any]] | None = None


class ExceptionDecisionOut(BaseModel):
    exception: ExceptionOut
    run_id: str = Field(description="the run that continues (the new run for `retry`)")
    run_status: str


@router.post("/v1/exceptions/{exception_id}/decision", response_model=ExceptionDecisionOut,
             status_code=202,
             responses={409: {"description": "already resolved, or not decidable so"}},
             summary="The human decision: resumes, retries or ends the run")
def decide_exception(exception_id: ExceptionId, body: ExceptionDecisionIn, caller: Approver,
                     runner: RunnerDep, queue: QueueDep) -> ExceptionDecisionOut:
    row = owned_exception(runner, exception_id, caller.tenant_id)
    if row.status == "RESOLVED":
        raise ApiError(409, "already_resolved", f"exception {row.id} was resolved by "
                       f"{row.resolved_by}")
    run_id = row.thread_id
    approval_id = (row.context or {}).get("approval_id")
    if body.action in ("approve", "edit", "reject"):
        if not approval_id:
            raise ApiError(422, "invalid_decision", f"exception {row.id} holds no approval; "
                           "decide it with retry or close", field="action")
        approval = owned_approval(runner, approval_id, caller.tenant_id)
        decide(runner, queue, approval, DecisionIn(decision=body.action,
                                                   feedback=body.feedback or None,
                                                   edits=body.edits),
               caller.id, allow_expired=True)
    elif body.action == "retry":
        run = runner.run_record(run_id, caller.tenant_id)
        view, _ = runner.enqueue(run.graph, run.trigger,
                                 dedupe_suffix=f"|retry:{row.id}")
        queue.defer_advance(view.thread_id)
        run_id = view.thread_id
    decision = {"action": body.action, "feedback": body.feedback, "edits": body.edits,
                "run_id": run_id}
    resolved = _transition(runner, row, "RESOLVED", caller.id,
                           body.feedback or f"decided: {body.action}", decision)
    return ExceptionDecisionOut(exception=exception_out(resolved), run_id=run_id,
                                run_status=runner.run_record(run_id).status)
