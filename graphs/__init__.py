"""Autopilot graphs. `AUTOPILOTS` maps graph id -> spec; `build_graph` gives the spine."""

from __future__ import annotations

import importlib
from functools import lru_cache

from graphs.spine import AutopilotSpec, build_graph


class UnknownGraphError(KeyError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"unknown graph {self.name!r}; available: {', '.join(sorted(autopilots()))}"


@lru_cache(maxsize=1)
def _discover() -> tuple[AutopilotSpec, ...]:
    """Every subpackage of `graphs` with a `SPEC` is an autopilot: adding one is adding a
    package, with no registry to edit."""
    import pkgutil

    import graphs

    specs = []
    for info in sorted(pkgutil.iter_modules(graphs.__path__), key=lambda m: m.name):
        if not info.ispkg:
            continue
        module = importlib.import_module(f"graphs.{info.name}")
        spec = getattr(module, "SPEC", None)
        if isinstance(spec, AutopilotSpec):
            if spec.name != info.name:
                raise RuntimeError(f"graphs/{info.name}: SPEC.name is {spec.name!r}; it must "
                                   "match the package name")
            specs.append(spec)
    return tuple(specs)


def autopilots() -> dict[str, AutopilotSpec]:
    return {spec.name: spec for spec in _discover()}


def get_spec(name: str) -> AutopilotSpec:
    specs = autopilots()
    if name not in specs:
        raise UnknownGraphError(name)
    return specs[name]


__all__ = ["AutopilotSpec", "UnknownGraphError", "autopilots", "build_graph", "get_spec"]
