"""The HTTP API (FastAPI). This first part is read-only: runs (with their ledger timeline),
pending approvals and the exception inbox, each scoped to the caller's tenant.

Callers authenticate with an API key (`Authorization: Bearer <key>`); `AUTOPILOT_API_KEYS`
maps each key to a principal: `{"<key>": {"tenant": "acme", "subject": "maria@acme.example",
"roles": ["operator"]}}`. The tenant always comes from the key, never from the request, and a
record of another tenant is a 404, exactly like one that does not exist.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field, ValidationError

from autopilot.checkpoint import open_checkpointer
from autopilot.config import Settings
from autopilot.runtime import Runner, RunNotFound
from autopilot.services import Services
from tools.gateway import Principal


class KeyGrant(BaseModel):
    tenant: str = Field(min_length=1)
    subject: str = Field(min_length=1)
    roles: list[str] = ["viewer"]


def load_keys(raw: str) -> dict[str, KeyGrant]:
    """Parse `AUTOPILOT_API_KEYS`; a malformed value stops the server with the field named."""
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise ValueError("must be a JSON object of key -> grant")
        return {key: KeyGrant.model_validate(grant) for key, grant in data.items()}
    except (ValueError, ValidationError) as exc:
        raise ValueError(f"AUTOPILOT_API_KEYS is not valid: {exc}") from None


_bearer = HTTPBearer(auto_error=False)


def principal(request: Request, creds: Annotated[HTTPAuthorizationCredentials | None,
                                                 Depends(_bearer)]) -> Principal:
    keys: dict[str, KeyGrant] = request.app.state.keys
    grant = keys.get(creds.credentials) if creds is not None else None
    if grant is None:
        raise HTTPException(status_code=401, detail="a valid API key is required "
                                                    "(Authorization: Bearer <key>)",
                            headers={"WWW-Authenticate": "Bearer"})
    return Principal("user", grant.subject, grant.tenant, frozenset(grant.roles))


Caller = Annotated[Principal, Depends(principal)]


def _runner(request: Request) -> Runner:
    return request.app.state.runner  # type: ignore[no-any-return]


def _run_json(run: Any) -> dict[str, Any]:
    return {"id": run.thread_id, "graph": run.graph, "tenant_id": run.tenant_id,
            "status": run.status, "current_node": run.current_node, "summary": run.summary,
            "policy_version": run.policy_version, "trace_id": run.trace_id,
            "created_at": run.created_at.isoformat(), "updated_at": run.updated_at.isoformat()}


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.keys = load_keys(settings.api_keys)
        services = Services.create(settings)
        with open_checkpointer(settings) as checkpointer:
            app.state.runner = Runner(services, checkpointer)
            try:
                yield
            finally:
                services.close()

    app = FastAPI(title="Governed autopilots", version="0.4", lifespan=lifespan)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/runs")
    def list_runs(caller: Caller, request: Request,
                  status: Annotated[str | None, Query()] = None,
                  graph: Annotated[str | None, Query()] = None) -> dict[str, Any]:
        runs = _runner(request).list_runs(caller.tenant_id)
        out = [_run_json(r) for r in runs
               if (status is None or r.status == status) and (graph is None or r.graph == graph)]
        return {"runs": out}

    @app.get("/v1/runs/{run_id}")
    def get_run(run_id: str, caller: Caller, request: Request) -> dict[str, Any]:
        runner = _runner(request)
        try:
            run = runner.run_record(run_id)
        except RunNotFound:
            run = None
        if run is None or run.tenant_id != caller.tenant_id:
            raise HTTPException(status_code=404, detail=f"no run {run_id!r}")
        view = runner.view(run_id)
        timeline = [{"seq": e.seq, "at": e.created_at.isoformat(), "event": e.event_type,
                     "payload": e.payload}
                    for e in runner.services.ledger.story(run_id, tenant_id=caller.tenant_id)]
        return {**_run_json(run), "proposals": (view.values or {}).get("proposals", []),
                "pending_approval": view.pending_approval, "timeline": timeline}

    @app.get("/v1/approvals")
    def list_approvals(caller: Caller, request: Request) -> dict[str, Any]:
        pending = _runner(request).pending_approvals(caller.tenant_id)
        return {"approvals": [{"id": a.id, "run_id": a.thread_id, "graph": a.graph,
                               "severity": a.severity, "created_at": a.created_at.isoformat(),
                               "request": a.request} for a in pending]}

    @app.get("/v1/exceptions")
    def list_exceptions(caller: Caller, request: Request) -> dict[str, Any]:
        rows = _runner(request).exceptions(caller.tenant_id)
        return {"exceptions": [{"id": e.id, "run_id": e.thread_id, "graph": e.graph,
                                "severity": e.severity, "category": e.category,
                                "title": e.title, "details": e.details, "status": e.status,
                                **e.context, "created_at": e.created_at.isoformat()}
                               for e in rows]}

    return app
