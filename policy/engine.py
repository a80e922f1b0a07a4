"""Cedar-backed policy engine.

Three outcomes from two Cedar questions: "may this run on its own?" (`execute`) and
"may it run once a person approves?" (`execute_with_approval`). Stateful or derived
numbers (spend, vendor load) are computed by us and passed in as context. Any Cedar
error, missing attribute or unexpected exception is a BLOCK with `POLICY_ERROR`.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import cedarpy
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from autopilot.privacy import redact
from policy.autonomy import AutonomyTable, required_for_auto
from policy.conditions import (
    PER_CALL_LIMITS,
    KeywordScreen,
    config_tools,
    inline_limits,
    limits_from_config,
    time_facts,
    tool_rate_max,
)
from policy.rules import Rule, check_rules, compile_rules, parse_rules
from policy.schema import PolicyLoadError, build_schema, cedar_dump, validate_bundle

POLICY_DIR = Path(__file__).parent / "policies"
DEFAULTS_FILE = Path(__file__).parent / "defaults.json"
# Each autopilot may keep its condition data in its own fragment, merged into the defaults.
DEFAULTS_DIR = Path(__file__).parent / "defaults.d"

# Reason codes the engine itself emits (the others are the @id of Cedar policies).
POLICY_ERROR = "POLICY_ERROR"
DEFAULT_DENY = "DEFAULT_DENY"
NO_AUTO_PERMIT = "NO_AUTO_PERMIT"


class Outcome(StrEnum):
    ALLOW = "ALLOW"
    REQUIRE_APPROVAL = "REQUIRE_APPROVAL"
    BLOCK = "BLOCK"


class ToolFacts(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    kind: str
    reversible: bool
    cost_class: str
    risk: str


class ActionFacts(BaseModel):
    """Facts about one call, derived from its arguments. Unknown keys are an error, not ignored.

    Optional facts are absent from the Cedar context when unknown; policies test them with
    `has` (the schema marks them optional, so forgetting the test fails validation).
    """

    model_config = ConfigDict(extra="forbid")
    spend_cents: int = Field(default=0, ge=0)
    category: str = ""
    priority: str = ""
    vendor_id: str = ""
    vendor_open_work_orders: int = Field(default=0, ge=0)
    lead_time_minutes: int | None = None  # bookings: minutes from now to the appointment
    minutes_since_start: int | None = None  # bookings: minutes since a missed appointment began
    days_until_due: int | None = None  # compliance: negative when overdue
    attempt: int = Field(default=0, ge=0)  # retries of the same action so far
    # Generic facts a tool's `policy_facts` may set from its arguments:
    recipients: int | None = Field(default=None, ge=0)  # people or endpoints a message reaches
    external: bool = False  # reaches someone outside the tenant (customer, vendor, public)
    risk_score: int | None = Field(default=None, ge=0, le=100)  # the tool's risk model, 0-100
    # Set by the gate from the proposal (Cedar has no floats): the planner's confidence, 0-100.
    confidence_pct: int | None = Field(default=None, ge=0, le=100)
    # Set by the gate from the spine's grounding check, not by the tool: does the proposal
    # cite evidence this run captured?
    grounded: bool = True
    # Set by the gate from policy/drift.py, not by the tool: this action type (autopilot, tool)
    # was downgraded to L1 (suggest only) after failed verifications or rejections.
    downgraded: bool = False


class RunFacts(BaseModel):
    """Facts about the run the call belongs to (set by perceive/plan, not editable by reviewers).

    `text` is the inbound text that started the run: it is screened for keywords by us and
    never handed to Cedar itself.
    """

    model_config = ConfigDict(extra="forbid")
    is_emergency: bool = False
    priority: str = ""
    category: str = ""
    intent: str = ""
    property_id: str = ""
    sla_breached: bool = False
    text: str = Field(default="", json_schema_extra={"cedar": False})


class Usage(BaseModel):
    """Writes already done or in flight in the current window (computed by the gate)."""

    model_config = ConfigDict(extra="forbid")
    tool_calls: int = Field(default=0, ge=0)
    tenant_calls: int = Field(default=0, ge=0)
    tenant_spend_cents: int = Field(default=0, ge=0)


class TimeFacts(BaseModel):
    model_config = ConfigDict(extra="forbid")
    timezone: str
    local_minutes: int  # minutes since local midnight
    weekday: str
    in_quiet_hours: bool


class Screen(BaseModel):
    """Keyword screening of the run's inbound text (seed 001 escalation contexts)."""

    model_config = ConfigDict(extra="forbid")
    legal: bool = False
    harassment: bool = False
    discrimination: bool = False
    injury: bool = False
    eviction: bool = False
    matched: list[str] = []


