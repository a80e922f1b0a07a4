"""Trigger payloads of the revenue autopilot (seed 003 phase 4.2 decision triggers).

- `account_changed`: the scheduled scan saw new source data for an account (CRM, support,
  telemetry, news), a renewal window opening or a signal expiring;
- `signal_batch_ready`: another system pushed a batch of signals with their evidence
  (SIGNAL_BATCH_READY);
- `meeting_upcoming`: a customer meeting starts soon (MEETING_UPCOMING, the meeting-prep
  wedge);
- `next_best_action`: a person asks "what should I do next?" about an account.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from tools.revenue import MAX_TTL_HOURS, SIGNALS, SignalType

REF_PATTERN = r"^[a-z][a-z0-9_]*:[A-Za-z0-9][A-Za-z0-9._:/@-]*$"


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AccountChanged(_Payload):
    """The scan saw new source data (or a renewal window opening, a signal expiring)."""

    account_id: str = Field(min_length=1, max_length=64)
    changed_through: AwareDatetime = Field(description="the newest change the scan saw")
    sources: list[str] = Field(default=[], max_length=10)


class EvidenceItem(_Payload):
    """What proves a pushed signal; captured as evidence of the run that ingests it."""

    ref: str = Field(pattern=REF_PATTERN, max_length=200, description="kind:id")
    source: str = Field(min_length=1, max_length=100)
    summary: str = Field(min_length=1, max_length=500)


class ObservedSignal(_Payload):
    """One pushed signal; TTL and direction default from the catalogue."""

    signal_type: SignalType
    severity: int = Field(ge=1, le=5)
    confidence: float = Field(ge=0, le=1, allow_inf_nan=False)
    subject: str = Field(default="account", min_length=1, max_length=100)
    direction: Literal[-1, 0, 1] | None = Field(
        default=None, description="only for types that can point either way")
    summary: str = Field(min_length=1, max_length=500)
    ttl_hours: int | None = Field(default=None, ge=1, le=MAX_TTL_HOURS)
    evidence: list[EvidenceItem] = Field(min_length=1, max_length=10)

    @model_validator(mode="after")
    def _direction(self) -> ObservedSignal:
        fixed = SIGNALS[self.signal_type].direction
        if fixed is None and self.direction is None:
            raise ValueError(f"{self.signal_type} needs a direction (-1 or 1)")
        if fixed is not None and self.direction not in (None, fixed):
            raise ValueError(f"{self.signal_type} always has direction {fixed}")
        return self


class SignalBatchReady(_Payload):
    """Another system pushes signals about one account, each with its evidence."""

    batch_id: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9._-]+$")
    account_id: str = Field(min_length=1, max_length=64)
    source: str = Field(min_length=1, max_length=80)
    signals: list[ObservedSignal] = Field(min_length=1, max_length=20)


class MeetingUpcoming(_Payload):
    """A customer meeting starts within 48 hours: prepare for it."""

    account_id: str = Field(min_length=1, max_length=64)
    meeting_id: str = Field(min_length=1, max_length=64)


class NextBestAction(_Payload):
    """A person asks what to do next about an account."""

    request_id: str = Field(min_length=1, max_length=64)
    account_id: str = Field(min_length=1, max_length=64)
    requested_by: str = Field(min_length=1, max_length=200)
    question: str = Field(default="What should I do next?", min_length=1, max_length=1000)


EVENT_TYPES: dict[str, type[BaseModel]] = {
    "account_changed": AccountChanged,
    "signal_batch_ready": SignalBatchReady,
    "meeting_upcoming": MeetingUpcoming,
    "next_best_action": NextBestAction,
}
