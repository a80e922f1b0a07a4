"""Trigger payloads of the platform_ops autopilot: the five task types of seed 004."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Severity = Literal["SEV1", "SEV2", "SEV3", "SEV4"]


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReliabilityTriage(_Payload):
    """An alert on a service route, e.g. "5xx spike in discourse" (propose rollback +
    throttle)."""

    alert_id: str = Field(min_length=1, max_length=64)
    service: str = Field(min_length=1, max_length=64)
    route: str = Field(min_length=1, max_length=160)
    dashboard_id: str = Field(min_length=1, max_length=64)
    correlation_id: str | None = Field(default=None, max_length=64,
                                       description="a failing request's trace")
    severity: Severity = "SEV2"


class SafetyTriage(_Payload):
    """A trust & safety signal on a post, e.g. "reply burst suggests dogpile" (propose
    friction on entry)."""

    signal_id: str = Field(min_length=1, max_length=64)
    content_id: str = Field(min_length=1, max_length=64)
    signal: Literal["reply_burst", "report_spike"] = "reply_burst"


class SupportAssist(_Payload):
    """A support ticket, e.g. "user can't login" (suggest session revoke + reset link), or
    an appeal to review."""

    ticket_id: str = Field(min_length=1, max_length=64)
    user_id: str = Field(min_length=1, max_length=64)
    issue: Literal["cannot_login", "push_spam", "appeal"]
    appeal_id: str | None = Field(default=None, max_length=64)
    text: str = Field(default="", max_length=4000)

    @model_validator(mode="after")
    def _appeal_named(self) -> SupportAssist:
        if self.issue == "appeal" and not self.appeal_id:
            raise ValueError("an appeal ticket names its appeal_id")
        return self


class GrowthOps(_Payload):
    """An engagement signal, e.g. "Gathering window underperforming" (propose a notification
    campaign, behind its flag)."""

    signal_id: str = Field(min_length=1, max_length=64)
    dashboard_id: str = Field(min_length=1, max_length=64)
    flag_key: str = Field(min_length=1, max_length=64, description="the campaign's flag")


class DataPipeline(_Payload):
    """A pipeline alert, e.g. "warehouse lag" (propose restart consumer + backfill)."""

    alert_id: str = Field(min_length=1, max_length=64)
    queue: str = Field(min_length=1, max_length=64)
    dashboard_id: str | None = Field(default=None, max_length=64)


EVENT_TYPES: dict[str, type[BaseModel]] = {
    "reliability_triage": ReliabilityTriage,
    "safety_triage": SafetyTriage,
    "support_assist": SupportAssist,
    "growth_ops": GrowthOps,
    "data_pipeline": DataPipeline,
}
