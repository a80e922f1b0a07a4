"""`autopilot` command line: demo, run, approvals, approve, history, resume, tools."""

from __future__ import annotations

import getpass
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import psycopg
import typer
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from autopilot.admin_cli import db_app, keys_app
from autopilot.audit_cli import autonomy_app, ledger_app
from autopilot.checkpoint import open_checkpointer
from autopilot.config import Settings
from autopilot.console import fail, load_json, out
from autopilot.display import approvals_table, history_table, run_panel
from autopilot.policy_cli import policy_app
from autopilot.runtime import (
    SEVERITY_RANK,
    ApprovalConflict,
    ApprovalNotFound,
    DecisionError,
    Runner,
    RunNotFound,
)
from autopilot.seed import seed_tenant
from autopilot.services import Services
from evals.cli import eval_app
from graphs import UnknownGraphError, get_spec
from graphs.trigger import TriggerError, parse_trigger

app = typer.Typer(help="Governed autopilots: run, approve and inspect.", no_args_is_help=True,
                  add_completion=False)
app.add_typer(policy_app, name="policy")
app.add_typer(ledger_app, name="ledger")
app.add_typer(autonomy_app, name="autonomy")
app.add_typer(keys_app, name="keys")
app.add_typer(db_app, name="db")
app.add_typer(eval_app, name="eval")


def settings() -> Settings:
    try:
        return Settings()
    except Exception as exc:  # pydantic-settings names the variable
        raise fail(f"bad configuration: {exc}") from None


@contextmanager
def runner() -> Iterator[Runner]:
    cfg = settings()
    try:
        services = Services.create(cfg)
    except ValueError as exc:  # e.g. a malformed AUTOPILOT_SANDBOX_FAULTS
        raise fail(f"bad configuration: {exc}") from None
    except (SQLAlchemyError, psycopg.Error) as exc:
        raise fail(f"cannot open the database ({_where(cfg)}): {exc}") from None
    try:
        with open_checkpointer(cfg) as checkpointer:
            yield Runner(services, checkpointer)
    except (OperationalError, psycopg.OperationalError) as exc:
        raise fail(f"database error ({_where(cfg)}): {exc}") from None
    finally:
        services.close()


def _where(cfg: Settings) -> str:
    return "DATABASE_URL" if cfg.uses_postgres else f"SQLite in {cfg.data_dir}"


@app.command()
def demo(
    tenant: Annotated[str | None, typer.Option(help="tenant id (default: a fresh demo tenant)")]
    = None,
) -> None:
    """Seed a sandbox tenant, fire realistic maintenance triggers, approve one, show the result."""
    from autopilot.demo import run_demo

    with runner() as r:
        run_demo(r, out, tenant)


@app.command()
def seed(tenant: Annotated[str | None, typer.Option(help="tenant to seed")] = None) -> None:
    """Load the sandbox property data for a tenant (idempotent)."""
    with runner() as r:
        t = tenant or r.services.settings.tenant_id
        created = seed_tenant(r.services.db, t)
        out.print(f"tenant {t}: {'seeded' if created else 'already seeded'}")


@app.command()
def run(
    graph: Annotated[str, typer.Argument(help="autopilot graph id, e.g. maintenance")],
    event_file: Annotated[Path | None, typer.Option("--event-file", "-f",
                                                    help="trigger JSON (default: stdin)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the run as JSON")] = False,
) -> None:
    """Start a run from a trigger event (a repeated trigger returns the existing run)."""
    try:
        spec = get_spec(graph)
    except UnknownGraphError as exc:
        raise fail(str(exc)) from None
    if event_file is not None:
        if not event_file.is_file():
            raise fail(f"event file {event_file} does not exist")
        try:
            text = event_file.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError) as exc:
            raise fail(f"cannot read event file {event_file}: {exc}") from None
    else:
        if sys.stdin.isatty():
            raise fail("give --event-file FILE or pipe the event JSON on stdin")
        text = sys.stdin.read()
    raw = load_json(text, "event")
    try:  # validate before opening any database: a bad event writes nothing
        parse_trigger(raw, spec.event_types)
    except TriggerError as exc:
        raise fail(str(exc)) from None
    with runner() as r:
        view = r.submit(graph, raw)
        if as_json:
            out.print_json(json.dumps({"thread_id": view.thread_id, "status": view.status,
                                       "outcome": view.outcome,
                                       "summary": view.summary,
                                       "deduplicated": view.deduplicated,
                                       "pending_approval": view.pending_approval},
                                      default=str))
        else:
            out.print(run_panel(view))


