"""Feedback loop: a run whose approval a reviewer rejected or edited becomes an incident.

The reviewer's decision is the expected outcome: an edited action is expected with the
arguments the reviewer set, a rejected action must never run without a human, and the
recorded decisions answer the same approvals when the incident is replayed. The reads the
run made (its evidence) become recorded read responses, so the replay sees what it saw.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select

from autopilot.models import Approval, Evidence
from autopilot.runtime import Runner, RunNotFound
from evals.format import (
    Expected,
    ExpectedAction,
    Forbidden,
    Human,
    HumanDecision,
    Incident,
    RecordedCall,
    Source,
    World,
)
from evals.score import slug
from tools.registry import ToolError


class CaptureError(ValueError):
    pass


def _looks_like_time(value: str) -> bool:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _scalars(args: dict[str, Any]) -> dict[str, Any]:
    """The arguments that say what an action does and stay the same when it is replayed:
    numbers, flags and short words (category, priority, channel, the vendor). Free text,
    lists, record ids made by the run and times computed from the clock are left out."""
    return {k: v for k, v in args.items()
            if (isinstance(v, bool | int | float) or (isinstance(v, str) and len(v) <= 80
                                                      and not _looks_like_time(v)))
            and (not k.endswith("_id") or k == "vendor_id")}


def _recorded_reads(runner: Runner, tenant_id: str, thread_id: str) -> dict[str, list[
        RecordedCall]]:
    reads: dict[str, list[RecordedCall]] = {}
    with runner.services.db.session(tenant_id) as s:
        rows = list(s.scalars(select(Evidence).where(Evidence.tenant_id == tenant_id,
                                                     Evidence.thread_id == thread_id)))
    for row in rows:
        tool = (row.provenance or {}).get("tool")
        if not tool or not row.source.startswith("tool:"):
            continue
        try:  # a tool no longer registered, or redacted content that no longer fits
            spec = runner.services.registry.get(tool)
            spec.output_model.model_validate(row.content)
        except (ToolError, ValidationError):
            continue
        reads.setdefault(tool, []).append(RecordedCall(
            args=(row.provenance or {}).get("args", {}), output=row.content))
    return reads


def capture(runner: Runner, thread_id: str) -> Incident:
    try:
        run = runner.run_record(thread_id)
    except RunNotFound as exc:
        raise CaptureError(str(exc)) from None
    with runner.services.db.session(run.tenant_id) as s:
        approvals = list(s.scalars(select(Approval).where(
            Approval.thread_id == thread_id, Approval.status == "decided")
            .order_by(Approval.created_at)))
    decisions: list[HumanDecision] = []
    expected: list[ExpectedAction] = []
    never: list[Forbidden] = []
    feedback: list[str] = []
    expected_for: set[str] = set()  # one expected action per action id, across rounds
    for approval in approvals:
        request, decided = approval.request or {}, approval.decision or {}
        for action_id, action, d in zip(request.get("action_ids", []),
                                        request.get("action_requests", []),
                                        decided.get("decisions", []), strict=False):
            tool, args = action["name"], action["args"]
            kind = d.get("type")
            if kind == "reject":
                message = d.get("message") or "rejected"
                feedback.append(f"{tool} rejected: {message}")
                decisions.append(HumanDecision(action_id=action_id, tool=tool, type="reject",
                                               message=message))
                never.append(Forbidden(tool=tool, args=_scalars(args), without_approval=True,
                                       why=f"rejected by {approval.decided_by}: {message}"))
            elif kind == "edit" and {k: v for k, v in ((d.get("edited_action") or {})
                                                       .get("args", {})).items()
                                     if args.get(k) != v}:
                edited = (d.get("edited_action") or {}).get("args", {})
                changed = {k: v for k, v in edited.items() if args.get(k) != v}
                feedback.append(f"{tool} edited: {changed}")
                decisions.append(HumanDecision(action_id=action_id, tool=tool, type="edit",
                                               args=changed))
                # Expected as the reviewer left it: the replayed edit must land.
                expected.append(ExpectedAction(tool=tool, decision="REQUIRE_APPROVAL",
                                               args=_scalars({**args, **changed})))
                expected_for.add(action_id)
            else:  # an approval (or an edit that changed nothing)
                decisions.append(HumanDecision(action_id=action_id, tool=tool, type="approve"))
                if action_id not in expected_for:  # an edited action keeps the edit's args
                    expected.append(ExpectedAction(tool=tool, args=_scalars(args),
                                                   decision="REQUIRE_APPROVAL"))
                    expected_for.add(action_id)
    if not any(d.type in ("reject", "edit") for d in decisions):
        raise CaptureError(f"run {thread_id} has no rejected or edited approval to learn from")
    kinds = sorted({d.type for d in decisions if d.type != "approve"})
    trigger = dict(run.trigger)
    trigger.pop("trace_id", None)
    return Incident(
        id=slug(f"captured-{thread_id}"), graph=run.graph,
        title=f"Reviewer {' and '.join(kinds)}: " + "; ".join(feedback)[:200],
        source=Source(dataset="captured", ref=thread_id,
                      note=f"tenant {run.tenant_id}; decided by "
                           + ", ".join(sorted({a.decided_by or "?" for a in approvals}))),
        tags=["captured", *[f"reviewer-{k}" for k in kinds]],
        at=run.created_at,
        trigger=trigger,
        world=World(reads=_recorded_reads(runner, run.tenant_id, thread_id)),
        human=Human(decisions=decisions),
        expect=Expected(match="superset", actions=expected, human_required=True,
                        why="a reviewer changed what the autopilot proposed: "
                            + "; ".join(feedback)[:300],
                        never=never))
