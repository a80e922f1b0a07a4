"""Prometheus metrics, request trace ids and JSON access logs for the HTTP API.

`install(app)` adds:

- a pure ASGI middleware that takes the caller's `X-Trace-Id` (or mints one), binds it into
  structlog's context for everything logged while serving the request, echoes it back, counts
  `http_requests_total{method,route,status}`, times `http_request_duration_seconds{method,
  route}` and writes one JSON access line. `route` is the matched template
  (`/v1/runs/{run_id}`), never the raw path, so ids cannot blow up label cardinality;
  requests that match no route are `route="(unmatched)"`.
- `GET /metrics` (no auth) in the Prometheus text format, from a registry private to the app
  (several apps in one process do not clash). Besides the HTTP series it carries gauges read
  from the database at scrape time (runs by graph and status, pending approvals, open
  exceptions by category, ledger entries), so they are right even when the work happens in
  other worker processes. They are summed over tenants and carry no tenant label: the endpoint
  is unauthenticated and must not list customers.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterable
from typing import Any

import structlog
from fastapi import FastAPI, Request, Response
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from autopilot.db import ALL_TENANTS
from autopilot.kpis import CATEGORIES
from autopilot.logs import request_logger
from autopilot.models import AgentException, Approval, LedgerEntry, Run
from autopilot.runtime import STATUSES

TRACE_HEADER = "X-Trace-Id"
# A caller's trace id is used only if it is a plain token that fits `runs.trace_id`; anything
# else (log injection, megabyte headers) is replaced by a fresh one.
_TRACE_OK = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")
UNMATCHED = "(unmatched)"
# The classic text format every Prometheus version reads (what `generate_latest` writes).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
log = structlog.get_logger("api.metrics")


def trace_id_from(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The caller's trace id if it is acceptable, else a new uuid4 hex."""
    for name, value in headers:
        if name.lower() == b"x-trace-id":
            candidate = value.decode("latin-1").strip()
            if _TRACE_OK.match(candidate):
                return candidate
            break
    return uuid.uuid4().hex


class HttpMetrics:
    """The per-request series, registered on the app's own registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter("http_requests", "HTTP requests served",
                                ("method", "route", "status"), registry=registry)
        self.duration = Histogram("http_request_duration_seconds",
                                  "Time to serve an HTTP request, by route template",
                                  ("method", "route"), buckets=_BUCKETS, registry=registry)


class RequestTelemetry:
    """ASGI middleware: trace id, metrics and one JSON access-log line per HTTP request.

    Pure ASGI rather than `BaseHTTPMiddleware` so that streaming responses are not buffered
    and the route FastAPI matched is visible in the (shared) scope once the app returns.
    """

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics
        self.access = request_logger()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        trace_id = trace_id_from(scope.get("headers") or [])
        scope.setdefault("state", {})["trace_id"] = trace_id  # request.state.trace_id
        status = 500  # if the app raises before it answers
        started = time.perf_counter()

        async def send_with_trace(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = [(k, v) for k, v in message.get("headers", [])
                           if k.lower() != b"x-trace-id"]
                headers.append((b"x-trace-id", trace_id.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        with structlog.contextvars.bound_contextvars(trace_id=trace_id):
            try:
                await self.app(scope, receive, send_with_trace)
            finally:
                elapsed = time.perf_counter() - started
                route = getattr(scope.get("route"), "path", None) or UNMATCHED
                method = scope.get("method", "")
                self.metrics.requests.labels(method, route, str(status)).inc()
                self.metrics.duration.labels(method, route).observe(elapsed)
                self.access.info("http_request", method=method, route=route, status=status,
                                 duration_ms=round(elapsed * 1000, 3), trace_id=trace_id)


class DatabaseCollector(Collector):
    """Gauges read from the database at scrape time, over all tenants.

    Counting at scrape time (instead of incrementing in this process) is what makes the
    numbers right when runs advance in other worker processes. A failed read is logged and
    reported as `autopilot_db_scrape_ok 0` rather than failing the whole scrape.
    """

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def describe(self) -> list[Metric]:
        return []  # values come from the database; do not query at registration

    def collect(self) -> Iterable[Metric]:
        runner = getattr(self.app.state, "runner", None)
        if runner is None:  # not started yet (or shut down)
            return
        ok = GaugeMetricFamily("autopilot_db_scrape_ok",
                               "1 if the database gauges below were read at this scrape")
        try:
            families = self._read(runner.services.db)
        except Exception as exc:  # a scrape must still answer
            log.warning("metrics_db_read_failed", error=str(exc))
            ok.add_metric([], 0)
            yield ok
            return
        ok.add_metric([], 1)
        yield ok
        yield from families

    @staticmethod
    def _read(db: Any) -> list[Metric]:
        from graphs import autopilots

        runs = GaugeMetricFamily("autopilot_runs", "Runs by autopilot and state-machine status",
                                 labels=("graph", "status"))
        pending = GaugeMetricFamily("autopilot_approvals_pending",
                                    "Approvals waiting for a person, by autopilot",
                                    labels=("graph",))
        exceptions = GaugeMetricFamily("autopilot_exceptions_open",
                                       "Exceptions in the inbox with status OPEN, by category",
                                       labels=("category",))
        ledger = CounterMetricFamily("autopilot_ledger_entries",
                                     "Entries on the append-only audit ledger")
        with db.session(ALL_TENANTS) as s:
            by_run = {(g, st): n for g, st, n in s.execute(
                select(Run.graph, Run.status, func.count()).group_by(Run.graph, Run.status))}
            by_approval = dict(s.execute(
                select(Approval.graph, func.count()).where(Approval.status == "pending")
                .group_by(Approval.graph)).all())
            by_category = dict(s.execute(
                select(AgentException.category, func.count())
                .where(AgentException.status == "OPEN")
                .group_by(AgentException.category)).all())
            entries = s.scalar(select(func.count()).select_from(LedgerEntry)) or 0
        graphs = sorted(set(autopilots()) | {g for g, _ in by_run} | set(by_approval))
        # Every known combination is exported (zeros included) so series do not vanish.
        for g in graphs:
            for st in sorted(set(STATUSES) | {st for gg, st in by_run if gg == g}):
                runs.add_metric([g, st], by_run.get((g, st), 0))
            pending.add_metric([g], by_approval.get(g, 0))
        for category in sorted(set(CATEGORIES) | set(by_category)):
            exceptions.add_metric([category], by_category.get(category, 0))
        ledger.add_metric([], entries)
        return [runs, pending, exceptions, ledger]


def install(app: FastAPI) -> None:
    """Wire the middleware, the private registry and `GET /metrics` into `app`."""
    registry = CollectorRegistry(auto_describe=False)
    http = HttpMetrics(registry)
    registry.register(DatabaseCollector(app))
    app.state.metrics_registry = registry
    app.add_middleware(RequestTelemetry, metrics=http)

    @app.get("/metrics", tags=["service"], summary="Prometheus metrics (text format)",
             response_class=Response,
             responses={200: {"content": {CONTENT_TYPE: {}},
                              "description": "Prometheus text exposition format"}})
    def metrics(_request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE)


__all__ = ["TRACE_HEADER", "DatabaseCollector", "RequestTelemetry", "install", "trace_id_from"]
