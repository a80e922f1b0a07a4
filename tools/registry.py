"""Tool registry: every tool declares typed input/output, kind, reversibility and cost/risk class.

Nodes never call a handler directly; they go through `ToolRegistry.validate` and the
executor, so an unknown tool or a bad argument is a `ToolError` naming the field.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

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


M = TypeVar("M")


@dataclass
class ToolContext:
    """What a handler may use: a session on the backend, the tenant and the calling run."""

    session: Session
    tenant_id: str
    now: datetime
    thread_id: str | None = None
    idempotency_key: str | None = None
    memory: Any = None  # the LangGraph store (autopilot/memory.py), for the memory tools

    def fetch(self, model: type[M], record_id: str, tool: str, what: str) -> M:
        """The tenant's record `record_id` of `model` (keyed (tenant_id, id)), or a permanent
        failure naming it: what every tool does before it reads or changes a record."""
        row = self.session.get(model, (self.tenant_id, record_id))
        if row is None:
            raise PermanentToolError(tool, f"{what} {record_id!r} does not exist")
        return row


Handler = Callable[[ToolContext, Any], BaseModel]
FactsFn = Callable[[ToolContext, Any], dict[str, Any]]


@dataclass(frozen=True)
class Preview:
    """What a write would do, declared next to the tool so a reviewer sees it before it runs.

    Declarative on purpose: the approval context pack (api/context_pack.py) reads the current
    record with `read_tool` (through the gateway, like any read) and derives the diff and the
    blast radius from these mappings, so a new write tool gets a preview by declaring one
    instead of special-casing its name. Field names are the read tool's output fields.

    - `record`: the kind of record the call changes (`work_order`), `key`: the argument with
      its id, passed to `read_tool` as `read_arg` (default: the same name).
    - `creates`: the call makes a new record, so there is nothing to read: every field it
      sets is new (before = None).
    - `sets`: record field -> argument it takes; `fixed`: record field -> value the call
      always sets (`status: DISPATCHED`); `appends`: list field -> argument appended to it.
      On an update, an argument left at None changes nothing.
    - `also_read`: further arguments passed to `read_tool` under the same name (a record
      addressed by more than one argument, e.g. a memory entry's scope and key).
    - `money`: arguments that commit money; `notifies`: argument -> kind of whom it notifies
      (`resident_id: resident`); `touches`: argument -> kind of other records it changes.
      An argument may hold one id or a list of ids.
    """

    record: str
    read_tool: str
    key: str
    read_arg: str | None = None
    creates: bool = False
    also_read: tuple[str, ...] = ()
    sets: Mapping[str, str] = field(default_factory=dict)
    fixed: Mapping[str, Any] = field(default_factory=dict)
    appends: Mapping[str, str] = field(default_factory=dict)
    money: tuple[str, ...] = ()
    notifies: Mapping[str, str] = field(default_factory=dict)
    touches: Mapping[str, str] = field(default_factory=dict)

    def arg_names(self) -> set[str]:
        """Every argument the declaration names (checked against the input model)."""
        return {self.key, *self.also_read, *self.sets.values(), *self.appends.values(),
                *self.money, *self.notifies, *self.touches}

    def read_args(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """The arguments of `read_tool` that fetch the record this call changes."""
        return {self.read_arg or self.key: args.get(self.key),
                **{name: args.get(name) for name in self.also_read}}

    def proposed(self, args: Mapping[str, Any],
                 before: Mapping[str, Any] | None) -> dict[str, Any]:
        """Record field -> the value it would have after the call (given the record now)."""
        before = before or {}
        out: dict[str, Any] = {}
        for fld, arg in self.sets.items():
            if arg in args and (self.creates or args[arg] is not None):
                out[fld] = args[arg]
        out.update(self.fixed)
        for fld, arg in self.appends.items():
            if args.get(arg) is not None:
                out[fld] = [*list(before.get(fld) or []), args[arg]]
        return out

    def blast_radius(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """What the call touches: records (`kind:id`), who is notified, money committed."""

        def ids(arg: str) -> list[str]:
            value = args.get(arg)
            values = value if isinstance(value, list) else [value]
            return [str(v) for v in values if v not in (None, "")]

        record_id = args.get(self.key)
        records = [f"{self.record}:{record_id}"] if record_id not in (None, "") else []
        records += [f"{kind}:{i}" for arg, kind in self.touches.items() for i in ids(arg)]
        notified = [f"{kind}:{i}" for arg, kind in self.notifies.items() for i in ids(arg)]
        money = {arg: float(args[arg]) for arg in self.money
                 if isinstance(args.get(arg), int | float)}
        return {"records": records, "record_count": len(records),
                "creates": [records[0]] if self.creates and records else [],
                "people_notified": notified, "people_notified_count": len(notified),
                "money": money, "money_total": round(float(sum(money.values())), 2)}

    def describe(self) -> dict[str, Any]:
        return {"record": self.record, "read_tool": self.read_tool, "key": self.key,
                "creates": self.creates, "sets": dict(self.sets), "fixed": dict(self.fixed),
                "appends": dict(self.appends), "money": list(self.money),
                "notifies": dict(self.notifies), "touches": dict(self.touches)}


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
    # Writes: which record the call changes and what it touches, for the approval preview.
    preview: Preview | None = field(default=None, repr=False)

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
            "preview": self.preview.describe() if self.preview else None,
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
        if spec.preview is not None:
            if spec.kind is not ToolKind.WRITE:
                raise ValueError(f"read tool {spec.name!r} cannot declare a write preview")
            unknown = spec.preview.arg_names() - set(spec.input_model.model_fields)
            if unknown:
                raise ValueError(f"preview of {spec.name!r} names unknown arguments: "
                                 f"{', '.join(sorted(unknown))}")
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
        preview: Preview | None = None,
    ) -> Callable[[Handler], Handler]:
        """Decorator form of `register`."""

        def wrap(handler: Handler) -> Handler:
            self.register(ToolSpec(name, description, input_model, output_model, kind,
                                   reversible, cost_class, risk, handler, policy_facts,
                                   timeout_s, preview))
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
