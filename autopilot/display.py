"""Rich rendering of runs, approvals and history for the CLI and the demo."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from autopilot.models import Approval
from autopilot.runtime import RunView

STATUS_STYLE = {"completed": "green", "needs_approval": "yellow", "escalated": "red",
                "rejected": "magenta", "nothing_to_do": "dim", "running": "cyan"}
PROPOSAL_STYLE = {"executed": "green", "allowed": "green", "approved": "green",
                  "needs_approval": "yellow", "blocked": "red", "rejected": "magenta",
                  "skipped": "dim", "proposed": "cyan"}


def run_panel(view: RunView, title: str | None = None) -> Panel:
    values = view.values or {}
    table = Table(show_header=True, header_style="bold", expand=True, box=None)
    table.add_column("action")
    table.add_column("tool")
    table.add_column("gate")
    table.add_column("status")
    table.add_column("what", ratio=1)
    for p in values.get("proposals", []):
        decision = p.get("decision") or {}
        gate = (f"{decision.get('outcome', '-')}\n[dim]{', '.join(decision.get('reasons', []))}"
                "[/dim]") if decision else "-"
        style = PROPOSAL_STYLE.get(p["status"], "")
        status = f"[{style}]{p['status']}[/{style}]"
        if p.get("replayed"):
            status += " [dim](recorded result)[/dim]"
        if p.get("review"):
            status += f"\n[dim]{p['review']['type']} by {p['review']['reviewer']}[/dim]"
        table.add_row(p["action_id"], p["tool"], gate, status, p["description"])
    style = STATUS_STYLE.get(view.status, "")
    lines = [f"[bold]status[/bold] [{style}]{view.status}[/{style}]"
             + ("  [dim](deduplicated: existing run)[/dim]" if view.deduplicated else ""),
             f"[bold]summary[/bold] {view.summary or values.get('plan_summary', '')}"]
    esc = values.get("escalation")
    if esc:
        lines.append(f"[bold red]escalated[/bold red] {esc['severity']} {esc['category']}: "
                     f"{esc['title']}\n  {esc['details']}\n  decision requested: "
                     f"{esc['decision_requested']}")
    if view.pending_approval:
        req = view.pending_approval["request"]
        lines.append(f"[bold yellow]waiting for approval[/bold yellow] "
                     f"{view.pending_approval['id']} ({req['severity']}): "
                     + "; ".join(f"{p['action_id']} {p['outcome']} ({', '.join(p['reasons'])})"
                                 for p in req["policy"]))
    from rich.console import Group

    return Panel(Group(*lines, table), title=title or f"{view.graph} · {view.thread_id}",
                 border_style=style or "white")


def approvals_table(rows: list[Approval]) -> Table:
    table = Table(title="Pending approvals", show_lines=True)
    for col in ("approval", "run", "severity", "actions", "why", "evidence"):
        table.add_column(col)
    for a in rows:
        req = a.request
        actions = "\n".join(f"{r['name']}: {r['description']}" for r in req["action_requests"])
        why = "\n".join(f"{p['action_id']}: {', '.join(p['reasons'])}" for p in req["policy"])
        table.add_row(a.id, a.thread_id, a.severity, actions, why,
                      "\n".join(req.get("evidence_refs", [])[:5]))
    return table


def history_table(thread_id: str, rows: list[dict[str, Any]]) -> Table:
    table = Table(title=f"Checkpoints of {thread_id}")
    for col in ("step", "node", "next", "time", "checkpoint id"):
        table.add_column(col)
    for h in rows:
        nxt = ", ".join(h["next"]) or "(end)"
        if h["interrupted"]:
            nxt += " [yellow](interrupted)[/yellow]"
        table.add_row(str(h["step"]), h["node"], nxt, str(h["created_at"]), h["checkpoint_id"])
    return table


def console() -> Console:
    return Console()
