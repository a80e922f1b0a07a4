"""Replay one incident through the real runner, in a sandbox restored fresh for it.

A `Sandbox` is built once per worker process from a template data dir (migrated, seeded for
the eval tenant at the eval epoch, candidate policy installed). Before every incident the
app database, the checkpointer and the memory store are restored page by page from the
template (SQLite's backup API), so no incident sees another's records, checkpoints or
memory, while the compiled graphs, the tool registry and the parsed policy stay warm.
"""

from __future__ import annotations

import dataclasses
import shutil
import sqlite3
from contextlib import ExitStack
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import time_machine
from pydantic import BaseModel
from sqlalchemy import event, select
from sqlalchemy.orm import Mapper

from autopilot.checkpoint import open_checkpointer
from autopilot.config import Settings
from autopilot.models import Approval, Base, LedgerEntry, PolicyDecisionRecord, Run, ToolCall
from autopilot.runtime import Runner
from autopilot.services import Services
from evals.format import EVAL_TENANT, Incident, RecordedCall, World
from evals.score import Observed
from graphs.trigger import TriggerError
from tools.registry import PermanentToolError, ToolContext, ToolRegistry, TransientToolError

ApprovalPolicy = Literal["recorded", "approve", "reject"]
DB_FILES = ("autopilot.sqlite", "checkpoints.sqlite", "memory.sqlite")
MAX_ROUNDS = 6  # approval rounds per incident before the replay gives up
REVIEWER = "eval:recorded-human"


def eval_settings(data_dir: Path) -> Settings:
    """Embedded SQLite in `data_dir`, whatever the environment says (no faults, no pins)."""
    return Settings(AUTOPILOT_DATA_DIR=data_dir, DATABASE_URL="", AUTOPILOT_SANDBOX_FAULTS="",
                    AUTOPILOT_POLICY_TIME=None, AUTONOMY_ENABLED=True, LANGGRAPH_AES_KEY="",
                    AUTOPILOT_APPROVAL_TTL=0, AUTOPILOT_ENV="development",
                    AUTOPILOT_LOG_LEVEL="CRITICAL", AUTOPILOT_RETRY_INITIAL_INTERVAL=0.001)


class Recordings:
    """The current incident's recorded tool responses (reads answer every matching call;
    each recorded write response answers one call, in order)."""

    def __init__(self) -> None:
        self.reads: dict[str, list[RecordedCall]] = {}
        self.writes: dict[str, list[RecordedCall]] = {}

    def load(self, world: World) -> None:
        self.reads = {k: list(v) for k, v in world.reads.items()}
        self.writes = {k: list(v) for k, v in world.writes.items()}

    def answer(self, tool: str, args: dict[str, Any], write: bool) -> RecordedCall | None:
        table = self.writes if write else self.reads
        for i, rec in enumerate(table.get(tool, [])):
            if all(args.get(k) == v for k, v in rec.args.items()):
                if write:
                    del table[tool][i]
                return rec
        return None


def _recorded_handler(spec: Any, recordings: Recordings) -> Any:
    original, write = spec.handler, spec.kind.value == "write"

    def handler(ctx: ToolContext, parsed: BaseModel) -> BaseModel:
        rec = recordings.answer(spec.name, parsed.model_dump(mode="json"), write)
        if rec is None:
            return original(ctx, parsed)
        if rec.error == "transient":
            raise TransientToolError(spec.name, f"{rec.message} (recorded)")
        if rec.error == "permanent":
            raise PermanentToolError(spec.name, f"{rec.message} (recorded)")
        return spec.output_model.model_validate(rec.output)

    return handler


def _mappers() -> dict[str, Mapper[Any]]:
    return {m.local_table.name: m for m in Base.registry.mappers}  # type: ignore[union-attr]


def _python_type(column_type: Any) -> type | None:
    """The Python type of a column, looking through TypeDecorators (e.g. UTCDateTime)."""
    for candidate in (column_type, getattr(column_type, "impl_instance", None)):
        if candidate is None:
            continue
        try:
            kind = candidate.python_type
        except NotImplementedError:
            continue
        if kind is not object:  # a TypeDecorator says `object`; its impl knows
            return kind  # type: ignore[no-any-return]
    return None


