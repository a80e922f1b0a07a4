"""Service latency: event in over HTTP -> run at its first stop (completed, or waiting for a
person), and decision over HTTP -> run completed, through real processes (seed 003 asks for
under 60 s from recommendation to execution).

SQLite: one `autopilot api` process (API + in-process worker). Postgres (when DATABASE_URL is a
postgresql:// URL): an API process and two `autopilot worker` processes on a throw-away
database. Prints p50 / p99 / max per backend.

    .venv/bin/python bench/service_latency.py [--events 30]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

# Run as a script: the shared bench helpers and the repo must be importable first.
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backends import backends  # noqa: E402

from graphs import autopilots  # noqa: E402

KEY = "bench-key"
HEADERS = {"Authorization": f"Bearer {KEY}"}
UNITS = [f"P-{p}-{f}{u}" for p in ("GRAND", "FLATBUSH", "ASTORIA") for f in (1, 2, 3)
         for u in "AB"]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _event(n: int, heater: bool) -> dict[str, Any]:
    unit = UNITS[n % len(UNITS)]
    text = ("Water heater is broken, no hot water since yesterday." if heater
            else "Kitchen sink is leaking under the cabinet.")
    return {"event_id": f"bench-{n}", "tenant_id": "acme", "source": "bench",
            "event_type": "tenant_issue", "occurred_at": datetime.now(UTC).isoformat(),
            "payload": {"message_id": f"B-{n}", "unit_id": unit,
                        "resident_id": "R-" + unit[2:], "text": text}}


def _wait(base: str, run_id: str, states: tuple[str, ...], timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = httpx.get(f"{base}/v1/runs/{run_id}", headers=HEADERS, timeout=10).json()[
            "status"]
        if status in states:
            return str(status)
        time.sleep(0.02)
    raise TimeoutError(f"run {run_id} did not reach {states}")


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def measure(label: str, env: dict[str, str], events: int) -> None:
    cli = [sys.executable, "-m", "autopilot"]
    subprocess.run([*cli, "seed"], env=env, check=True, capture_output=True)
    port = _port()
    procs = [subprocess.Popen([*cli, "api", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    if env.get("DATABASE_URL"):
        procs += [subprocess.Popen([*cli, "worker"], env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL) for _ in range(2)]
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        first_stop, decided = [], []
        for n in range(events):
            heater = n % 2 == 1
            t0 = time.perf_counter()
            run_id = httpx.post(f"{base}/v1/events", json=_event(n, heater), headers=HEADERS,
                                timeout=10).json()["run_id"]
            status = _wait(base, run_id, ("completed", "needs_approval", "escalated"))
            first_stop.append(time.perf_counter() - t0)
            if status == "needs_approval":
                approval = httpx.get(f"{base}/v1/runs/{run_id}", headers=HEADERS,
                                     timeout=10).json()["pending_approval"]["id"]
                t1 = time.perf_counter()
                httpx.post(f"{base}/v1/approvals/{approval}/decision", headers=HEADERS,
                           json={"decision": "approve"}, timeout=10).raise_for_status()
                _wait(base, run_id, ("completed", "escalated"))
                decided.append(time.perf_counter() - t1)
        for name, values in (("event -> first stop", first_stop),
                             ("decision -> completed", decided)):
            if values:
                print(f"{label:9s} {name:22s} n={len(values):3d}  "
                      f"p50 {statistics.median(values) * 1000:7.0f} ms  "
                      f"p99 {_pct(values, 0.99) * 1000:7.0f} ms  "
                      f"max {max(values) * 1000:7.0f} ms")
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=30)
    args = parser.parse_args()
    quiet = json.dumps({graph: "0 0 29 2 *" for graph in autopilots()})
    for label, settings in backends():
        env = {**os.environ, "AUTOPILOT_DATA_DIR": str(settings.data_dir),
               "DATABASE_URL": settings.database_url, "AUTOPILOT_TENANT": "acme",
               "AUTOPILOT_API_KEYS": json.dumps({KEY: {"tenant": "acme", "subject": "bench",
                                                       "roles": ["approver"]}}),
               "AUTOPILOT_SCHEDULES": quiet, "AGENT_JOB_POLL_INTERVAL_MS": "200",
               "AUTOPILOT_POLICY_TIME": "2026-11-18T19:00:00+00:00"}
        if settings.database_url:
            subprocess.run([sys.executable, "-m", "autopilot", "db", "upgrade"], env=env,
                           check=True, capture_output=True)
        measure(label, env, args.events)


if __name__ == "__main__":
    main()
