"""Trigger builders shared by the tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

TENANT = "acme"


def issue(n: int | str, unit: str = "P-GRAND-2B", text: str = "Kitchen sink is leaking.",
          tenant: str = TENANT, at: datetime | None = None) -> dict[str, Any]:
    """A resident's report in `unit` (resident id follows the seed's R-<property>-<unit>)."""
    return {"event_id": f"evt-{n}", "tenant_id": tenant, "source": "test",
            "event_type": "tenant_issue",
            "occurred_at": (at or datetime.now(UTC)).isoformat(),
            "payload": {"message_id": f"MSG-{n}", "unit_id": unit,
                        "resident_id": "R-" + unit[2:], "text": text}}


def pm_due(n: int | str, schedule: str, tenant: str = TENANT) -> dict[str, Any]:
    return {"event_id": f"evt-{n}", "tenant_id": tenant, "source": "test",
            "event_type": "pm_due", "occurred_at": datetime.now(UTC).isoformat(),
            "payload": {"pm_schedule_id": schedule}}


def approve_all(view_or_request: Any) -> dict[str, Any]:
    request = getattr(view_or_request, "pending_approval", None)
    request = request["request"] if request else view_or_request
    return {"decisions": [{"type": "approve"} for _ in request["action_requests"]]}


def query_app_db(env: dict[str, str], sql: str,
                 params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Rows from the app database a test env points at, read directly (not through the app).

    SQLite: `<AUTOPILOT_DATA_DIR>/autopilot.sqlite`; Postgres: `DATABASE_URL`. Write `?`
    placeholders (turned into `%s` for psycopg); a fresh connection per call sees every commit.
    """
    import sqlite3
    from contextlib import closing
    from pathlib import Path

    url = env.get("DATABASE_URL", "")
    if url:
        import psycopg

        conninfo = url.replace("postgres://", "postgresql://", 1)
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
            return [tuple(row) for row in conn.execute(sql.replace("?", "%s"), params)]
    path = Path(env["AUTOPILOT_DATA_DIR"]) / "autopilot.sqlite"
    if not path.is_file():
        raise FileNotFoundError(f"no app database at {path}")
    with closing(sqlite3.connect(path, timeout=30)) as conn:
        return conn.execute(sql, params).fetchall()


def autopilot_argv(*args: str) -> list[str]:
    """Command line for the `autopilot` CLI in a child process (`python -m autopilot ...`)."""
    import sys

    return [sys.executable, "-m", "autopilot", *args]


def run_cli(env: dict[str, str], *args: str, timeout: float = 60.0,
            input_: str | None = None) -> Any:
    """Run `autopilot ARGS` to completion in a child process (with `input_` on stdin);
    returns the CompletedProcess."""
    import subprocess
    from pathlib import Path

    return subprocess.run(autopilot_argv(*args), env=env, capture_output=True, text=True,
                          timeout=timeout, input=input_,
                          cwd=Path(env["AUTOPILOT_DATA_DIR"]).parent)


def execute_app_db(env: dict[str, str], *statements: str) -> None:
    """Run statements against the app database directly and commit (for tamper tests)."""
    import sqlite3
    from contextlib import closing
    from pathlib import Path

    url = env.get("DATABASE_URL", "")
    if url:
        import psycopg

        with psycopg.connect(url.replace("postgres://", "postgresql://", 1),
                             autocommit=True, connect_timeout=5) as conn:
            for sql in statements:
                conn.execute(sql)  # type: ignore[arg-type]
        return
    with closing(sqlite3.connect(Path(env["AUTOPILOT_DATA_DIR"]) / "autopilot.sqlite",
                                 timeout=30)) as conn:
        for sql in statements:
            conn.execute(sql)
        conn.commit()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_process(env: dict[str, str], *args: str, logs: Any = None) -> Any:
    """`autopilot ARGS` as a long-running child process (API server, worker); stdout/stderr
    go to files under `logs` (a directory) when given, so a failure can show them."""
    import subprocess

    if logs is None:
        return subprocess.Popen(autopilot_argv(*args), env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    logs.mkdir(parents=True, exist_ok=True)
    name = "-".join(args[:1]) + f"-{len(list(logs.iterdir()))}"
    # The child inherits the descriptors at spawn; this process closes its own copies.
    with open(logs / f"{name}.out", "wb") as out, open(logs / f"{name}.err", "wb") as err:
        return subprocess.Popen(autopilot_argv(*args), env=env, stdout=out, stderr=err)


def wait_http(base: str, proc: Any, timeout: float = 60.0) -> None:
    """Wait for `GET base/healthz` to answer 200; fail early if the process died."""
    import time

    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the server exited with {proc.returncode}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError("the server did not start")


def stop_process(proc: Any, timeout: float = 30.0) -> None:
    import subprocess

    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def no_ticks() -> str:
    """`AUTOPILOT_SCHEDULES` pinning every autopilot's tick to 29 Feb at midnight, so no run
    appears on its own in the middle of a test."""
    import json

    from graphs import autopilots

    return json.dumps({graph: "0 0 29 2 *" for graph in autopilots()})


def cli_ok(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    """`autopilot ARGS` in a child process that must succeed; returns its stdout."""
    import subprocess

    done = subprocess.run(autopilot_argv(*args), env=env, input=stdin, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def serve_api(env: dict[str, str], logs: Any, *extra: str) -> Any:
    """Context manager: `autopilot api` on a free port (logs under `logs`); yields
    (base URL, the process's stderr file) and stops it afterwards."""
    from contextlib import contextmanager

    @contextmanager
    def serving() -> Any:
        port = free_port()
        before = set(logs.iterdir()) if logs.exists() else set()
        proc = start_process(env, "api", "--port", str(port), *extra, logs=logs)
        stderr = next(p for p in logs.iterdir() if p not in before and p.suffix == ".err")
        base = f"http://127.0.0.1:{port}"
        try:
            try:
                wait_http(base, proc)
            except AssertionError as exc:
                raise AssertionError(f"{exc}: {stderr.read_text()}") from None
            yield base, stderr
        finally:
            stop_process(proc)

    return serving()