class WorldError(ValueError):
    """A `world.records` entry that does not fit the sandbox schema."""


# The service's own records are what a replay produces, not part of the world it starts from.
RUNTIME_TABLES = frozenset({
    "runs", "approvals", "tool_calls", "agent_exceptions", "policy_versions",
    "policy_decisions", "ledger_entries", "evidence", "autonomy_switches", "gateway_calls",
    "api_keys"})


def _rows(records: dict[str, list[dict[str, Any]]]) -> list[tuple[Mapper[Any], dict[str, Any]]]:
    """Each row as (mapper, column values), or WorldError naming the table, row and column."""
    mappers = _mappers()
    out = []
    for table, rows in records.items():
        mapper = mappers.get(table)
        if mapper is None or table in RUNTIME_TABLES:
            known = sorted(set(mappers) - RUNTIME_TABLES)
            raise WorldError(f"world.records.{table}: " + (
                "a runtime table, not part of the world" if mapper else "no such table")
                + f" (sandbox tables: {', '.join(known)})")
        columns = {c.key: c for c in mapper.columns}
        for n, row in enumerate(rows):
            unknown = sorted(set(row) - set(columns))
            if unknown:
                raise WorldError(f"world.records.{table}[{n}]: unknown column(s) {unknown}")
            values = dict(row)
            if "tenant_id" in columns:
                values["tenant_id"] = EVAL_TENANT
            for key, value in values.items():
                kind = _python_type(columns[key].type)
                try:
                    if isinstance(value, str) and kind is datetime:
                        values[key] = datetime.fromisoformat(value)
                    elif isinstance(value, str) and kind is date:
                        values[key] = date.fromisoformat(value)
                except ValueError as exc:
                    raise WorldError(f"world.records.{table}[{n}].{key}: {exc}") from None
            out.append((mapper, values))
    return out


def check_world(incidents: list[Incident]) -> None:
    """Refuse, before replaying anything, an incident whose world does not fit the sandbox."""
    for incident in incidents:
        try:
            _rows(incident.world.records)
        except WorldError as exc:
            raise WorldError(f"incident {incident.id}: {exc}") from None


def apply_records(services: Services, records: dict[str, list[dict[str, Any]]]) -> None:
    """Merge the incident's rows onto the seeded sandbox, by primary key, in one transaction."""
    rows = _rows(records)
    with services.db.session(EVAL_TENANT) as s:
        for mapper, values in rows:
            s.merge(mapper.class_(**values))


