"""HTTP API (FastAPI) over the runtime in `autopilot.runtime`.

Empty on purpose for now: the spine, CLI and runtime exist; the endpoints (events intake,
runs, approvals that resume runs, exception inbox, time travel) are the service issue's work.
"""
