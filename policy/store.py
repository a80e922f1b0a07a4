"""Policies as versioned data: immutable versions per scope, one active (and at most one shadow)
per scope.

Scopes nest global > tenant > portfolio > property (seed 001 `AgentPolicy.scopeType`). A
global version is a complete bundle (Cedar text + condition data). Narrower versions are
overlays: extra Cedar rules, which must all be `forbid` (a narrower scope can only refine,
never widen, what the broader policies allow), condition data merged over the broader
config, and seed-002 rules, which resolve against broader rules by priority. Every create and
activate validates the effective bundle first; a broken version is refused with the policy id
and location and the active one stays in force.

A shadow version is evaluated beside the active one on every real decision and only logged
(see `policy.gate`): how a candidate would have decided, without it deciding anything.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cedarpy
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from autopilot.db import ALL_TENANTS, Database
from autopilot.models import PolicyVersion
from policy.conditions import widening
from policy.engine import PolicyBundle, PolicyEngine, merge_config
from policy.rules import parse_rules
from policy.schema import PolicyLoadError

SCOPES = ("global", "tenant", "portfolio", "property")
_LABEL = {"tenant": "t", "portfolio": "pf", "property": "p"}
_CACHE_SECONDS = 1.0  # how long a process may serve a version after another one is activated


@dataclass(frozen=True)
class Scope:
    """Where a call belongs: the tenant, and the portfolio and property when known."""

    tenant_id: str
    portfolio_id: str = ""
    property_id: str = ""

    def keys(self) -> list[tuple[str, str, str]]:
        """(scope_type, tenant_id, scope_id) of every scope this one lies in, broad to narrow."""
        out = [("global", "", ""), ("tenant", self.tenant_id, self.tenant_id)]
        if self.portfolio_id:
            out.append(("portfolio", self.tenant_id, self.portfolio_id))
        if self.property_id:
            out.append(("property", self.tenant_id, self.property_id))
        return out


Layers = tuple[int | None, ...]  # version ids per scope key, broad to narrow


def read_dir(path: Path) -> tuple[str, dict[str, Any]]:
    """Cedar files (`*.cedar`) and an optional `config.json` from a folder."""
    if not path.is_dir():
        raise PolicyLoadError([f"{path} is not a folder"])
    files = sorted(path.glob("*.cedar"))
    if not files:
        raise PolicyLoadError([f"{path} holds no .cedar file"])
    cedar = "\n".join(f"// file: {f.name}\n{f.read_text()}" for f in files)
    config_file = path / "config.json"
    try:
        config = json.loads(config_file.read_text()) if config_file.exists() else {}
    except json.JSONDecodeError as exc:
        raise PolicyLoadError([f"{config_file}: {exc}"]) from None
    return cedar, config


class PolicyStore:
    def __init__(self, db: Database, known_tools: set[str],
                 installed_graphs: set[str] | None = None) -> None:
        self.db = db
        self.known_tools = known_tools
        self.installed_graphs = installed_graphs
        self._engines: dict[Layers, PolicyEngine] = {}
        self._chains: dict[Scope, tuple[float, Layers, Layers | None]] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ reading

    def versions(self, scope_type: str | None = None, scope_id: str | None = None,
                 tenant_id: str | None = None) -> list[PolicyVersion]:
        with self.db.session(ALL_TENANTS) as s:
            q = select(PolicyVersion).order_by(PolicyVersion.scope_type, PolicyVersion.tenant_id,
                                               PolicyVersion.scope_id, PolicyVersion.number)
            if scope_type:
                q = q.where(PolicyVersion.scope_type == scope_type)
            if scope_id is not None:
                q = q.where(PolicyVersion.scope_id == scope_id)
            if tenant_id is not None:
                q = q.where(PolicyVersion.tenant_id.in_(["", tenant_id]))
            return list(s.scalars(q))

    def get(self, version_id: int) -> PolicyVersion:
        with self.db.session(ALL_TENANTS) as s:
            version = s.get(PolicyVersion, version_id)
        if version is None:
            raise PolicyLoadError([f"no policy version {version_id}"])
        return version

    def _chain(self, scope: Scope) -> tuple[Layers, Layers | None]:
        """Active version ids per scope key, and the same with shadow versions swapped in
        (None when no scope of the chain has a shadow)."""
        keys = scope.keys()
        with self.db.session(scope.tenant_id) as s:
            rows = s.execute(select(PolicyVersion.scope_type, PolicyVersion.tenant_id,
                                    PolicyVersion.scope_id, PolicyVersion.id,
                                    PolicyVersion.active, PolicyVersion.shadow).where(
                (PolicyVersion.active.is_(True)) | (PolicyVersion.shadow.is_(True)),
                PolicyVersion.tenant_id.in_(["", scope.tenant_id]))).all()
        active: dict[tuple[str, str, str], int] = {}
        shadow: dict[tuple[str, str, str], int] = {}
        for scope_type, tenant_id, scope_id, vid, is_active, is_shadow in rows:
            key = (scope_type, tenant_id, scope_id)
            if is_active:
                active[key] = vid
            if is_shadow:
                shadow[key] = vid
        live = tuple(active.get(k) for k in keys)
        if not any(k in shadow for k in keys):
            return live, None
        return live, tuple(shadow.get(k, active.get(k)) for k in keys)

    def forget_cached_chains(self) -> None:
        """Re-read the active chains on next use (parsed engines stay: keyed by version ids)."""
        with self._lock:
            self._chains.clear()

    def _resolve(self, scope: Scope) -> tuple[Layers, Layers | None]:
        with self._lock:
            seen = self._chains.get(scope)
            if seen is None or time.monotonic() - seen[0] > _CACHE_SECONDS:
                seen = (time.monotonic(), *self._chain(scope))
                self._chains[scope] = seen
            return seen[1], seen[2]

    def bundle(self, layers: list[PolicyVersion | None]) -> PolicyBundle:
        """The effective bundle: a global version (or the shipped files) plus overlays."""
        base = PolicyBundle.load()
        cedar, config, labels = base.cedar, dict(base.config), ["shipped"]
        first = layers[0] if layers else None
        if first is not None:
            cedar, config, labels = first.cedar, dict(first.config), [f"g{first.number}"]
        config["rules"] = [{"scope": "global", **r} for r in config.get("rules", [])]
        for v in layers[1:]:
            if v is None:
                continue
            cedar += (f"\n// file: {v.scope_type}-{v.scope_id}-v{v.number}.cedar\n{v.cedar}")
            overlay = dict(v.config)
            overlay["rules"] = [{**r, "scope": v.scope_type} for r in overlay.get("rules", [])]
            config = merge_config(config, overlay)
            labels.append(f"{v.scope_id}.{_LABEL[v.scope_type]}{v.number}")
        digest = hashlib.sha256((cedar + json.dumps(config, sort_keys=True)).encode()
                                ).hexdigest()[:8]
        return PolicyBundle(cedar=cedar, config=config, version=f"{'+'.join(labels)}-{digest}")

    def _engine(self, layers: Layers) -> PolicyEngine:
        with self._lock:
            engine = self._engines.get(layers)
        if engine is None:
            versions = [self.get(v) if v is not None else None for v in layers]
            engine = self._build(versions)
            with self._lock:
                self._engines[layers] = engine
        return engine

    def _build(self, versions: list[PolicyVersion | None]) -> PolicyEngine:
        return PolicyEngine(self.bundle(versions), known_tools=self.known_tools,
                            installed_graphs=self.installed_graphs, strict=True)

    def engine_for(self, tenant_id: str, portfolio_id: str = "",
                   property_id: str = "") -> PolicyEngine:
        """The engine for a scope's active policies (refreshed within a second of a change)."""
        live, _ = self._resolve(Scope(tenant_id, portfolio_id, property_id))
        return self._engine(live)

    def shadow_engine_for(self, tenant_id: str, portfolio_id: str = "",
                          property_id: str = "") -> PolicyEngine | None:
        """The engine with the shadow versions of this scope's chain swapped in, if any.

        A shadow that no longer composes (e.g. the global version changed under it) yields
        None: shadows never affect real decisions, not even by failing.
        """
        _, shadow = self._resolve(Scope(tenant_id, portfolio_id, property_id))
        if shadow is None:
            return None
        try:
            return self._engine(shadow)
        except PolicyLoadError:
            return None

    def _chain_with(self, version: PolicyVersion) -> list[PolicyVersion | None]:
        """The active chain of a version's own scope, with this version in its place."""
        scope = Scope(version.tenant_id,
                      version.scope_id if version.scope_type == "portfolio" else "",
                      version.scope_id if version.scope_type == "property" else "")
        live, _ = self._chain(scope)
        keys = scope.keys()
        out: list[PolicyVersion | None] = []
        for (scope_type, _, _), vid in zip(keys, live, strict=True):
            if scope_type == version.scope_type:
                out.append(version)
            elif scope_type == "portfolio" and version.scope_type == "property":
                out.append(None)  # a property's portfolio is not known from the version alone
            else:
                out.append(self.get(vid) if vid is not None else None)
        return out

    def engine_for_version(self, version_id: int) -> PolicyEngine:
        """A given version, composed with the active versions of the broader scopes."""
        return self._build(self._chain_with(self.get(version_id)))

    def engine_with_global(self, bundle: PolicyBundle, tenant_id: str, portfolio_id: str = "",
                           property_id: str = "") -> PolicyEngine:
        """A candidate global bundle under a scope's active overlays (for simulation)."""
        live, _ = self._chain(Scope(tenant_id, portfolio_id, property_id))
        overlays = [self.get(v) if v is not None else None for v in live[1:]]
        candidate = PolicyVersion(scope_type="global", tenant_id="", scope_id="", number=0,
                                  cedar=bundle.cedar, config=bundle.config)
        engine = self._build([candidate, *overlays])
        engine.bundle.version = "candidate-" + engine.bundle.version.split("-", 1)[1]
        return engine

    # ------------------------------------------------------------------ changing

    def _check_overlay(self, cedar: str) -> None:
        try:
            parsed = json.loads(cedarpy.policies_to_json_str(cedar))
        except Exception as exc:
            raise PolicyLoadError([f"parse error: {exc}"]) from None
        widening = [p.get("annotations", {}).get("id") or pid
                    for pid, p in parsed.get("staticPolicies", {}).items()
                    if p.get("effect") != "forbid"]
        if widening:
            raise PolicyLoadError([f"{pid}: a narrower scope may only add forbid rules"
                                   for pid in widening])

    def create(self, *, scope_type: str, scope_id: str = "", tenant_id: str = "", cedar: str,
               config: dict[str, Any], author: str, note: str = "",
               activate: bool = False) -> PolicyVersion:
        """Validate, then store a new immutable version (optionally activating it)."""
        if scope_type not in SCOPES:
            raise PolicyLoadError([f"scope must be one of {', '.join(SCOPES)}"])
        if scope_type == "tenant":
            tenant_id = tenant_id or scope_id
            scope_id = tenant_id
        if scope_type == "global" and (scope_id or tenant_id):
            raise PolicyLoadError(["a global version takes no tenant or scope id"])
        if scope_type != "global" and not (tenant_id and scope_id):
            extra = "" if scope_type == "tenant" else f" and the {scope_type} id"
            raise PolicyLoadError([f"a {scope_type} version needs the tenant id{extra}"])
        if not author.strip():
            raise PolicyLoadError(["every version needs an author"])
        candidate = PolicyVersion(scope_type=scope_type, scope_id=scope_id, tenant_id=tenant_id,
                                  number=0, cedar=cedar, config=config, author=author, note=note)
        if not isinstance(config, dict):
            raise PolicyLoadError(["config: must be a JSON object"])
        parse_rules(config.get("rules"), scope_type)  # errors name this version's own index
        chain = self._chain_with(candidate)
        engine = self._build(chain)  # raises PolicyLoadError; nothing is stored
        if scope_type != "global":
            self._check_overlay(cedar)
            broader = self._build(chain[:[v is candidate for v in chain].index(True)])
            problems = widening(broader.config, engine.config)
            if problems:
                raise PolicyLoadError(problems)
        digest = hashlib.sha256((cedar + json.dumps(config, sort_keys=True)).encode()
                                ).hexdigest()
        for attempt in range(3):  # a concurrent create in the same scope takes the number
            try:
                with self.db.session(ALL_TENANTS) as s:
                    number = (s.scalar(select(func.max(PolicyVersion.number)).where(
                        PolicyVersion.scope_type == scope_type,
                        PolicyVersion.tenant_id == tenant_id,
                        PolicyVersion.scope_id == scope_id)) or 0) + 1
                    stored = PolicyVersion(
                        scope_type=scope_type, scope_id=scope_id, tenant_id=tenant_id,
                        number=number, cedar=cedar, config=config, author=author, note=note,
                        content_hash=digest)
                    s.add(stored)
                    s.flush()
                    version_id = stored.id
                break
            except IntegrityError:
                if attempt == 2:
                    raise PolicyLoadError(["another version of this scope was stored at the "
                                           "same moment; try again"]) from None
        if activate:
            return self.activate(version_id)
        return self.get(version_id)

    def _same_scope(self, version: PolicyVersion) -> Any:
        return ((PolicyVersion.scope_type == version.scope_type)
                & (PolicyVersion.tenant_id == version.tenant_id)
                & (PolicyVersion.scope_id == version.scope_id))

    def activate(self, version_id: int) -> PolicyVersion:
        """Make a version the active one of its scope (validated again: the broader versions
        under an overlay may have changed since it was created)."""
        version = self.get(version_id)
        self.engine_for_version(version_id)  # raises PolicyLoadError; nothing changes then
        with self.db.session(ALL_TENANTS) as s:
            s.execute(update(PolicyVersion).where(
                self._same_scope(version), PolicyVersion.id != version_id).values(active=False))
            s.execute(update(PolicyVersion).where(PolicyVersion.id == version_id).values(
                active=True, shadow=False, activated_at=datetime.now(UTC)))
        self._chains.clear()
        return self.get(version_id)

    def deactivate(self, version_id: int) -> PolicyVersion:
        """Stop using a version: its scope falls back to the broader one (or shipped files)."""
        self.get(version_id)
        with self.db.session(ALL_TENANTS) as s:
            s.execute(update(PolicyVersion).where(PolicyVersion.id == version_id)
                      .values(active=False))
        self._chains.clear()
        return self.get(version_id)

    def set_shadow(self, version_id: int, on: bool = True) -> PolicyVersion:
        """Evaluate a version beside the active one of its scope, log-only (one per scope)."""
        version = self.get(version_id)
        if on:
            if version.active:
                raise PolicyLoadError([f"version {version_id} is active; a shadow must be a "
                                       "candidate that is not in force"])
            self.engine_for_version(version_id)
        with self.db.session(ALL_TENANTS) as s:
            if on:
                s.execute(update(PolicyVersion).where(self._same_scope(version))
                          .values(shadow=False))
            s.execute(update(PolicyVersion).where(PolicyVersion.id == version_id)
                      .values(shadow=on))
        self._chains.clear()
        return self.get(version_id)
