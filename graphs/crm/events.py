"""Trigger payloads of the crm autopilot.

The four CRM triggers carry seed 000's trigger format as their payload:

    {"trigger_id": "lead_stagnant", "tenant_id": "tenant_abc", "record_id": "lead_123",
     "context": {"days_stagnant": 12}}

with the envelope's `event_type` equal to `trigger_id`. The context is what the detector saw;
the playbook re-reads the record and acts on what is true now. `crm_suggestion_outcome` is
the queue's own follow-up: a suggestion whose run ended without applying it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Regression = Literal["stage_moved_back", "close_date_slipped", "amount_dropped"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Trigger(_Strict):
    # Optional because the envelope names the tenant; when given it must be the same one
    # (perceive refuses a mismatch: tenant isolation is mandatory, seed 000 section 6).
    tenant_id: str | None = Field(default=None, max_length=64)
    record_id: str = Field(min_length=1, max_length=64)


class LeadStagnantContext(_Strict):
    days_stagnant: int = Field(ge=0)


class LeadStagnant(_Trigger):
    """An open lead (new / working) with no activity for a while."""

    trigger_id: Literal["lead_stagnant"]
    context: LeadStagnantContext


class DealRegressedContext(_Strict):
    change_id: str = Field(min_length=1, max_length=64)
    regressions: list[Regression] = Field(min_length=1)


class DealRegressed(_Trigger):
    """An open deal moved back a stage, slipped its close date, or lost amount."""

    trigger_id: Literal["deal_regressed"]
    context: DealRegressedContext


class AccountAtRiskContext(_Strict):
    days_since_activity: int = Field(ge=0)
    open_support_issues: int = Field(ge=0)
    days_to_renewal: int


class AccountAtRisk(_Trigger):
    """No recent activity, open support issues and a renewal coming up, all at once."""

    trigger_id: Literal["account_at_risk"]
    context: AccountAtRiskContext


class ReengagementContext(_Strict):
    record_type: Literal["lead", "deal"]
    activity_id: str = Field(min_length=1, max_length=64)


class ReengagementOpportunity(_Trigger):
    """A nurture lead, or someone on a lost deal, reached out again."""

    trigger_id: Literal["reengagement_opportunity"]
    context: ReengagementContext


class SuggestionOutcome(_Strict):
    """A pending suggestion whose run has ended: record how its review ended."""

    suggestion_id: str = Field(min_length=1, max_length=64)


CrmTrigger = LeadStagnant | DealRegressed | AccountAtRisk | ReengagementOpportunity

EVENT_TYPES: dict[str, type[BaseModel]] = {
    "lead_stagnant": LeadStagnant,
    "deal_regressed": DealRegressed,
    "account_at_risk": AccountAtRisk,
    "reengagement_opportunity": ReengagementOpportunity,
    "crm_suggestion_outcome": SuggestionOutcome,
}
