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
from policy.engine import (
    ActionFacts,
    PolicyBundle,
    PolicyEngine,
    PolicyRequest,
    RunFacts,
    ToolFacts,
)
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
                                                 "true}'")] = None,
    graph: Annotated[str, typer.Option(help="autopilot (Cedar principal)")] = "maintenance",
    tenant: Annotated[str | None, typer.Option(help="tenant whose policies (and data) to use")]
    = None,
    version: Annotated[int | None, typer.Option(help="a stored policy version instead of the "
                                                     "tenant's active ones")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the decision as JSON")] = False,
) -> None:
    """Evaluate one proposed action against the active policies, without side effects."""
    if (args is None) == (facts is None):
        raise fail("give exactly one of --args or --facts")
    registry = build_registry()
    with _services() as services:
        tenant = tenant or services.settings.tenant_id
        try:
            spec = registry.get(tool)
            run_facts = RunFacts.model_validate(_json_object(run, "--run"))
            if facts is not None:
                action_facts = ActionFacts.model_validate(_json_object(facts, "--facts"))
            else:
                action_facts = ActionFacts.model_validate(services.executor.policy_facts(
                    tenant, tool, _json_object(args, "--args")))
            engine = (services.policy_store.engine_for_version(version) if version is not None
                      else services.policy_for(tenant))
        except ToolError as exc:
            raise fail(str(exc)) from None
        except PolicyLoadError as exc:
            raise fail(str(exc)) from None
        except ValidationError as exc:
            raise fail("; ".join(f"{e['field']}: {e['message']}"
                                  for e in pydantic_errors(exc))) from None
    decision = engine.evaluate(PolicyRequest(
        graph=graph, tenant_id=tenant,
        tool=ToolFacts(name=spec.name, kind=spec.kind.value, reversible=spec.reversible,
                       cost_class=spec.cost_class.value, risk=spec.risk.value),
        facts=action_facts, run=run_facts))
    if as_json:
        out.print_json(decision.model_dump_json())
        return
    out.print(f"[bold]{decision.outcome.value}[/bold]  reasons: {', '.join(decision.reasons)}  "
              f"policy version: {decision.policy_version}")
    out.print(f"facts: {action_facts.model_dump()}  run: {run_facts.model_dump()}")
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


@policy_app.command("versions")
def versions(tenant: Annotated[str | None, typer.Option(help="only global + this tenant")]
             = None) -> None:
    """List stored policy versions (active ones marked)."""
    with _services() as services:
        rows = services.policy_store.versions()
        table = Table(title="Policy versions")
        for col in ("id", "scope", "number", "active", "author", "created", "note"):
            table.add_column(col)
        for v in rows:
            if tenant and v.scope_type == "tenant" and v.scope_id != tenant:
                continue
            table.add_row(str(v.id), v.scope_type + (f":{v.scope_id}" if v.scope_id else ""),
                          str(v.number), "[green]active[/green]" if v.active else "",
                          v.author, f"{v.created_at:%Y-%m-%d %H:%M}", v.note)
        out.print(table if rows else "No stored versions: the shipped policies are in force.")
        effective = services.policy_for(tenant or services.settings.tenant_id).version
        out.print(f"in force for {tenant or services.settings.tenant_id}: {effective}")


@policy_app.command("create")
def create(
    folder: Annotated[Path, typer.Argument(help="folder with *.cedar and optional config.json")],
    author: Annotated[str, typer.Option(help="who makes this version")],
    scope: Annotated[str, typer.Option(help="global or tenant")] = "global",
    tenant: Annotated[str | None, typer.Option(help="tenant id for --scope tenant")] = None,
    note: Annotated[str, typer.Option(help="why")] = "",
    activate: Annotated[bool, typer.Option(help="make it the active version now")] = False,
) -> None:
    """Store a new immutable policy version (validated first; nothing is stored if it fails)."""
    from policy.store import read_dir

    with _services() as services:
        try:
            cedar, config = read_dir(folder)
            if scope == "global" and not config:
                config = PolicyBundle.load().config  # thresholds unchanged
            version = services.policy_store.create(
                scope_type=scope, scope_id=tenant or "", cedar=cedar, config=config,
                author=author, note=note, activate=activate)
        except PolicyLoadError as exc:
            raise fail(str(exc)) from None
        out.print(f"stored version id {version.id} ({version.scope_type} #{version.number})"
                  + (", active" if version.active else ""))


@policy_app.command("activate")
def activate(version_id: Annotated[int, typer.Argument(help="version id")]) -> None:
    """Make a stored version the active one of its scope (validated again first)."""
    with _services() as services:
        try:
            version = services.policy_store.activate(version_id)
        except PolicyLoadError as exc:
            raise fail(str(exc)) from None
        out.print(f"version {version.id} is active for {version.scope_type} "
                  f"{version.scope_id}".rstrip())


@policy_app.command("deactivate")
def deactivate(version_id: Annotated[int, typer.Argument(help="version id")]) -> None:
    """Stop using a version; its scope falls back to the broader policies."""
    with _services() as services:
        try:
            services.policy_store.deactivate(version_id)
        except PolicyLoadError as exc:
            raise fail(str(exc)) from None
        out.print(f"version {version_id} is no longer active")
