"""The daily compliance scan: which compliance items, PM schedules and tasks crossed a
threshold in the tick's window `(since, until]`.

- a compliance item (status OPEN) enters the look-ahead horizon (`LOOK_AHEAD` before it is
  due: time to open a task), enters the critical window without a live task (a safety net
  for items recorded late), or becomes overdue;
- a PM schedule becomes overdue with no open work order;
- a live task reaches its deadline, or its contractor's work order is closed (re-check).

Every scan is set-based SQL over indexed due-date columns, bounded by the window, so a tick
reads only what crossed a threshold since the previous one. `since=None` is the full scan:
every item inside the horizon, every overdue PM without a work order and every live task
past its deadline, once each. Each event's `occurred_at` is the threshold instant, so the
same crossing found again (a later full scan) names the same run (dedupe key).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import and_, exists, func, literal, select
from sqlalchemy.orm import Session

from autopilot.models import ComplianceItem, PMSchedule, WorkOrder
from autopilot.sandbox.compliance import LIVE_TASK_STATUSES, ComplianceTask
from tools.maintenance import OPEN_STATUSES

LOOK_AHEAD = timedelta(days=60)  # open the task two months ahead: inspectors book up
CLOSED_WORK_ORDER = ("COMPLETED", "CLOSED")


@lru_cache(maxsize=1)
def critical_window() -> timedelta:
    """The shipped `compliance.criticalDaysBeforeDue`. A tenant may lengthen its own window;
    its planner judges with the tenant's value and sets task deadlines at that window's
    start, so this checkpoint only catches items that never got a task."""
    from policy.engine import PolicyBundle

    return timedelta(days=PolicyBundle.load().limits()["compliance_critical_days"])


def detect(session: Session, since: datetime | None, until: datetime) -> list[dict[str, Any]]:
    return [*_items(session, since, until), *_pm(session, since, until),
            *_tasks(session, since, until)]


def _items(session: Session, since: datetime | None, until: datetime) -> list[dict[str, Any]]:
    item, task = ComplianceItem, ComplianceTask
    critical = critical_window()
    cols = select(item.tenant_id, item.id, item.due_at).where(item.status == "OPEN")
    found: list[tuple[str, str, datetime, str]] = []
    if since is None:
        for tenant_id, item_id, due in session.execute(
                cols.where(item.due_at <= until + LOOK_AHEAD).order_by(item.due_at)):
            stage = ("overdue" if due <= until else "critical" if due - critical <= until
                     else "upcoming")
            found.append((tenant_id, item_id, due, stage))
    else:
        no_live_task = ~exists().where(
            task.tenant_id == item.tenant_id, task.compliance_item_id == item.id,
            task.cycle_due_at == item.due_at, task.status.in_(LIVE_TASK_STATUSES))
        for stage, offset, extra in (("upcoming", LOOK_AHEAD, None),
                                     ("critical", critical, no_live_task),
                                     ("overdue", timedelta(0), None)):
            q = cols.where(item.due_at > since + offset, item.due_at <= until + offset)
            if extra is not None:
                q = q.where(extra)
            found += [(t, i, due, stage) for t, i, due in session.execute(
                q.order_by(item.due_at))]
    offsets = {"upcoming": LOOK_AHEAD, "critical": critical, "overdue": timedelta(0)}
    return [_event(tenant_id, f"compliance:{item_id}:{stage}:{due:%Y-%m-%d}",
                   "compliance_item_due", due - offsets[stage],
                   {"compliance_item_id": item_id, "stage": stage})
            for tenant_id, item_id, due, stage in found]


def _pm(session: Session, since: datetime | None, until: datetime) -> list[dict[str, Any]]:
    pm, wo = PMSchedule, WorkOrder
    open_work_order = exists().where(wo.tenant_id == pm.tenant_id,
                                     wo.source_ref == literal("pm:") + pm.id,
                                     wo.status.in_(OPEN_STATUSES))
    q = select(pm.tenant_id, pm.id, pm.next_due_at).where(pm.next_due_at <= until,
                                                          ~open_work_order)
    if since is not None:
        q = q.where(pm.next_due_at > since)
    return [_event(tenant_id, f"pm-overdue:{pm_id}:{due:%Y-%m-%d}", "compliance_pm_overdue",
                   due, {"pm_schedule_id": pm_id})
            for tenant_id, pm_id, due in session.execute(q.order_by(pm.next_due_at))]


def _tasks(session: Session, since: datetime | None, until: datetime) -> list[dict[str, Any]]:
    task, wo = ComplianceTask, WorkOrder
    live = task.status.in_(LIVE_TASK_STATUSES)
    events = []
    deadline = select(task.tenant_id, task.id, task.due_at).where(live, task.due_at <= until)
    if since is not None:
        deadline = deadline.where(task.due_at > since)
    for tenant_id, task_id, due in session.execute(deadline.order_by(task.due_at)):
        events.append(_event(tenant_id, f"compliance-task:{task_id}:deadline:{due:%Y-%m-%d}",
                             "compliance_recheck", due,
                             {"task_id": task_id, "stage": "deadline"}))
    closed_at = func.coalesce(wo.closed_at, wo.updated_at)
    closed = (select(task.tenant_id, task.id, closed_at)
              .join(wo, and_(wo.tenant_id == task.tenant_id, wo.id == task.work_order_id))
              .where(live, wo.status.in_(CLOSED_WORK_ORDER), closed_at <= until))
    if since is not None:
        closed = closed.where(closed_at > since)
    for tenant_id, task_id, at in session.execute(closed.order_by(closed_at)):
        events.append(_event(tenant_id, f"compliance-task:{task_id}:work-order-closed",
                             "compliance_recheck", at,
                             {"task_id": task_id, "stage": "work_order_closed"}))
    return events


def _event(tenant_id: str, event_id: str, event_type: str, at: datetime,
           payload: dict[str, Any]) -> dict[str, Any]:
    return {"event_id": event_id, "tenant_id": tenant_id, "source": "compliance-scan",
            "event_type": event_type, "occurred_at": at.isoformat(), "payload": payload}
