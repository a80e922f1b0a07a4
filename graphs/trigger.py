"""Trigger envelope, per-graph payload validation and the dedupe key that names a run."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator

from tools.registry import pydantic_errors


class TriggerError(ValueError):
    """A trigger that cannot start a run; `fields` names every offending field."""

    def __init__(self, fields: list[dict[str, str]]) -> None:
        self.fields = fields
        super().__init__("invalid trigger: " + "; ".join(
            f"{f['field']}: {f['message']}" for f in fields))


class TriggerEnvelope(BaseModel):
    """The typed event envelope (seed 003): who, what, when, and the event's payload."""

    model_config = ConfigDict(extra="forbid")
    event_id: str = Field(min_length=1, max_length=200)
    # Letters, digits, `_.-`, starting with a letter or digit: `global` and `_platform` (the
    # kill switch's global scope and the ledger chain of platform controls) are not tenants.
    tenant_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    source: str = Field(min_length=1, max_length=100)
    event_type: str = Field(min_length=1)
    occurred_at: AwareDatetime
    trace_id: str | None = Field(default=None, max_length=100)
    payload: dict[str, Any]

    @field_validator("tenant_id")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value.lower() in ("global", "_platform"):
            raise ValueError(f"{value!r} is reserved and cannot be a tenant id")
        return value


def parse_trigger(
    raw: Any, event_types: dict[str, type[BaseModel]]
) -> tuple[TriggerEnvelope, BaseModel]:
    """Validate the envelope and its payload for this graph; raise `TriggerError` naming fields."""
    if not isinstance(raw, dict):
        raise TriggerError([{"field": "(root)", "message": "event must be a JSON object"}])
    try:
        envelope = TriggerEnvelope.model_validate(raw)
    except ValidationError as exc:
        errors = pydantic_errors(exc)
        model = event_types.get(raw.get("event_type", ""))  # report payload errors too
        if model is not None and isinstance(raw.get("payload"), dict):
            try:
                model.model_validate(raw["payload"])
            except ValidationError as payload_exc:
                errors += pydantic_errors(payload_exc, prefix="payload.")
        raise TriggerError(errors) from None
    model = event_types.get(envelope.event_type)
    if model is None:
        raise TriggerError([{"field": "event_type", "message": (
            f"unknown event type {envelope.event_type!r}; expected one of "
            f"{', '.join(sorted(event_types))}")}])
    try:
        payload = model.model_validate(envelope.payload)
    except ValidationError as exc:
        raise TriggerError(pydantic_errors(exc, prefix="payload.")) from None
    return envelope, payload


def dedupe_key(graph: str, envelope: TriggerEnvelope, ref: str, scope: str) -> str:
    """Seed 001 section 4.2: trigger type + ref + scope + date bucket (UTC day)."""
    bucket = utc_day(envelope.occurred_at)
    return f"{envelope.tenant_id}|{graph}|{envelope.event_type}|{ref}|{scope}|{bucket}"


def thread_id_for(graph: str, key: str) -> str:
    return f"{graph}-{hashlib.sha256(key.encode()).hexdigest()[:20]}"


def stable_id(prefix: str, *parts: str, length: int = 10) -> str:
    """Deterministic record id, so a re-planned step targets the same record."""
    return f"{prefix}-{hashlib.sha256('|'.join(parts).encode()).hexdigest()[:length].upper()}"


def utc_day(moment: datetime) -> str:
    return moment.astimezone(UTC).date().isoformat()