def _no_sync(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA synchronous=OFF")


class Sandbox:
    """One worker's runner over a data dir that is reset to the template before each incident."""

    def __init__(self, template: Path, work: Path) -> None:
        work.mkdir(parents=True, exist_ok=True)
        self.work = work
        self._templates: dict[str, sqlite3.Connection] = {}
        for name in DB_FILES:  # the template, held in memory: restoring is a page copy
            mem = sqlite3.connect(":memory:", check_same_thread=False)
            with sqlite3.connect(template / name) as src:
                src.backup(mem)
            self._templates[name] = mem
            with sqlite3.connect(work / name) as dst:
                mem.backup(dst)
        self._stack = ExitStack()
        self.settings = eval_settings(work)
        self.services = Services.create(self.settings, run_migrations=False)
        self._stack.callback(self.services.close)
        # A replay's databases are scratch: no fsync (the template restores them anyway).
        event.listen(self.services.db.engine, "connect", _no_sync)
        self.checkpointer = self._stack.enter_context(open_checkpointer(self.settings))
        for conn in self._live().values():
            _no_sync(conn, None)
        self.runner = Runner(self.services, self.checkpointer)
        self.recordings = Recordings()
        # A registry of our own whose handlers can answer from recordings (the catalogue's
        # registry is shared by the process and stays untouched).
        shared = self.services.registry
        registry = ToolRegistry()
        for name in shared.names():
            spec = shared.get(name)
            registry.register(dataclasses.replace(
                spec, handler=_recorded_handler(spec, self.recordings)))
        self.services.registry = registry
        self.services.gateway.registry = registry
        self.services.gate.registry = registry

    def close(self) -> None:
        self._stack.close()
        for conn in self._templates.values():
            conn.close()

    def _live(self) -> dict[str, sqlite3.Connection]:
        return {"checkpoints.sqlite": self.checkpointer.conn,  # type: ignore[attr-defined]
                "memory.sqlite": self.services.memory.store.conn}  # type: ignore[attr-defined]

    def reset(self) -> None:
        """Restore all three databases to the template, and forget what the gate and the
        policy store remember for a few seconds (a property's time zone, the active chain)."""
        self.services.gate.forget_cached()
        self.services.db.engine.dispose()
        with sqlite3.connect(self.work / "autopilot.sqlite") as dst:
            self._templates["autopilot.sqlite"].backup(dst)
        for name, conn in self._live().items():
            self._templates[name].backup(conn)

    def keep(self, target: Path) -> Path:
        """Copy this incident's databases to `target` (a data dir `autopilot` can open)."""
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        self.services.db.engine.dispose()
        with sqlite3.connect(self.work / "autopilot.sqlite") as src, \
                sqlite3.connect(target / "autopilot.sqlite") as dst:
            src.backup(dst)
        for name, conn in self._live().items():
            with sqlite3.connect(target / name) as dst:
                conn.backup(dst)
        return target

    # ------------------------------------------------------------------ one incident

    def replay(self, incident: Incident, approvals: ApprovalPolicy) -> Observed:
        self.reset()
        self.recordings.load(incident.world)
        with time_machine.travel(incident.clock, tick=True) as clock:
            return self._replay(incident, approvals, clock)

    def _replay(self, incident: Incident, approvals: ApprovalPolicy,
                clock: time_machine.Coordinates) -> Observed:
        apply_records(self.services, incident.world.records)
        trigger = dict(incident.trigger)
        trigger["tenant_id"] = EVAL_TENANT
        trigger.setdefault("trace_id", incident.id[:100])
        try:
            view, _ = self.runner.enqueue(incident.graph, trigger)
        except TriggerError as exc:
            return Observed(thread_id="", outcome="invalid_trigger", error=str(exc),
                            wrote_on_invalid=self._anything_written())
        thread = view.thread_id
        minutes, rounds, status, outcome, error = 0.0, 0, "running", None, ""
        reviewer = Reviewer(incident, approvals)
        try:
            view = self.runner.resume(thread)
            status, outcome = view.status, view.outcome
            while status == "needs_approval" and rounds < MAX_ROUNDS:
                rounds += 1
                approval = self.runner.approval_for(thread)
                decisions, waited = reviewer.answer(approval.request)
                minutes += waited
                clock.shift(timedelta(minutes=waited))  # the reviewer took this long
                view = self.runner.decide(thread, {"decisions": decisions}, REVIEWER)
                status, outcome = view.status, view.outcome
        except Exception as exc:  # observe what ran before it broke: a write may have
            error = f"{type(exc).__name__}: {exc}"  # happened, and safety must see it
            status = "failed_terminal"
        seen = self._observe(incident.graph, thread, status, outcome, minutes, rounds)
        seen.error = error or seen.error
        return seen

    def _anything_written(self) -> bool:
        """Did a refused trigger leave a run, decision, write, approval or run ledger entry?"""
        with self.services.db.session(EVAL_TENANT) as s:
            return any(s.scalar(select(model).limit(1)) is not None for model in (
                Run, PolicyDecisionRecord, ToolCall, Approval)) or s.scalar(
                select(LedgerEntry.id).where(LedgerEntry.thread_id != "").limit(1)) is not None

    def _observe(self, graph: str, thread: str, status: str, outcome: str | None,
                 minutes: float, rounds: int) -> Observed:
        compiled = self.runner.graph(graph)
        config = self.runner.config(thread)
        values = compiled.get_state(config).values
        d = PolicyDecisionRecord
        with self.services.db.session(EVAL_TENANT) as s:
            decisions = s.execute(select(d.id, d.action_id, d.stage, d.outcome).where(
                d.thread_id == thread).order_by(d.id)).all()
            calls = s.execute(select(ToolCall.action_id, ToolCall.tool, ToolCall.args,
                                     ToolCall.authorization).where(
                ToolCall.thread_id == thread)).all()
            approvals = list(s.scalars(select(Approval).where(Approval.thread_id == thread)))
        first: dict[str, str] = {}
        outcomes: dict[int, tuple[str, str, str]] = {}
        for decision_id, action_id, stage, result in decisions:
            first.setdefault(action_id, result)
            outcomes[decision_id] = (action_id, stage, result)
        approved: set[str] = set()
        for a in approvals:
            for action_id, dec in zip(a.request.get("action_ids", []),
                                      (a.decision or {}).get("decisions", []), strict=False):
                if dec.get("type") == "approve":  # an edit is re-gated, not approved
                    approved.add(action_id)

        def allowed(action_id: str, authorization: dict[str, Any] | None) -> bool:
            """The write's own execute-stage decision (the one the gateway checked) said
            ALLOW for this action."""
            named = outcomes.get(int((authorization or {}).get("decision_id") or 0))
            return named == (action_id, "execute", "ALLOW")

        trajectory = []
        for snap in reversed(list(compiled.get_state_history(config))):
            meta = snap.metadata or {}
            trajectory.append({
                "checkpoint_id": snap.config["configurable"]["checkpoint_id"],
                "step": meta.get("step"), "next": list(snap.next),
                "signature": signature(snap.values)})
        final = {"completed": outcome or "completed", "escalated": "escalated",
                 "failed_terminal": "failed", "cancelled": "cancelled"}.get(status, status)
        if final == "resolved":
            final = "completed"
        return Observed(
            thread_id=thread, outcome=final, proposals=[
                {"action_id": p["action_id"], "tool": p["tool"], "args": p["args"],
                 "status": p["status"], "decision": first.get(p["action_id"])}
                for p in values.get("proposals", [])],
            executed=[{"action_id": a, "tool": t, "args": args,
                       "allowed": allowed(a, auth), "approved": a in approved}
                      for a, t, args, auth in calls],
            approval_rounds=rounds, minutes=minutes,
            escalation=(values.get("escalation") or {}).get("category") if status ==
            "escalated" else None,
            trajectory=trajectory)


def signature(values: dict[str, Any]) -> dict[str, Any]:
    """What a checkpoint says about the run's course (compared between versions)."""
    return {"proposals": [[p.get("tool"), p.get("status"),
                           (p.get("decision") or {}).get("outcome")]
                          for p in values.get("proposals", [])],
            "outcome": values.get("outcome"),
            "escalation": (values.get("escalation") or {}).get("category")}


class Reviewer:
    """Answers approval requests from the incident's recorded decisions, each used once (a
    recorded decision matches its action id, else the tool); what was not recorded is
    answered by the run's policy (`recorded`: approve)."""

    def __init__(self, incident: Incident, policy: ApprovalPolicy) -> None:
        self.unused = list(incident.human.decisions)
        self.policy = policy

    def _take(self, action_id: str, tool: str) -> Any:
        for match in (lambda d: d.action_id == action_id, lambda d: d.tool == tool):
            found = next((d for d in self.unused if match(d)), None)
            if found is not None:
                self.unused.remove(found)
                return found
        return None

    def answer(self, request: dict[str, Any]) -> tuple[list[dict[str, Any]], float]:
        """The decisions for one request, and the longest time a reviewer took."""
        decisions, waited = [], 0.0
        for action_id, action in zip(request.get("action_ids", []),
                                     request.get("action_requests", []), strict=False):
            recorded = self._take(action_id, action["name"]) if self.policy == "recorded" \
                else None
            if recorded is not None:
                waited = max(waited, recorded.after_minutes)
                if recorded.type == "edit":
                    decisions.append({"type": "edit", "edited_action": {
                        "name": action["name"],
                        "args": {**action["args"], **(recorded.args or {})}}})
                elif recorded.type == "reject":
                    decisions.append({"type": "reject", "message": recorded.message})
                else:
                    decisions.append({"type": "approve"})
            elif self.policy == "reject":
                decisions.append({"type": "reject",
                                  "message": "rejected by the eval run's policy"})
            else:
                waited = max(waited, 30.0)
                decisions.append({"type": "approve"})
        return decisions, waited
