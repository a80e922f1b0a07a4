"""The incident format (`autopilot-incident/1`): one JSON object per line of a `.jsonl` file.

An incident is a recorded trigger, the world the autopilot saw, what the humans decided, and
what should (and must never) happen. `docs/evals.md` documents every field; this module is
the authority, and `load_incidents` names the file, line and field of anything malformed.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

FORMAT = "autopilot-incident/1"
# The replay clock when an incident gives no `at`: a Monday, 10:00 in New York (outside quiet
# hours), the day of the NYC 311 extract most maintenance incidents come from.
EPOCH = datetime(2024, 4, 15, 14, 0, tzinfo=UTC)
EVAL_TENANT = "eval"

Outcome = Literal["completed", "rejected", "nothing_to_do", "escalated", "cancelled",
                  "invalid_trigger", "failed"]
Decision = Literal["ALLOW", "REQUIRE_APPROVAL", "BLOCK"]
MatchMode = Literal["strict", "unordered", "subset", "superset"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Source(_Model):
    """Where the incident comes from: a dataset row (cite it) or `hand-written`/`captured`."""

    dataset: str = Field(min_length=1)
    ref: str = ""
    licence: str = ""
    note: str = ""


class RecordedCall(_Model):
    """A recorded tool response. `args` (a subset) picks which calls it answers; an `error`
    makes the call fail (`transient` is retried by the spine, `permanent` is not)."""

    args: dict[str, Any] = Field(default_factory=dict)
    output: dict[str, Any] | None = None
    error: Literal["transient", "permanent"] | None = None
    message: str = "recorded failure"

    @model_validator(mode="after")
    def _one_of(self) -> RecordedCall:
        if (self.output is None) == (self.error is None):
            raise ValueError("give exactly one of output or error")
        return self


class World(_Model):
    """The world as it was. `records` are sandbox rows merged (by primary key) onto the
    seeded sandbox, by table name; `reads` and `writes` answer tool calls from recordings
    instead of the sandbox (first matching entry wins; unmatched calls use the sandbox)."""

    records: dict[str, list[dict[str, Any]]] = Field(default_factory=dict)
    reads: dict[str, list[RecordedCall]] = Field(default_factory=dict)
    writes: dict[str, list[RecordedCall]] = Field(default_factory=dict)


class HumanDecision(_Model):
    """What the reviewer decided for an action awaiting approval (matched by action_id, or
    else by tool), and how long they took (simulated time)."""

    tool: str | None = None
    action_id: str | None = None
    type: Literal["approve", "edit", "reject"]
    args: dict[str, Any] | None = None  # edit: the changed arguments (merged onto the proposal)
    message: str = ""
    after_minutes: float = Field(default=30.0, ge=0)

    @model_validator(mode="after")
    def _check(self) -> HumanDecision:
        if self.tool is None and self.action_id is None:
            raise ValueError("name the action: tool or action_id")
        if self.type == "edit" and not self.args:
            raise ValueError("an edit needs args")
        if self.type == "reject" and not self.message:
            raise ValueError("a rejection needs a message (the reviewer's feedback)")
        return self


class Human(_Model):
    decisions: list[HumanDecision] = Field(default_factory=list)
    # An approval the incident did not record is answered by the run's --approvals policy.
    resolve_minutes: float | None = Field(default=None, ge=0,
                                          description="historical time to resolve, if known")


class ActionPattern(_Model):
    """A tool call pattern. `args` lists only the key arguments; a value matches by equality,
    or by an operator object: {"in": [...]}, {"lte": n}, {"gte": n}, {"contains": "text"}
    (case-insensitive), {"not": value}."""

    tool: str = Field(min_length=1)
    args: dict[str, Any] = Field(default_factory=dict)


class ExpectedAction(ActionPattern):
    decision: Decision | None = None  # the gate's first decision for it


class Forbidden(ActionPattern):
    """An action that must never be executed (`without_approval`: never without a human)."""

    without_approval: bool = False
    why: str = ""


class Expected(_Model):
    outcome: Outcome | None = None
    match: MatchMode = "superset"
    actions: list[ExpectedAction] = Field(default_factory=list)
    human_required: bool
    why: str = Field(min_length=1, description="why a human is (or is not) needed")
    never: list[Forbidden] = Field(default_factory=list)
    escalation_category: str | None = None


class Incident(_Model):
    format: Literal["autopilot-incident/1"] = FORMAT
    id: str = Field(min_length=1, max_length=120, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
    graph: str = Field(min_length=1)
    title: str = Field(min_length=1)
    source: Source
    tags: list[str] = Field(default_factory=list)
    at: AwareDatetime | None = None  # the replay clock (default EPOCH)
    trigger: dict[str, Any]  # the raw event; tenant_id is set to the eval tenant on replay
    world: World = Field(default_factory=World)
    human: Human = Field(default_factory=Human)
    expect: Expected

    @property
    def clock(self) -> datetime:
        return self.at or EPOCH

    @property
    def routine(self) -> bool:
        """Routine: the autopilot should finish it alone (seed 001's autonomy metric)."""
        return not self.expect.human_required and self.expect.outcome != "invalid_trigger"


class IncidentFileError(ValueError):
    """A malformed incident file; the message names the file, line and field."""


def load_incidents(path: Path) -> list[Incident]:
    """Every incident in a `.jsonl` file, or in the `.jsonl` files under a folder (sorted)."""
    files = sorted(path.rglob("*.jsonl")) if path.is_dir() else [path]
    if not files:
        raise IncidentFileError(f"{path}: no .jsonl incident files")
    incidents: list[Incident] = []
    seen: dict[str, str] = {}
    for file in files:
        for number, line in enumerate(file.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            where = f"{file}:{number}"
            try:
                incident = Incident.model_validate(json.loads(line))
            except json.JSONDecodeError as exc:
                raise IncidentFileError(f"{where}: not JSON: {exc}") from None
            except ValidationError as exc:
                fields = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: "
                                   f"{e['msg']}" for e in exc.errors())
                raise IncidentFileError(f"{where}: {fields}") from None
            if incident.id in seen:
                raise IncidentFileError(f"{where}: duplicate incident id {incident.id!r} "
                                        f"(first in {seen[incident.id]})")
            seen[incident.id] = where
            incidents.append(incident)
    return incidents


def dump_incidents(incidents: list[Incident], path: Path) -> None:
    """Write incidents as JSON Lines, one per line, keys sorted (stable diffs)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(i.model_dump(mode="json", exclude_none=True,
                                                    exclude_defaults=True) | {"format": FORMAT},
                                       sort_keys=True) + "\n" for i in incidents))
