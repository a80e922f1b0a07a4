"""The policy gate the spine calls for every real decision.

It turns a proposed call into a `PolicyRequest` (facts from the tool's own arguments, the
run's scope and time zone from the property record, usage windows counted from the decisions
already recorded), asks the engine of that scope, asks the shadow engine too when a shadow
version exists, and records the decision with its redacted request. Evaluation errors become
BLOCK/`POLICY_ERROR` decisions that are recorded and logged like any other.

Rate and spend windows count execute-stage decisions whose write went ahead, i.e. writes done
or still in flight. Counting and recording happen in one transaction under a per-tenant lock
(Postgres advisory lock; SQLite's write lock), so two concurrent writes cannot both take the
last slot of a window.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from pydantic import ValidationError
from sqlalchemy import and_, case, func, not_, select, text
from sqlalchemy.orm import Session

from autopilot.db import Database
from autopilot.killswitch import KillSwitch
from autopilot.ledger import Ledger
from autopilot.models import PolicyDecisionRecord, Property
from autopilot.privacy import redact
from policy import drift
from policy.engine import (
    POLICY_ERROR,
    ActionFacts,
    Outcome,
    PolicyDecision,
    PolicyEngine,
    PolicyRequest,
    RunFacts,
    ToolFacts,
    Usage,
)
from policy.schema import PolicyLoadError
from policy.store import PolicyStore
from tools.gateway import ToolGateway
from tools.registry import ToolError, ToolRegistry

log = structlog.get_logger("policy.gate")
STAGES = ("gate", "execute")
_PLACE_SECONDS = 5.0  # how long a property's portfolio and time zone are taken as known


class PolicyGate:
    def __init__(self, db: Database, registry: ToolRegistry, gateway: ToolGateway,
                 store: PolicyStore, ledger: Ledger, kill_switch: KillSwitch,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.db = db
        self.registry = registry
        self.gateway = gateway
        self.store = store
        self.ledger = ledger
        self.kill_switch = kill_switch
        self._places: dict[tuple[str, str], tuple[float, tuple[str, str, str]]] = {}
        # The instant time-of-day conditions are judged at (pinned in tests, evals, demos).
        self.clock = clock or (lambda: datetime.now(UTC))

    def forget_cached(self) -> None:
        """Drop what is remembered for a few seconds (property places, active policy chains),
        for a caller that swaps the database underneath (the eval sandbox)."""
        self._places.clear()
        self.store.forget_cached_chains()

    # ------------------------------------------------------------------ building requests

    def tool_facts(self, name: str) -> ToolFacts:
        spec = self.registry.get(name)
        return ToolFacts(name=spec.name, kind=spec.kind.value, reversible=spec.reversible,
                         cost_class=spec.cost_class.value, risk=spec.risk.value)

    def _usage(self, session: Session, engine: PolicyEngine, tenant_id: str, tool: str,
               thread_id: str, action_id: str) -> Usage:
        since = datetime.now(UTC) - timedelta(minutes=engine.limits["window_minutes"])
        d = PolicyDecisionRecord
        per_action = (select(d.thread_id, d.action_id, d.tool,
                             func.max(d.spend_cents).label("spend"))
                      .where(d.tenant_id == tenant_id, d.proceeds.is_(True), d.created_at >= since,
                             not_(and_(d.thread_id == thread_id, d.action_id == action_id)))
                      .group_by(d.thread_id, d.action_id, d.tool).subquery())
        calls, tool_calls, spend = session.execute(select(
            func.count(), func.coalesce(func.sum(case((per_action.c.tool == tool, 1), else_=0)), 0),
            func.coalesce(func.sum(per_action.c.spend), 0))).one()
        return Usage(tool_calls=int(tool_calls), tenant_calls=int(calls),
                     tenant_spend_cents=int(spend))

    def _scope(self, tenant_id: str, run_facts: dict[str, Any]) -> tuple[str, str, str]:
        """(property id, portfolio id, time zone) of the run, from the property record
        (cached for a few seconds: a run makes many decisions about the same property)."""
        property_id = str(run_facts.get("property_id", ""))
        if not property_id:
            return "", "", ""
        key = (tenant_id, property_id)
        hit = self._places.get(key)
        if hit is not None and time.monotonic() - hit[0] < _PLACE_SECONDS:
            return hit[1]
        with self.db.session(tenant_id) as s:
            row = s.execute(select(Property.portfolio_id, Property.timezone).where(
                Property.tenant_id == tenant_id, Property.id == property_id)).first()
        place = (property_id, row[0] or "", row[1] or "") if row else (property_id, "", "")
        self._places[key] = (time.monotonic(), place)
        return place

    def request(self, *, graph: str, tenant_id: str, tool: str, args: dict[str, Any],
                run_facts: dict[str, Any], facts: ActionFacts | None = None,
                autonomous_writes_enabled: bool = True) -> PolicyRequest:
        """The request the engine sees, without usage; facts come from the (possibly edited)
        arguments (or, for dry runs only, are given). Reads the sandbox; writes nothing."""
        tool_facts = self.tool_facts(tool)
        if facts is None:
            facts = ActionFacts.model_validate(self.gateway.policy_facts(tenant_id, tool, args))
        run = RunFacts.model_validate(run_facts)
        _, portfolio, timezone = self._scope(tenant_id, run_facts)
        return PolicyRequest(graph=graph, tenant_id=tenant_id, tool=tool_facts, facts=facts,
                             run=run, at=self.clock(), timezone=timezone,
                             portfolio_id=portfolio,
                             autonomous_writes_enabled=autonomous_writes_enabled)

    def engine_for(self, request: PolicyRequest) -> PolicyEngine:
        return self.store.engine_for(request.tenant_id, request.portfolio_id,
                                     request.run.property_id)

    # ------------------------------------------------------------------ deciding

    def dry_run(self, *, graph: str, tenant_id: str, tool: str, args: dict[str, Any],
                run_facts: dict[str, Any], engine: PolicyEngine | None = None,
                facts: ActionFacts | None = None) -> tuple[PolicyRequest, PolicyDecision]:
        """Evaluate without recording anything (raises ToolError / ValidationError on bad
        input, PolicyLoadError when the active policies do not load)."""
        req = self.request(graph=graph, tenant_id=tenant_id, tool=tool, args=args,
                           run_facts=run_facts, facts=facts)
        engine = engine or self.engine_for(req)
        req.autonomous_writes_enabled = self.kill_switch.enabled(tenant_id)
        if req.tool.kind == "write":
            with self.db.session(tenant_id) as s:
                req.usage = self._usage(s, engine, tenant_id, tool, "", "")
                req.facts.downgraded = req.facts.downgraded or drift.downgraded(
                    s, engine.config, tenant_id=tenant_id, graph=graph, tool=tool,
                    record=False)
        return req, engine.evaluate(req)

    def decide(self, *, graph: str, tenant_id: str, thread_id: str, action_id: str, tool: str,
               args: dict[str, Any], run_facts: dict[str, Any], stage: str,
               approved: bool = False, grounded: bool = True, trace_id: str = "",
               counts: bool = True, policy_version: int | None = None,
               confidence: float | None = None) -> PolicyDecision:
        """Gate one real call and record the decision (and the shadow's).

        Usage counting, evaluation and the record share one transaction under the tenant's
        window lock; facts and the engines are resolved before it (they read other tables).
        `counts=False` (replays) records a decision that takes no slot in the windows.
        `policy_version` (replays) decides under that version instead of the active one.
        """
        if stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}")
        request: PolicyRequest | None = None
        engine: PolicyEngine | None = None
        shadow_engine: PolicyEngine | None = None
        decision: PolicyDecision | None = None
        try:
            request = self.request(graph=graph, tenant_id=tenant_id, tool=tool, args=args,
                                   run_facts=run_facts)
            request.facts.grounded = grounded
            if confidence is not None:
                request.facts.confidence_pct = max(0, min(100, round(confidence * 100)))
        except (ValidationError, ToolError) as exc:
            decision = self._error(f"could not compute policy facts: {exc}", "unevaluated")
        else:
            try:
                engine = (self.store.engine_for_version(policy_version)
                          if policy_version is not None else self.engine_for(request))
            except PolicyLoadError as exc:  # an active version that no longer loads
                decision = self._error(f"active policies do not load: {exc}", "unloadable")
            else:
                shadow_engine = self.store.shadow_engine_for(
                    tenant_id, request.portfolio_id, request.run.property_id)
        with self.db.session(tenant_id) as s:
            if request is not None and engine is not None:
                # Read in the decision's own transaction: a flip holds even queued writes.
                request.autonomous_writes_enabled = self.kill_switch.enabled(tenant_id, s)
                if request.tool.kind == "write":
                    if stage == "execute" and self.db.is_postgres:
                        s.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"),
                                  {"k": f"policy-window:{tenant_id}"})
                    request.usage = self._usage(s, engine, tenant_id, tool, thread_id, action_id)
                    # Drift (policy/drift.py): an action type that kept failing verification or
                    # being rejected is held for a person until an admin resets it.
                    request.facts.downgraded = drift.downgraded(
                        s, engine.config, tenant_id=tenant_id, graph=graph, tool=tool,
                        ledger=self.ledger)
                decision = engine.evaluate(request)
            assert decision is not None
            shadow = shadow_engine.evaluate(request) if (
                shadow_engine is not None and request is not None) else None
            proceeds = counts and stage == "execute" and request is not None and (
                request.tool.kind == "write") and (decision.outcome is Outcome.ALLOW or (
                    approved and decision.outcome is Outcome.REQUIRE_APPROVAL))
            if decision.errors:
                log.warning("policy.decision_error", tenant=tenant_id, thread_id=thread_id,
                            action_id=action_id, tool=tool, errors=decision.errors)
            record = PolicyDecisionRecord(
                tenant_id=tenant_id, graph=graph, thread_id=thread_id, action_id=action_id,
                tool=tool, stage=stage, outcome=decision.outcome.value, reasons=decision.reasons,
                policy_version=decision.policy_version, errors=decision.errors,
                request=redact(request.model_dump(mode="json")) if request is not None else
                redact({"graph": graph, "tenant_id": tenant_id, "tool": tool, "args": args,
                        "run": run_facts}),
                spend_cents=request.facts.spend_cents if request is not None else 0,
                proceeds=proceeds,
                shadow_version=shadow.policy_version if shadow else None,
                shadow_outcome=shadow.outcome.value if shadow else None,
                shadow_reasons=shadow.reasons if shadow else None)
            s.add(record)
            s.flush()
            decision.decision_id = record.id
            self.ledger.append(s, tenant_id=tenant_id, event_type="POLICY_DECISION",
                               thread_id=thread_id, trace_id=trace_id, payload={
                                   "decision_id": record.id, "action_id": action_id,
                                   "tool": tool, "stage": stage,
                                   "outcome": decision.outcome.value,
                                   "rule_ids": decision.reasons,
                                   "policy_version": decision.policy_version,
                                   "errors": decision.errors, "proceeds": proceeds,
                                   "autonomous_writes_enabled": request.autonomous_writes_enabled
                                   if request is not None else None,
                                   "shadow": {"version": shadow.policy_version,
                                              "outcome": shadow.outcome.value,
                                              "rule_ids": shadow.reasons} if shadow else None})
        return decision

    @staticmethod
    def _error(message: str, version: str) -> PolicyDecision:
        return PolicyDecision(outcome=Outcome.BLOCK, reasons=[POLICY_ERROR],
                              policy_version=version, errors=[message])
