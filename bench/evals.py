"""Eval runner speed: incidents per second over the committed incident sets.

Replays every incident under `evals/incidents/` (or `--incidents PATH`) with 1 worker and
with N workers (default: the machine's cores, at most 4), and prints, per configuration, the
wall time of the whole suite (template sandbox included), incidents per second, and the
p50 / p99 time of one incident (restore, replay, approvals, scoring). The issue's aim: the
whole suite in under a minute on 2 cores.

    .venv/bin/python bench/evals.py
    .venv/bin/python bench/evals.py --workers 2 --skip-single
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from evals.format import load_incidents  # noqa: E402 - after the sys.path set-up
from evals.runner import INCIDENTS_DIR, RunOptions, run_suite  # noqa: E402


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--incidents", type=Path, default=INCIDENTS_DIR)
    parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1))
    parser.add_argument("--skip-single", action="store_true", help="only the N-worker run")
    args = parser.parse_args()
    incidents = load_incidents(args.incidents)
    print(f"{len(incidents)} incidents from {args.incidents} on {os.cpu_count()} cores")
    configs = ([] if args.skip_single else [1]) + ([args.workers] if args.workers > 1 else [])
    rows = []
    for workers in configs:
        report = run_suite(incidents, RunOptions(label=f"bench-{workers}", workers=workers))
        per = [e["seconds"] * 1000 for e in report["incidents"]]
        t = report["timing"]
        rows.append((workers, t["seconds"], t["incidents_per_second"], statistics.median(per),
                     _pct(per, 0.99), report["metrics"]["all"]["passed"]))
    print(f"{'workers':>7} {'suite s':>8} {'incidents/s':>11} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'passed':>6}")
    for w, secs, rate, p50, p99, passed in rows:
        print(f"{w:>7} {secs:>8.1f} {rate:>11.1f} {p50:>7.0f} {p99:>7.0f} {passed:>6}")
    if len(rows) == 2:
        print(f"speed-up with {rows[1][0]} workers: {rows[0][1] / rows[1][1]:.2f}x")


if __name__ == "__main__":
    main()
