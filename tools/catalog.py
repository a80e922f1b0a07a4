"""The registered tool catalogue, shared by every autopilot and exportable as JSON Schema."""

from __future__ import annotations

from functools import lru_cache

from tools import maintenance
from tools.registry import ToolRegistry


@lru_cache(maxsize=1)
def build_registry() -> ToolRegistry:
    registry = ToolRegistry()
    maintenance.register(registry)
    return registry
