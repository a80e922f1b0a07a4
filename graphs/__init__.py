"""Autopilot graphs. `AUTOPILOTS` maps graph id -> spec; `build_graph` gives the spine."""

from __future__ import annotations

from graphs.spine import AutopilotSpec, build_graph


class UnknownGraphError(KeyError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"unknown graph {self.name!r}; available: {', '.join(sorted(autopilots()))}"


def autopilots() -> dict[str, AutopilotSpec]:
    from graphs.maintenance import SPEC as maintenance

    return {maintenance.name: maintenance}


def get_spec(name: str) -> AutopilotSpec:
    specs = autopilots()
    if name not in specs:
        raise UnknownGraphError(name)
    return specs[name]


__all__ = ["AutopilotSpec", "UnknownGraphError", "autopilots", "build_graph", "get_spec"]
