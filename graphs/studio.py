"""Graphs exported for LangGraph hosts (`langgraph dev` / Studio): uncompiled builders.

The host compiles them with its own checkpointer; our runtime compiles the same builders
with SQLite/Postgres. Nodes without a runtime context use services from the environment
(AUTOPILOT_DATA_DIR / DATABASE_URL), so run `autopilot seed` against the same settings first.
"""

from graphs import build_graph, get_spec

maintenance = build_graph(get_spec("maintenance"))
