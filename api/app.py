"""The HTTP API (FastAPI): events in, runs, approvals that resume runs, the exception inbox,
time travel, policies, KPIs, the kill switch and Prometheus metrics.

The app owns one `Runner` (graphs compiled on the configured checkpointer) and one `JobQueue`.
On the embedded SQLite default it also runs the in-process worker and scheduler, so one process
is the whole service (`make run`); on Postgres, `autopilot api` only queues work and
`autopilot worker` processes run it (`autopilot api --worker` runs both in one process).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Union

from fastapi import FastAPI

from api import errors, metrics
from api.auth import load_env_keys
from api.routes import approvals, autonomy, events, exceptions, kpis, policies, runs
from autopilot.checkpoint import open_checkpointer
from autopilot.config import Settings
from autopilot.jobs import JobQueue
from autopilot.runtime import Runner
from autopilot.services import Services

VERSION = "0.5.0"


def create_app(settings: Settings | None = None, *, worker: bool | None = None,
               migrate: bool = False,
               on_ready: Callable[[FastAPI], None] | None = None) -> FastAPI:
    """`worker`: run jobs in this process (default: only on the embedded SQLite default).
    `migrate`: upgrade the schema at start-up instead of refusing an outdated one.
    `on_ready`: called once the runner and queue are up (e.g. to post demo events)."""
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
                if on_ready is not None:
                    on_ready(app)
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
    metrics.install(app)

    @app.get("/healthz", tags=["service"], summary="Liveness")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    for router in (events.router, runs.router, approvals.router, exceptions.router,
                   policies.router, autonomy.router, kpis.router):
        app.include_router(router)
    _document_events(app)
    return app


def _document_events(app: FastAPI) -> None:
    """`POST /v1/events` validates per event type itself (so errors name `payload.<field>`);
    the OpenAPI document shows the same contract: one envelope schema per event type."""
    from fastapi.openapi.utils import get_openapi
    from pydantic import TypeAdapter

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version,
                             description=app.description, routes=app.routes)
        models = events.event_models()
        # A union built at run time from a tuple of models: `X | Y` syntax cannot express it.
        union = TypeAdapter(Union[tuple(models)]).json_schema(  # type: ignore[valid-type]  # noqa: UP007
            ref_template="#/components/schemas/{model}")
        schema.setdefault("components", {}).setdefault("schemas", {}).update(
            union.pop("$defs", {}))
        union["oneOf"] = union.pop("anyOf")
        union["discriminator"] = {"propertyName": "event_type", "mapping": {
            m.model_fields["event_type"].annotation.__args__[0]:  # type: ignore[union-attr]
            f"#/components/schemas/{m.__name__}" for m in models}}
        body = schema["paths"]["/v1/events"]["post"]["requestBody"]["content"]
        body["application/json"]["schema"] = union
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
