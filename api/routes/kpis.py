"""KPIs: how autonomous, escalated, approved, on time and costly the autopilots were for the
caller's tenant over a window of runs (definitions in docs/kpis.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api.auth import Reader
from api.deps import RunnerDep
from api.errors import ERRORS, ApiError
from autopilot.kpis import compute_kpis

router = APIRouter(tags=["kpis"], responses=ERRORS)
DEFAULT_WINDOW = timedelta(days=30)


class Ratio(BaseModel):
    numerator: int
    denominator: int
    rate: float | None = Field(description="numerator / denominator; null when the "
                                           "denominator is 0")


class RunCounts(BaseModel):
    started: int = Field(description="runs created in the window")
    finished: int = Field(description="runs completed, escalated, failed_terminal or "
                                      "cancelled, excluding completed nothing_to_do")
    nothing_to_do: int
    by_status: dict[str, int]


class Escalation(Ratio):
    by_category: dict[str, Ratio] = Field(description="LEGAL, FINANCIAL, SAFETY, SLA, SYSTEM")


class DecisionTime(BaseModel):
    count: int
    p50: float | None = Field(description="seconds from request to decision, median")
    p90: float | None
    mean: float | None


class Approvals(BaseModel):
    requested: int = Field(description="approval requests raised by the window's runs")
    by_status: dict[str, int] = Field(description="pending | decided | expired | cancelled | "
                                                  "superseded")
    decided: int
    approved: int = Field(description="every decision approve")
    edited: int = Field(description="at least one edit, no reject")
    rejected: int = Field(description="at least one reject")
    expired: int
    approval_rate: float | None
    edit_rate: float | None
    rejection_rate: float | None
    time_to_decision_seconds: DecisionTime


class SlaAttainment(Ratio):
    met: int
    missed: int
    pending: int = Field(description="open and not yet due: not counted either way")


class Cost(BaseModel):
    resolved_work_orders: int
    total_cost: float
    value: float | None = Field(description="average final cost of a closed work order")


class KpiSet(BaseModel):
    runs: RunCounts
    autonomous_resolution: Ratio
    escalation: Escalation
    approvals: Approvals
    sla_attainment: SlaAttainment
    cost_per_resolved_work_order: Cost
    blocked_actions: Ratio
    signal_to_action: Ratio


class Kpis(BaseModel):
    tenant_id: str
    since: datetime
    until: datetime
    graph: str | None
    total: KpiSet
    by_graph: dict[str, KpiSet] = Field(description="per autopilot with runs in the window "
                                                    "(and the one asked for)")


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


@router.get("/v1/kpis", response_model=Kpis, summary="KPIs over runs created in a window")
def kpis(caller: Reader, runner: RunnerDep,
         since: Annotated[datetime | None, Query(description="runs created at or after "
                                                 "(default: 30 days before `until`; "
                                                 "no offset means UTC)")] = None,
         until: Annotated[datetime | None, Query(description="runs created before "
                                                 "(default: now)")] = None,
         graph: Annotated[str | None, Query(description="one autopilot only",
                                            max_length=40)] = None) -> Kpis:
    end = _aware(until) if until else datetime.now(UTC)
    start = _aware(since) if since else end - DEFAULT_WINDOW
    if start >= end:
        raise ApiError(422, "invalid_request", "since must be before until", field="since")
    return Kpis.model_validate(compute_kpis(runner.services.db, caller.tenant_id, start, end,
                                            graph=graph))