@app.command()
def approvals(
    tenant: Annotated[str | None, typer.Option(help="only this tenant")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print full requests as JSON")] = False,
) -> None:
    """List pending approvals, most severe first, with the context a reviewer needs."""
    with runner() as r:
        rows = r.pending_approvals(tenant)
        if as_json:
            out.print_json(json.dumps([{"id": a.id, "thread_id": a.thread_id,
                                        "severity": a.severity, "request": a.request}
                                       for a in rows], default=str))
        elif not rows:
            out.print("No pending approvals.")
        else:
            out.print(approvals_table(rows))


def _decisions(request: dict[str, Any], edit: str | None, reject: str | None,
               decisions: str | None) -> dict[str, Any]:
    if decisions is not None:
        parsed = load_json(decisions, "--decisions")
        return parsed if isinstance(parsed, dict) else {"decisions": parsed}
    ids = request.get("action_ids", [])
    if reject is not None:
        if not reject.strip():
            raise fail("--reject needs a message saying why")
        return {"decisions": [{"type": "reject", "message": reject} for _ in ids]}
    edits: dict[str, Any] = {}
    if edit is not None:
        parsed = load_json(edit, "--edit")
        if not isinstance(parsed, dict):
            raise fail("--edit must be a JSON object")
        if not parsed:
            raise fail("--edit needs the arguments to change, e.g. '{\"not_to_exceed\": 700}'")
        if set(parsed) <= set(ids):
            edits = parsed
        elif len(ids) == 1:
            edits = {ids[0]: parsed}
        else:
            raise fail(f"--edit: several actions are pending ({', '.join(ids)}); "
                       'give {"<action_id>": {...args}}')
    out_: list[dict[str, Any]] = []
    for action_id, req in zip(ids, request["action_requests"], strict=True):
        if action_id in edits:
            args = {**req["args"], **edits[action_id]}
            out_.append({"type": "edit", "edited_action": {"name": req["name"], "args": args}})
        else:
            out_.append({"type": "approve"})
    return {"decisions": out_}


@app.command()
def approve(
    run_id: Annotated[str, typer.Argument(help="run (thread) id or approval id")],
    edit: Annotated[str | None, typer.Option(help="JSON args to change before approving "
                                                  '(one action) or {"action_id": {...}}')] = None,
    reject: Annotated[str | None, typer.Option(help="reject every pending action with this "
                                                    "message")] = None,
    decisions: Annotated[str | None, typer.Option(help="raw LangChain HITL decisions JSON")]
    = None,
    reviewer: Annotated[str | None, typer.Option("--as", help="reviewer identity")] = None,
) -> None:
    """Answer a pending approval (approve, edit or reject) and resume the run."""
    if sum(opt is not None for opt in (edit, reject, decisions)) > 1:
        raise fail("give at most one of --edit, --reject, --decisions")
    who = reviewer or os.environ.get("AUTOPILOT_REVIEWER") or getpass.getuser()
    with runner() as r:
        try:
            approval = r.approval_for(run_id)
            if approval.status != "pending":
                raise ApprovalConflict(f"approval {approval.id} was already decided by "
                                       f"{approval.decided_by} at {approval.decided_at}")
            payload = _decisions(approval.request, edit, reject, decisions)
            view = r.decide(approval.id, payload, who)
        except (ApprovalNotFound, RunNotFound) as exc:
            raise fail(str(exc)) from None
        except ApprovalConflict as exc:
            raise fail(str(exc), code=3) from None
        except DecisionError as exc:
            raise fail(str(exc)) from None
        out.print(run_panel(view, title=f"decided by {who}"))


@app.command()
def history(run_id: Annotated[str, typer.Argument(help="run (thread) id")]) -> None:
    """Show a run's checkpoints: step, node, what runs next, time."""
    with runner() as r:
        try:
            out.print(history_table(run_id, r.history(run_id)))
        except RunNotFound as exc:
            raise fail(str(exc)) from None


@app.command()
def show(
    run_id: Annotated[str, typer.Argument(help="run (thread) id")],
    checkpoint: Annotated[str | None, typer.Option(
        help="show the state at this checkpoint (ids from `autopilot history`)")] = None,
) -> None:
    """Show a run's proposals, gate decisions, approvals and outcome (now, or at a
    checkpoint)."""
    with runner() as r:
        try:
            view = r.view(run_id)
            title = None
            if checkpoint:
                view, title = r.view_at(run_id, checkpoint), f"{view.graph} · {run_id} @ " \
                                                             f"{checkpoint}"
        except RunNotFound as exc:
            raise fail(str(exc)) from None
        out.print(run_panel(view, title=title))


@app.command()
def runs(tenant: Annotated[str | None, typer.Option(help="only this tenant")] = None) -> None:
    """List runs with their status."""
    from rich.table import Table

    with runner() as r:
        table = Table(title="Runs")
        for col in ("run", "graph", "tenant", "status", "summary"):
            table.add_column(col)
        for run_ in r.list_runs(tenant):
            status = run_.status + (f" ({run_.outcome})" if run_.outcome not in
                                    (None, "resolved") else "")
            table.add_row(run_.thread_id, run_.graph, run_.tenant_id, status,
                          run_.summary or "")
        out.print(table)


@app.command()
def exceptions(tenant: Annotated[str | None, typer.Option(help="only this tenant")] = None
               ) -> None:
    """List escalations for managers: severity, category, blocked rules, decision requested."""
    from rich.table import Table

    with runner() as r:
        rows = sorted(r.exceptions(tenant), key=lambda e: (SEVERITY_RANK.get(e.severity, 9),
                                                           e.created_at))
        if not rows:
            out.print("No exceptions.")
            return
        table = Table(title="Exception inbox", show_lines=True)
        for col in ("run", "severity", "category", "title", "blocked rules",
                    "decision requested", "status"):
            table.add_column(col)
        for e in rows:
            table.add_row(e.thread_id, e.severity, e.category, f"{e.title}\n[dim]{e.details}[/dim]",
                          ", ".join(e.context.get("blocked_rules", [])),
                          e.context.get("decision_requested", ""), e.status)
        out.print(table)


@app.command()
def resume(
    run_id: Annotated[str | None, typer.Argument(help="run to resume (default: all unfinished)")]
    = None,
) -> None:
    """Finish runs that stopped part-way (crash, kill) from their last checkpoint."""
    with runner() as r:
        try:
            ids = [run_id] if run_id else r.unfinished()
            resumed = 0
            for thread_id in ids:
                view = r.resume(thread_id)
                if run_id or view.status != "needs_approval":  # still waiting: not news
                    out.print(run_panel(view, title=f"resumed {thread_id}"))
                    resumed += 1
            if not resumed:
                out.print("Nothing to resume.")
        except RunNotFound as exc:
            raise fail(str(exc)) from None


def _serve_checks(cfg: Settings) -> None:
    """Fail fast, with what to do, on bad keys or an outdated schema (before uvicorn)."""
    from api.auth import load_env_keys
    from autopilot.db import Database, SchemaOutdated, check_schema

    try:
        load_env_keys(cfg.api_keys)
    except ValueError as exc:
        raise fail(str(exc)) from None
    db = Database(cfg)
    try:
        check_schema(db.engine)
    except SchemaOutdated as exc:
        raise fail(str(exc)) from None
    except (SQLAlchemyError, psycopg.Error) as exc:
        raise fail(f"cannot open the database ({_where(cfg)}): {exc}") from None
    finally:
        db.dispose()


@app.command()
def api(
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8000,
    worker: Annotated[bool | None, typer.Option(
        "--worker/--no-worker", help="also run jobs in this process (default: only on the "
                                     "embedded SQLite default)")] = None,
) -> None:
    """Serve the HTTP API (uvicorn). On SQLite this one process also runs the worker and the
    scheduler; on Postgres run `autopilot worker` processes beside it."""
    import uvicorn

    from api.app import create_app

    cfg = settings()
    _serve_checks(cfg)
    uvicorn.run(create_app(cfg, worker=worker), host=host, port=port, log_level="warning")


@app.command()
def worker() -> None:
    """Run jobs (graph steps, scheduler ticks, recovery) from the Postgres queue until
    SIGINT/SIGTERM. Start as many as you like; each takes AGENT_MAX_CONCURRENT_JOBS at once."""
    import asyncio

    from autopilot.jobs import JobQueue

    cfg = settings()
    if not cfg.uses_postgres:
        raise fail("`autopilot worker` needs DATABASE_URL=postgresql://...: on the embedded "
                   "SQLite default the API process (`autopilot api`, `make run`) runs the "
                   "worker itself")
    _serve_checks(cfg)
    services = Services.create(cfg, run_migrations=False)
    queue = JobQueue(cfg)
    try:
        with open_checkpointer(cfg) as checkpointer:
            queue.runner = Runner(services, checkpointer)
            out.print(f"worker: {cfg.max_concurrent_jobs} jobs at once, polling every "
                      f"{cfg.job_poll_interval_ms} ms, stale after "
                      f"{cfg.job_stale_timeout_ms} ms", style="dim")
            asyncio.run(queue.run_worker())
    finally:
        services.close()


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8000,
    demo_events: Annotated[bool, typer.Option("--demo/--no-demo",
                                              help="seed and post the demo triggers")] = True,
) -> None:
    """The whole service in one process (`make run`): migrate, seed the demo tenant, make a
    development admin key, then serve the API with the in-process worker and scheduler."""
    import uvicorn

    from api.app import create_app
    from autopilot.dev import prepare_dev_service

    cfg = settings()
    try:
        key = prepare_dev_service(cfg)
    except ValueError as exc:
        raise fail(str(exc)) from None
    base = f"http://{host}:{port}"
    out.print(f"[bold]Governed autopilots[/bold] on {base} ({_where(cfg)})\n"
              f"  API docs     {base}/docs\n"
              f"  admin key    {key}   (tenant {cfg.tenant_id}; kept in "
              f"{cfg.data_dir}/dev-api-key)\n"
              f"  try          curl -H 'Authorization: Bearer {key}' {base}/v1/approvals\n"
              "  stop         Ctrl-C", soft_wrap=True)
    from autopilot.dev import post_demo_events

    on_ready = (lambda app_: post_demo_events(app_, cfg.tenant_id)) if demo_events else None
    uvicorn.run(create_app(cfg, worker=True, on_ready=on_ready), host=host, port=port,
                log_level="warning")


