"""Trigger payloads of the compliance + PM autopilot (seed 001, workflow C).

The daily scan (`detect.py`) raises the first three; `compliance_task_completed` comes from
whoever did the work (a staff app, the inspector's portal, a filing confirmation).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ComplianceItemDue(_Payload):
    """A compliance item entered the look-ahead horizon, its critical window, or became
    overdue (from the daily scan), or someone asks for it to be handled now."""

    compliance_item_id: str = Field(min_length=1, max_length=64)
    stage: Literal["upcoming", "critical", "overdue", "requested"] = "requested"


class CompliancePMOverdue(_Payload):
    """A preventive-maintenance task is past due and has no open work order."""

    pm_schedule_id: str = Field(min_length=1, max_length=64)


class ComplianceRecheck(_Payload):
    """Re-check a task: its deadline passed, or its contractor's work order was closed."""

    task_id: str = Field(min_length=1, max_length=64)
    stage: Literal["deadline", "work_order_closed", "requested"] = "requested"


class ComplianceTaskCompleted(_Payload):
    """Someone reports a compliance task done, with the proof (by task, or by the item whose
    current task it is)."""

    task_id: str | None = Field(default=None, min_length=1, max_length=64)
    compliance_item_id: str | None = Field(default=None, min_length=1, max_length=64)
    completed_by: str = Field(min_length=1, max_length=200)
    evidence_ref: str = Field(min_length=1, max_length=200,
                              description="inspection report, filing or certificate number")
    note: str | None = Field(default=None, max_length=2000)

    @model_validator(mode="after")
    def _one_ref(self) -> ComplianceTaskCompleted:
        if (self.task_id is None) == (self.compliance_item_id is None):
            raise ValueError("give exactly one of task_id and compliance_item_id")
        return self


EVENT_TYPES: dict[str, type[BaseModel]] = {
    "compliance_item_due": ComplianceItemDue,
    "compliance_pm_overdue": CompliancePMOverdue,
    "compliance_recheck": ComplianceRecheck,
    "compliance_task_completed": ComplianceTaskCompleted,
}
