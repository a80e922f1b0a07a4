"""`autopilot policy ...`: dry-run a proposed action and run the YAML policy test suites."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from policy.engine import ActionFacts, PolicyEngine, PolicyRequest, RunFacts, ToolFacts
from policy.schema import PolicyLoadError
from policy.testing import SuiteError, run_suites
from tools.catalog import build_registry
from tools.registry import ToolError, pydantic_errors

policy_app = typer.Typer(help="Dry-run and test the policy gate.", no_args_is_help=True)
out = Console()
err = Console(stderr=True, soft_wrap=True)


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[bold red]error:[/bold red] {message}", highlight=False)
    return typer.Exit(code)


def _engine() -> PolicyEngine:
    try:
        return PolicyEngine(known_tools=set(build_registry().names()), strict=True)
    except PolicyLoadError as exc:
        raise _fail(str(exc)) from None


def _json_object(text: str | None, option: str) -> dict[str, Any]:
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _fail(f"{option} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise _fail(f"{option} must be a JSON object")
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
    tenant: Annotated[str | None, typer.Option(help="tenant whose data --args refer to")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the decision as JSON")] = False,
) -> None:
    """Evaluate one proposed action against the active policies, without side effects."""
    if (args is None) == (facts is None):
        raise _fail("give exactly one of --args or --facts")
    registry = build_registry()
    try:
        spec = registry.get(tool)
        run_facts = RunFacts.model_validate(_json_object(run, "--run"))
        if facts is not None:
            action_facts = ActionFacts.model_validate(_json_object(facts, "--facts"))
        else:
            from autopilot.services import Services

            services = Services.create()
            try:
                raw = services.executor.policy_facts(
                    tenant or services.settings.tenant_id, tool, _json_object(args, "--args"))
            finally:
                services.close()
            action_facts = ActionFacts.model_validate(raw)
    except ToolError as exc:
        raise _fail(str(exc)) from None
    except ValidationError as exc:
        raise _fail("; ".join(f"{e['field']}: {e['message']}"
                              for e in pydantic_errors(exc))) from None
    decision = _engine().evaluate(PolicyRequest(
        graph=graph, tenant_id=tenant or "dry-run",
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
        raise _fail(str(exc)) from None
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
