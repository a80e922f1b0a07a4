"""Gateway overhead: a tool call through `ToolGateway` versus calling the tool function directly.

* **read** -- `get_work_order` via `gateway.read(principal, ...)` (grant check, argument
  validation, budget reservation and release in the gateway-calls table, timeout thread,
  output validation) versus the handler called on a session of its own.
* **write** -- `schedule_follow_up` via `gateway.write(...)` (authorization checked against
  the recorded policy decision, budget, idempotency record, ledger entry, all in the write's
  transaction) versus the handler plus commit. The policy decisions are made before the
  clock starts: the gate's cost is measured by `bench/policy_decisions.py`.

SQLite (temporary directory) always; Postgres too when `DATABASE_URL` is a postgresql:// URL.

    .venv/bin/python bench/gateway_overhead.py --calls 500
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime

from backends import backends
from rich.console import Console
from rich.table import Table

from autopilot.config import Settings
from autopilot.seed import seed_tenant
from autopilot.services import Services
from tools.gateway import Authorization, Principal
from tools.registry import ToolContext

TENANT = "bench"
WO = "WO-BENCH"


def _stats(samples: list[float]) -> dict[str, float]:
    q = statistics.quantiles(samples, n=100)
    return {"p50": q[49] * 1000, "p99": q[98] * 1000, "per_s": len(samples) / sum(samples)}


def _timed(n: int, fn: Callable[[int], object]) -> list[float]:
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        fn(i)
        out.append(time.perf_counter() - t0)
    return out


def run(settings: Settings, label: str, n: int, console: Console) -> None:
    services = Services.create(settings)
    try:
        seed_tenant(services.db, TENANT)
        registry, gateway = services.registry, services.gateway
        principal = Principal.autopilot("maintenance", TENANT)
        wo_args = {"work_order_id": WO, "property_id": "P-GRAND", "unit_id": "P-GRAND-1A",
                   "category": "PLUMBING", "priority": "ROUTINE", "title": "Bench",
                   "description": "bench", "estimated_cost": 100,
                   "sla_due_at": "2026-12-01T00:00:00+00:00"}
        d = services.gate.decide(graph="maintenance", tenant_id=TENANT, thread_id="setup",
                                 action_id="wo", tool="create_work_order", args=wo_args,
                                 run_facts={}, stage="execute")
        gateway.write(principal, "create_work_order", wo_args, thread_id="setup",
                      action_id="wo", authorization=Authorization(
                          decision_id=d.decision_id or 0, reason_code="setup"))
        read_spec = registry.get("get_work_order")
        read_args = read_spec.input_model.model_validate({"work_order_id": WO})

        def direct_read(_: int) -> object:
            with services.db.session(TENANT) as s:
                ctx = ToolContext(session=s, tenant_id=TENANT, now=datetime.now(UTC))
                return read_spec.handler(ctx, read_args).model_dump()

        def gateway_read(_: int) -> object:
            return gateway.read(principal, "get_work_order", {"work_order_id": WO})

        write_spec = registry.get("schedule_follow_up")

        def fu_args(i: int, kind: str) -> dict[str, str]:
            return {"follow_up_id": f"FU-{kind}-{i}", "work_order_id": WO,
                    "kind": "sla_check", "due_at": "2026-12-01T00:00:00+00:00"}

        def direct_write(i: int) -> object:
            parsed = write_spec.input_model.model_validate(fu_args(i, "d"))
            with services.db.session(TENANT) as s:
                ctx = ToolContext(session=s, tenant_id=TENANT, now=datetime.now(UTC))
                return write_spec.handler(ctx, parsed).model_dump()

        auths = []
        for i in range(n):  # decisions made up front: the gate is benchmarked elsewhere
            dec = services.gate.decide(graph="maintenance", tenant_id=TENANT, thread_id=f"r{i}",
                                       action_id="fu", tool="schedule_follow_up",
                                       args=fu_args(i, "g"), run_facts={}, stage="execute")
            auths.append(Authorization(decision_id=dec.decision_id or 0,
                                       reason_code=",".join(dec.reasons)))

        def gateway_write(i: int) -> object:
            return gateway.write(principal, "schedule_follow_up", fu_args(i, "g"),
                                 thread_id=f"r{i}", action_id="fu", authorization=auths[i])

        for fn in (direct_read, gateway_read):
            _timed(20, fn)  # warm up
        rows = {
            "read": (_stats(_timed(n, direct_read)), _stats(_timed(n, gateway_read))),
            "write": (_stats(_timed(n, direct_write)), _stats(_timed(n, gateway_write))),
        }
    finally:
        services.close()
    table = Table(title=f"Gateway overhead on {label} ({n} calls each)")
    for col in ("call", "direct p50 ms", "gateway p50 ms", "direct p99 ms", "gateway p99 ms",
                "overhead p50 ms", "ratio p50"):
        table.add_column(col)
    for name, (direct, via) in rows.items():
        table.add_row(name, f"{direct['p50']:.2f}", f"{via['p50']:.2f}", f"{direct['p99']:.2f}",
                      f"{via['p99']:.2f}", f"{via['p50'] - direct['p50']:.2f}",
                      f"{via['p50'] / direct['p50']:.1f}x")
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    opts = parser.parse_args()
    console = Console()
    for label, settings in backends():
        run(settings, label, opts.calls, console)


if __name__ == "__main__":
    main()
