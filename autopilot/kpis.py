"""Operational KPIs of the autopilots for one tenant over a window of runs.

Everything is measured on the *cohort* of runs created in `[since, until)`: their approvals,
exceptions, gate decisions, writes and the work orders they created. Attributing by run keeps
the per-autopilot numbers additive (every row belongs to exactly one run, so one graph) and
makes numerators subsets of their denominators. Definitions are in `docs/kpis.md`.

Counting is done by the database (GROUP BY / EXISTS / CASE), on SQLite and Postgres alike. Only
the time-to-decision percentiles read individual rows (the timestamps of *decided* approvals),
because SQLite has no percentile aggregate; that set is bounded by what people decided.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, exists, func, not_, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.selectable import Subquery

from autopilot.db import Database
from autopilot.models import (
    AgentException,
    Approval,
    PolicyDecisionRecord,
    Run,
    ToolCall,
    WorkOrder,
)

# Run statuses after which a run does nothing more on its own (autopilot.runtime.TERMINAL).
FINISHED = ("completed", "escalated", "failed_terminal", "cancelled")
CATEGORIES = ("LEGAL", "FINANCIAL", "SAFETY", "SLA", "SYSTEM")
# Work-order statuses that mean the job is done, and the one that takes it out of the SLA.
WO_DONE = ("COMPLETED", "CLOSED")
WO_CANCELLED = "CANCELLED"


def ratio(numerator: int | float, denominator: int | float) -> float | None:
    """numerator / denominator, or None when there is nothing to divide by (never 0/0 = 0)."""
    return None if not denominator else numerator / denominator


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Continuous percentile with linear interpolation (Postgres `percentile_cont`)."""
    if not sorted_values:
        return None
    pos = q * (len(sorted_values) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class _Counts:
    """Additive counters for one autopilot (or the total), turned into KPIs at the end."""

    def __init__(self) -> None:
        self.by_status: dict[str, int] = defaultdict(int)
        self.started = self.finished = self.nothing_to_do = 0
        self.autonomous = self.escalated = 0
        self.escalated_by_category: dict[str, int] = {c: 0 for c in CATEGORIES}
        self.approvals_by_status: dict[str, int] = defaultdict(int)
        self.approved = self.edited = self.rejected = 0
        self.decision_seconds: list[float] = []
        self.sla_met = self.sla_missed = self.sla_pending = 0
        self.resolved_work_orders = 0
        self.resolved_cost = Decimal(0)
        self.gated_actions = self.blocked_actions = 0
        self.acted_runs = 0

    def add(self, other: _Counts) -> None:
        """Fold another autopilot's counts into these (for the total)."""
        for key, value in vars(other).items():
            mine = getattr(self, key)
            if isinstance(value, dict):
                for k, v in value.items():
                    mine[k] = mine.get(k, 0) + v
            elif isinstance(value, list):
                mine.extend(value)
            else:
                setattr(self, key, mine + value)

    def result(self) -> dict[str, Any]:
        decided = self.approvals_by_status.get("decided", 0)
        secs = sorted(self.decision_seconds)
        sla_judged = self.sla_met + self.sla_missed
        cost = float(round(self.resolved_cost, 2))
        return {
            "runs": {"started": self.started, "finished": self.finished,
                     "nothing_to_do": self.nothing_to_do,
                     "by_status": dict(sorted(self.by_status.items()))},
            "autonomous_resolution": {"numerator": self.autonomous,
                                      "denominator": self.finished,
                                      "rate": ratio(self.autonomous, self.finished)},
            "escalation": {"numerator": self.escalated, "denominator": self.finished,
                           "rate": ratio(self.escalated, self.finished),
                           "by_category": {c: {"numerator": n, "denominator": self.finished,
                                               "rate": ratio(n, self.finished)}
                                           for c, n in sorted(
                                               self.escalated_by_category.items())}},
            "approvals": {
                "requested": sum(self.approvals_by_status.values()),
                "by_status": dict(sorted(self.approvals_by_status.items())),
                "decided": decided, "approved": self.approved, "edited": self.edited,
                "rejected": self.rejected,
                "expired": self.approvals_by_status.get("expired", 0),
                "approval_rate": ratio(self.approved, decided),
                "edit_rate": ratio(self.edited, decided),
                "rejection_rate": ratio(self.rejected, decided),
                "time_to_decision_seconds": {
                    "count": len(secs), "p50": percentile(secs, 0.5),
                    "p90": percentile(secs, 0.9),
                    "mean": sum(secs) / len(secs) if secs else None}},
            "sla_attainment": {"numerator": self.sla_met, "denominator": sla_judged,
                               "rate": ratio(self.sla_met, sla_judged),
                               "met": self.sla_met, "missed": self.sla_missed,
                               "pending": self.sla_pending},
            "cost_per_resolved_work_order": {
                "resolved_work_orders": self.resolved_work_orders, "total_cost": cost,
                "value": (round(cost / self.resolved_work_orders, 2)
                          if self.resolved_work_orders else None)},
            "blocked_actions": {"numerator": self.blocked_actions,
                                "denominator": self.gated_actions,
                                "rate": ratio(self.blocked_actions, self.gated_actions)},
            "signal_to_action": {"numerator": self.acted_runs, "denominator": self.started,
                                 "rate": ratio(self.acted_runs, self.started)},
        }


def _cohort(tenant_id: str, since: datetime, until: datetime, graph: str | None) -> Subquery:
    """The runs the KPIs are about: this tenant's, created in [since, until)."""
    q = select(Run.thread_id, Run.graph, Run.status, Run.outcome).where(
        Run.tenant_id == tenant_id, Run.created_at >= since, Run.created_at < until)
    if graph is not None:
        q = q.where(Run.graph == graph)
    return q.subquery("cohort")


def _finished(w: Subquery) -> ColumnElement[bool]:
    """Finished runs that had something to do: the denominator of the outcome rates."""
    return and_(w.c.status.in_(FINISHED),
                not_(and_(w.c.status == "completed", w.c.outcome == "nothing_to_do")))


def _decision_has(session: Session, kind: str) -> ColumnElement[bool]:
    """EXISTS a decision of `kind` in approvals.decision["decisions"] (dialect-specific JSON)."""
    if session.get_bind().dialect.name == "postgresql":
        items = func.json_array_elements(Approval.decision["decisions"]).table_valued("value")
        kind_of = func.json_extract_path_text(items.c.value, "type")
    else:
        items = func.json_each(Approval.decision, "$.decisions").table_valued("value")
        kind_of = func.json_extract(items.c.value, "$.type")
    return exists(select(1).select_from(items).where(kind_of == kind))


def _rows(session: Session, query: Select[Any]) -> Iterable[Any]:
    return session.execute(query).all()


def compute_kpis(db: Database, tenant_id: str, since: datetime, until: datetime,
                 graph: str | None = None) -> dict[str, Any]:
    """KPIs per autopilot and in total for the tenant's runs created in [since, until).

    Returns plain JSON-able data: the window, and for `total` and each graph in `by_graph`
    the counts (numerators and denominators) and rates (None when the denominator is 0).
    """
    since, until = _utc(since), _utc(until)
    now = datetime.now(UTC)
    counts: dict[str, _Counts] = defaultdict(_Counts)
    with db.session(tenant_id) as s:
        w = _cohort(tenant_id, since, until, graph)

        # Runs by status/outcome: started, finished, nothing to do.
        for g, status, outcome, n in _rows(s, select(w.c.graph, w.c.status, w.c.outcome,
                                                     func.count()).group_by(
                w.c.graph, w.c.status, w.c.outcome)):
            c = counts[g]
            c.started += n
            c.by_status[status] += n
            if status == "completed" and outcome == "nothing_to_do":
                c.nothing_to_do += n
            elif status in FINISHED:
                c.finished += n

        # Autonomous resolution: resolved with no approval asked and no exception raised.
        no_approval = ~exists().where(Approval.tenant_id == tenant_id,
                                      Approval.thread_id == w.c.thread_id)
        no_exception = ~exists().where(AgentException.tenant_id == tenant_id,
                                       AgentException.thread_id == w.c.thread_id)
        for g, n in _rows(s, select(w.c.graph, func.count()).where(
                w.c.status == "completed", w.c.outcome == "resolved", no_approval,
                no_exception).group_by(w.c.graph)):
            counts[g].autonomous = n

        # Escalations: finished runs with an exception in the inbox (at most one per run).
        for g, category, n in _rows(s, select(w.c.graph, AgentException.category,
                                              func.count()).join(
                AgentException, and_(AgentException.thread_id == w.c.thread_id,
                                     AgentException.tenant_id == tenant_id))
                .where(_finished(w)).group_by(w.c.graph, AgentException.category)):
            counts[g].escalated += n
            counts[g].escalated_by_category[category] = (
                counts[g].escalated_by_category.get(category, 0) + n)

        # Approvals asked by these runs, by status; decided ones by kind of decision.
        in_cohort = and_(Approval.tenant_id == tenant_id, Approval.thread_id == w.c.thread_id)
        for g, status, n in _rows(s, select(w.c.graph, Approval.status, func.count())
                                  .join(Approval, in_cohort)
                                  .group_by(w.c.graph, Approval.status)):
            counts[g].approvals_by_status[status] += n
        reject, edit = _decision_has(s, "reject"), _decision_has(s, "edit")
        for g, rejected, edited, approved in _rows(s, select(
                w.c.graph,
                func.sum(case((reject, 1), else_=0)),
                func.sum(case((and_(edit, not_(reject)), 1), else_=0)),
                func.sum(case((and_(not_(edit), not_(reject)), 1), else_=0)))
                .join(Approval, in_cohort).where(Approval.status == "decided")
                .group_by(w.c.graph)):
            c = counts[g]
            c.rejected, c.edited, c.approved = int(rejected), int(edited), int(approved)
        for g, created, decided in _rows(s, select(w.c.graph, Approval.created_at,
                                                   Approval.decided_at)
                                         .join(Approval, in_cohort)
                                         .where(Approval.status == "decided",
                                                Approval.decided_at.is_not(None))):
            counts[g].decision_seconds.append(max(0.0, (decided - created).total_seconds()))

        # Work orders these runs created (the create_work_order write names the id).
        created_wo = and_(ToolCall.tenant_id == tenant_id, ToolCall.thread_id == w.c.thread_id,
                          ToolCall.tool == "create_work_order")
        wo_join = and_(WorkOrder.tenant_id == tenant_id,
                       WorkOrder.id == ToolCall.args["work_order_id"].as_string())
        done = WorkOrder.status.in_(WO_DONE)
        done_at = func.coalesce(WorkOrder.closed_at, WorkOrder.updated_at)
        live = and_(not_(done), WorkOrder.status != WO_CANCELLED)
        has_sla = WorkOrder.sla_due_at.is_not(None)
        closed_priced = and_(WorkOrder.status == "CLOSED", WorkOrder.final_cost.is_not(None))
        for g, met, missed, pending, resolved, cost in _rows(s, select(
                w.c.graph,
                func.sum(case((and_(has_sla, done, done_at <= WorkOrder.sla_due_at), 1),
                              else_=0)),
                func.sum(case((and_(has_sla, or_(
                    and_(done, done_at > WorkOrder.sla_due_at),
                    and_(live, WorkOrder.sla_due_at <= now))), 1), else_=0)),
                func.sum(case((and_(has_sla, live, WorkOrder.sla_due_at > now), 1), else_=0)),
                func.sum(case((closed_priced, 1), else_=0)),
                func.sum(case((closed_priced, WorkOrder.final_cost), else_=0)))
                .join(ToolCall, created_wo).join(WorkOrder, wo_join).group_by(w.c.graph)):
            c = counts[g]
            c.sla_met, c.sla_missed, c.sla_pending = int(met), int(missed), int(pending)
            c.resolved_work_orders = int(resolved)
            c.resolved_cost = Decimal(str(cost or 0))

        # Blocked actions: distinct (run, action) the plan gate decided, any decision BLOCK.
        per_action = (select(w.c.graph.label("graph"),
                             func.max(case((PolicyDecisionRecord.outcome == "BLOCK", 1),
                                           else_=0)).label("blocked"))
                      .join(PolicyDecisionRecord, and_(
                          PolicyDecisionRecord.thread_id == w.c.thread_id,
                          PolicyDecisionRecord.tenant_id == tenant_id))
                      .where(PolicyDecisionRecord.stage == "gate")
                      .group_by(w.c.graph, PolicyDecisionRecord.thread_id,
                                PolicyDecisionRecord.action_id).subquery("per_action"))
        for g, gated, blocked in _rows(s, select(per_action.c.graph, func.count(),
                                                 func.sum(per_action.c.blocked))
                                       .group_by(per_action.c.graph)):
            counts[g].gated_actions, counts[g].blocked_actions = gated, int(blocked or 0)

        # Signal to action: runs that made at least one write.
        wrote = exists().where(ToolCall.tenant_id == tenant_id,
                               ToolCall.thread_id == w.c.thread_id)
        for g, acted in _rows(s, select(w.c.graph, func.sum(case((wrote, 1), else_=0)))
                              .group_by(w.c.graph)):
            counts[g].acted_runs = int(acted or 0)

    if graph is not None:
        counts.setdefault(graph, _Counts())  # the asked-for graph is listed even with no runs
    total = _Counts()
    for c in counts.values():
        total.add(c)
    return {"tenant_id": tenant_id, "since": since.isoformat(), "until": until.isoformat(),
            "graph": graph, "total": total.result(),
            "by_graph": {g: counts[g].result() for g in sorted(counts)}}


__all__ = ["CATEGORIES", "FINISHED", "compute_kpis", "percentile", "ratio"]
