"""Trigger payloads of the maintenance autopilot (seed 001, workflow A)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tools.maintenance import MAX_AMOUNT, Category


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TenantIssue(_Payload):
    """A resident reports a problem (message, portal, call transcript)."""

    message_id: str = Field(min_length=1, max_length=64)
    resident_id: str = Field(min_length=1)
    unit_id: str = Field(min_length=1)
    text: str = Field(min_length=1, max_length=4000)
    channel: Literal["sms", "email", "in_app", "phone"] = "in_app"


class Incident(_Payload):
    """A building incident from staff, an inspection or a sensor."""

    incident_id: str = Field(min_length=1, max_length=64)
    property_id: str = Field(min_length=1)
    unit_id: str | None = None
    description: str = Field(min_length=1, max_length=4000)
    reported_by: str = Field(min_length=1)
    category: Category | None = None


class PMDue(_Payload):
    """A preventive-maintenance task came due."""

    pm_schedule_id: str = Field(min_length=1)


class SLACheck(_Payload):
    """A scheduled follow-up fired: has the vendor moved the work order on?"""

    work_order_id: str = Field(min_length=1)


class WorkCompleted(_Payload):
    """The vendor reports the job done, with the invoiced amount."""

    work_order_id: str = Field(min_length=1)
    final_cost: float = Field(ge=0, le=MAX_AMOUNT, allow_inf_nan=False)
    resolution: str = Field(min_length=1, max_length=2000)


EVENT_TYPES: dict[str, type[BaseModel]] = {
    "tenant_issue": TenantIssue,
    "incident": Incident,
    "pm_due": PMDue,
    "sla_check": SLACheck,
    "work_completed": WorkCompleted,
}