class PolicyRequest(BaseModel):
    graph: str
    tenant_id: str
    tool: ToolFacts
    facts: ActionFacts = Field(default_factory=ActionFacts)
    run: RunFacts = Field(default_factory=RunFacts)
    usage: Usage = Field(default_factory=Usage)
    # When the call would run; None means now. Quiet hours are judged in `timezone` (the
    # property's), else the tenant's configured one.
    at: AwareDatetime | None = None
    timezone: str = ""
    # The scope the call belongs to (resolved by the gate; picks the policy overlays).
    portfolio_id: str = ""
    # False when the kill switch is off for this tenant (wired by the gateway).
    autonomous_writes_enabled: bool = True
    # Only for policy tests and dry runs: evaluate as if the autopilot had this level.
    level_override: int | None = Field(default=None, ge=0, le=4)


class AutonomyFacts(BaseModel):
    model_config = ConfigDict(extra="forbid")
    level: int
    required_for_auto: int
    autonomous_writes_enabled: bool


class PolicyDecision(BaseModel):
    outcome: Outcome
    reasons: list[str]
    policy_version: str
    errors: list[str] = []
    inputs: dict[str, Any] = {}
    decision_id: int | None = None  # the `policy_decisions` row, once the gate recorded it

    def summary(self) -> str:
        return f"{self.outcome.value} ({', '.join(self.reasons)})"


Reads = dict[str, set[str] | None]  # context key -> attributes read (None: all of it)


def _context_attr(node: Any) -> str | None:
    """`T` when `node` is the expression `context.T`."""
    if isinstance(node, dict) and isinstance(node.get("."), dict):
        inner = node["."]
        if inner.get("left") == {"Var": "context"}:
            return str(inner.get("attr"))
    return None


def context_reads(policies: dict[str, Any]) -> Reads:
    """Which context attributes policies (Cedar JSON form) read: `context.a.b` and
    `context.a has b` read `b` of `a`; any other use of `context.a` reads all of it."""
    reads: Reads = {}

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
            return
        if not isinstance(node, dict):
            return
        for op in (".", "has"):
            inner = node.get(op)
            if isinstance(inner, dict) and "left" in inner:
                top = _context_attr(inner["left"])
                if top is not None:
                    if top not in reads or reads[top] is not None:
                        reads.setdefault(top, set()).add(str(inner["attr"]))  # type: ignore[union-attr]
                    return
        top = _context_attr(node)
        if top is not None:
            reads[top] = None
            return
        for value in node.values():
            walk(value)

    walk([p.get("conditions", []) for p in policies.values()])
    return reads


def _pruned(context: dict[str, Any], reads: Reads) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for top, attrs in reads.items():
        if top not in context:
            continue
        value = context[top]
        out[top] = value if attrs is None or not isinstance(value, dict) else {
            k: v for k, v in value.items() if k in attrs}
    return out


