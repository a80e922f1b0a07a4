"""What a policy change would do, measured on real traffic.

Two views of the same comparison (recorded decision vs candidate decision):
- `shadow_report`: the shadow version was evaluated live, beside the active one, on every
  real decision; the differences are already recorded.
- `simulate`: replay the recorded (redacted) requests of the last N days against a candidate
  bundle that was never live.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select

from autopilot.db import ALL_TENANTS, Database
from autopilot.models import PolicyDecisionRecord
from policy.engine import PolicyBundle, PolicyEngine, PolicyRequest
from policy.store import PolicyStore


@dataclass
class Comparison:
    """How many decisions a candidate would flip, grouped by tool, direction and reasons."""

    candidate: str
    since: datetime
    total: int = 0
    skipped: int = 0  # records that cannot be replayed (e.g. facts could not be computed)
    flips: Counter[tuple[str, str, str, str]] = field(default_factory=Counter)
    directions: Counter[tuple[str, str]] = field(default_factory=Counter)

    def add(self, tool: str, before: str, after: str, reasons: list[str]) -> None:
        self.total += 1
        if before != after:
            self.flips[(tool, before, after, ", ".join(reasons))] += 1
            self.directions[(before, after)] += 1

    @property
    def flipped(self) -> int:
        return sum(self.directions.values())

    def headlines(self) -> list[str]:
        return [f"would flip {a} -> {b} for {n} of {self.total} decisions"
                for (a, b), n in self.directions.most_common()]

    def as_dict(self) -> dict[str, Any]:
        return {
            "candidate": self.candidate, "since": self.since.isoformat(), "total": self.total,
            "flipped": self.flipped, "skipped": self.skipped,
            "directions": [{"from": a, "to": b, "count": n}
                           for (a, b), n in self.directions.most_common()],
            "flips": [{"tool": t, "from": a, "to": b, "reasons": r, "count": n}
                      for (t, a, b, r), n in self.flips.most_common()],
        }


def _records(db: Database, since: datetime, tenant_id: str | None,
             *extra: Any) -> list[PolicyDecisionRecord]:
    with db.session(tenant_id or ALL_TENANTS) as s:
        q = select(PolicyDecisionRecord).where(PolicyDecisionRecord.created_at >= since, *extra)
        if tenant_id:
            q = q.where(PolicyDecisionRecord.tenant_id == tenant_id)
        return list(s.scalars(q.order_by(PolicyDecisionRecord.id)))


def shadow_report(db: Database, *, days: float = 7, tenant_id: str | None = None) -> Comparison:
    """Live vs shadow on the decisions recorded while a shadow version was set."""
    since = datetime.now(UTC) - timedelta(days=days)
    rows = _records(db, since, tenant_id, PolicyDecisionRecord.shadow_outcome.is_not(None))
    versions = sorted({r.shadow_version or "" for r in rows})
    report = Comparison(candidate=", ".join(versions) or "(no shadow decisions)", since=since)
    for r in rows:
        report.add(r.tool, r.outcome, r.shadow_outcome or "", r.shadow_reasons or [])
    return report


def simulate(store: PolicyStore, candidate: PolicyBundle, *, days: float = 7,
             tenant_id: str | None = None) -> Comparison:
    """Replay the plan-stage decisions of the last `days` against a candidate global bundle
    (composed with each scope's active overlays); nothing is written."""
    since = datetime.now(UTC) - timedelta(days=days)
    rows = _records(store.db, since, tenant_id, PolicyDecisionRecord.stage == "gate")
    engines: dict[tuple[str, str, str], PolicyEngine] = {}
    report = Comparison(candidate=candidate.version, since=since)
    for r in rows:
        try:
            request = PolicyRequest.model_validate(r.request)
        except ValidationError:
            report.skipped += 1
            continue
        key = (request.tenant_id, request.portfolio_id, request.run.property_id)
        if key not in engines:
            engines[key] = store.engine_with_global(candidate, *key)
        after = engines[key].evaluate(request)
        report.add(r.tool, r.outcome, after.outcome.value, after.reasons)
    return report
