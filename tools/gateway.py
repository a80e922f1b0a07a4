"""The tool gateway: the only way anything reaches a domain system.

Around every call it enforces, in order:
1. the tool is registered (there is no shell, filesystem or network tool to reach);
2. the principal's roles grant the tool; the tenant comes from the principal, never from args;
3. the arguments match the tool's input model;
4. a write carries an `Authorization`: the id of the execute-stage policy decision that let
   it go ahead (checked against `policy_decisions`: same tenant, run, action and tool), plus
   the recorded approval when a person approved it, and a `reason_code`;
5. the tenant's budget for the tool's cost class in the window, counting calls in flight;
6. a timeout (`ToolSpec.timeout_s`; on Postgres also a statement timeout);
7. exactly once: the effect, its `tool_calls` row (key `<run>:<action>`) and its ledger entry
   commit in one transaction; a repeat returns the recorded result.
Every refusal, failure and success is on the ledger.
"""

from __future__ import annotations

import contextvars
import fnmatch
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import structlog
from pydantic import BaseModel, ValidationError
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from autopilot.db import Database
from autopilot.ledger import Ledger
from autopilot.models import Approval, GatewayCall, PolicyDecisionRecord, ToolCall
from tools.faults import SandboxFaults
from tools.registry import (
    BudgetExceededError,
    ForbiddenToolError,
    PermanentToolError,
    ToolContext,
    ToolError,
    ToolKind,
    ToolRegistry,
    ToolSpec,
    TransientToolError,
    UnauthorizedWriteError,
    pydantic_errors,
)

T = TypeVar("T")
log = structlog.get_logger("tools.gateway")

# role -> (kind, tool name pattern) grants. Writes still need a decision or approval.
ROLE_GRANTS: dict[str, list[tuple[str, str]]] = {
    "autopilot": [("read", "*"), ("write", "*")],
    "operator": [("read", "*"), ("write", "*")],
    "viewer": [("read", "*")],
}
DEFAULT_BUDGETS = {"windowMinutes": 60, "perTenant": {}}  # no limit unless configured


@dataclass(frozen=True)
class Principal:
    """Who calls: an autopilot, a person or a service, always inside one tenant."""

    kind: str  # autopilot | user | service
    id: str
    tenant_id: str
    roles: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def autopilot(cls, graph: str, tenant_id: str) -> Principal:
        return cls("autopilot", graph, tenant_id, frozenset({"autopilot"}))

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.id}"

    def may(self, kind: ToolKind, tool: str) -> bool:
        return any(k == kind.value and fnmatch.fnmatchcase(tool, pattern)
                   for role in self.roles for k, pattern in ROLE_GRANTS.get(role, []))


class Authorization(BaseModel):
    """Why a write may run: the policy decision that let it go ahead, and the approval."""

    decision_id: int
    reason_code: str
    policy_version: str = ""
    approval_id: str | None = None
    reviewer: str | None = None


def idempotency_key(thread_id: str, action_id: str) -> str:
    return f"{thread_id}:{action_id}"


def _as_tool_error(tool: str, exc: Exception) -> ToolError:
    """How an unexpected exception is recorded: a permanent failure naming its type."""
    if isinstance(exc, ToolError):
        return exc
    return PermanentToolError(tool, f"{type(exc).__name__}: {exc}")


_POOL = ThreadPoolExecutor(max_workers=32, thread_name_prefix="tool")


