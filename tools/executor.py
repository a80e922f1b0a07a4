"""Executes tools: reads directly, writes only with an authorization and exactly once.

A write's effect on the sandbox and its `tool_calls` record commit in one transaction,
keyed by `<thread>:<action>`; a retry, a replay after a crash or a second approval finds
the record and returns the recorded output instead of acting again.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from autopilot.db import Database
from autopilot.models import Approval, ToolCall
from tools.faults import SandboxFaults
from tools.registry import (
    PermanentToolError,
    ToolContext,
    ToolKind,
    ToolRegistry,
    UnauthorizedWriteError,
    pydantic_errors,
)


class Authorization(BaseModel):
    """Why a write may run: a policy ALLOW (with its version) or a recorded human approval."""

    kind: str  # "policy" | "approval"
    policy_version: str
    reasons: list[str] = []
    approval_id: str | None = None
    reviewer: str | None = None

    def is_valid(self) -> bool:
        if self.kind == "policy":
            return True
        return self.kind == "approval" and bool(self.approval_id) and bool(self.reviewer)


def _check_approval(session: Session, auth: Authorization, thread_id: str, action_id: str,
                    tool: str) -> None:
    """An approval counts only if it is recorded, decided by that reviewer for this run, and
    its decision for this very action is `approve`."""
    approval = session.get(Approval, auth.approval_id)
    if (approval is None or approval.status != "decided" or approval.thread_id != thread_id
            or approval.decided_by != auth.reviewer or not approval.decision):
        raise UnauthorizedWriteError(tool, f"refused: approval {auth.approval_id!r} is not a "
                                           f"recorded decision by {auth.reviewer!r} for this run")
    ids = approval.request.get("action_ids", [])
    decisions = approval.decision.get("decisions", [])
    if action_id not in ids or decisions[ids.index(action_id)].get("type") != "approve":
        raise UnauthorizedWriteError(tool, f"refused: approval {approval.id} does not approve "
                                           f"action {action_id!r}")


def idempotency_key(thread_id: str, action_id: str) -> str:
    return f"{thread_id}:{action_id}"


class ToolExecutor:
    def __init__(self, db: Database, registry: ToolRegistry, faults: SandboxFaults) -> None:
        self.db = db
        self.registry = registry
        self.faults = faults

    def _output(self, name: str, result: BaseModel) -> dict[str, Any]:
        spec = self.registry.get(name)
        try:
            checked = spec.output_model.model_validate(result.model_dump())
        except ValidationError as exc:
            detail = "; ".join(f"{e['field']}: {e['message']}" for e in pydantic_errors(exc))
            raise PermanentToolError(
                name, f"tool returned a malformed response: {detail}") from None
        return checked.model_dump(mode="json")

    def read(self, tenant_id: str, name: str, args: dict[str, Any]) -> dict[str, Any]:
        spec = self.registry.get(name)
        if spec.kind is not ToolKind.READ:
            raise UnauthorizedWriteError(name, "is a write tool; use write() with an authorization")
        parsed = self.registry.validate(name, args)
        self.faults.before_call(name)
        with self.db.session() as session:
            ctx = ToolContext(session=session, tenant_id=tenant_id, now=datetime.now(UTC))
            return self._output(name, spec.handler(ctx, parsed))

    def policy_facts(self, tenant_id: str, name: str, args: dict[str, Any]) -> dict[str, Any]:
        """The facts the gate needs about this call, computed read-only from its arguments."""
        spec = self.registry.get(name)
        if spec.policy_facts is None:
            return {}
        parsed = self.registry.validate(name, args)
        with self.db.session() as session:
            ctx = ToolContext(session=session, tenant_id=tenant_id, now=datetime.now(UTC))
            facts = spec.policy_facts(ctx, parsed)
            session.rollback()
            return facts

    def recorded(self, key: str) -> ToolCall | None:
        with self.db.session() as session:
            return session.get(ToolCall, key)

    def write(
        self,
        *,
        tenant_id: str,
        thread_id: str,
        action_id: str,
        name: str,
        args: dict[str, Any],
        authorization: Authorization | None,
    ) -> tuple[dict[str, Any], bool]:
        """Run a write once; returns (output, replayed) where replayed means it had already run."""
        spec = self.registry.get(name)
        if spec.kind is not ToolKind.WRITE:
            raise PermanentToolError(name, "is a read tool; use read()")
        if authorization is None or not authorization.is_valid():
            raise UnauthorizedWriteError(
                name, "refused: a write needs a policy ALLOW or a recorded approval"
            )
        parsed = self.registry.validate(name, args)
        key = idempotency_key(thread_id, action_id)
        try:
            with self.db.session() as session:
                # Checked inside the transaction: on SQLite a concurrent writer has committed
                # by the time BEGIN IMMEDIATE gets the lock; on Postgres the unique key decides.
                prior = session.get(ToolCall, key)
                if prior is not None:
                    return prior.output, True
                if authorization.kind == "approval":
                    _check_approval(session, authorization, thread_id, action_id, name)
                self.faults.before_call(name)
                ctx = ToolContext(session=session, tenant_id=tenant_id, now=datetime.now(UTC),
                                  thread_id=thread_id, idempotency_key=key)
                output = self._output(name, spec.handler(ctx, parsed))
                session.add(ToolCall(idempotency_key=key, tenant_id=tenant_id,
                                     thread_id=thread_id, action_id=action_id, tool=name,
                                     args=parsed.model_dump(mode="json"), output=output,
                                     authorization=authorization.model_dump(mode="json")))
        except IntegrityError:
            # Another worker recorded the same (run, action) first; its effect is the one.
            prior = self.recorded(key)
            if prior is None:
                raise
            return prior.output, True
        self.faults.after_commit(name)
        return output, False
