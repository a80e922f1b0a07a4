"""Spine overhead: a governed `maintenance` run versus a bare six-node LangGraph graph.

What is measured, per backend, in one process:

* **governed** -- the real `maintenance` autopilot through the project's own `Runner`: one
  `tenant_issue` trigger ("Water heater is broken ...", estimated spend above the auto limit)
  is submitted, the run parks on its approval (`needs_approval`), and `Runner.decide` approves
  every action request and resumes it to `completed`. One sample is the wall time from
  `submit` to the return of `decide`: run/approval bookkeeping in the app tables, perceive
  and plan (read tools), the Cedar policy gate, the interrupt, exactly-once tool execution,
  verification and every checkpoint write. Each run gets its own freshly seeded tenant (seeded
  before the clock starts), so every sample does the same work: a new PLUMBING work order for
  the same unit.
* **baseline** -- a bare `StateGraph` with the same six node names (perceive, plan, gate,
  approval, execute, verify) whose nodes do nothing except the approval node, which calls
  `interrupt(...)`. It is compiled with the same kind of checkpointer (`open_checkpointer`),
  invoked with `durability="sync"` and resumed with `Command(resume=...)`, one thread per run.
  This is the floor: what LangGraph plus a durable checkpointer costs on its own.

The ratio governed/baseline (p50 latency and throughput) is the price of the governance layer.

Backends: SQLite always (in a temporary directory, removed afterwards); Postgres as well when
the environment variable `DATABASE_URL` is a postgresql:// URL. On Postgres the bench creates a
throw-away database `ap_bench_<random>` on that server and drops it at the end, so the
database named in the URL is never touched.

Run it::

    make bench
    .venv/bin/python bench/spine_overhead.py --runs 200 --warmup 10
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python bench/spine_overhead.py

Runs are sequential (one at a time), so runs/s is `runs / sum(latencies)`. The figures are
printed as a table and written to `bench/results/spine_overhead.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, TypedDict
from urllib.parse import urlsplit, urlunsplit

from backends import scratch_postgres
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt
from rich.console import Console
from rich.table import Table

from autopilot.checkpoint import open_checkpointer
from autopilot.config import Settings
from autopilot.runtime import Runner
from autopilot.seed import seed_tenant
from autopilot.services import Services
from graphs.spine import NODES

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_PATH = REPO_ROOT / "bench" / "results" / "spine_overhead.json"
GRAPH = "maintenance"
UNIT = "P-FLATBUSH-3B"
TEXT = "Water heater is broken, no hot water since yesterday."
BASELINE_NODES = NODES  # the same node names as the governed spine

console = Console()


# ---------------------------------------------------------------------------- statistics


@dataclass
class Stats:
    runs: int
    runs_per_s: float
    p50_ms: float
    p99_ms: float
    mean_ms: float
    min_ms: float
    max_ms: float
    samples_ms: list[float] = field(default_factory=list)  # in run order


def percentile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolation percentile (numpy's default) of an already sorted list."""
    if not sorted_values:
        raise ValueError("no samples")
    pos = (len(sorted_values) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def summarise(latencies_s: list[float]) -> Stats:
    samples = [x * 1000 for x in latencies_s]
    ms = sorted(samples)
    return Stats(runs=len(ms), runs_per_s=len(ms) / (sum(ms) / 1000),
                 p50_ms=percentile(ms, 50), p99_ms=percentile(ms, 99),
                 mean_ms=sum(ms) / len(ms), min_ms=ms[0], max_ms=ms[-1],
                 samples_ms=[round(x, 3) for x in samples])


# ---------------------------------------------------------------------------- governed run


def trigger(i: int, tenant_id: str) -> dict[str, Any]:
    return {"event_id": f"evt-{i}", "tenant_id": tenant_id, "source": "bench",
            "event_type": "tenant_issue", "occurred_at": datetime.now(UTC).isoformat(),
            "payload": {"message_id": f"MSG-{i}", "unit_id": UNIT,
                        "resident_id": "R-" + UNIT[2:], "text": TEXT}}


def governed_run(runner: Runner, i: int, tenant_id: str) -> float:
    """One trigger -> needs_approval -> approve -> completed; returns its latency (s)."""
    event = trigger(i, tenant_id)
    start = time.perf_counter()
    view = runner.submit(GRAPH, event)
    if view.status != "needs_approval" or view.pending_approval is None:
        raise AssertionError(f"run {i}: expected needs_approval, got {view.status!r} "
                             f"({view.summary})")
    n_requests = len(view.pending_approval["request"]["action_requests"])
    done = runner.decide(view.thread_id, {"decisions": [{"type": "approve"}] * n_requests},
                         reviewer="bench")
    elapsed = time.perf_counter() - start
    if done.status != "completed":
        raise AssertionError(f"run {i}: expected completed, got {done.status!r} "
                             f"({done.summary})")
    proposals = (done.values or {}).get("proposals", [])
    if not proposals or any(p.get("status") != "executed" for p in proposals):
        raise AssertionError(f"run {i}: not every action was executed ({proposals})")
    return elapsed


def bench_governed(settings: Settings, warmup: int, runs: int, label: str) -> Stats:
    services = Services.create(settings)
    try:
        total = warmup + runs
        tenants = [f"bench{i}" for i in range(total)]
        for tenant_id in tenants:  # seeding is outside the timed region
            if not seed_tenant(services.db, tenant_id):
                raise RuntimeError(f"tenant {tenant_id} was already seeded; use a fresh store")
        with open_checkpointer(settings) as cp:
            runner = Runner(services, cp)
            latencies: list[float] = []
            with console.status(f"[{label}] governed: warm-up") as status:
                for i in range(total):
                    if i == warmup:
                        status.update(f"[{label}] governed: {runs} timed runs")
                    elapsed = governed_run(runner, i, tenants[i])
                    if i >= warmup:
                        latencies.append(elapsed)
        return summarise(latencies)
    finally:
        services.close()


# ---------------------------------------------------------------------------- baseline run


class BaselineState(TypedDict, total=False):
    trigger: dict[str, Any]
    steps: list[str]
    decision: Any


def _step(name: str) -> Callable[[BaselineState], dict[str, Any]]:
    def node(state: BaselineState) -> dict[str, Any]:
        return {"steps": [*state.get("steps", []), name]}

    node.__name__ = name
    return node


def _approval(state: BaselineState) -> dict[str, Any]:
    decision = interrupt({"action_requests": [{"name": "noop", "args": {}}]})
    return {"steps": [*state.get("steps", []), "approval"], "decision": decision}


def build_baseline(checkpointer: BaseCheckpointSaver) -> Any:
    builder = StateGraph(BaselineState)
    for name in BASELINE_NODES:
        builder.add_node(name, _approval if name == "approval" else _step(name))
    builder.add_edge(START, BASELINE_NODES[0])
    for a, b in zip(BASELINE_NODES, BASELINE_NODES[1:], strict=False):
        builder.add_edge(a, b)
    builder.add_edge(BASELINE_NODES[-1], END)
    return builder.compile(checkpointer=checkpointer)


def baseline_run(graph: Any, i: int) -> float:
    config = {"configurable": {"thread_id": f"baseline-{i}-{secrets.token_hex(4)}"}}
    start = time.perf_counter()
    first = graph.invoke({"trigger": {"event_id": f"evt-{i}"}, "steps": []}, config,
                         durability="sync")
    if "__interrupt__" not in first:
        raise AssertionError(f"baseline run {i}: no interrupt")
    final = graph.invoke(Command(resume={"decisions": [{"type": "approve"}]}), config,
                         durability="sync")
    elapsed = time.perf_counter() - start
    if final.get("steps") != list(BASELINE_NODES) or "__interrupt__" in final:
        raise AssertionError(f"baseline run {i}: did not complete ({final})")
    return elapsed


def bench_baseline(settings: Settings, warmup: int, runs: int, label: str) -> Stats:
    with open_checkpointer(settings) as cp:
        graph = build_baseline(cp)
        latencies: list[float] = []
        with console.status(f"[{label}] baseline: warm-up") as status:
            for i in range(warmup + runs):
                if i == warmup:
                    status.update(f"[{label}] baseline: {runs} timed runs")
                elapsed = baseline_run(graph, i)
                if i >= warmup:
                    latencies.append(elapsed)
    return summarise(latencies)


# ---------------------------------------------------------------------------- backends


@dataclass
class BackendResult:
    backend: str
    governed: Stats
    baseline: Stats
    p50_latency_ratio: float  # governed p50 / baseline p50
    throughput_ratio: float  # governed runs/s / baseline runs/s
    wall_s: float


def compare(backend: str, governed: Stats, baseline: Stats, wall_s: float) -> BackendResult:
    return BackendResult(backend=backend, governed=governed, baseline=baseline,
                         p50_latency_ratio=governed.p50_ms / baseline.p50_ms,
                         throughput_ratio=governed.runs_per_s / baseline.runs_per_s,
                         wall_s=wall_s)


def bench_sqlite(warmup: int, runs: int) -> BackendResult:
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ap-bench-") as tmp:
        governed = bench_governed(
            Settings(AUTOPILOT_DATA_DIR=Path(tmp) / "governed", DATABASE_URL=""),
            warmup, runs, "sqlite")
        baseline = bench_baseline(
            Settings(AUTOPILOT_DATA_DIR=Path(tmp) / "baseline", DATABASE_URL=""),
            warmup, runs, "sqlite")
    return compare("sqlite", governed, baseline, time.perf_counter() - start)


def bench_postgres(url: str, warmup: int, runs: int) -> BackendResult:
    start = time.perf_counter()
    with scratch_postgres(url) as db_url, tempfile.TemporaryDirectory(prefix="ap-bench-") as tmp:
        # Governed and baseline share the scratch database (distinct thread ids).
        settings = Settings(AUTOPILOT_DATA_DIR=Path(tmp), DATABASE_URL=db_url)
        governed = bench_governed(settings, warmup, runs, "postgres")
        baseline = bench_baseline(settings, warmup, runs, "postgres")
    return compare("postgres", governed, baseline, time.perf_counter() - start)


# ---------------------------------------------------------------------------- report


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        host = parts.hostname or ""
        netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
        parts = parts._replace(netloc=netloc)
    return urlunsplit(parts)


def render(results: list[BackendResult], warmup: int) -> None:
    table = Table(title=f"Spine overhead: governed maintenance run vs bare 6-node graph "
                        f"(warm-up {warmup}, sequential)")
    for col in ("backend", "variant", "runs", "runs/s", "p50 ms", "p99 ms", "mean ms"):
        table.add_column(col, justify="left" if col in ("backend", "variant") else "right")
    for r in results:
        for variant, s in (("governed", r.governed), ("baseline", r.baseline)):
            table.add_row(r.backend, variant, str(s.runs), f"{s.runs_per_s:.1f}",
                          f"{s.p50_ms:.2f}", f"{s.p99_ms:.2f}", f"{s.mean_ms:.2f}")
        table.add_row(r.backend, "[bold]governed/baseline[/bold]", "",
                      f"{r.throughput_ratio:.3f}x", f"{r.p50_latency_ratio:.2f}x", "", "",
                      end_section=True)
    console.print(table)
    console.print("ratio row: runs/s column = throughput ratio, p50 column = p50 latency ratio")


def versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for dist in ("langgraph", "langgraph-checkpoint", "langgraph-checkpoint-sqlite",
                 "langgraph-checkpoint-postgres", "sqlalchemy", "psycopg", "cedarpy"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=200, help="timed runs per variant")
    parser.add_argument("--warmup", type=int, default=10, help="untimed runs per variant")
    parser.add_argument("--output", type=Path, default=RESULTS_PATH, help="JSON results file")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.warmup < 0:
        parser.error("--runs must be >= 1 and --warmup >= 0")

    load_before = os.getloadavg()
    started = time.perf_counter()
    results = [bench_sqlite(args.warmup, args.runs)]
    pg_url = os.environ.get("DATABASE_URL", "")
    if pg_url.startswith(("postgresql://", "postgres://")):
        results.append(bench_postgres(pg_url, args.warmup, args.runs))
    else:
        console.print("[dim]Postgres skipped: set DATABASE_URL=postgresql://... to include it"
                      "[/dim]")
    total_s = time.perf_counter() - started

    render(results, args.warmup)
    load_after = os.getloadavg()
    console.print(f"total wall time {total_s:.1f} s; load average (1 min) {load_before[0]:.2f} "
                  f"before, {load_after[0]:.2f} after, on {os.cpu_count()} CPUs "
                  "(other load on the machine skews the figures)")

    report = {
        "benchmark": "spine_overhead",
        "created_at": datetime.now(UTC).isoformat(),
        "runs": args.runs,
        "warmup": args.warmup,
        "graph": GRAPH,
        "postgres_server": _redact(pg_url) if pg_url.startswith("postgres") else None,
        "versions": versions(),
        "total_wall_s": total_s,
        "cpu_count": os.cpu_count(),
        "loadavg_before": load_before,
        "loadavg_after": load_after,
        "results": [asdict(r) for r in results],
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    console.print(f"results written to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
