"""Graphs exported for LangGraph hosts (`langgraph dev` / Studio): uncompiled builders.

The host compiles them with its own checkpointer; our runtime compiles the same builders
with SQLite/Postgres. Nodes without a runtime context use services from the environment
(AUTOPILOT_DATA_DIR / DATABASE_URL), so run `autopilot seed` against the same settings first.
"""

from typing import Any

from graphs import autopilots, build_graph

# One uncompiled builder per autopilot, as module attributes named after it (langgraph.json
# points at `./graphs/studio.py:<name>`).
BUILDERS: dict[str, Any] = {name: build_graph(spec) for name, spec in autopilots().items()}
globals().update(BUILDERS)
