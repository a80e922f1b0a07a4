"""KPIs, Prometheus metrics and request trace ids.

A known mix of runs (autonomous, approved, rejected, blocked and escalated, a close-out) gives
exact KPI numbers on SQLite and Postgres; then the HTTP side: `/v1/kpis`, `/metrics` and the
`X-Trace-Id` echo with its JSON access-log line, on an in-process app (TestClient) and on a
real uvicorn server.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from api import errors, metrics
from api.auth import load_env_keys
from api.routes import kpis as kpis_route
from autopilot.db import ALL_TENANTS
from autopilot.kpis import compute_kpis, percentile
from autopilot.models import Approval, WorkOrder
from autopilot.runtime import Runner
from autopilot.seed import seed_tenant
from tests.helpers import (
    TENANT,
    approve_all,
    cli_ok,
    issue,
    no_ticks,
    pm_due,
    query_app_db,
    serve_api,
)

HEATER = "Water heater is broken, no hot water since yesterday."
KEYS = {"k-view": {"tenant": TENANT, "subject": "ana@acme.example", "roles": ["viewer"]},
        "k-other": {"tenant": "other", "subject": "eve@other.example", "roles": ["viewer"]}}
VIEW = {"Authorization": "Bearer k-view"}


def _work_order(runner: Runner, source_ref: str) -> WorkOrder:
    with runner.services.db.session(ALL_TENANTS) as s:
        return s.scalar(select(WorkOrder).where(WorkOrder.tenant_id == TENANT,
                                                WorkOrder.source_ref == source_ref))


def _work_completed(n: int, work_order_id: str, cost: float) -> dict[str, Any]:
    return {"event_id": f"evt-{n}", "tenant_id": TENANT, "source": "test",
            "event_type": "work_completed", "occurred_at": datetime.now(UTC).isoformat(),
            "payload": {"work_order_id": work_order_id, "final_cost": cost,
                        "resolution": "replaced trap and washer"}}


def seed_mix(runner: Runner) -> dict[str, str]:
    """Five acme runs with known KPIs (and one run of another tenant that must not count):

    leak       autonomous: 4 actions allowed and written, work order DISPATCHED
    close-out  the leak's work_completed (final cost 230): autonomous, work order CLOSED
    heater     dispatch (1400) needs approval -> approved -> resolved; SLA pushed past
    pest PM    dispatch needs approval -> rejected; its work order stays open, SLA ahead
    boiler PM  dispatch (6200) BLOCKed -> whole plan held, escalated FINANCIAL, no write
    """
    leak = runner.submit("maintenance", issue(1))
    heater = runner.submit("maintenance", issue(2, unit="P-FLATBUSH-3B", text=HEATER))
    pest = runner.submit("maintenance", pm_due(3, "PM-FLAT-PEST"))
    boiler = runner.submit("maintenance", pm_due(4, "PM-GRAND-BOILER"))
    assert (leak.status, heater.status, pest.status, boiler.status) == (
        "completed", "needs_approval", "needs_approval", "escalated")
    assert runner.decide(heater.thread_id, approve_all(heater), reviewer="mgr").status == \
        "completed"
    runner.decide(pest.thread_id, {"decisions": [{"type": "reject", "message": "not now"}]},
                  reviewer="mgr")
    leak_wo = _work_order(runner, "msg:MSG-1")
    close = runner.submit("maintenance", _work_completed(5, leak_wo.id, 230))
    assert close.status == "completed" and _work_order(runner, "msg:MSG-1").status == "CLOSED"

    heater_wo = _work_order(runner, "msg:MSG-2")
    now = datetime.now(UTC)
    with runner.services.db.session(TENANT) as s:
        # The heater's vendor has not finished and its SLA has passed: a miss.
        s.execute(update(WorkOrder).where(WorkOrder.tenant_id == TENANT,
                                          WorkOrder.id == heater_wo.id)
                  .values(sla_due_at=now - timedelta(hours=1)))
        # Decisions 60 s and 180 s after their requests.
        for thread_id, secs in ((heater.thread_id, 60), (pest.thread_id, 180)):
            s.execute(update(Approval).where(Approval.thread_id == thread_id).values(
                created_at=now - timedelta(seconds=secs + 5),
                decided_at=now - timedelta(seconds=5)))

    seed_tenant(runner.services.db, "other")
    assert runner.submit("maintenance", issue(9, tenant="other")).status == "completed"
    return {"leak": leak.thread_id, "heater": heater.thread_id, "pest": pest.thread_id,
            "boiler": boiler.thread_id, "close": close.thread_id}


def assert_mix_kpis(k: dict[str, Any]) -> None:
    """The KPI set of `seed_mix` (shared by the function and the HTTP tests)."""
    assert k["runs"] == {"started": 5, "finished": 5, "nothing_to_do": 0,
                         "by_status": {"completed": 4, "escalated": 1}}
    # leak and close-out; the heater and the pest PM asked a person, the boiler escalated
    assert k["autonomous_resolution"] == {"numerator": 2, "denominator": 5, "rate": 0.4}
    esc = k["escalation"]
    assert (esc["numerator"], esc["denominator"], esc["rate"]) == (1, 5, 0.2)
    assert esc["by_category"]["FINANCIAL"] == {"numerator": 1, "denominator": 5, "rate": 0.2}
    assert {c: v["numerator"] for c, v in esc["by_category"].items()} == {
        "FINANCIAL": 1, "LEGAL": 0, "SAFETY": 0, "SLA": 0, "SYSTEM": 0}
    appr = k["approvals"]
    assert {key: appr[key] for key in ("requested", "decided", "approved", "edited",
                                       "rejected", "expired")} == {
        "requested": 2, "decided": 2, "approved": 1, "edited": 0, "rejected": 1, "expired": 0}
    assert appr["by_status"] == {"decided": 2}
    assert (appr["approval_rate"], appr["edit_rate"], appr["rejection_rate"]) == (0.5, 0.0, 0.5)
    ttd = appr["time_to_decision_seconds"]
    assert ttd["count"] == 2
    assert ttd["p50"] == pytest.approx(120) and ttd["mean"] == pytest.approx(120)
    assert ttd["p90"] == pytest.approx(168)  # 60 + 0.9 * (180 - 60)
    # leak closed before its SLA; heater past due and open; pest open, not yet due
    assert k["sla_attainment"] == {"numerator": 1, "denominator": 2, "rate": 0.5, "met": 1,
                                   "missed": 1, "pending": 1}
    assert k["cost_per_resolved_work_order"] == {"resolved_work_orders": 1,
                                                 "total_cost": 230.0, "value": 230.0}
    # gate decisions on distinct actions: leak 4 + heater 4 + pest 3 + boiler 3 + close 4
    # (with the vendor's record remembered); only the boiler's dispatch was blocked
    assert k["blocked_actions"] == {"numerator": 1, "denominator": 18, "rate": 1 / 18}
    # every run but the held boiler wrote something
    assert k["signal_to_action"] == {"numerator": 4, "denominator": 5, "rate": 0.8}


def test_percentile_interpolates_like_percentile_cont() -> None:
    assert percentile([], 0.5) is None
    assert percentile([7.0], 0.9) == 7.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([0.0, 10.0], 0.9) == pytest.approx(9.0)


def test_kpis_of_a_known_mix(runner: Runner) -> None:
    seed_mix(runner)
    now = datetime.now(UTC)
    out = compute_kpis(runner.services.db, TENANT, now - timedelta(hours=1),
                       now + timedelta(minutes=1))
    assert out["tenant_id"] == TENANT and out["graph"] is None
    assert_mix_kpis(out["total"])
    assert list(out["by_graph"]) == ["maintenance"]
    assert out["by_graph"]["maintenance"] == out["total"]
    json.dumps(out)  # plain JSON-able

    # The other tenant sees only its own run.
    other = compute_kpis(runner.services.db, "other", now - timedelta(hours=1),
                         now + timedelta(minutes=1))["total"]
    assert other["runs"]["started"] == 1
    assert other["autonomous_resolution"]["numerator"] == 1

    # A window before the runs: nothing, and rates are None rather than 0.
    empty = compute_kpis(runner.services.db, TENANT, now - timedelta(days=2),
                         now - timedelta(days=1), graph="maintenance")
    assert list(empty["by_graph"]) == ["maintenance"]
    e = empty["total"]
    assert e["runs"]["started"] == 0
    assert e["autonomous_resolution"]["rate"] is None
    assert e["approvals"]["approval_rate"] is None
    assert e["approvals"]["time_to_decision_seconds"]["p50"] is None
    assert e["sla_attainment"]["rate"] is None
    assert e["cost_per_resolved_work_order"]["value"] is None
    assert e["signal_to_action"]["rate"] is None


# ---------------------------------------------------------------------- in-process app


def _app_for(runner: Runner) -> FastAPI:
    """The KPI router and the metrics on an app around an existing runner (the test's)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.env_keys = load_env_keys(json.dumps(KEYS))
        app.state.runner = runner
        yield

    app = FastAPI(lifespan=lifespan)
    errors.install(app)
    metrics.install(app)
    app.include_router(kpis_route.router)
    return app


def _sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in a Prometheus text exposition."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#") or " " not in line:
            continue
        series, value = line.rsplit(" ", 1)
        sname, _, rest = series.partition("{")
        got = ",".join(sorted(rest.rstrip("}").split(","))) if rest else ""
        if sname == name and got == want:
            return float(value)
    return None


