"""Typed state shared by every autopilot graph, and the typed proposal a planner emits."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import TypedDict  # pydantic needs it on Python < 3.12

ProposalStatus = Literal[
    "proposed",        # from the planner or an edit; the gate has not judged it yet
    "allowed",         # gate: ALLOW
    "needs_approval",  # gate: REQUIRE_APPROVAL, waiting for a person
    "blocked",         # gate: BLOCK
    "approved",        # a person approved exactly these args
    "rejected",        # a person rejected it; it never runs
    "executed",
    "skipped",         # not run because an action it depends on did not run
    "simulated",       # a replay decided it would run, but it had not run before: not run
    "cancelled",       # the run was cancelled before it ran
]


class VerifySpec(BaseModel):
    """How verify re-reads the world: a read tool, its args and the fields expected."""

    model_config = ConfigDict(extra="forbid")
    tool: str
    args: dict[str, Any]
    expect: dict[str, Any]


class Proposal(BaseModel):
    """One proposed tool call with everything a reviewer and the auditor need."""

    model_config = ConfigDict(extra="forbid")
    action_id: str
    tool: str
    args: dict[str, Any]
    description: str
    confidence: float = Field(ge=0, le=1)
    reasoning: str
    evidence_refs: list[str] = []
    expected_outcome: str
    rollback_plan: str
    depends_on: list[str] = []
    verify: VerifySpec | None = None
    status: ProposalStatus = "proposed"
    decision: dict[str, Any] | None = None
    review: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    replayed: bool = False
    # Set by the spine's grounding check: does every claim cite evidence this run captured?
    grounded: bool = True
    grounding: str = ""


class Escalation(BaseModel):
    """Why a run stops for a manager (seed 001 exception: severity, category, blocked rule)."""

    model_config = ConfigDict(extra="forbid")
    severity: Literal["LOW", "MEDIUM", "HIGH", "CRITICAL"]
    category: Literal["LEGAL", "FINANCIAL", "SAFETY", "SLA", "SYSTEM"]
    title: str
    details: str
    blocked_rules: list[str] = []
    decision_requested: str
    evidence_refs: list[str] = []


class PlanResult(BaseModel):
    """What a planner returns: proposals, facts the gate needs about the run, or an escalation."""

    proposals: list[Proposal] = []
    run_facts: dict[str, Any] = {}
    summary: str
    escalation: Escalation | None = None


class AutopilotInput(TypedDict):
    """What starts a run: the trigger envelope (see graphs/trigger.py)."""

    trigger: dict[str, Any]


class AutopilotState(TypedDict, total=False):
    graph: str
    tenant_id: str
    trigger: dict[str, Any]
    context: dict[str, Any]
    evidence: list[dict[str, Any]]
    run_facts: dict[str, Any]
    proposals: list[dict[str, Any]]
    plan_summary: str
    approval_round: int
    escalation: dict[str, Any] | None
    verification: list[dict[str, Any]]
    outcome: Literal["completed", "escalated", "rejected", "nothing_to_do", "cancelled"]
    summary: str
