"""Graduated autonomy (seed 004 L0-L4, seed 000 modes) as data the Cedar policies read.

The level an action needs to run on its own follows from the tool registry: reads need L0,
reversible writes L2, irreversible writes L4. Any write needs at least L1 to be proposed for
approval; at L0 the autopilot only observes.
"""

from __future__ import annotations

from typing import Any

from policy.schema import PolicyLoadError

LEVELS = {"L0": 0, "L1": 1, "L2": 2, "L3": 3, "L4": 4}
MODES = {"read_only": 0, "propose_actions": 1, "apply_allowed": 3}


def parse_level(value: str, where: str) -> int:
    if value in LEVELS:
        return LEVELS[value]
    if value in MODES:
        return MODES[value]
    raise PolicyLoadError([f"{where}: {value!r} is not a level (L0-L4) or a mode "
                           f"({', '.join(MODES)})"])


def required_for_auto(kind: str, reversible: bool) -> int:
    if kind == "read":
        return 0
    return 2 if reversible else 4


class AutonomyTable:
    """Levels per (autopilot, tool), validated when the policy bundle loads."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.default = parse_level(config.get("default", "propose_actions"), "autonomy.default")
        if self.default == 4:
            raise PolicyLoadError(["autonomy.default: L4 cannot be a global default"])
        self.graphs: dict[str, tuple[int, dict[str, int]]] = {}
        for graph, section in config.get("graphs", {}).items():
            where = f"autonomy.graphs.{graph}"
            default = parse_level(section.get("default", "propose_actions"), f"{where}.default")
            tools = {tool: parse_level(level, f"{where}.tools.{tool}")
                     for tool, level in section.get("tools", {}).items()}
            if not section.get("allowL4", False):
                refused = [t for t, lvl in tools.items() if lvl == 4] + (
                    ["(default)"] if default == 4 else [])
                if refused:
                    raise PolicyLoadError([f"{where}: L4 for {', '.join(refused)} is refused "
                                           "unless allowL4 is true"])
            self.graphs[graph] = (default, tools)

    def level(self, graph: str, tool: str) -> int:
        default, tools = self.graphs.get(graph, (self.default, {}))
        return tools.get(tool, default)
