"""Deterministic policy gate on Cedar: ALLOW / REQUIRE_APPROVAL / BLOCK with reason codes."""

from policy.engine import (
    ActionFacts,
    Outcome,
    PolicyBundle,
    PolicyDecision,
    PolicyEngine,
    PolicyRequest,
    RunFacts,
    ToolFacts,
)

__all__ = [
    "ActionFacts",
    "Outcome",
    "PolicyBundle",
    "PolicyDecision",
    "PolicyEngine",
    "PolicyRequest",
    "RunFacts",
    "ToolFacts",
]