@app.command()
def tick(graph: Annotated[str, typer.Argument(help="autopilot")]) -> None:
    """Run an autopilot's trigger detectors now over everything due, and run what they
    start here (repeated triggers find their existing runs)."""
    from autopilot.jobs import JobQueue

    try:
        get_spec(graph)
    except UnknownGraphError as exc:
        raise fail(str(exc)) from None
    with runner() as r:
        queue = JobQueue(r.services.settings)
        queue.runner = r
        started = queue.tick(graph)
        for thread_id in started:
            out.print(run_panel(r.resume(thread_id)))
        out.print(f"{len(started)} new run(s) from the {graph} detectors.")


@app.command()
def replay(
    run_id: Annotated[str, typer.Argument(help="run (thread) id")],
    checkpoint: Annotated[str | None, typer.Option(help="checkpoint id from `autopilot history`"
                                                        " (default: the first)")] = None,
    by: Annotated[str, typer.Option("--as", help="who replays")] = "",
) -> None:
    """Re-run a run from a checkpoint; writes that already ran are not repeated."""
    with runner() as r:
        try:
            view = r.replay(run_id, checkpoint, by=by or getpass.getuser())
        except RunNotFound as exc:
            raise fail(str(exc)) from None
        out.print(run_panel(view, title=f"replayed {run_id}"))


@app.command()
def tools(as_json: Annotated[bool, typer.Option("--json", help="JSON Schema catalogue")] = False
          ) -> None:
    """List the registered tools (or export the catalogue as JSON Schema)."""
    from rich.table import Table

    from tools.catalog import build_registry

    registry = build_registry()
    if as_json:
        out.print_json(json.dumps(registry.catalogue()))
        return
    table = Table(title="Tool catalogue")
    for col in ("tool", "kind", "reversible", "cost", "risk", "description"):
        table.add_column(col)
    for item in registry.catalogue()["tools"]:
        table.add_row(item["name"], item["kind"], str(item["reversible"]), item["cost_class"],
                      item["risk"], item["description"])
    out.print(table)
