"""Reading back the decisions the gate recorded (`policy_decisions`).

One query and one JSON shape shared by `autopilot policy decisions` and
`GET /v1/policies/decisions`, so the CLI and the API never disagree about what a recorded
decision says. The stored request is already PII-redacted by the gate.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from autopilot.db import ALL_TENANTS, Database
from autopilot.models import PolicyDecisionRecord


def recent_decisions(db: Database, *, tenant_id: str | None = None,
                     thread_id: str | None = None, outcome: str | None = None,
                     tool: str | None = None, limit: int = 30) -> list[PolicyDecisionRecord]:
    """Recorded decisions, newest first (`tenant_id=None`: every tenant, for operators)."""
    d = PolicyDecisionRecord
    with db.session(tenant_id or ALL_TENANTS) as s:
        q = select(d).order_by(d.id.desc()).limit(limit)
        if tenant_id:
            q = q.where(d.tenant_id == tenant_id)
        if thread_id:
            q = q.where(d.thread_id == thread_id)
        if outcome:
            q = q.where(d.outcome == outcome)
        if tool:
            q = q.where(d.tool == tool)
        return list(s.scalars(q))


def decision_dict(r: PolicyDecisionRecord) -> dict[str, Any]:
    """A recorded decision as JSON: outcome, reasons, version, shadow, redacted request."""
    return {
        "id": r.id, "at": r.created_at.isoformat(), "tenant_id": r.tenant_id, "graph": r.graph,
        "thread_id": r.thread_id, "action_id": r.action_id, "tool": r.tool, "stage": r.stage,
        "outcome": r.outcome, "reasons": r.reasons, "policy_version": r.policy_version,
        "errors": r.errors, "proceeds": r.proceeds,
        "shadow": {"version": r.shadow_version, "outcome": r.shadow_outcome,
                   "reasons": r.shadow_reasons} if r.shadow_version else None,
        "request": r.request}
