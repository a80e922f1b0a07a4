"""Policies as versioned data: immutable versions per scope, one active per scope.

A global version is a complete bundle (Cedar text + thresholds). A tenant version is an
overlay: extra rules, which must all be `forbid` (a narrower scope can only refine, never
widen, what the global policies allow), and threshold overrides merged over the global
config. Every create and activate validates the effective bundle first; a broken version is
refused with the policy id and location and the active one stays in force.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cedarpy
from sqlalchemy import func, select, update

from autopilot.db import Database
from autopilot.models import PolicyVersion
from policy.engine import PolicyBundle, PolicyEngine
from policy.schema import PolicyLoadError

SCOPES = ("global", "tenant")
_CACHE_SECONDS = 1.0  # how long a process may serve a version after another one is activated


def _merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in overlay.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(
            out.get(key), dict) else value
    return out


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
    def __init__(self, db: Database, known_tools: set[str]) -> None:
        self.db = db
        self.known_tools = known_tools
        self._engines: dict[tuple[int | None, int | None], PolicyEngine] = {}
        self._active: dict[str, tuple[float, tuple[int | None, int | None]]] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ reading

    def versions(self, scope_type: str | None = None,
                 scope_id: str | None = None) -> list[PolicyVersion]:
        with self.db.session() as s:
            q = select(PolicyVersion).order_by(PolicyVersion.scope_type, PolicyVersion.scope_id,
                                               PolicyVersion.number)
            if scope_type:
                q = q.where(PolicyVersion.scope_type == scope_type)
            if scope_id is not None:
                q = q.where(PolicyVersion.scope_id == scope_id)
            return list(s.scalars(q))

    def get(self, version_id: int) -> PolicyVersion:
        with self.db.session() as s:
            version = s.get(PolicyVersion, version_id)
        if version is None:
            raise PolicyLoadError([f"no policy version {version_id}"])
        return version

    def _active_ids(self, tenant_id: str) -> tuple[int | None, int | None]:
        with self.db.session() as s:
            rows = s.execute(select(PolicyVersion.scope_type, PolicyVersion.id).where(
                PolicyVersion.active.is_(True),
                ((PolicyVersion.scope_type == "global") |
                 ((PolicyVersion.scope_type == "tenant") &
                  (PolicyVersion.scope_id == tenant_id))))).all()
        ids = dict(rows)
        return ids.get("global"), ids.get("tenant")

    def bundle(self, global_version: PolicyVersion | None,
               tenant_version: PolicyVersion | None) -> PolicyBundle:
        """The effective bundle of a global version (or the shipped files) plus an overlay."""
        base = PolicyBundle.load()
        cedar, config = base.cedar, base.config
        label = "shipped"
        if global_version is not None:
            cedar, config = global_version.cedar, global_version.config
            label = f"g{global_version.number}"
        if tenant_version is not None:
            cedar += (f"\n// file: tenant-{tenant_version.scope_id}-"
                      f"v{tenant_version.number}.cedar\n{tenant_version.cedar}")
            config = _merge(config, tenant_version.config)
            label += f"+{tenant_version.scope_id}.t{tenant_version.number}"
        digest = hashlib.sha256((cedar + json.dumps(config, sort_keys=True)).encode()
                                ).hexdigest()[:8]
        return PolicyBundle(cedar=cedar, config=config, version=f"{label}-{digest}")

    def engine_for(self, tenant_id: str) -> PolicyEngine:
        """The engine for a tenant's active policies (refreshed within a second of a change)."""
        with self._lock:
            seen = self._active.get(tenant_id)
            if seen is None or time.monotonic() - seen[0] > _CACHE_SECONDS:
                seen = (time.monotonic(), self._active_ids(tenant_id))
                self._active[tenant_id] = seen
            key = seen[1]
            engine = self._engines.get(key)
        if engine is None:
            g = self.get(key[0]) if key[0] is not None else None
            t = self.get(key[1]) if key[1] is not None else None
            engine = PolicyEngine(self.bundle(g, t), known_tools=self.known_tools, strict=True)
            with self._lock:
                self._engines[key] = engine
        return engine

    def engine_for_version(self, version_id: int) -> PolicyEngine:
        """A given version (a tenant overlay is composed with the active global version)."""
        version = self.get(version_id)
        if version.scope_type == "global":
            return PolicyEngine(self.bundle(version, None), known_tools=self.known_tools,
                                strict=True)
        g_id, _ = self._active_ids(version.scope_id)
        return PolicyEngine(self.bundle(self.get(g_id) if g_id else None, version),
                            known_tools=self.known_tools, strict=True)

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
            raise PolicyLoadError([f"{pid}: a tenant version may only add forbid rules"
                                   for pid in widening])

    def create(self, *, scope_type: str, scope_id: str = "", cedar: str,
               config: dict[str, Any], author: str, note: str = "",
               activate: bool = False) -> PolicyVersion:
        """Validate, then store a new immutable version (optionally activating it)."""
        if scope_type not in SCOPES:
            raise PolicyLoadError([f"scope must be one of {', '.join(SCOPES)}"])
        if (scope_type == "tenant") != bool(scope_id):
            raise PolicyLoadError(["a tenant version needs the tenant id; a global one none"])
        if not author.strip():
            raise PolicyLoadError(["every version needs an author"])
        candidate = PolicyVersion(scope_type=scope_type, scope_id=scope_id, number=0,
                                  cedar=cedar, config=config, author=author, note=note)
        if scope_type == "tenant":
            self._check_overlay(cedar)
            g_id, _ = self._active_ids(scope_id)
            PolicyEngine(self.bundle(self.get(g_id) if g_id else None, candidate),
                         known_tools=self.known_tools, strict=True)
        else:
            PolicyEngine(self.bundle(candidate, None), known_tools=self.known_tools,
                         strict=True)
        digest = hashlib.sha256((cedar + json.dumps(config, sort_keys=True)).encode()
                                ).hexdigest()
        with self.db.session() as s:
            number = (s.scalar(select(func.max(PolicyVersion.number)).where(
                PolicyVersion.scope_type == scope_type,
                PolicyVersion.scope_id == scope_id)) or 0) + 1
            candidate.number, candidate.content_hash = number, digest
            s.add(candidate)
            s.flush()
            version_id = candidate.id
        if activate:
            return self.activate(version_id)
        return self.get(version_id)

    def activate(self, version_id: int) -> PolicyVersion:
        """Make a version the active one of its scope (validated again: the global version
        under a tenant overlay may have changed since it was created)."""
        version = self.get(version_id)
        self.engine_for_version(version_id)  # raises PolicyLoadError; nothing changes then
        with self.db.session() as s:
            s.execute(update(PolicyVersion).where(
                PolicyVersion.scope_type == version.scope_type,
                PolicyVersion.scope_id == version.scope_id,
                PolicyVersion.id != version_id).values(active=False))
            s.execute(update(PolicyVersion).where(PolicyVersion.id == version_id).values(
                active=True, activated_at=datetime.now(UTC)))
        self._active.clear()
        return self.get(version_id)

    def deactivate(self, version_id: int) -> PolicyVersion:
        """Stop using a version: its scope falls back to the broader one (or shipped files)."""
        self.get(version_id)
        with self.db.session() as s:
            s.execute(update(PolicyVersion).where(PolicyVersion.id == version_id)
                      .values(active=False))
        self._active.clear()
        return self.get(version_id)
