"""The registered tool catalogue, shared by every autopilot and exportable as JSON Schema."""

from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache

import tools
from tools.registry import ToolRegistry

# Modules of this package that are infrastructure, not tool sets.
_INFRA = {"catalog", "registry", "gateway", "faults"}


@lru_cache(maxsize=1)
def build_registry() -> ToolRegistry:
    """Every module of `tools` with a module-level `register(registry)` adds its tools, in
    name order (a tool name registered twice is an error)."""
    registry = ToolRegistry()
    for info in sorted(pkgutil.iter_modules(tools.__path__), key=lambda m: m.name):
        if info.name in _INFRA or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"tools.{info.name}")
        register = getattr(module, "register", None)
        if callable(register):
            register(registry)
    return registry
