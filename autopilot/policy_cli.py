"""`autopilot policy ...`: dry-run a proposed action and run the YAML policy test suites."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.table import Table

from autopilot.console import fail, load_json, out
from policy.engine import ActionFacts, PolicyBundle, PolicyEngine, RunFacts
from policy.schema import PolicyLoadError
from policy.testing import SuiteError, run_suites
from tools.catalog import build_registry
from tools.registry import ToolError, pydantic_errors

policy_app = typer.Typer(help="Dry-run and test the policy gate.", no_args_is_help=True)


def _engine() -> PolicyEngine:
    try:
        return PolicyEngine(known_tools=set(build_registry().names()), strict=True)
    except PolicyLoadError as exc:
        raise fail(str(exc)) from None


@contextmanager
def _services() -> Iterator[Any]:
    from autopilot.services import Services

    try:
        services = Services.create()
    except PolicyLoadError as exc:
        raise fail(str(exc)) from None
    try:
        yield services
    finally:
        services.close()


def _json_object(text: str | None, option: str) -> dict[str, Any]:
    value = {} if text is None else load_json(text, option)
    if not isinstance(value, dict):
        raise fail(f"{option} must be a JSON object")
    return value


@policy_app.command("eval")
def evaluate(
    tool: Annotated[str, typer.Option(help="registered tool name, e.g. dispatch_vendor")],
    args: Annotated[str | None, typer.Option(help="tool arguments (JSON); facts are computed "
                                                  "from them against the sandbox, read-only")]
    = None,
    facts: Annotated[str | None, typer.Option(help="facts (JSON) instead of --args, e.g. "
                                                   '\'{"spend_cents": 90000}\'')] = None,
    run: Annotated[str | None, typer.Option(help='run facts (JSON), e.g. \'{"is_emergency": '
                                                 'true, "property_id": "P-GRAND", "text": '
                                                 '"..."}\'')] = None,
    graph: Annotated[str, typer.Option(help="autopilot (Cedar principal)")] = "maintenance",
    tenant: Annotated[str | None, typer.Option(help="tenant whose policies (and data) to use")]
    = None,
    version: Annotated[int | None, typer.Option(help="a stored policy version instead of the "
                                                     "active ones of the scope")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the decision as JSON")] = False,
) -> None:
    """Evaluate one proposed action against the active policies, without side effects."""
    if (args is None) == (facts is None):
        raise fail("give exactly one of --args or --facts")
    with _services() as services:
        tenant = tenant or services.settings.tenant_id
        gate = services.gate
        try:
            run_facts = RunFacts.model_validate(_json_object(run, "--run")).model_dump()
            engine = (services.policy_store.engine_for_version(version)
                      if version is not None else None)
            given = (ActionFacts.model_validate(_json_object(facts, "--facts"))
                     if facts is not None else None)
            _, decision = gate.dry_run(graph=graph, tenant_id=tenant, tool=tool,
                                       args=_json_object(args, "--args"), run_facts=run_facts,
                                       engine=engine, facts=given)
        except (ToolError, PolicyLoadError) as exc:
            raise fail(str(exc)) from None
        except ValidationError as exc:
            raise fail("; ".join(f"{e['field']}: {e['message']}"
                                  for e in pydantic_errors(exc))) from None
    if as_json:
        out.print_json(decision.model_dump_json())
        return
    out.print(f"[bold]{decision.outcome.value}[/bold]  reasons: {', '.join(decision.reasons)}  "
              f"policy version: {decision.policy_version}")
    seen = decision.inputs.get("context", {})
    for key in ("facts", "run", "autonomy", "time", "screen", "usage"):
        if key in seen:
            out.print(f"{key}: {seen[key]}")
    for e in decision.errors:
        out.print(f"[red]error[/red] {e}")


@policy_app.command("test")
def test(paths: Annotated[list[Path] | None, typer.Argument(
        help="suite files or folders (default: the shipped suites in policy/tests)")] = None
         ) -> None:
    """Run YAML policy test suites; exit 1 if any case fails."""
    try:
        results = run_suites(_engine(), build_registry(), paths)
    except SuiteError as exc:
        raise fail(str(exc)) from None
    table = Table(title="Policy tests")
    for col in ("suite", "case", "expected", "got", ""):
        table.add_column(col)
    for r in results:
        table.add_row(r.suite, r.case, r.expected, r.got,
                      "[green]pass[/green]" if r.passed else "[bold red]FAIL[/bold red]")
    out.print(table)
    failed = [r for r in results if not r.passed]
    out.print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    if failed:
        raise typer.Exit(1)


def _scope_label(v: Any) -> str:
    if v.scope_type == "global":
        return "global"
    if v.scope_type == "tenant":
        return f"tenant:{v.tenant_id}"
    return f"{v.scope_type}:{v.tenant_id}/{v.scope_id}"


@policy_app.command("versions")
def versions(
    tenant: Annotated[str | None, typer.Option(help="only global + this tenant's scopes")] = None,
    portfolio: Annotated[str, typer.Option(help="show what is in force for this portfolio")]
    = "",
    property_id: Annotated[str, typer.Option("--property", help="... or this property")] = "",
) -> None:
    """List stored policy versions (active and shadow ones marked) and what is in force."""
    with _services() as services:
        rows = services.policy_store.versions(tenant_id=tenant)
        table = Table(title="Policy versions")
        for col in ("id", "scope", "number", "state", "author", "created", "note"):
            table.add_column(col)
        for v in rows:
            state = ("[green]active[/green]" if v.active else
                     "[yellow]shadow[/yellow]" if v.shadow else "")
            table.add_row(str(v.id), _scope_label(v), str(v.number), state, v.author,
                          f"{v.created_at:%Y-%m-%d %H:%M}", v.note)
        out.print(table if rows else "No stored versions: the shipped policies are in force.")
        who = tenant or services.settings.tenant_id
        try:
            effective = services.policy_store.engine_for(who, portfolio, property_id).version
        except PolicyLoadError as exc:
            raise fail(str(exc)) from None
        where = "/".join(x for x in (who, portfolio, property_id) if x)
        out.print(f"in force for {where}: {effective}")


@policy_app.command("create")
def create(
    folder: Annotated[Path, typer.Argument(help="folder with *.cedar and optional config.json")],
    author: Annotated[str, typer.Option(help="who makes this version")],
    scope: Annotated[str, typer.Option(help="global, tenant, portfolio or property")]
    = "global",
    tenant: Annotated[str | None, typer.Option(help="tenant id (every scope but global)")]
    = None,
    scope_id: Annotated[str, typer.Option(help="portfolio or property id")] = "",
    note: Annotated[str, typer.Option(help="why")] = "",
    activate: Annotated[bool, typer.Option(help="make it the active version now")] = False,
) -> None:
    """Store a new immutable policy version (validated first; nothing is stored if it fails)."""
    from policy.store import read_dir

    with _services() as services:
        try:
            cedar, config = read_dir(folder)
            if scope == "global" and not config:
                config = PolicyBundle.load().config  # condition data unchanged
            version = services.policy_store.create(
                scope_type=scope, tenant_id=tenant or "",
                scope_id=(tenant or "") if scope == "tenant" else scope_id, cedar=cedar,
                config=config, author=author, note=note, activate=activate)
        except PolicyLoadError as exc:
            raise fail(str(exc)) from None
        out.print(f"stored version id {version.id} ({_scope_label(version)} "
                  f"#{version.number})" + (", active" if version.active else ""))


@policy_app.command("activate")
def activate(version_id: Annotated[int, typer.Argument(help="version id")]) -> None:
    """Make a stored version the active one of its scope (validated again first)."""
    with _services() as services:
        try:
            version = services.policy_store.activate(version_id)
        except PolicyLoadError as exc:
            raise fail(str(exc)) from None
        out.print(f"version {version.id} is active for {_scope_label(version)}")


@policy_app.command("deactivate")
def deactivate(version_id: Annotated[int, typer.Argument(help="version id")]) -> None:
    """Stop using a version; its scope falls back to the broader policies."""
    with _services() as services:
        try:
            services.policy_store.deactivate(version_id)
        except PolicyLoadError as exc:
            raise fail(str(exc)) from None
        out.print(f"version {version_id} is no longer active")


@policy_app.command("shadow")
def shadow(
    version_id: Annotated[int, typer.Argument(help="version id of the candidate")],
    off: Annotated[bool, typer.Option("--off", help="stop shadowing it")] = False,
) -> None:
    """Evaluate a stored version beside the active one on every real decision (log only)."""
    with _services() as services:
        try:
            version = services.policy_store.set_shadow(version_id, on=not off)
        except PolicyLoadError as exc:
            raise fail(str(exc)) from None
        state = "no longer shadows" if off else "now shadows"
        out.print(f"version {version.id} {state} {_scope_label(version)}; see "
                  "`autopilot policy shadow-report`")


def _print_comparison(report: Any, title: str, as_json: bool) -> None:
    if as_json:
        out.print_json(data=report.as_dict())
        return
    out.print(f"[bold]{title}[/bold]: {report.candidate}, decisions since "
              f"{report.since:%Y-%m-%d %H:%M} UTC")
    if report.total == 0:
        out.print("no recorded decisions to compare in this period")
        return
    for line in report.headlines() or ["no decision would change"]:
        out.print(f"  {line}")
    if report.flips:
        table = Table(title="Flipped decisions by action and reason")
        for col in ("tool", "from", "to", "candidate reasons", "count"):
            table.add_column(col)
        for (tool, before, after, reasons), n in report.flips.most_common():
            table.add_row(tool, before, after, reasons, str(n))
        out.print(table)
    out.print(f"{report.flipped} of {report.total} decisions flipped"
              + (f"; {report.skipped} could not be replayed" if report.skipped else ""))


@policy_app.command("shadow-report")
def shadow_report_cmd(
    days: Annotated[float, typer.Option(help="look back this many days")] = 7,
    tenant: Annotated[str | None, typer.Option(help="only this tenant")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """How the shadow version decided differently from the live one, on real decisions."""
    from policy.simulate import shadow_report

    with _services() as services:
        report = shadow_report(services.db, days=days, tenant_id=tenant)
    _print_comparison(report, "Shadow vs live", as_json)


@policy_app.command("simulate")
def simulate_cmd(
    candidate: Annotated[Path | None, typer.Option(
        help="folder with *.cedar and optional config.json (a global candidate)")] = None,
    version: Annotated[int | None, typer.Option(help="a stored global version instead")]
    = None,
    days: Annotated[float, typer.Option(help="replay the decisions of this many days")] = 7,
    tenant: Annotated[str | None, typer.Option(help="only this tenant's decisions")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Replay recorded decision inputs against a candidate and show what would flip."""
    from policy.simulate import simulate
    from policy.store import read_dir

    if (candidate is None) == (version is None):
        raise fail("give exactly one of --candidate or --version")
    with _services() as services:
        store = services.policy_store
        try:
            if candidate is not None:
                cedar, config = read_dir(candidate)
                bundle = PolicyBundle(cedar=cedar, config=config or PolicyBundle.load().config,
                                      version=f"candidate:{candidate.name}")
            else:
                stored = store.get(version or 0)
                if stored.scope_type != "global":
                    raise PolicyLoadError([f"version {stored.id} is a {stored.scope_type} "
                                           "overlay; simulate takes a global candidate"])
                bundle = store.bundle([stored])
            report = simulate(store, bundle, days=days, tenant_id=tenant)
        except PolicyLoadError as exc:
            raise fail(str(exc)) from None
    _print_comparison(report, "Simulation", as_json)


@policy_app.command("decisions")
def decisions(
    run: Annotated[str | None, typer.Option(help="only this run (thread id)")] = None,
    tenant: Annotated[str | None, typer.Option(help="only this tenant")] = None,
    limit: Annotated[int, typer.Option(help="newest first, at most this many")] = 30,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Recorded gate decisions: outcome, reasons, version, shadow outcome, redacted inputs."""
    from policy.records import decision_dict, recent_decisions

    with _services() as services:
        rows = recent_decisions(services.db, tenant_id=tenant, thread_id=run, limit=limit)
    if as_json:
        out.print_json(data=[decision_dict(r) for r in rows])
        return
    table = Table(title="Policy decisions (newest first)")
    for col in ("at", "run", "action", "stage", "outcome", "reasons", "version", "shadow"):
        table.add_column(col)
    for r in rows:
        table.add_row(f"{r.created_at:%m-%d %H:%M:%S}", r.thread_id, f"{r.action_id} {r.tool}",
                      r.stage, r.outcome, ", ".join(r.reasons), r.policy_version,
                      f"{r.shadow_outcome} {', '.join(r.shadow_reasons or [])}"
                      if r.shadow_version else "")
    out.print(table if rows else "No recorded decisions.")
