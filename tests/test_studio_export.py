"""`langgraph.json` lists every autopilot, each pointing at its uncompiled builder."""

from __future__ import annotations

import json
from pathlib import Path

from graphs import autopilots, studio

ROOT = Path(__file__).resolve().parent.parent


def test_langgraph_json_lists_every_autopilot_builder() -> None:
    config = json.loads((ROOT / "langgraph.json").read_text())
    assert config["graphs"] == {name: f"./graphs/studio.py:{name}" for name in autopilots()}
    for name in autopilots():
        builder = getattr(studio, name)
        assert {"perceive", "plan", "gate", "approval", "execute", "verify"} <= set(
            builder.nodes)
    assert (ROOT / config["env"]).is_file()
