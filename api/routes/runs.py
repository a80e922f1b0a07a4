"""Runs: list and inspect (state, current node, ledger timeline), cancel, and time travel
(checkpoint history, state at a checkpoint, replay from one as a fork)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from api.auth import Approver, Reader
from api.deps import QueueDep, RunnerDep
from api.errors import ERRORS, ApiError, not_found
from autopilot.models import Run, ToolCall
from autopilot.runtime import STATUSES, Runner, RunNotFound, RunStateError
from policy.schema import PolicyLoadError

router = APIRouter(tags=["runs"], responses=ERRORS)
RunId = Annotated[str, Path(description="run (thread) id", max_length=80)]


class RunOut(BaseModel):
    id: str
    graph: str
    tenant_id: str
    status: str = Field(description="queued | running | needs_approval | executing | "
                                    "completed | failed_retryable | failed_terminal | "
                                    "escalated | cancelled")
    outcome: str | None = Field(description="for completed runs: resolved | rejected | "
                                            "nothing_to_do; cancelled runs: cancelled")
    current_node: str | None
    summary: str | None
    error: str | None
    policy_version: str | None
    trace_id: str
    created_at: datetime
    updated_at: datetime


class RunList(BaseModel):
    runs: list[RunOut]
    total: int


class TimelineEntry(BaseModel):
    seq: int
    at: datetime
    event: str
    payload: dict[str, Any]


class ToolCallOut(BaseModel):
    action_id: str
    tool: str
    args: dict[str, Any]
    output: dict[str, Any]
    reason_code: str | None = None
    principal: str | None = None


class RunDetail(RunOut):
    trigger: dict[str, Any]
    proposals: list[dict[str, Any]]
    pending_approval: dict[str, Any] | None
    escalation: dict[str, Any] | None
    tool_calls: list[ToolCallOut]
    timeline: list[TimelineEntry]


def run_out(run: Run) -> RunOut:
    return RunOut(id=run.thread_id, graph=run.graph, tenant_id=run.tenant_id, status=run.status,
                  outcome=run.outcome, current_node=run.current_node, summary=run.summary,
                  error=run.error, policy_version=run.policy_version, trace_id=run.trace_id,
                  created_at=run.created_at, updated_at=run.updated_at)


def owned_run(runner: Runner, run_id: str, tenant_id: str) -> Run:
    try:
        return runner.run_record(run_id, tenant_id)
    except RunNotFound:
        raise not_found("run", run_id) from None


@router.get("/v1/runs", response_model=RunList, summary="List runs")
def list_runs(caller: Reader, runner: RunnerDep,
              graph: Annotated[str | None, Query(description="autopilot")] = None,
              status: Annotated[str | None, Query(description="state machine status")] = None,
              scope: Annotated[str | None, Query(description="trigger scope, e.g. a unit or "
                                                 "property id", max_length=200)] = None,
              since: Annotated[datetime | None, Query(description="created at or after")] = None,
              until: Annotated[datetime | None, Query(description="created before")] = None,
              limit: Annotated[int, Query(ge=1, le=500)] = 100,
              offset: Annotated[int, Query(ge=0)] = 0) -> RunList:
    if status is not None and status not in STATUSES:
        raise ApiError(422, "invalid_request", f"unknown status {status!r}; one of "
                       f"{', '.join(STATUSES)}", field="status")
    q = select(Run).where(Run.tenant_id == caller.tenant_id)
    if graph:
        q = q.where(Run.graph == graph)
    if status:
        q = q.where(Run.status == status)
    if scope:
        q = q.where(Run.dedupe_key.contains(f"|{scope}|"))
    if since:
        q = q.where(Run.created_at >= since)
    if until:
        q = q.where(Run.created_at < until)
    with runner.services.db.session(caller.tenant_id) as s:
        total = s.scalar(select(func.count()).select_from(q.subquery())) or 0
        rows = list(s.scalars(q.order_by(Run.created_at.desc()).limit(limit).offset(offset)))
    return RunList(runs=[run_out(r) for r in rows], total=total)


@router.get("/v1/runs/{run_id}", response_model=RunDetail,
            summary="A run: state, current node, proposals, tool calls, ledger timeline")
def get_run(run_id: RunId, caller: Reader, runner: RunnerDep) -> RunDetail:
    run = owned_run(runner, run_id, caller.tenant_id)
    view = runner.view(run_id)
    values = view.values or {}
    with runner.services.db.session(caller.tenant_id) as s:
        calls = list(s.scalars(select(ToolCall).where(ToolCall.thread_id == run_id)))
    timeline = [TimelineEntry(seq=e.seq, at=e.created_at, event=e.event_type,
                              payload=e.payload)
                for e in runner.services.ledger.story(run_id, tenant_id=caller.tenant_id)]
    return RunDetail(
        **run_out(run).model_dump(), trigger=run.trigger,
        proposals=values.get("proposals", []), pending_approval=view.pending_approval,
        escalation=values.get("escalation"),
        tool_calls=[ToolCallOut(action_id=c.action_id, tool=c.tool, args=c.args,
                                output=c.output, reason_code=getattr(c, "reason_code", None),
                                principal=getattr(c, "principal", None)) for c in calls],
        timeline=timeline)


class CancelIn(BaseModel):
    reason: str = Field(default="", max_length=2000)


@router.post("/v1/runs/{run_id}/cancel", response_model=RunOut,
             responses={409: {"description": "the run already finished"}},
             summary="Cancel a run: no further step or write starts")
def cancel_run(run_id: RunId, caller: Approver, runner: RunnerDep,
               body: CancelIn | None = None) -> RunOut:
    owned_run(runner, run_id, caller.tenant_id)
    try:
        runner.cancel(run_id, by=caller.id, reason=(body or CancelIn()).reason,
                      tenant_id=caller.tenant_id)
    except RunStateError as exc:
        raise ApiError(409, "run_finished", str(exc)) from None
    return run_out(owned_run(runner, run_id, caller.tenant_id))


# ---------------------------------------------------------------------- time travel


class Checkpoint(BaseModel):
    checkpoint_id: str
    step: int | None
    node: str = Field(description="the node whose completion produced this checkpoint")
    next: list[str]
    created_at: str | None
    interrupted: bool


class History(BaseModel):
    run_id: str
    checkpoints: list[Checkpoint]


@router.get("/v1/runs/{run_id}/history", response_model=History, tags=["time travel"],
            summary="Checkpoints of a run, oldest first")
def history(run_id: RunId, caller: Reader, runner: RunnerDep) -> History:
    owned_run(runner, run_id, caller.tenant_id)
    return History(run_id=run_id, checkpoints=[
        Checkpoint(**{**c, "created_at": str(c["created_at"]) if c["created_at"] else None})
        for c in runner.history(run_id)])


class StateOut(BaseModel):
    run_id: str
    checkpoint_id: str
    step: int | None
    next: list[str]
    values: dict[str, Any]
    interrupts: list[dict[str, Any]]


@router.get("/v1/runs/{run_id}/state", response_model=StateOut, tags=["time travel"],
            summary="The graph state at a checkpoint (default: the latest)")
def state(run_id: RunId, caller: Reader, runner: RunnerDep,
          checkpoint_id: Annotated[str | None, Query(max_length=100)] = None) -> StateOut:
    run = owned_run(runner, run_id, caller.tenant_id)
    config: dict[str, Any] = {"configurable": {"thread_id": run_id}}
    if checkpoint_id:
        config["configurable"]["checkpoint_id"] = checkpoint_id
    snap = runner.graph(run.graph).get_state(config)
    if not snap.config or (checkpoint_id and not snap.values and not snap.next):
        raise ApiError(404, "not_found", f"run {run_id} has no checkpoint {checkpoint_id!r}",
                       field="checkpoint_id")
    return StateOut(run_id=run_id, checkpoint_id=snap.config["configurable"]["checkpoint_id"],
                    step=(snap.metadata or {}).get("step"), next=list(snap.next),
                    values=_jsonable(snap.values or {}),
                    interrupts=[{"id": i.id, "value": i.value} for i in snap.interrupts])


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    import json

    return json.loads(json.dumps(values, default=str))  # type: ignore[no-any-return]


class ReplayIn(BaseModel):
    checkpoint_id: str | None = Field(default=None, description="default: the first, before "
                                      "perceive")
    values: dict[str, Any] | None = Field(default=None, description="state edits applied to "
                                          "the checkpoint before re-running (a fork)")
    policy_version: int | None = Field(default=None, description="decide under this policy "
                                       "version (see /v1/policies) instead of the active one")


@router.post("/v1/runs/{run_id}/replay", response_model=RunOut, status_code=202,
             tags=["time travel"], summary="Re-run from a checkpoint as a fork; recorded "
             "writes return their recorded result and new writes are only simulated")
def replay(run_id: RunId, caller: Approver, runner: RunnerDep, queue: QueueDep,
           body: ReplayIn | None = None) -> RunOut:
    owned_run(runner, run_id, caller.tenant_id)
    body = body or ReplayIn()
    if body.policy_version is not None:
        try:
            version = runner.services.policy_store.get(body.policy_version)
        except PolicyLoadError:
            version = None
        if version is None or version.tenant_id not in ("", caller.tenant_id):
            raise ApiError(404, "not_found", f"no policy version {body.policy_version}",
                           field="policy_version")
    try:
        runner.fork(run_id, body.checkpoint_id, values=body.values, by=caller.id,
                    policy_version=body.policy_version)
    except RunNotFound as exc:
        raise ApiError(404, "not_found", str(exc), field="checkpoint_id") from None
    except PolicyLoadError as exc:
        raise ApiError(422, "invalid_policy_version", str(exc), field="policy_version") from None
    except ValueError as exc:
        raise ApiError(422, "invalid_state", str(exc), field="values") from None
    queue.defer_advance(run_id)
    return run_out(owned_run(runner, run_id, caller.tenant_id))
