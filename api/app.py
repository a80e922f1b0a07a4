"""The HTTP API (FastAPI): events in, runs, approvals that resume runs, the exception inbox,
time travel, policies, KPIs, the kill switch and Prometheus metrics.

The app owns one `Runner` (graphs compiled on the configured checkpointer) and one `JobQueue`.
On the embedded SQLite default it also runs the in-process worker and scheduler, so one process
is the whole service (`make run`); on Postgres, `autopilot api` only queues work and
`autopilot worker` processes run it (`autopilot api --worker` runs both in one process).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import errors
from api.auth import load_env_keys
from api.routes import approvals, events, exceptions, runs
from autopilot.checkpoint import open_checkpointer
from autopilot.config import Settings
from autopilot.jobs import JobQueue
from autopilot.runtime import Runner
from autopilot.services import Services

VERSION = "0.5.0"


def create_app(settings: Settings | None = None, *, worker: bool | None = None,
               migrate: bool = False) -> FastAPI:
    """`worker`: run jobs in this process (default: only on the embedded SQLite default).
    `migrate`: upgrade the schema at start-up instead of refusing an outdated one."""
    settings = settings or Settings()
    run_worker = (not settings.uses_postgres) if worker is None else worker

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.env_keys = load_env_keys(settings.api_keys)
        services = Services.create(settings, run_migrations=migrate)
        queue = JobQueue(settings)
        try:
            with open_checkpointer(settings) as checkpointer:
                runner = Runner(services, checkpointer)
                queue.runner = runner
                app.state.runner, app.state.queue = runner, queue
                queue.start(worker=run_worker)
                try:
                    yield
                finally:
                    queue.stop()
        finally:
            services.close()

    app = FastAPI(
        title="Governed autopilots", version=VERSION, lifespan=lifespan,
        description="Autopilots propose actions; a deterministic policy gate allows, holds for "
                    "approval or blocks each; people decide here; every step is on a "
                    "tamper-evident ledger. Authenticate with `Authorization: Bearer <key>`.")
    errors.install(app)

    @app.get("/healthz", tags=["service"], summary="Liveness")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    for router in (events.router, runs.router, approvals.router, exceptions.router):
        app.include_router(router)
    return app