def merge_config(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """Overlay values replace base values key by key (objects merge; `rules` accumulate)."""
    out = dict(base)
    for key, value in overlay.items():
        if key == "rules":
            out[key] = list(out.get(key, [])) + list(value)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_config(out[key], value)
        else:
            out[key] = value
    return out


class PolicyBundle(BaseModel):
    """The Cedar text plus the condition data it reads; the version is their content hash."""

    cedar: str
    config: dict[str, Any]
    version: str

    @classmethod
    def load(cls, policy_dir: Path = POLICY_DIR, config_file: Path = DEFAULTS_FILE) -> PolicyBundle:
        files = sorted(policy_dir.glob("*.cedar"))
        cedar = "\n".join(f"// file: {f.name}\n{f.read_text()}" for f in files)
        config = json.loads(config_file.read_text())
        if config_file == DEFAULTS_FILE:
            for fragment in sorted(DEFAULTS_DIR.glob("*.json")):
                merge_fragment(config, json.loads(fragment.read_text()), fragment.name)
        digest = hashlib.sha256(
            (cedar + json.dumps(config, sort_keys=True)).encode()
        ).hexdigest()[:12]
        return cls(cedar=cedar, config=config, version=f"pv-{digest}")

    def limits(self) -> dict[str, Any]:
        return limits_from_config(self.config)


def merge_fragment(into: dict[str, Any], fragment: dict[str, Any], where: str,
                   path: str = "") -> None:
    """Deep-merge an autopilot's condition data into the defaults; two files setting the same
    leaf is an error (no silent override between autopilots)."""
    for key, value in fragment.items():
        here = f"{path}.{key}" if path else key
        if key == "_doc":
            continue
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            merge_fragment(into[key], value, where, here)
        elif key in into:
            raise PolicyLoadError([f"{where}: {here} is already set by another file"])
        else:
            into[key] = value


class PolicyEngine:
    """Evaluates proposals against one bundle.

    `strict=True` (what the service uses) refuses a bundle that fails schema validation with a
    `PolicyLoadError`; otherwise such a bundle is kept but every decision is a BLOCK.
    """

    def __init__(self, bundle: PolicyBundle | None = None, *,
                 known_tools: set[str] | None = None, installed_graphs: set[str] | None = None,
                 strict: bool = False) -> None:
        self.bundle = bundle or PolicyBundle.load()
        self._policies: cedarpy.PolicySet | None = None
        self._static: dict[str, Any] = {}
        self._slices: dict[tuple[str, str], tuple[cedarpy.PolicySet, Reads]] = {}
        self._entities = cedarpy.Entities.from_json_str("[]")  # all facts travel in context
        self._load_error: str | None = None
        self._autonomy = AutonomyTable({})
        self._limits: dict[str, Any] = {}
        self.rules: list[Rule] = []
        self.cedar = self.bundle.cedar
        self._known_tools, self._installed_graphs = known_tools, installed_graphs
        try:
            self._limits = self.bundle.limits()
            self._autonomy = AutonomyTable(self.bundle.config.get("autonomy", {}))
            self._screen = KeywordScreen(self.bundle.config)
            self.rules = parse_rules(self.bundle.config.get("rules"))
            check_rules(self.rules, known_tools, installed_graphs)
            self._check_config_tools(known_tools)
            compiled = compile_rules(self.rules)
            if compiled:
                self.cedar += f"\n// file: rules (compiled from config)\n{compiled}\n"
            validate_bundle(self.cedar, self.schema(), known_tools)
            specialised = inline_limits(self.cedar, self._limits, keep=PER_CALL_LIMITS)
            self._policies = cedarpy.PolicySet.from_str(specialised)
            self._static = json.loads(cedarpy.policies_to_json_str(specialised))[
                "staticPolicies"]
        except PolicyLoadError as exc:
            if strict:
                raise
            self._load_error = str(exc)
        except Exception as exc:  # a broken bundle must block, not crash
            if strict:
                raise PolicyLoadError([f"policy bundle failed to load: {exc}"]) from exc
            self._load_error = f"policy bundle failed to load: {exc}"

    def with_config(self, overlay: dict[str, Any]) -> PolicyEngine:
        """This bundle with condition data merged over its config (strict: refuses bad data)."""
        config = merge_config(self.bundle.config, overlay)
        digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:8]
        bundle = PolicyBundle(cedar=self.bundle.cedar, config=config,
                              version=f"{self.version}+cfg-{digest}")
        return PolicyEngine(bundle, known_tools=self._known_tools,
                            installed_graphs=self._installed_graphs, strict=True)

    def _check_config_tools(self, known_tools: set[str] | None) -> None:
        if known_tools is None:
            return
        problems = [f"{where}: {tool!r} is not a registered tool"
                    for where, tools in config_tools(self.bundle.config).items()
                    for tool in tools if tool not in known_tools]
        if problems:
            raise PolicyLoadError(problems)

    def schema(self) -> dict[str, Any]:
        """The Cedar schema every policy of this bundle is validated against."""
        return build_schema({
            "tool": ToolFacts, "facts": ActionFacts, "run": RunFacts, "autonomy": AutonomyFacts,
            "time": TimeFacts, "screen": Screen, "usage": Usage}, self._limits)

    @property
    def version(self) -> str:
        return self.bundle.version

    @property
    def config(self) -> dict[str, Any]:
        return self.bundle.config

    @property
    def limits(self) -> dict[str, Any]:
        """The bundle's condition data as the policies see it (computed once, at load)."""
        return self._limits

    def _block(self, request: PolicyRequest, error: str) -> PolicyDecision:
        return PolicyDecision(outcome=Outcome.BLOCK, reasons=[POLICY_ERROR],
                              policy_version=self.version, errors=[error],
                              inputs=redact(request.model_dump(mode="json")))

    def context(self, request: PolicyRequest) -> dict[str, Any]:
        """The Cedar context of one request: its facts plus the conditions derived for it."""
        level = (request.level_override if request.level_override is not None
                 else self._autonomy.level(request.graph, request.tool.name))
        autonomy = AutonomyFacts(
            level=level,
            required_for_auto=required_for_auto(request.tool.kind, request.tool.reversible),
            autonomous_writes_enabled=request.autonomous_writes_enabled)
        at = request.at or datetime.now(UTC)
        return {
            "tool": request.tool.model_dump(),
            "facts": cedar_dump(request.facts),
            "run": cedar_dump(request.run),
            "autonomy": autonomy.model_dump(),
            # The other limits are constants of the bundle, inlined into the policies at load.
            "limits": {"tool_rate_max": tool_rate_max(self.config, request.tool.name)},
            "time": time_facts(self.config, at, request.timezone),
            "screen": self._screen.screen(request.run.text),
            "usage": request.usage.model_dump(),
            "tenant_id": request.tenant_id,
            "graph": request.graph,
        }

    def evaluate(self, request: PolicyRequest) -> PolicyDecision:
        if self._load_error or self._policies is None:
            return self._block(request, self._load_error or "no policies loaded")
        try:
            context = self.context(request)
        except Exception as exc:  # e.g. a time zone that does not exist
            return self._block(request, f"could not derive the policy context: {exc}")
        try:
            policies, reads = self._slice(request.graph, request.tool.name)
            base = {
                "principal": {"type": "Autopilot", "id": request.graph},
                "resource": {"type": "Tool", "id": request.tool.name},
                "context": _pruned(context, reads),
            }
            # The second question is only needed when the first says no (cheaper than a batch).
            auto = cedarpy.is_authorized({**base, "action": {"type": "Action", "id": "execute"}},
                                         policies, self._entities)
            approval = auto if auto.allowed else cedarpy.is_authorized(
                {**base, "action": {"type": "Action", "id": "execute_with_approval"}},
                policies, self._entities)
        except Exception as exc:
            return self._block(request, f"cedar evaluation failed: {exc}")
        answers = [auto] if approval is auto else [auto, approval]
        errors = [str(e) for r in answers for e in r.diagnostics.errors]
        if errors:
            return self._block(request, "; ".join(errors))
        # PII-free by construction: the context carries facts and keyword flags, never the
        # inbound text (the gate stores the redacted request beside the decision).
        inputs = {"context": context, "principal": request.graph,
                  "resource": request.tool.name}
        if auto.allowed:
            outcome, reasons = Outcome.ALLOW, self._codes(auto)
        elif approval.allowed:
            outcome, reasons = Outcome.REQUIRE_APPROVAL, self._codes(auto) or [NO_AUTO_PERMIT]
        else:
            outcome, reasons = Outcome.BLOCK, self._codes(approval) or [DEFAULT_DENY]
        return PolicyDecision(outcome=outcome, reasons=reasons, policy_version=self.version,
                              inputs=inputs)

    def _slice(self, graph: str, tool: str) -> tuple[cedarpy.PolicySet, Reads]:
        """The policies whose scope can match this autopilot and tool, and the context
        attributes they read (built once per pair).

        Cedar converts every context attribute it is given (a few microseconds each) and
        evaluates every policy of a set; handing it only what the matching policies can read
        changes no decision and cuts the cost of one by more than half.
        """
        key = (graph, tool)
        found = self._slices.get(key)
        if found is None:
            wanted = {"Autopilot": graph, "Tool": tool}

            def matches(constraint: dict[str, Any]) -> bool:
                entity = constraint.get("entity")
                return constraint.get("op") != "==" or not isinstance(entity, dict) or (
                    wanted.get(entity.get("type")) == entity.get("id"))

            subset = {pid: p for pid, p in self._static.items()
                      if matches(p["principal"]) and matches(p["resource"])}
            text = cedarpy.policies_from_json_str(json.dumps(
                {"staticPolicies": subset, "templates": {}, "templateLinks": []}))
            found = self._slices[key] = (cedarpy.PolicySet.from_str(text),
                                         context_reads(subset))
        return found

    @staticmethod
    def _codes(result: cedarpy.AuthzResult) -> list[str]:
        ids = result.diagnostics.id_annotations_by_reason
        return sorted({ids.get(r) or r for r in result.diagnostics.reasons})
