"""`autopilot ledger ...` (verify the chain, tell a run's story) and `autopilot autonomy ...`
(the kill switch)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.table import Table

from autopilot.console import fail, out
from autopilot.killswitch import GLOBAL

ledger_app = typer.Typer(help="The tamper-evident audit ledger.", no_args_is_help=True)
autonomy_app = typer.Typer(help="The kill switch for autonomous writes.", no_args_is_help=True)


@contextmanager
def _services() -> Iterator[Any]:
    from autopilot.services import Services

    services = Services.create()
    try:
        yield services
    finally:
        services.close()


@ledger_app.command("verify")
def verify(tenant: Annotated[str | None, typer.Option(help="only this tenant's chain")] = None
           ) -> None:
    """Recompute the hash chain; name the first altered or missing entry. Exit 1 if any."""
    with _services() as services:
        tenants = [tenant] if tenant else services.ledger.tenants()
        reports = [services.ledger.verify(t) for t in tenants]
    table = Table(title="Ledger chains")
    for col in ("tenant", "entries checked", "state", "first problem"):
        table.add_column(col)
    for r in reports:
        table.add_row(r.tenant_id, str(r.entries), "[green]intact[/green]" if r.ok
                      else "[bold red]BROKEN[/bold red]", r.problem + (
                          f" (row id {r.entry_id})" if r.entry_id else ""))
    out.print(table if reports else "The ledger is empty.")
    if any(not r.ok for r in reports):
        raise typer.Exit(1)


def _line(e: Any) -> str:
    p = e.payload
    kind = e.event_type
    if kind == "INTENT":
        return (f"trigger {p.get('event_type')} from {p.get('source')} (event {p.get('event_id')}"
                f") for {p.get('graph')}")
    if kind == "EVIDENCE":
        return f"saw {p.get('ref')}: {p.get('summary')} [{p.get('evidence_id')}]"
    if kind == "SIGNAL":
        return f"classified {p.get('run_facts')}; plan: {p.get('summary')}"
    if kind == "PROPOSAL":
        grounded = "" if p.get("grounded", True) else f" UNGROUNDED ({p.get('grounding')})"
        return (f"proposed {p.get('action_id')} {p.get('tool')} (confidence "
                f"{p.get('confidence')}): {p.get('reasoning')}{grounded}")
    if kind == "POLICY_DECISION":
        return (f"{p.get('stage')} {p.get('action_id')} {p.get('tool')} -> {p.get('outcome')} "
                f"({', '.join(p.get('rule_ids') or [])}) under {p.get('policy_version')}")
    if kind == "APPROVAL":
        decided = ", ".join(f"{d.get('action_id')} {d.get('type')}"
                            for d in p.get("decisions", []))
        return f"{p.get('reviewer')} decided {decided} ({p.get('approval_id')})"
    if kind == "TOOL_CALL":
        extra = p.get("error") or p.get("reason_code") or p.get("note") or ""
        return (f"{p.get('tool')} {p.get('action_id') or ''} {p.get('status')} by "
                f"{p.get('principal')}: {extra}")
    if kind == "VERIFICATION":
        return "verified " + ", ".join(f"{c['action_id']} {'ok' if c['ok'] else 'MISMATCH'}"
                                       for c in p.get("checks", []))
    if kind == "ESCALATION":
        return f"escalated {p.get('severity')} {p.get('category')}: {p.get('title')}"
    if kind == "ERROR":
        return f"{p.get('node')} failed: {p.get('error')}"
    return str(p)


@ledger_app.command("show")
def show(run_id: Annotated[str, typer.Argument(help="run (thread) id")]) -> None:
    """A run's full story: why it started, what it saw, what policy allowed, who approved,
    what changed."""
    with _services() as services:
        entries = services.ledger.story(run_id)
    if not entries:
        raise fail(f"no ledger entries for run {run_id!r}")
    table = Table(title=f"Run {run_id} (trace {entries[0].trace_id})")
    for col in ("#", "time", "event", "what happened"):
        table.add_column(col)
    for e in entries:
        table.add_row(str(e.seq), f"{e.created_at:%H:%M:%S.%f}"[:-3], e.event_type, _line(e))
    out.print(table)


@autonomy_app.command("status")
def status(tenant: Annotated[str | None, typer.Option(help="tenant (default: configured)")]
           = None) -> None:
    """Whether autonomous writes are on for a tenant, and why not."""
    with _services() as services:
        who = tenant or services.settings.tenant_id
        state = services.kill_switch.state(who)
    out.print(f"autonomous writes for {who}: "
              + ("[green]ON[/green]" if state.enabled else f"[red]OFF[/red] ({state.why})"))


def _flip(enabled: bool, tenant: str | None, everywhere: bool, by: str, reason: str) -> None:
    if everywhere == bool(tenant):
        raise fail("give exactly one of --tenant T or --global")
    if tenant and tenant.lower() in (GLOBAL, "_platform"):
        raise fail(f"{tenant!r} is reserved; use --global for every tenant")
    with _services() as services:
        try:
            services.kill_switch.set(GLOBAL if everywhere else str(tenant), enabled, by=by,
                                     reason=reason)
        except ValueError as exc:
            raise fail(str(exc)) from None
        scope = "globally" if everywhere else f"for {tenant}"
        out.print(f"autonomous writes {'ON' if enabled else 'OFF'} {scope}; calls already "
                  "queued are re-checked before they write")


@autonomy_app.command("off")
def off(
    by: Annotated[str, typer.Option("--as", help="who flips the switch")],
    reason: Annotated[str, typer.Option(help="why")] = "",
    tenant: Annotated[str | None, typer.Option(help="only this tenant")] = None,
    everywhere: Annotated[bool, typer.Option("--global", help="every tenant")] = False,
) -> None:
    """Stop autonomous writes: every write then waits for a person."""
    _flip(False, tenant, everywhere, by, reason)


@autonomy_app.command("on")
def on(
    by: Annotated[str, typer.Option("--as", help="who flips the switch")],
    reason: Annotated[str, typer.Option(help="why")] = "",
    tenant: Annotated[str | None, typer.Option(help="only this tenant")] = None,
    everywhere: Annotated[bool, typer.Option("--global", help="every tenant")] = False,
) -> None:
    """Allow autonomous writes again (within policy)."""
    _flip(True, tenant, everywhere, by, reason)


@autonomy_app.command("drift")
def drift_list(
    tenant: Annotated[str | None, typer.Option(help="only this tenant")] = None,
    include_reset: Annotated[bool, typer.Option("--all", help="include reset ones")] = False,
) -> None:
    """Action types downgraded to L1 by drift (failed verifications or rejections)."""
    from policy import drift

    with _services() as services:
        rows = [drift.describe(r) for r in drift.list_downgrades(
            services.db, tenant, include_reset=include_reset)]
    if not rows:
        out.print("No action type is downgraded.")
    for r in rows:
        out.print(f"{r['tenant_id']} {r['graph']}/{r['tool']}: {r['from_level']} -> "
                  f"{r['to_level']} ({r['reason']})")


@autonomy_app.command("restore")
def drift_restore(
    graph: Annotated[str, typer.Argument(help="autopilot")],
    tool: Annotated[str, typer.Argument(help="tool")],
    by: Annotated[str, typer.Option("--as", help="who restores it")],
    tenant: Annotated[str | None, typer.Option(help="tenant (default: configured)")] = None,
    note: Annotated[str, typer.Option(help="why")] = "",
) -> None:
    """Give a downgraded action type its configured level back (ledgered)."""
    from policy import drift

    with _services() as services:
        who = tenant or services.settings.tenant_id
        try:
            drift.reset(services.db, services.ledger, tenant_id=who, graph=graph, tool=tool,
                        by=by, note=note)
        except drift.DriftError as exc:
            raise fail(str(exc)) from None
    out.print(f"{graph}/{tool} is back at its configured level for {who}")
