"""Events in: `POST /v1/events` (a typed envelope per event type) and `POST /v1/runs`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query, Request, Response
from pydantic import BaseModel, Field, create_model

from api.auth import Ingester
from api.deps import QueueDep, RunnerDep
from api.errors import ERRORS, ApiError
from graphs import autopilots
from graphs.trigger import TriggerEnvelope, TriggerError

router = APIRouter(tags=["events"])


class Accepted(BaseModel):
    run_id: str = Field(description="the run (LangGraph thread) id")
    graph: str
    status: str
    deduplicated: bool = Field(description="true: this trigger already started this run")


def routes() -> dict[str, list[str]]:
    """event type -> the autopilots that handle it."""
    out: dict[str, list[str]] = {}
    for name, spec in autopilots().items():
        for event_type in spec.event_types:
            out.setdefault(event_type, []).append(name)
    return out


def event_models() -> list[type[BaseModel]]:
    """One envelope model per event type, for the OpenAPI document."""
    base = {name: (f.annotation, f) for name, f in TriggerEnvelope.model_fields.items()
            if name not in ("event_type", "payload")}
    models = []
    for spec in autopilots().values():
        for event_type, payload in spec.event_types.items():
            models.append(create_model(
                f"Event_{event_type}", __doc__=payload.__doc__,
                event_type=(Literal[event_type], ...), payload=(payload, ...),  # type: ignore[valid-type]
                **base))  # type: ignore[call-overload]
    return models


def _start(graph_hint: str | None, body: Any, caller: Any, runner: Any, queue: Any,
           response: Response, request: Request, *, dedupe_suffix: str = "") -> Accepted:
    if not isinstance(body, dict):
        raise ApiError(422, "invalid_event", "the event must be a JSON object", field="(root)")
    if body.get("tenant_id") not in (None, caller.tenant_id):
        raise ApiError(403, "wrong_tenant", f"this key may only post events for tenant "
                       f"{caller.tenant_id!r}", field="tenant_id")
    body = {**body, "tenant_id": caller.tenant_id}
    if not body.get("trace_id"):  # the run carries the request's trace id (X-Trace-Id)
        body["trace_id"] = getattr(request.state, "trace_id", None)
    graph = graph_hint
    if graph is None:
        handlers = routes().get(str(body.get("event_type", "")), [])
        if len(handlers) > 1:
            raise ApiError(422, "ambiguous_event", f"event type {body['event_type']!r} is "
                           f"handled by {', '.join(handlers)}; name one with ?graph=",
                           field="graph")
        if not handlers:
            raise ApiError(422, "invalid_event", f"unknown event type "
                           f"{body.get('event_type')!r}; expected one of "
                           f"{', '.join(sorted(routes()))}", field="event_type")
        graph = handlers[0]
    elif graph not in autopilots():
        raise ApiError(404, "not_found", f"no autopilot {graph!r}", field="graph")
    try:
        view, created = runner.enqueue(graph, body, dedupe_suffix=dedupe_suffix)
    except TriggerError as exc:
        raise ApiError(422, "invalid_event", str(exc), fields=exc.fields) from None
    if created:
        queue.defer_advance(view.thread_id)
    else:
        response.status_code = 200
    return Accepted(run_id=view.thread_id, graph=graph, status=view.status,
                    deduplicated=not created)


_EVENT_DOC = ("202: a new run is queued. 200: this trigger (same dedupe key: type, reference, "
              "scope, UTC day) already started a run; its id is returned and nothing new "
              "starts.")


@router.post("/v1/events", status_code=202, response_model=Accepted,
             responses={**ERRORS, 200: {"model": Accepted, "description": "duplicate"}},
             summary="Post a business event", description=_EVENT_DOC)
def post_event(caller: Ingester, runner: RunnerDep, queue: QueueDep, response: Response,
               request: Request,
               event: Annotated[dict[str, Any], Body(description="an event envelope")],
               graph: Annotated[str | None, Query(description="the autopilot, when more than "
                                                  "one handles this event type")] = None,
               ) -> Accepted:
    return _start(graph, event, caller, runner, queue, response, request)


class ManualRun(BaseModel):
    graph: str = Field(description="the autopilot to run")
    event: dict[str, Any] = Field(description="the trigger envelope, as for /v1/events")
    force: bool = Field(default=False, description="start a new run even if this trigger "
                                                   "already ran today")


@router.post("/v1/runs", status_code=202, response_model=Accepted,
             responses={**ERRORS, 200: {"model": Accepted, "description": "duplicate"}},
             tags=["runs"], summary="Start a run by hand")
def start_run(caller: Ingester, runner: RunnerDep, queue: QueueDep, response: Response,
              request: Request, body: ManualRun) -> Accepted:
    suffix = ""
    if body.force:
        import uuid

        suffix = f"|manual:{uuid.uuid4().hex[:12]}"
    return _start(body.graph, body.event, caller, runner, queue, response, request,
                  dedupe_suffix=suffix)
