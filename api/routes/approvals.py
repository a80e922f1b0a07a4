"""Approvals: the pending queue, the context pack a reviewer needs, and the decision that
resumes the run on a worker."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field, model_validator
from sqlalchemy import select

from api.auth import Approver, Reader
from api.context_pack import build_context_pack
from api.deps import QueueDep, RunnerDep
from api.errors import ERRORS, ApiError, not_found
from autopilot.models import Approval
from autopilot.runtime import (
    SEVERITY_RANK,
    ApprovalConflict,
    ApprovalNotFound,
    DecisionError,
    Runner,
)
from graphs.hitl import Decision

router = APIRouter(tags=["approvals"], responses=ERRORS)
ApprovalId = Annotated[str, Path(description="approval id (the interrupt id)", max_length=80)]


class ApprovalOut(BaseModel):
    id: str
    run_id: str
    graph: str
    status: str = Field(description="pending | decided | expired | cancelled | superseded")
    severity: str
    summary: str
    actions: list[dict[str, Any]] = Field(description="the held calls: name, args, description")
    created_at: datetime
    expires_at: datetime | None
    decided_by: str | None
    decided_at: datetime | None


class ApprovalList(BaseModel):
    approvals: list[ApprovalOut]


class ApprovalDetail(ApprovalOut):
    request: dict[str, Any] = Field(description="the interrupt payload (LangChain v1 HITL "
                                                "request plus our context fields)")
    decision: dict[str, Any] | None
    context: dict[str, Any] = Field(description="the context pack: summary, proposed calls, "
                                                "current records and the diff each call would "
                                                "make, reasoning, confidence, evidence, policy "
                                                "reasons, risk, blast radius, rollback plan")


def approval_out(a: Approval) -> ApprovalOut:
    req = a.request or {}
    return ApprovalOut(id=a.id, run_id=a.thread_id, graph=a.graph, status=a.status,
                       severity=a.severity, summary=str(req.get("summary", "")),
                       actions=list(req.get("action_requests", [])), created_at=a.created_at,
                       expires_at=a.expires_at, decided_by=a.decided_by,
                       decided_at=a.decided_at)


def owned_approval(runner: Runner, approval_id: str, tenant_id: str) -> Approval:
    with runner.services.db.session(tenant_id) as s:
        approval = s.get(Approval, approval_id)
    if approval is None or approval.tenant_id != tenant_id:
        raise not_found("approval", approval_id)
    return approval


@router.get("/v1/approvals", response_model=ApprovalList,
            summary="Approvals, most severe and soonest due first")
def list_approvals(caller: Reader, runner: RunnerDep,
                   status: Annotated[str, Query(description="pending (default), decided, "
                                                "expired, cancelled, superseded")] = "pending",
                   graph: Annotated[str | None, Query()] = None,
                   severity: Annotated[Literal["LOW", "MEDIUM", "HIGH", "CRITICAL"] | None,
                                       Query()] = None,
                   limit: Annotated[int, Query(ge=1, le=500)] = 100) -> ApprovalList:
    q = select(Approval).where(Approval.tenant_id == caller.tenant_id,
                               Approval.status == status)
    if graph:
        q = q.where(Approval.graph == graph)
    if severity:
        q = q.where(Approval.severity == severity)
    with runner.services.db.session(caller.tenant_id) as s:
        rows = list(s.scalars(q))
    far = datetime.max.replace(tzinfo=None)
    rows.sort(key=lambda a: (SEVERITY_RANK.get(a.severity, 9),
                             a.expires_at.replace(tzinfo=None) if a.expires_at else far,
                             a.created_at))
    return ApprovalList(approvals=[approval_out(a) for a in rows[:limit]])


@router.get("/v1/approvals/{approval_id}", response_model=ApprovalDetail,
            summary="One approval with its context pack")
def get_approval(approval_id: ApprovalId, caller: Reader, runner: RunnerDep) -> ApprovalDetail:
    approval = owned_approval(runner, approval_id, caller.tenant_id)
    view = runner.view(approval.thread_id)
    return ApprovalDetail(**approval_out(approval).model_dump(), request=approval.request,
                          decision=approval.decision,
                          context=build_context_pack(runner.services, approval,
                                                     view.values or {}))


class DecisionIn(BaseModel):
    """Either the short form (`decision` for every held action, `edits` by action id) or
    LangChain v1's `decisions` list, one per action request in order."""

    decision: Literal["approve", "edit", "reject"] | None = None
    feedback: str | None = Field(default=None, max_length=4000,
                                 description="why (required to reject)")
    edits: dict[str, dict[str, Any]] | None = Field(
        default=None, description="edit: new args by action id; the other actions are "
                                  "approved as they are. Edited args go through the gate again.")
    decisions: list[Decision] | None = None

    @model_validator(mode="after")
    def _one_form(self) -> DecisionIn:
        if (self.decision is None) == (self.decisions is None):
            raise ValueError("give either `decision` (approve | edit | reject) or `decisions`")
        return self


