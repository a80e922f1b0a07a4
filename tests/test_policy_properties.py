"""Property-based checks of the gate over random actions and contexts (hypothesis)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from policy.engine import (
    ActionFacts,
    Outcome,
    PolicyBundle,
    PolicyEngine,
    PolicyRequest,
    RunFacts,
    ToolFacts,
    Usage,
)

ENGINE = PolicyEngine()
HARD_BLOCK = ENGINE.bundle.limits()["hard_block_above_cents"]
TOOLS = ["create_work_order", "update_work_order", "dispatch_vendor", "request_bids",
         "send_resident_message", "schedule_follow_up", "close_work_order", "wire_money",
         "send_confirmation", "send_reminder", "retry_calendar_sync", "send_reply"]
TEXTS = ["", "Sink is leaking", "I will call my lawyer", "He threatened me", "I slipped and fell",
         "notice to quit", "Court Street 12", "discriminated against"]

requests = st.builds(
    PolicyRequest,
    graph=st.sampled_from(["maintenance", "crm", "platform_ops", "bookings", "tenant_comms",
                           "compliance"]),
    tenant_id=st.just("t"),
    tool=st.builds(ToolFacts, name=st.sampled_from(TOOLS), kind=st.just("write"),
                   reversible=st.booleans(), cost_class=st.sampled_from(["CHEAP", "MED", "EXP"]),
                   risk=st.sampled_from(["LOW", "MEDIUM", "HIGH"])),
    facts=st.builds(ActionFacts, spend_cents=st.integers(0, 2 * HARD_BLOCK),
                    category=st.sampled_from(["PLUMBING", "HVAC", "PEST", "GENERAL", ""]),
                    vendor_open_work_orders=st.integers(0, 40),
                    lead_time_minutes=st.one_of(st.none(), st.integers(0, 600)),
                    days_until_due=st.one_of(st.none(), st.integers(-30, 60)),
                    attempt=st.integers(0, 8)),
    run=st.builds(RunFacts, is_emergency=st.booleans(), text=st.sampled_from(TEXTS),
                  intent=st.sampled_from(["", "FAQ", "STATUS_UPDATE", "BILLING_DISPUTE"]),
                  sla_breached=st.booleans()),
    usage=st.builds(Usage, tool_calls=st.integers(0, 200), tenant_calls=st.integers(0, 800),
                    tenant_spend_cents=st.integers(0, 5_000_000)),
    at=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 1, 1),
                    timezones=st.just(UTC)),
    autonomous_writes_enabled=st.booleans(),
    level_override=st.one_of(st.none(), st.integers(0, 4)),
)


def _allowed(req: PolicyRequest, engine: PolicyEngine = ENGINE) -> bool:
    return engine.evaluate(req).outcome is Outcome.ALLOW


@settings(max_examples=400, deadline=None)
@given(requests)
def test_no_write_is_allowed_with_the_kill_switch_on(req: PolicyRequest) -> None:
    off = req.model_copy(update={"autonomous_writes_enabled": False})
    assert ENGINE.evaluate(off).outcome is not Outcome.ALLOW


@settings(max_examples=400, deadline=None)
@given(requests, st.integers(0, 1))
def test_no_write_is_allowed_at_l0_or_l1(req: PolicyRequest, level: int) -> None:
    decision = ENGINE.evaluate(req.model_copy(update={"level_override": level}))
    assert decision.outcome is not Outcome.ALLOW
    if level == 0:
        assert decision.outcome is Outcome.BLOCK


@settings(max_examples=400, deadline=None)
@given(requests, st.integers(1, 10**9))
def test_spend_above_the_hard_block_is_always_blocked(req: PolicyRequest, extra: int) -> None:
    facts = req.facts.model_copy(update={"spend_cents": HARD_BLOCK + extra})
    assert ENGINE.evaluate(req.model_copy(update={"facts": facts})).outcome is Outcome.BLOCK


UNRELATED_PERMITS = [
    '@id("UNRELATED_1")\npermit (principal == Autopilot::"crm", action, resource == '
    'Tool::"get_work_order");',
    '@id("UNRELATED_2")\npermit (principal, action == Action::"execute", resource) '
    'when { context.tool.kind == "read" };',
    '@id("BROAD_PERMIT")\npermit (principal, action, resource);',
]


def _with(extra: str) -> PolicyEngine:
    base = PolicyBundle.load()
    return PolicyEngine(base.model_copy(update={"cedar": base.cedar + "\n" + extra}),
                        strict=True)


ENGINES_WITH_PERMITS = [_with(p) for p in UNRELATED_PERMITS]


@settings(max_examples=300, deadline=None)
@given(requests)
def test_a_block_never_becomes_allow_by_adding_a_permit(req: PolicyRequest) -> None:
    if ENGINE.evaluate(req).outcome is not Outcome.BLOCK:
        return
    for engine in ENGINES_WITH_PERMITS:  # forbid beats permit, however broad the permit
        assert engine.evaluate(req).outcome is Outcome.BLOCK


def test_l4_is_refused_unless_explicitly_enabled() -> None:
    import pytest

    from policy.schema import PolicyLoadError

    base = PolicyBundle.load()
    config: dict[str, Any] = {**base.config, "autonomy": {
        "default": "propose_actions",
        "graphs": {"crm": {"default": "L3", "tools": {"create_activity": "L4"}}}}}
    with pytest.raises(PolicyLoadError, match="L4 for create_activity is refused"):
        PolicyEngine(base.model_copy(update={"config": config}), strict=True)
    config["autonomy"]["graphs"]["crm"]["default"] = "L9"
    with pytest.raises(PolicyLoadError, match="autonomy.graphs.crm.default"):
        PolicyEngine(base.model_copy(update={"config": config}), strict=True)
