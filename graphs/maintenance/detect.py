"""Scheduled trigger detection for maintenance: PM tasks coming due, SLA follow-ups due.

Both scans are set-based over indexed due-date columns and bounded by the tick window, so a
tick reads only what crossed a threshold since the previous one (the first tick, with no
window start, reads everything currently due).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from autopilot.models import FollowUp, PMSchedule

PM_LEAD = timedelta(days=7)  # open the PM work order a week before the task is due


def detect(session: Session, since: datetime | None, until: datetime) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    pm = select(PMSchedule.tenant_id, PMSchedule.id, PMSchedule.next_due_at).where(
        PMSchedule.next_due_at <= until + PM_LEAD)
    if since is not None:
        pm = pm.where(PMSchedule.next_due_at > since + PM_LEAD)
    for tenant_id, pm_id, due in session.execute(pm.order_by(PMSchedule.next_due_at)):
        events.append(_event(tenant_id, f"pm:{pm_id}:{due:%Y-%m-%d}", "pm_due", due,
                             {"pm_schedule_id": pm_id}))
    fu = select(FollowUp.tenant_id, FollowUp.id, FollowUp.work_order_id, FollowUp.due_at).where(
        FollowUp.status == "SCHEDULED", FollowUp.due_at <= until)
    if since is not None:
        fu = fu.where(FollowUp.due_at > since)
    for tenant_id, fu_id, wo_id, due in session.execute(fu.order_by(FollowUp.due_at)):
        events.append(_event(tenant_id, f"follow_up:{fu_id}", "sla_check", due,
                             {"work_order_id": wo_id}))
    return events


def _event(tenant_id: str, event_id: str, event_type: str, at: datetime,
           payload: dict[str, Any]) -> dict[str, Any]:
    return {"event_id": event_id, "tenant_id": tenant_id, "source": "scheduler",
            "event_type": event_type, "occurred_at": at.isoformat(), "payload": payload}