class ToolGateway:
    def __init__(self, db: Database, registry: ToolRegistry, faults: SandboxFaults,
                 ledger: Ledger,
                 budgets_for: Callable[[str], dict[str, Any]] | None = None) -> None:
        self.db = db
        self.registry = registry
        self.faults = faults
        self.ledger = ledger
        self.budgets_for = budgets_for or (lambda tenant: DEFAULT_BUDGETS)
        self.memory: Any = None  # the scoped-memory store, set by Services (autopilot/memory.py)

    # ------------------------------------------------------------------ helpers

    def _output(self, name: str, result: BaseModel) -> dict[str, Any]:
        spec = self.registry.get(name)
        try:
            checked = spec.output_model.model_validate(result.model_dump())
        except ValidationError as exc:
            detail = "; ".join(f"{e['field']}: {e['message']}" for e in pydantic_errors(exc))
            raise PermanentToolError(
                name, f"tool returned a malformed response: {detail}") from None
        return checked.model_dump(mode="json")

    def _timed(self, spec: ToolSpec, fn: Callable[[], T]) -> T:
        """Run `fn` with the tool's timeout. A call that overruns keeps its transaction; if it
        commits later, the idempotency key makes the retry return its result."""
        ctx = contextvars.copy_context()
        future = _POOL.submit(ctx.run, fn)
        try:
            return future.result(timeout=spec.timeout_s)
        except FutureTimeout:
            raise TransientToolError(spec.name, f"timed out after {spec.timeout_s:g}s") from None
        except OperationalError as exc:
            if "statement timeout" in str(exc):  # Postgres cancelled it for us
                raise TransientToolError(
                    spec.name, f"timed out after {spec.timeout_s:g}s (statement)") from None
            raise

    def _statement_timeout(self, session: Session, spec: ToolSpec) -> None:
        if self.db.is_postgres:
            session.execute(text(f"SET LOCAL statement_timeout = {int(spec.timeout_s * 1000)}"))

    def _admit(self, principal: Principal, spec: ToolSpec, *, thread_id: str, action_id: str,
               trace_id: str) -> int:
        """Reserve a slot in the tenant's budgets (its cost class, and the tool's own if set);
        returns the gateway call id."""
        budgets = self.budgets_for(principal.tenant_id) or DEFAULT_BUDGETS
        limits = [(f"{spec.cost_class.value} calls",
                   int(budgets.get("perTenant", {}).get(spec.cost_class.value, 0)),
                   GatewayCall.cost_class == spec.cost_class.value),
                  (f"{spec.name} calls", int(budgets.get("perTool", {}).get(spec.name, 0)),
                   GatewayCall.tool == spec.name)]
        window = int(budgets.get("windowMinutes", 60))
        with self.db.session(principal.tenant_id) as s:
            if any(limit > 0 for _, limit, _ in limits):
                if self.db.is_postgres:
                    s.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"),
                              {"k": f"gateway-budget:{principal.tenant_id}"})
                since = datetime.now(UTC) - timedelta(minutes=window)
                for what, limit, which in limits:
                    if limit <= 0:
                        continue
                    used = s.scalar(select(func.count()).select_from(GatewayCall).where(
                        GatewayCall.tenant_id == principal.tenant_id, which,
                        GatewayCall.started_at >= since,
                        GatewayCall.status.in_(["in_flight", "ok", "failed"]))) or 0
                    if used >= limit:
                        raise BudgetExceededError(
                            spec.name, f"budget of {limit} {what} per {window} min used up "
                                       f"({used} done or in flight)")
            call = GatewayCall(tenant_id=principal.tenant_id, principal=principal.label,
                               tool=spec.name, kind=spec.kind.value,
                               cost_class=spec.cost_class.value, thread_id=thread_id,
                               action_id=action_id, trace_id=trace_id, status="in_flight")
            s.add(call)
            s.flush()
            return call.id

    @staticmethod
    def _grant(principal: Principal, spec: ToolSpec) -> None:
        if not principal.may(spec.kind, spec.name):
            raise ForbiddenToolError(spec.name, f"{principal.label} (roles "
                                                f"{', '.join(sorted(principal.roles)) or 'none'}"
                                                f") may not call this {spec.kind.value} tool")

    def _finish(self, tenant_id: str, call_id: int, status: str, error: str = "") -> None:
        with self.db.session(tenant_id) as s:
            s.execute(update(GatewayCall).where(GatewayCall.id == call_id).values(
                status=status, error=error[:2000], finished_at=datetime.now(UTC)))

    def _refused(self, principal: Principal, tool: str, exc: ToolError, *, kind: str,
                 thread_id: str, action_id: str, trace_id: str, args: Any) -> None:
        status = "failed" if isinstance(exc, (TransientToolError, PermanentToolError)) else (
            "refused")
        log.warning(f"tool.{status}", tool=tool, principal=principal.label,
                    tenant=principal.tenant_id, action_id=action_id, error=str(exc))
        self.ledger.record(tenant_id=principal.tenant_id, event_type="TOOL_CALL",
                           thread_id=thread_id, trace_id=trace_id,
                           payload={"tool": tool, "kind": kind, "action_id": action_id,
                                    "status": status, "error": str(exc),
                                    "error_type": type(exc).__name__,
                                    "principal": principal.label, "input": args})

    # ------------------------------------------------------------------ reads

    def read(self, principal: Principal, name: str, args: dict[str, Any], *,
             thread_id: str = "", trace_id: str = "") -> dict[str, Any]:
        """A read in the principal's tenant (refusals are ledgered; reads themselves are
        recorded by the caller as evidence or verification)."""
        try:
            spec = self.registry.get(name)
            self._grant(principal, spec)
            if spec.kind is not ToolKind.READ:
                raise UnauthorizedWriteError(name, "is a write tool; use write() with an "
                                                   "authorization")
            parsed = self.registry.validate(name, args)
            call_id = self._admit(principal, spec, thread_id=thread_id, action_id="",
                                  trace_id=trace_id)
        except ToolError as exc:
            self._refused(principal, name, exc, kind="read", thread_id=thread_id,
                          action_id="", trace_id=trace_id, args=args)
            raise

        def run() -> dict[str, Any]:
            self.faults.before_call(name)
            with self.db.session(principal.tenant_id) as session:
                self._statement_timeout(session, spec)
                ctx = ToolContext(session=session, tenant_id=principal.tenant_id,
                                  now=datetime.now(UTC), thread_id=thread_id or None,
                                  memory=self.memory)
                out = self._output(name, spec.handler(ctx, parsed))
                if session.new or session.dirty or session.deleted:
                    raise PermanentToolError(name, "a read tool tried to change data")
                session.execute(update(GatewayCall).where(GatewayCall.id == call_id).values(
                    status="ok", finished_at=datetime.now(UTC)))
                return out

        try:
            return self._timed(spec, run)
        except Exception as exc:  # a tool error, or a bug / database error in the handler
            self._finish(principal.tenant_id, call_id, "failed", str(exc))
            self._refused(principal, name, _as_tool_error(name, exc), kind="read",
                          thread_id=thread_id, action_id="", trace_id=trace_id, args=args)
            raise

    def policy_facts(self, tenant_id: str, name: str, args: dict[str, Any]) -> dict[str, Any]:
        """The facts the gate needs about this call, computed read-only from its arguments."""
        spec = self.registry.get(name)
        if spec.policy_facts is None:
            return {}
        parsed = self.registry.validate(name, args)
        with self.db.session(tenant_id) as session:
            ctx = ToolContext(session=session, tenant_id=tenant_id, now=datetime.now(UTC))
            facts = spec.policy_facts(ctx, parsed)
            session.rollback()
            return facts

    def recorded(self, key: str, tenant_id: str) -> ToolCall | None:
        with self.db.session(tenant_id) as session:
            return session.get(ToolCall, key)

    # ------------------------------------------------------------------ writes

    def _check_authorization(self, session: Session, principal: Principal, spec: ToolSpec,
                             auth: Authorization, thread_id: str, action_id: str) -> None:
        decision = session.get(PolicyDecisionRecord, auth.decision_id)
        if (decision is None or decision.tenant_id != principal.tenant_id
                or decision.thread_id != thread_id or decision.action_id != action_id
                or decision.tool != spec.name or decision.stage != "execute"
                or not decision.proceeds):
            raise UnauthorizedWriteError(spec.name, f"refused: policy decision "
                                                    f"{auth.decision_id} does not let this "
                                                    f"call go ahead")
        if decision.outcome == "ALLOW":
            return
        approval = session.get(Approval, auth.approval_id) if auth.approval_id else None
        if (approval is None or approval.status != "decided" or approval.thread_id != thread_id
                or approval.decided_by != auth.reviewer or not approval.decision):
            raise UnauthorizedWriteError(spec.name, f"refused: approval {auth.approval_id!r} "
                                                    f"is not a recorded decision by "
                                                    f"{auth.reviewer!r} for this run")
        ids = approval.request.get("action_ids", [])
        decisions = approval.decision.get("decisions", [])
        if action_id not in ids or decisions[ids.index(action_id)].get("type") != "approve":
            raise UnauthorizedWriteError(spec.name, f"refused: approval {approval.id} does "
                                                    f"not approve action {action_id!r}")

    def write(self, principal: Principal, name: str, args: dict[str, Any], *, thread_id: str,
              action_id: str, authorization: Authorization | None,
              trace_id: str = "") -> tuple[dict[str, Any], bool]:
        """Run a write once; returns (output, replayed) where replayed means it had already
        run (the recorded result is returned and nothing acts again)."""
        key = idempotency_key(thread_id, action_id)
        common = {"kind": "write", "thread_id": thread_id, "action_id": action_id,
                  "trace_id": trace_id, "args": args}
        try:
            spec = self.registry.get(name)
            self._grant(principal, spec)
            if spec.kind is not ToolKind.WRITE:
                raise PermanentToolError(name, "is a read tool; use read()")
            parsed = self.registry.validate(name, args)
            if authorization is None:
                raise UnauthorizedWriteError(name, "refused: a write needs a policy decision "
                                                   "or a recorded approval")
            if not authorization.reason_code.strip():
                raise UnauthorizedWriteError(name, "refused: a write needs a reason_code")
            prior = self.recorded(key, principal.tenant_id)
            if prior is not None:
                self._replayed(principal, prior, trace_id)
                return prior.output, True
            call_id = self._admit(principal, spec, thread_id=thread_id, action_id=action_id,
                                  trace_id=trace_id)
        except ToolError as exc:
            self._refused(principal, name, exc, **common)
            raise
        auth = authorization

        def run() -> tuple[dict[str, Any], bool]:
            with self.db.session(principal.tenant_id) as session:
                # Checked inside the transaction: on SQLite a concurrent writer has committed
                # by the time BEGIN IMMEDIATE gets the lock; on Postgres the unique key decides.
                prior = session.get(ToolCall, key)
                if prior is not None:
                    return prior.output, True
                self._check_authorization(session, principal, spec, auth, thread_id,
                                          action_id)
                self._statement_timeout(session, spec)
                self.faults.before_call(name)
                ctx = ToolContext(session=session, tenant_id=principal.tenant_id,
                                  now=datetime.now(UTC), thread_id=thread_id,
                                  idempotency_key=key, memory=self.memory)
                output = self._output(name, spec.handler(ctx, parsed))
                session.add(ToolCall(idempotency_key=key, tenant_id=principal.tenant_id,
                                     thread_id=thread_id, action_id=action_id, tool=name,
                                     args=parsed.model_dump(mode="json"), output=output,
                                     authorization=auth.model_dump(mode="json"),
                                     reason_code=auth.reason_code, principal=principal.label,
                                     trace_id=trace_id))
                self.ledger.append(
                    session, tenant_id=principal.tenant_id, event_type="TOOL_CALL",
                    thread_id=thread_id, trace_id=trace_id, event_key=f"{key}:ok",
                    payload={"tool": name, "kind": "write", "action_id": action_id,
                             "status": "ok", "principal": principal.label,
                             "reason_code": auth.reason_code,
                             "authorization": auth.model_dump(mode="json"),
                             "input": parsed.model_dump(mode="json"), "output": output})
                session.execute(update(GatewayCall).where(GatewayCall.id == call_id).values(
                    status="ok", finished_at=datetime.now(UTC)))
                return output, False

        try:
            output, replayed = self._timed(spec, run)
        except IntegrityError:
            # Another worker recorded the same (run, action) first; its effect is the one.
            prior = self.recorded(key, principal.tenant_id)
            if prior is None:
                raise
            self._finish(principal.tenant_id, call_id, "ok")
            self._replayed(principal, prior, trace_id)
            return prior.output, True
        except Exception as exc:  # a tool error, or a bug / database error in the handler
            self._finish(principal.tenant_id, call_id, "refused" if isinstance(
                exc, UnauthorizedWriteError) else "failed", str(exc))
            self._refused(principal, name, _as_tool_error(name, exc), **common)
            raise
        if replayed:
            self._finish(principal.tenant_id, call_id, "ok")
            prior = self.recorded(key, principal.tenant_id)
            if prior is not None:
                self._replayed(principal, prior, trace_id)
            return output, True
        self.faults.after_commit(name)
        return output, False

    def _replayed(self, principal: Principal, prior: ToolCall, trace_id: str) -> None:
        self.ledger.record(tenant_id=principal.tenant_id, event_type="TOOL_CALL",
                           thread_id=prior.thread_id, trace_id=trace_id,
                           payload={"tool": prior.tool, "kind": "write",
                                    "action_id": prior.action_id, "status": "replayed",
                                    "principal": principal.label,
                                    "note": "already executed: the recorded result was "
                                            "returned and nothing acted again"})
