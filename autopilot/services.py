"""The services a graph node may use, built once per process from settings."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from autopilot.config import Settings
from autopilot.db import Database, check_schema, migrate
from autopilot.evidence import EvidenceStore
from autopilot.killswitch import KillSwitch
from autopilot.ledger import Ledger
from autopilot.logs import configure_logging
from autopilot.memory import MemoryBackend
from policy.engine import PolicyEngine
from policy.gate import PolicyGate
from policy.store import PolicyStore
from tools.catalog import build_registry
from tools.faults import SandboxFaults
from tools.gateway import DEFAULT_BUDGETS, ToolGateway
from tools.registry import ToolRegistry


@dataclass
class Services:
    settings: Settings
    db: Database
    registry: ToolRegistry
    gateway: ToolGateway
    policy_store: PolicyStore
    gate: PolicyGate
    ledger: Ledger
    kill_switch: KillSwitch
    evidence: EvidenceStore
    memory: MemoryBackend

    @classmethod
    def create(cls, settings: Settings | None = None, *, run_migrations: bool = True) -> Services:
        """Build the services; `run_migrations=False` (the long-running service) instead
        refuses an outdated schema with `SchemaOutdated`, which says what to run."""
        settings = settings or Settings()
        configure_logging(settings.log_level)
        db = Database(settings)
        if not run_migrations:
            try:
                check_schema(db.engine)
            except BaseException:
                db.dispose()
                raise
        else:
            owner = db.migration_engine()
            try:
                migrate(owner)
            finally:
                owner.dispose()
        from graphs import autopilots  # graphs import this module; resolve at call time

        registry = build_registry()
        faults = SandboxFaults.from_json(settings.sandbox_faults)
        store = PolicyStore(db, set(registry.names()), set(autopilots()))
        store.engine_for(settings.tenant_id)  # refuse to start on a broken active bundle
        ledger = Ledger(db)

        def budgets(tenant_id: str) -> dict[str, Any]:
            return dict(store.engine_for(tenant_id).config.get("budgets", DEFAULT_BUDGETS))

        gateway = ToolGateway(db, registry, faults, ledger, budgets)
        memory = MemoryBackend(settings)
        gateway.memory = memory.store
        switch = KillSwitch(db, ledger, settings.autonomy_enabled)
        pinned = settings.policy_time
        gate = PolicyGate(db, registry, gateway, store, ledger, switch,
                          clock=(lambda: pinned) if pinned is not None else None)
        return cls(settings=settings, db=db, registry=registry, gateway=gateway,
                   policy_store=store, gate=gate, ledger=ledger, kill_switch=switch,
                   evidence=EvidenceStore(db, ledger), memory=memory)

    def policy_for(self, tenant_id: str) -> PolicyEngine:
        """The engine for the tenant's active policy versions (global + tenant overlay)."""
        return self.policy_store.engine_for(tenant_id)

    def close(self) -> None:
        self.memory.close()
        self.db.dispose()


@dataclass
class RunContext:
    """LangGraph runtime context: not checkpointed, handed to every node of a run.

    `replay` marks a re-run from an earlier checkpoint: writes that ran before return their
    recorded result, and writes that did not are decided but not executed ("simulated").
    `policy_version` pins a replay's decisions to that policy version.
    """

    services: Services
    replay: bool = False
    policy_version: int | None = None


_default: Services | None = None
_lock = threading.Lock()


def default_services() -> Services:
    """Services from the environment, for hosts that pass no context (e.g. `langgraph dev`)."""
    global _default
    with _lock:
        if _default is None:
            _default = Services.create()
        return _default
