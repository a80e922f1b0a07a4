"""Tool registry: every tool declares typed input/output, kind, reversibility and cost/risk class.

Nodes never call a handler directly; they go through `ToolRegistry.validate` and the
executor, so an unknown tool or a bad argument is a `ToolError` naming the field.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session


class ToolKind(StrEnum):
    READ = "read"
    WRITE = "write"


class CostClass(StrEnum):
    CHEAP = "CHEAP"
    MED = "MED"
    EXP = "EXP"


class RiskClass(StrEnum):
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"


class ToolError(Exception):
    """Base of every error the tool layer raises on purpose."""

    def __init__(self, tool: str, message: str) -> None:
        super().__init__(f"{tool}: {message}")
        self.tool = tool
        self.message = message


class UnknownToolError(ToolError):
    def __init__(self, tool: str, known: Iterable[str]) -> None:
        super().__init__(tool, f"unknown tool (registered: {', '.join(sorted(known))})")


class ToolArgumentError(ToolError):
    """Arguments that do not match the tool's input model; `fields` lists each bad field."""

    def __init__(self, tool: str, errors: list[dict[str, str]]) -> None:
        self.fields = errors
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        super().__init__(tool, f"invalid arguments: {detail}")


class TransientToolError(ToolError):
    """A failure worth retrying (timeouts, 5xx, lock contention)."""


class PermanentToolError(ToolError):
    """A failure that retrying cannot fix (validation by the backend, missing record)."""


class UnauthorizedWriteError(ToolError):
    """A write attempted without a policy ALLOW or a recorded approval."""


class ForbiddenToolError(ToolError):
    """The caller's roles do not grant this tool (or this kind of tool)."""


class BudgetExceededError(ToolError):
    """The tenant's budget for this cost class is used up in the current window."""


def pydantic_errors(exc: ValidationError, prefix: str = "") -> list[dict[str, str]]:
    """Flatten pydantic errors into `{field, message}` with dotted field paths."""
    out = []
    for err in exc.errors():
        path = ".".join(str(p) for p in err["loc"])
        out.append({"field": f"{prefix}{path}" if path else prefix.rstrip(".") or "(root)",
                    "message": err["msg"]})
    return out


@dataclass
class ToolContext:
    """What a handler may use: a session on the backend, the tenant and the calling run."""

    session: Session
    tenant_id: str
    now: datetime
    thread_id: str | None = None
    idempotency_key: str | None = None


Handler = Callable[[ToolContext, Any], BaseModel]
FactsFn = Callable[[ToolContext, Any], dict[str, Any]]


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    input_model: type[BaseModel]
    output_model: type[BaseModel]
    kind: ToolKind
    reversible: bool
    cost_class: CostClass
    risk: RiskClass
    handler: Handler = field(repr=False)
    # Facts the policy gate needs, derived from the (possibly edited) arguments.
    policy_facts: FactsFn | None = field(default=None, repr=False)
    # The gateway gives up on a call after this long (a retryable error).
    timeout_s: float = 10.0

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "kind": self.kind.value,
            "reversible": self.reversible,
            "cost_class": self.cost_class.value,
            "risk": self.risk.value,
            "timeout_s": self.timeout_s,
            "input_schema": self.input_model.model_json_schema(),
            "output_schema": self.output_model.model_json_schema(),
        }


class ToolRegistry:
    """The catalogue of tools reachable by autopilots; nothing outside it can be called."""

    def __init__(self) -> None:
        self._tools: dict[str, ToolSpec] = {}

    def register(self, spec: ToolSpec) -> ToolSpec:
        if spec.name in self._tools:
            raise ValueError(f"tool {spec.name!r} is already registered")
        if spec.kind is ToolKind.READ and not spec.reversible:
            raise ValueError(f"read tool {spec.name!r} cannot be irreversible")
        self._tools[spec.name] = spec
        return spec

    def tool(
        self,
        *,
        name: str,
        description: str,
        input_model: type[BaseModel],
        output_model: type[BaseModel],
        kind: ToolKind,
        reversible: bool = True,
        cost_class: CostClass = CostClass.CHEAP,
        risk: RiskClass = RiskClass.LOW,
        policy_facts: FactsFn | None = None,
        timeout_s: float = 10.0,
    ) -> Callable[[Handler], Handler]:
        """Decorator form of `register`."""

        def wrap(handler: Handler) -> Handler:
            self.register(ToolSpec(name, description, input_model, output_model, kind,
                                   reversible, cost_class, risk, handler, policy_facts,
                                   timeout_s))
            return handler

        return wrap

    def get(self, name: str) -> ToolSpec:
        try:
            return self._tools[name]
        except KeyError:
            raise UnknownToolError(name, self._tools) from None

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def names(self, kind: ToolKind | None = None) -> list[str]:
        return sorted(n for n, s in self._tools.items() if kind is None or s.kind is kind)

    def validate(self, name: str, args: Any) -> BaseModel:
        spec = self.get(name)
        if not isinstance(args, dict):
            raise ToolArgumentError(name, [{"field": "args", "message": "must be an object"}])
        try:
            return spec.input_model.model_validate(args)
        except ValidationError as exc:
            raise ToolArgumentError(name, pydantic_errors(exc)) from None

    def catalogue(self) -> dict[str, Any]:
        """JSON Schema export of every tool, for docs, UIs and LLM tool binding."""
        return {"tools": [self._tools[n].describe() for n in sorted(self._tools)]}