def _access_lines(text: str) -> list[dict[str, Any]]:
    out = []
    for line in text.splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("event") == "http_request":
                out.append(record)
    return out


def test_kpis_and_metrics_endpoints_in_process(runner: Runner,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    runs = seed_mix(runner)
    with TestClient(_app_for(runner)) as client:
        assert client.get("/v1/kpis").status_code == 401
        got = client.get("/v1/kpis", headers={**VIEW, "X-Trace-Id": "trace-kpi-1"})
        assert got.status_code == 200, got.text
        assert got.headers["X-Trace-Id"] == "trace-kpi-1"
        body = got.json()
        assert body["tenant_id"] == TENANT
        assert_mix_kpis(body["total"])
        until = datetime.fromisoformat(body["until"])
        assert until - datetime.fromisoformat(body["since"]) == timedelta(days=30)

        bad = client.get("/v1/kpis", headers=VIEW, params={
            "since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"})
        assert bad.status_code == 422
        assert bad.json()["error"]["fields"][0]["field"] == "since"
        minted = bad.headers["X-Trace-Id"]
        assert re.fullmatch(r"[0-9a-f]{32}", minted)
        # An unusable trace id is replaced, not echoed.
        assert client.get("/healthz-nope", headers={"X-Trace-Id": "a b\nc"}
                          ).headers["X-Trace-Id"] != "a b\nc"

        other = client.get("/v1/kpis", headers={"Authorization": "Bearer k-other"}).json()
        assert other["total"]["runs"]["started"] == 1

        scrape = client.get("/metrics")
        assert scrape.status_code == 200
        assert scrape.headers["content-type"].startswith("text/plain")
        text = scrape.text
    # Database gauges span tenants: acme 4 completed + other 1; boiler escalated.
    assert _sample(text, "autopilot_runs", graph="maintenance", status="completed") == 5
    assert _sample(text, "autopilot_runs", graph="maintenance", status="escalated") == 1
    assert _sample(text, "autopilot_runs", graph="maintenance", status="needs_approval") == 0
    assert _sample(text, "autopilot_approvals_pending", graph="maintenance") == 0
    assert _sample(text, "autopilot_exceptions_open", category="FINANCIAL") == 1
    assert _sample(text, "autopilot_exceptions_open", category="SAFETY") == 0
    ledger_total = _sample(text, "autopilot_ledger_entries_total")
    assert ledger_total is not None and ledger_total > 0
    assert _sample(text, "autopilot_db_scrape_ok") == 1
    assert _sample(text, "http_requests_total", method="GET", route="/v1/kpis",
                   status="200") == 2
    assert _sample(text, "http_requests_total", method="GET", route="/v1/kpis",
                   status="401") == 1
    assert _sample(text, "http_requests_total", method="GET", route="/v1/kpis",
                   status="422") == 1
    assert _sample(text, "http_requests_total", method="GET", route="(unmatched)",
                   status="404") == 1
    assert _sample(text, "http_request_duration_seconds_count", method="GET",
                   route="/v1/kpis") == 4
    assert runs["leak"] not in text  # no raw paths or ids in labels

    lines = _access_lines(capsys.readouterr().err)
    mine = [r for r in lines if r["trace_id"] == "trace-kpi-1"]
    assert len(mine) == 1
    assert {k: mine[0][k] for k in ("method", "route", "status", "level")} == {
        "method": "GET", "route": "/v1/kpis", "status": 200, "level": "info"}
    assert isinstance(mine[0]["duration_ms"], float) and "timestamp" in mine[0]
    assert any(r["trace_id"] == minted and r["status"] == 422 for r in lines)


def test_two_apps_in_one_process_keep_separate_registries(runner: Runner) -> None:
    first, second = _app_for(runner), _app_for(runner)
    with TestClient(first) as a, TestClient(second) as b:
        a.get("/v1/kpis", headers=VIEW)
        assert _sample(b.get("/metrics").text, "http_requests_total", method="GET",
                       route="/v1/kpis", status="200") is None
        assert _sample(a.get("/metrics").text, "http_requests_total", method="GET",
                       route="/v1/kpis", status="200") == 1


# ---------------------------------------------------------------------- real server


@pytest.fixture
def server(sqlite_env: dict[str, str], tmp_path: Path
           ) -> Iterator[tuple[str, dict[str, str], Path]]:
    """`autopilot api` on SQLite with its stderr (the access log) in a file; no scheduler
    tick comes, so no run appears on its own."""
    env = {**sqlite_env, "AUTOPILOT_API_KEYS": json.dumps(KEYS),
           "AUTOPILOT_SCHEDULES": no_ticks()}
    cli_ok(env, "seed")
    with serve_api(env, tmp_path / "logs") as (base, stderr):
        yield base, env, stderr


@pytest.mark.slow
def test_kpis_metrics_and_trace_ids_on_a_real_server(
        server: tuple[str, dict[str, str], Path]) -> None:
    base, env, log = server
    cli_ok(env, "run", "maintenance", stdin=json.dumps(issue(1)))
    heater = json.loads(cli_ok(env, "run", "maintenance", "--json", stdin=json.dumps(
        issue(2, unit="P-FLATBUSH-3B", text=HEATER))))
    cli_ok(env, "run", "maintenance", stdin=json.dumps(pm_due(3, "PM-GRAND-BOILER")))

    trace = "kpi-e2e-" + "0" * 8
    got = httpx.get(f"{base}/v1/kpis", headers={**VIEW, "X-Trace-Id": trace})
    assert got.status_code == 200, got.text
    assert got.headers["x-trace-id"] == trace
    k = got.json()["total"]
    assert k["runs"]["started"] == 3
    assert k["runs"]["by_status"] == {"completed": 1, "escalated": 1, "needs_approval": 1}
    assert k["runs"]["finished"] == 2
    assert k["autonomous_resolution"] == {"numerator": 1, "denominator": 2, "rate": 0.5}
    assert k["escalation"]["by_category"]["FINANCIAL"]["numerator"] == 1
    assert k["approvals"]["by_status"] == {"pending": 1} and k["approvals"]["decided"] == 0
    assert k["signal_to_action"] == {"numerator": 2, "denominator": 3, "rate": 2 / 3}
    assert k["blocked_actions"] == {"numerator": 1, "denominator": 11, "rate": 1 / 11}
    assert got.json()["by_graph"]["maintenance"] == k
    assert "X-Trace-Id" in httpx.get(f"{base}/v1/kpis", headers=VIEW).headers

    text = httpx.get(f"{base}/metrics").text
    assert _sample(text, "autopilot_runs", graph="maintenance", status="completed") == 1
    assert _sample(text, "autopilot_runs", graph="maintenance", status="needs_approval") == 1
    assert _sample(text, "autopilot_runs", graph="maintenance", status="escalated") == 1
    assert _sample(text, "autopilot_approvals_pending", graph="maintenance") == 1
    assert _sample(text, "autopilot_exceptions_open", category="FINANCIAL") == 1
    [(entries,)] = query_app_db(env, "SELECT count(*) FROM ledger_entries")
    assert _sample(text, "autopilot_ledger_entries_total") == entries
    assert _sample(text, "http_requests_total", method="GET", route="/v1/kpis",
                   status="200") == 2

    # Approved elsewhere (the CLI, another process): the next scrape already shows it.
    cli_ok(env, "approve", heater["thread_id"])
    text = httpx.get(f"{base}/metrics").text
    assert _sample(text, "autopilot_approvals_pending", graph="maintenance") == 0
    assert _sample(text, "autopilot_runs", graph="maintenance", status="completed") == 2

    access = [r for r in _access_lines(log.read_text()) if r["trace_id"] == trace]
    assert len(access) == 1
    assert (access[0]["route"], access[0]["status"], access[0]["method"]) == (
        "/v1/kpis", 200, "GET")
