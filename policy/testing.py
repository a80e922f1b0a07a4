"""Policy test suites in YAML (in the style of `opa test` / `cerbos compile`).

A suite names an autopilot (the Cedar principal) and lists cases: a tool (registered name,
whose kind/reversibility/cost/risk come from the registry), the facts and run facts the gate
would compute, and the expected outcome and reason codes.

    graph: maintenance
    cases:
      - name: spend at the auto limit runs on its own
        tool: dispatch_vendor
        facts: {spend_cents: 75000, category: PLUMBING}
        expect: {outcome: ALLOW, reasons: [MAINTENANCE_AUTONOMOUS_WRITE]}
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from policy.autonomy import LEVELS
from policy.engine import (
    ActionFacts,
    Outcome,
    PolicyEngine,
    PolicyRequest,
    RunFacts,
    ToolFacts,
    Usage,
)
from policy.schema import PolicyLoadError
from tools.registry import ToolRegistry, pydantic_errors

SUITES_DIR = Path(__file__).parent / "tests"


class Expect(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outcome: Outcome
    reasons: list[str] | None = None  # when given, must equal the reasons exactly


class Case(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    tool: str | ToolFacts
    graph: str | None = None
    tenant_id: str = "suite"
    facts: ActionFacts = Field(default_factory=ActionFacts)
    run: RunFacts = Field(default_factory=RunFacts)
    usage: Usage = Field(default_factory=Usage)
    at: AwareDatetime | None = None  # default: the suite's `at`
    timezone: str = ""
    level: Literal["L0", "L1", "L2", "L3", "L4"] | None = None  # default: the configured one
    kill_switch: bool = False
    expect: Expect


class Suite(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    graph: str
    # Condition data merged over the bundle's config for this suite (e.g. a tenant overlay).
    config: dict[str, Any] = {}
    # The instant cases are evaluated at unless they say otherwise (quiet hours need one).
    at: AwareDatetime = datetime(2026, 11, 18, 19, 0, tzinfo=UTC)  # a Wednesday, 14:00 NY
    cases: list[Case] = Field(min_length=1)


class SuiteError(ValueError):
    """A suite file that cannot be read; the message names the file and the field."""


@dataclass
class CaseResult:
    suite: str
    case: str
    expected: str
    got: str
    passed: bool
    reasons: list[str]


def load_suite(path: Path) -> Suite:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise SuiteError(f"{path}: {exc}") from None
    try:
        return Suite.model_validate(data)
    except ValidationError as exc:
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in pydantic_errors(exc))
        raise SuiteError(f"{path}: {detail}") from None


def suite_paths(paths: list[Path] | None = None) -> list[Path]:
    out: list[Path] = []
    for p in paths or [SUITES_DIR]:
        out += sorted(p.glob("*.y*ml")) if p.is_dir() else [p]
    return out


def _tool_facts(case: Case, registry: ToolRegistry, where: str) -> ToolFacts:
    if isinstance(case.tool, ToolFacts):
        return case.tool
    if case.tool not in registry:
        raise SuiteError(f"{where}: tool {case.tool!r} is not registered")
    spec = registry.get(case.tool)
    return ToolFacts(name=spec.name, kind=spec.kind.value, reversible=spec.reversible,
                     cost_class=spec.cost_class.value, risk=spec.risk.value)


def run_suites(engine: PolicyEngine, registry: ToolRegistry,
               paths: list[Path] | None = None) -> list[CaseResult]:
    results = []
    for path in suite_paths(paths):
        suite = load_suite(path)
        suite_engine = engine
        if suite.config:
            try:
                suite_engine = engine.with_config(suite.config)
            except PolicyLoadError as exc:
                raise SuiteError(f"{path}: config: {exc}") from None
        for i, case in enumerate(suite.cases):
            where = f"{path}: cases.{i} ({case.name})"
            decision = suite_engine.evaluate(PolicyRequest(
                graph=case.graph or suite.graph, tenant_id=case.tenant_id,
                tool=_tool_facts(case, registry, where), facts=case.facts, run=case.run,
                usage=case.usage, at=case.at or suite.at, timezone=case.timezone,
                autonomous_writes_enabled=not case.kill_switch,
                level_override=LEVELS[case.level] if case.level else None))
            passed = decision.outcome is case.expect.outcome and (
                case.expect.reasons is None or decision.reasons == case.expect.reasons)
            expected = case.expect.outcome.value + (
                f" {case.expect.reasons}" if case.expect.reasons is not None else "")
            got = f"{decision.outcome.value} {decision.reasons}" + (
                f" errors={decision.errors}" if decision.errors else "")
            results.append(CaseResult(suite.name or path.name, case.name, expected, got, passed,
                                      decision.reasons))
    return results

