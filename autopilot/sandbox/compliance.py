"""Sandbox tables of the compliance + PM autopilot (seed 001, workflow C).

The obligations themselves live in the shared `compliance_items` and `pm_schedules` tables;
these are the records the autopilot keeps about acting on them: who is responsible at each
property (`compliance_contacts`), the tasks it opens (`compliance_tasks`, one live task per
obligation cycle, enforced by the database) and the notices it sends (`compliance_notices`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, CheckConstraint, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from autopilot.models import Base, TenantKeyed, UTCDateTime, utcnow

TASK_STATUSES = ("OPEN", "IN_PROGRESS", "DONE", "CANCELLED")
LIVE_TASK_STATUSES = ("OPEN", "IN_PROGRESS")
# The partial unique indexes below: one task per obligation cycle unless it was cancelled.
_LIVE = text("status <> 'CANCELLED'")


class ComplianceContact(TenantKeyed, Base):
    """A person responsible for compliance at a property (coordinator, superintendent)."""

    __tablename__ = "compliance_contacts"
    property_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32))  # COMPLIANCE_COORDINATOR | SUPERINTENDENT
    email: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str] = mapped_column(String(40))
    preferred_channel: Mapped[str] = mapped_column(String(10), default="email")
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    __table_args__ = (
        Index("ix_compliance_contacts_property", "tenant_id", "property_id"),
        CheckConstraint("role IN ('COMPLIANCE_COORDINATOR', 'SUPERINTENDENT', "
                        "'PROPERTY_MANAGER')", name="role"),
    )


class ComplianceTask(TenantKeyed, Base):
    """One piece of work that discharges one cycle of a compliance item or an overdue PM."""

    __tablename__ = "compliance_tasks"
    compliance_item_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    pm_schedule_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    property_id: Mapped[str] = mapped_column(String(64))
    # The obligation's due date this task is for (the item's due_at / the PM's next_due_at).
    cycle_due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    title: Mapped[str] = mapped_column(String(300))
    assignee_id: Mapped[str] = mapped_column(String(64))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    priority: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="OPEN")
    work_order_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    evidence_ref: Mapped[str | None] = mapped_column(String(200), nullable=True)
    completed_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    notes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    source_thread_id: Mapped[str | None] = mapped_column(String(80), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        CheckConstraint("status IN ('OPEN', 'IN_PROGRESS', 'DONE', 'CANCELLED')",
                        name="status"),
        CheckConstraint("priority IN ('ROUTINE', 'URGENT')", name="priority"),
        # A task is for exactly one obligation: a compliance item or a PM schedule.
        CheckConstraint("(compliance_item_id IS NULL) <> (pm_schedule_id IS NULL)",
                        name="one_obligation"),
        # Done means done with proof: who, when and the report / filing reference.
        CheckConstraint("status <> 'DONE' OR (completed_at IS NOT NULL AND "
                        "evidence_ref IS NOT NULL AND completed_by IS NOT NULL)",
                        name="done_with_evidence"),
        Index("uq_compliance_tasks_live_item_cycle", "tenant_id", "compliance_item_id",
              "cycle_due_at", unique=True, sqlite_where=_LIVE, postgresql_where=_LIVE),
        Index("uq_compliance_tasks_live_pm_cycle", "tenant_id", "pm_schedule_id",
              "cycle_due_at", unique=True, sqlite_where=_LIVE, postgresql_where=_LIVE),
        # The scheduler's re-check scan: live tasks by deadline.
        Index("ix_compliance_tasks_status_due", "status", "due_at"),
        Index("ix_compliance_tasks_work_order", "tenant_id", "work_order_id"),
    )


class ComplianceNotice(TenantKeyed, Base):
    """A notice sent to a task's assignee (the outbox: once sent it cannot be unsent)."""

    __tablename__ = "compliance_notices"
    task_id: Mapped[str] = mapped_column(String(64))
    contact_id: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(10))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        Index("ix_compliance_notices_task", "tenant_id", "task_id"),
        CheckConstraint("channel IN ('in_app', 'email', 'sms')", name="channel"),
    )
