"""Cedar-backed policy engine.

Three outcomes from two Cedar questions: "may this run on its own?" (`execute`) and
"may it run once a person approves?" (`execute_with_approval`). Stateful or derived
numbers (spend, vendor load) are computed by us and passed in as context. Any Cedar
error, missing attribute or unexpected exception is a BLOCK with `POLICY_ERROR`.
"""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum
from pathlib import Path
from typing import Any

import cedarpy
from pydantic import BaseModel, ConfigDict, Field

from policy.autonomy import AutonomyTable, required_for_auto
from policy.schema import PolicyLoadError, build_schema, validate_bundle

POLICY_DIR = Path(__file__).parent / "policies"
DEFAULTS_FILE = Path(__file__).parent / "defaults.json"

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
    """Facts about one call, derived from its arguments. Unknown keys are an error, not ignored."""

    model_config = ConfigDict(extra="forbid")
    spend_cents: int = Field(default=0, ge=0)
    category: str = ""
    priority: str = ""
    vendor_id: str = ""
    vendor_open_work_orders: int = Field(default=0, ge=0)


class RunFacts(BaseModel):
    """Facts about the run the call belongs to (set by perceive/plan, not editable by reviewers)."""

    model_config = ConfigDict(extra="forbid")
    is_emergency: bool = False
    priority: str = ""
    category: str = ""


class PolicyRequest(BaseModel):
    graph: str
    tenant_id: str
    tool: ToolFacts
    facts: ActionFacts = Field(default_factory=ActionFacts)
    run: RunFacts = Field(default_factory=RunFacts)
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

    def summary(self) -> str:
        return f"{self.outcome.value} ({', '.join(self.reasons)})"


def _cents(amount: float) -> int:
    return int(round(float(amount) * 100))


class PolicyBundle(BaseModel):
    """The Cedar text plus the threshold config it reads; the version is their content hash."""

    cedar: str
    config: dict[str, Any]
    version: str

    @classmethod
    def load(cls, policy_dir: Path = POLICY_DIR, config_file: Path = DEFAULTS_FILE) -> PolicyBundle:
        files = sorted(policy_dir.glob("*.cedar"))
        cedar = "\n".join(f"// file: {f.name}\n{f.read_text()}" for f in files)
        config = json.loads(config_file.read_text())
        digest = hashlib.sha256(
            (cedar + json.dumps(config, sort_keys=True)).encode()
        ).hexdigest()[:12]
        return cls(cedar=cedar, config=config, version=f"pv-{digest}")

    def limits(self) -> dict[str, Any]:
        spend = self.config["spend"]
        work_orders = self.config["workOrders"]
        return {
            "auto_approve_max_cents": _cents(spend["autoApproveMax"]),
            "require_approval_above_cents": _cents(spend["requireApprovalAbove"]),
            "hard_block_above_cents": _cents(spend["hardBlockAbove"]),
            "auto_assign_categories": list(work_orders["autoAssignAllowedCategories"]),
            "emergency_always_escalate": bool(work_orders["emergencyAlwaysEscalate"]),
            "max_open_per_vendor": int(work_orders["maxOpenPerVendor"]),
        }


class PolicyEngine:
    """Evaluates proposals against one bundle.

    `strict=True` (what the service uses) refuses a bundle that fails schema validation with a
    `PolicyLoadError`; otherwise such a bundle is kept but every decision is a BLOCK.
    """

    def __init__(self, bundle: PolicyBundle | None = None, *,
                 known_tools: set[str] | None = None, strict: bool = False) -> None:
        self.bundle = bundle or PolicyBundle.load()
        self._policies: cedarpy.PolicySet | None = None
        self._entities = cedarpy.Entities.from_json_str("[]")  # all facts travel in context
        self._load_error: str | None = None
        self._autonomy = AutonomyTable({})
        try:
            self._limits = self.bundle.limits()
            self._autonomy = AutonomyTable(self.bundle.config.get("autonomy", {}))
            validate_bundle(self.bundle.cedar, self.schema(), known_tools)
            self._policies = cedarpy.PolicySet.from_str(self.bundle.cedar)
        except PolicyLoadError as exc:
            if strict:
                raise
            self._load_error = str(exc)
        except Exception as exc:  # a broken bundle must block, not crash
            if strict:
                raise PolicyLoadError([f"policy bundle failed to load: {exc}"]) from exc
            self._load_error = f"policy bundle failed to load: {exc}"
            self._limits = {}

    def schema(self) -> dict[str, Any]:
        """The Cedar schema every policy of this bundle is validated against."""
        return build_schema(ToolFacts, ActionFacts, RunFacts, AutonomyFacts, self._limits)

    @property
    def version(self) -> str:
        return self.bundle.version

    def _block(self, request: PolicyRequest, error: str) -> PolicyDecision:
        return PolicyDecision(outcome=Outcome.BLOCK, reasons=[POLICY_ERROR],
                              policy_version=self.version, errors=[error],
                              inputs=request.model_dump(mode="json"))

    def evaluate(self, request: PolicyRequest) -> PolicyDecision:
        if self._load_error or self._policies is None:
            return self._block(request, self._load_error or "no policies loaded")
        level = (request.level_override if request.level_override is not None
                 else self._autonomy.level(request.graph, request.tool.name))
        autonomy = AutonomyFacts(
            level=level,
            required_for_auto=required_for_auto(request.tool.kind, request.tool.reversible),
            autonomous_writes_enabled=request.autonomous_writes_enabled)
        context = {
            "tool": request.tool.model_dump(),
            "facts": request.facts.model_dump(),
            "run": request.run.model_dump(),
            "autonomy": autonomy.model_dump(),
            "limits": self._limits,
            "tenant_id": request.tenant_id,
        }
        base = {
            "principal": {"type": "Autopilot", "id": request.graph},
            "resource": {"type": "Tool", "id": request.tool.name},
            "context": context,
        }
        try:
            # The second question is only needed when the first says no (cheaper than a batch).
            auto = cedarpy.is_authorized({**base, "action": {"type": "Action", "id": "execute"}},
                                         self._policies, self._entities)
            approval = auto if auto.allowed else cedarpy.is_authorized(
                {**base, "action": {"type": "Action", "id": "execute_with_approval"}},
                self._policies, self._entities)
        except Exception as exc:
            return self._block(request, f"cedar evaluation failed: {exc}")
        answers = [auto] if approval is auto else [auto, approval]
        errors = [str(e) for r in answers for e in r.diagnostics.errors]
        if errors:
            return self._block(request, "; ".join(errors))
        inputs = {"context": context, "principal": request.graph, "resource": request.tool.name}
        if auto.allowed:
            outcome, reasons = Outcome.ALLOW, self._codes(auto)
        elif approval.allowed:
            outcome, reasons = Outcome.REQUIRE_APPROVAL, self._codes(auto) or [NO_AUTO_PERMIT]
        else:
            outcome, reasons = Outcome.BLOCK, self._codes(approval) or [DEFAULT_DENY]
        return PolicyDecision(outcome=outcome, reasons=reasons, policy_version=self.version,
                              inputs=inputs)

    @staticmethod
    def _codes(result: cedarpy.AuthzResult) -> list[str]:
        ids = result.diagnostics.id_annotations_by_reason
        return sorted({ids.get(r) or r for r in result.diagnostics.reasons})
