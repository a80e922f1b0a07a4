"""HTTP API (FastAPI) over the runtime in `autopilot.runtime`; see `api.app.create_app`.

So far read-only (runs with their ledger timeline, approvals, exceptions), scoped to the
tenant of the caller's API key. Events intake, decisions, workers and the scheduler follow.
"""
