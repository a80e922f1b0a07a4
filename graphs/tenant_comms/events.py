"""Trigger payloads of the tenant comms autopilot (seed 001, workflow B)."""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ResidentMessage(_Payload):
    """The messaging system stored a resident's message (SMS, email, in-app, portal) on
    their conversation; the autopilot reads both from there."""

    thread_id: str = Field(min_length=1, max_length=64)
    message_id: str = Field(min_length=1, max_length=64)


class ReplyOverdue(_Payload):
    """The scheduled scan found a conversation whose reply deadline passed unanswered."""

    thread_id: str = Field(min_length=1, max_length=64)
    reply_due_at: AwareDatetime


EVENT_TYPES: dict[str, type[BaseModel]] = {
    "resident_message": ResidentMessage,
    "comms_reply_overdue": ReplyOverdue,
}
