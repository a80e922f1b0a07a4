"""Audit ledger: append rate, and how long `ledger verify` takes over a long chain.

* **append** -- `Ledger.record` one entry at a time (its own transaction, the per-tenant
  lock, reading the chain head, hashing, inserting), sequentially: entries/s and p50/p99.
* **verify** -- a chain of `--verify-entries` entries (default 1,000,000) is written in bulk,
  each entry hashed exactly as `append` does it, then `Ledger.verify` recomputes it end to end.
  Bulk writing is not timed; verify is.

SQLite always (temporary directory); Postgres too when `DATABASE_URL` is a postgresql:// URL
(a throw-away database is created on that server and dropped afterwards).

    .venv/bin/python bench/ledger.py
    .venv/bin/python bench/ledger.py --appends 5000 --verify-entries 200000
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime, timedelta

from backends import backends
from rich.console import Console
from rich.table import Table

from autopilot.config import Settings
from autopilot.db import ALL_TENANTS
from autopilot.ledger import GENESIS, entry_hash
from autopilot.models import LedgerEntry
from autopilot.services import Services


def _payload(i: int) -> dict[str, object]:
    return {"tool": "dispatch_vendor", "action_id": f"a{i % 7}", "status": "ok",
            "reason_code": "MAINTENANCE_AUTONOMOUS_WRITE", "input": {"work_order_id": f"WO-{i}",
                                                                     "not_to_exceed": 250.0}}


def bench_append(services: Services, n: int) -> dict[str, float]:
    samples = []
    for i in range(n):
        t0 = time.perf_counter()
        services.ledger.record(tenant_id="bench-append", event_type="TOOL_CALL",
                               thread_id=f"run-{i // 10}", trace_id="t", payload=_payload(i))
        samples.append(time.perf_counter() - t0)
    q = statistics.quantiles(samples, n=100)
    return {"entries": n, "per_s": n / sum(samples), "p50_ms": q[49] * 1000,
            "p99_ms": q[98] * 1000}


def bench_verify(services: Services, n: int) -> dict[str, float]:
    tenant, prev = "bench-verify", GENESIS
    start = datetime(2026, 1, 1, tzinfo=UTC)
    built = time.perf_counter()
    rows = []
    with services.db.session(ALL_TENANTS) as s:
        for seq in range(1, n + 1):
            at = start + timedelta(milliseconds=seq)
            payload = _payload(seq)
            h = entry_hash(prev, tenant, seq, f"run-{seq // 10}", "t", "TOOL_CALL", None,
                           payload, at)
            rows.append({"tenant_id": tenant, "seq": seq, "thread_id": f"run-{seq // 10}",
                         "trace_id": "t", "event_type": "TOOL_CALL", "event_key": None,
                         "payload": payload, "created_at": at, "prev_hash": prev, "hash": h})
            prev = h
            if len(rows) == 20_000:
                s.execute(LedgerEntry.__table__.insert(), rows)
                rows = []
        if rows:
            s.execute(LedgerEntry.__table__.insert(), rows)
    built = time.perf_counter() - built
    t0 = time.perf_counter()
    report = services.ledger.verify(tenant)
    took = time.perf_counter() - t0
    assert report.ok and report.entries == n, report
    return {"entries": n, "verify_s": took, "per_s": n / took, "build_s": built}


def run(settings: Settings, label: str, opts: argparse.Namespace, console: Console) -> None:
    services = Services.create(settings)
    try:
        append = bench_append(services, opts.appends)
        verify = bench_verify(services, opts.verify_entries)
    finally:
        services.close()
    table = Table(title=f"Ledger on {label}")
    for col in ("measure", "entries", "rate /s", "p50 ms", "p99 ms", "total s"):
        table.add_column(col)
    table.add_row("append (own transaction)", f"{append['entries']:,}",
                  f"{append['per_s']:,.0f}", f"{append['p50_ms']:.2f}",
                  f"{append['p99_ms']:.2f}", "")
    table.add_row("verify (recompute chain)", f"{verify['entries']:,}",
                  f"{verify['per_s']:,.0f}", "", "", f"{verify['verify_s']:.1f}")
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appends", type=int, default=2000)
    parser.add_argument("--verify-entries", type=int, default=1_000_000)
    opts = parser.parse_args()
    console = Console()
    for label, settings in backends():
        run(settings, label, opts, console)


if __name__ == "__main__":
    main()
