"""The Cedar gate: thresholds from seed 001, reason codes, default deny, errors block."""

from __future__ import annotations

import pytest

from policy.engine import (
    ActionFacts,
    Outcome,
    PolicyBundle,
    PolicyEngine,
    PolicyRequest,
    RunFacts,
    ToolFacts,
)


@pytest.fixture(scope="module")
def engine() -> PolicyEngine:
    return PolicyEngine()


def request(tool: str = "dispatch_vendor", kind: str = "write", graph: str = "maintenance",
            run: dict | None = None, **facts: object) -> PolicyRequest:
    return PolicyRequest(graph=graph, tenant_id="acme",
                         tool=ToolFacts(name=tool, kind=kind, reversible=True,
                                        cost_class="MED", risk="MEDIUM"),
                         facts=ActionFacts(**{"category": "PLUMBING", **facts}),
                         run=RunFacts(**(run or {})))


@pytest.mark.parametrize(("spend", "outcome", "reason"), [
    (0, Outcome.ALLOW, "MAINTENANCE_AUTONOMOUS_WRITE"),
    (75_000, Outcome.ALLOW, "MAINTENANCE_AUTONOMOUS_WRITE"),          # exactly 750: auto
    (75_001, Outcome.REQUIRE_APPROVAL, "SPEND_OVER_AUTO_LIMIT"),      # 750.01: a person
    (500_000, Outcome.REQUIRE_APPROVAL, "SPEND_OVER_AUTO_LIMIT"),     # exactly 5000
    (500_001, Outcome.BLOCK, "SPEND_HARD_BLOCK"),                     # 5000.01: nobody
])
def test_spend_thresholds(engine: PolicyEngine, spend: int, outcome: Outcome,
                          reason: str) -> None:
    decision = engine.evaluate(request(spend_cents=spend))
    assert decision.outcome is outcome
    assert reason in decision.reasons
    assert decision.policy_version == engine.version


def test_emergency_always_goes_to_a_person_even_when_cheap(engine: PolicyEngine) -> None:
    decision = engine.evaluate(request(spend_cents=100, run={"is_emergency": True}))
    assert decision.outcome is Outcome.REQUIRE_APPROVAL
    assert decision.reasons == ["EMERGENCY_ALWAYS_ESCALATE"]


def test_only_listed_categories_are_auto_assigned(engine: PolicyEngine) -> None:
    decision = engine.evaluate(request(spend_cents=100, category="PEST"))
    assert decision.outcome is Outcome.REQUIRE_APPROVAL
    assert decision.reasons == ["CATEGORY_NOT_AUTO_ASSIGNABLE"]
    # The category rule is about assignment: opening a PEST work order is still automatic.
    assert engine.evaluate(request("create_work_order", category="PEST")).outcome is Outcome.ALLOW


def test_vendor_at_cap_is_blocked_even_with_approval(engine: PolicyEngine) -> None:
    assert engine.evaluate(request(vendor_open_work_orders=24)).outcome is Outcome.ALLOW
    decision = engine.evaluate(request(vendor_open_work_orders=25))
    assert decision.outcome is Outcome.BLOCK
    assert decision.reasons == ["VENDOR_AT_CAPACITY"]


def test_reads_are_allowed_and_unknown_autopilots_get_no_autonomy(engine: PolicyEngine) -> None:
    assert engine.evaluate(request("get_work_order", kind="read")).outcome is Outcome.ALLOW
    decision = engine.evaluate(request(graph="crm"))  # unconfigured: propose_actions (L1)
    assert decision.outcome is Outcome.REQUIRE_APPROVAL
    assert decision.reasons == ["AUTONOMY_LEVEL"]


def test_default_deny_without_any_permit() -> None:
    base = PolicyBundle.load()
    bundle = base.model_copy(update={"cedar": "// no policies at all\n", "version": "empty"})
    decision = PolicyEngine(bundle).evaluate(request(spend_cents=1))
    assert decision.outcome is Outcome.BLOCK
    assert decision.reasons == ["DEFAULT_DENY"]


def test_policy_that_errors_blocks_instead_of_being_skipped() -> None:
    # Cedar skips a policy whose evaluation errors; for a forbid that would be a silent allow.
    base = PolicyBundle.load()
    broken = base.cedar + '\n@id("BROKEN")\nforbid (principal, action, resource) ' \
                          'when { context.facts.no_such_attribute > 1 };\n'
    decision = PolicyEngine(base.model_copy(update={"cedar": broken})).evaluate(
        request(spend_cents=100))
    assert decision.outcome is Outcome.BLOCK
    assert decision.reasons == ["POLICY_ERROR"]
    assert decision.errors


def test_unparseable_bundle_blocks_everything() -> None:
    base = PolicyBundle.load()
    engine = PolicyEngine(base.model_copy(update={"cedar": "permit (oops"}))
    decision = engine.evaluate(request("get_work_order", kind="read"))
    assert decision.outcome is Outcome.BLOCK
    assert decision.reasons == ["POLICY_ERROR"]


def test_version_changes_with_thresholds(tmp_path) -> None:
    import json

    from policy.engine import DEFAULTS_FILE, POLICY_DIR

    config = json.loads(DEFAULTS_FILE.read_text())
    config["spend"]["hardBlockAbove"] = 10_000
    alt = tmp_path / "config.json"
    alt.write_text(json.dumps(config))
    bundle = PolicyBundle.load(POLICY_DIR, alt)
    assert bundle.version != PolicyBundle.load().version
    decision = PolicyEngine(bundle).evaluate(request(spend_cents=600_000))
    assert decision.outcome is Outcome.REQUIRE_APPROVAL


def _bundle_with(extra: str, name: str = "extra.cedar") -> PolicyBundle:
    base = PolicyBundle.load()
    return base.model_copy(update={"cedar": base.cedar + f"\n// file: {name}\n" + extra})


def test_attribute_typo_is_refused_at_load_with_id_and_location() -> None:
    from policy.schema import PolicyLoadError

    bundle = _bundle_with('// a typo\n@id("TYPO_RULE")\nforbid (principal, action, resource)\n'
                          'when { context.facts.spend_cent > 1 };\n')
    with pytest.raises(PolicyLoadError) as err:
        PolicyEngine(bundle, strict=True)
    assert "TYPO_RULE (extra.cedar:2)" in str(err.value)
    assert "spend_cent" in str(err.value)


def test_unknown_tool_and_missing_id_are_refused() -> None:
    from policy.schema import PolicyLoadError
    from tools.catalog import build_registry

    known = set(build_registry().names())
    bundle = _bundle_with('@id("WIRE")\n'
                          'forbid (principal, action, resource == Tool::"wire_money");\n'
                          'permit (principal, action, resource);\n')
    with pytest.raises(PolicyLoadError) as err:
        PolicyEngine(bundle, known_tools=known, strict=True)
    text = str(err.value)
    assert 'Tool::"wire_money" is not a registered tool' in text
    assert "needs an @id" in text


def test_shipped_bundle_validates_against_the_generated_schema() -> None:
    from tools.catalog import build_registry

    engine = PolicyEngine(known_tools=set(build_registry().names()), strict=True)
    context = engine.schema()[""]["actions"]["execute"]["appliesTo"]["context"]["attributes"]
    assert context["facts"]["attributes"]["spend_cents"] == {"type": "Long"}
    assert context["limits"]["attributes"]["auto_assign_categories"]["type"] == "Set"