class DecisionOut(BaseModel):
    approval_id: str
    run_id: str
    status: str
    decided_by: str
    run_status: str


def expand_decision(body: DecisionIn, request: dict[str, Any]) -> dict[str, Any]:
    """The short form as LangChain v1's `{"decisions": [...]}` for the held actions."""
    if body.decisions is not None:
        return {"decisions": [d.model_dump() for d in body.decisions]}
    ids: list[str] = request.get("action_ids", [])
    names = [r["name"] for r in request.get("action_requests", [])]
    if body.decision == "approve":
        return {"decisions": [{"type": "approve"} for _ in ids]}
    if body.decision == "reject":
        if not (body.feedback or "").strip():
            raise ApiError(422, "invalid_decision", "a rejection needs feedback (why)",
                           field="feedback")
        return {"decisions": [{"type": "reject", "message": body.feedback} for _ in ids]}
    edits = body.edits or {}
    if not edits:
        raise ApiError(422, "invalid_decision", "an edit needs `edits`: new args by action id",
                       field="edits")
    unknown = sorted(set(edits) - set(ids))
    if unknown:
        raise ApiError(422, "invalid_decision", f"no held action {unknown}; held: "
                       f"{', '.join(ids)}", field="edits")
    return {"decisions": [
        {"type": "edit", "edited_action": {"name": name, "args": edits[a]}} if a in edits
        else {"type": "approve"} for a, name in zip(ids, names, strict=True)]}


def decide(runner: Runner, queue: Any, approval: Approval, body: DecisionIn, reviewer: str,
           *, allow_expired: bool = False) -> Approval:
    """Validate, claim exactly once, and queue the run's next step on a worker."""
    raw = expand_decision(body, approval.request or {})
    try:
        claimed = runner.claim(approval.id, raw, reviewer, tenant_id=approval.tenant_id,
                               allow_expired=allow_expired)
    except ApprovalConflict as exc:
        raise ApiError(409, "already_decided", str(exc)) from None
    except ApprovalNotFound:
        raise not_found("approval", approval.id) from None
    except DecisionError as exc:
        raise ApiError(422, "invalid_decision", str(exc), fields=exc.fields) from None
    queue.defer_advance(claimed.thread_id)
    return claimed


@router.post("/v1/approvals/{approval_id}/decision", response_model=DecisionOut,
             status_code=202,
             responses={409: {"description": "already decided (or expired / cancelled)"}},
             summary="Approve, edit or reject; the run resumes on a worker")
def post_decision(approval_id: ApprovalId, body: DecisionIn, caller: Approver,
                  runner: RunnerDep, queue: QueueDep) -> DecisionOut:
    approval = owned_approval(runner, approval_id, caller.tenant_id)
    claimed = decide(runner, queue, approval, body, caller.id)
    return DecisionOut(approval_id=claimed.id, run_id=claimed.thread_id, status=claimed.status,
                       decided_by=caller.id,
                       run_status=runner.run_record(claimed.thread_id).status)
