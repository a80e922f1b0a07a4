"""Rich rendering of runs, approvals and history for the CLI and the demo."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from autopilot.models import Approval
from autopilot.runtime import RunView

STATUS_STYLE = {"completed": "green", "needs_approval": "yellow", "escalated": "red",
                "running": "cyan", "queued": "cyan", "executing": "cyan",
                "failed_retryable": "yellow", "failed_terminal": "red", "cancelled": "dim"}
PROPOSAL_STYLE = {"executed": "green", "allowed": "green", "approved": "green",
                  "needs_approval": "yellow", "blocked": "red", "rejected": "magenta",
                  "skipped": "dim", "proposed": "cyan", "cancelled": "dim"}


def run_panel(view: RunView, title: str | None = None) -> Panel:
    """One run: status, summary, escalation or pending approval, then each proposed action."""
    values = view.values or {}
    style = STATUS_STYLE.get(view.status, "cyan")  # cyan: a checkpoint, not a status
    lines: list[str] = [
        f"[bold]status[/bold] [{style}]{view.status}[/{style}]"
        + (f" ({view.outcome})" if view.outcome and view.outcome != "resolved" else "")
        + ("  [dim](deduplicated: existing run returned)[/dim]" if view.deduplicated else ""),
        f"[bold]summary[/bold] {view.summary or values.get('plan_summary', '')}",
    ]
    esc = values.get("escalation")
    if esc:
        lines.append(f"[bold red]escalated[/bold red] {esc['severity']} {esc['category']}: "
                     f"{esc['title']}\n  decision requested: {esc['decision_requested']}")
    if view.pending_approval:
        req = view.pending_approval["request"]
        lines.append(f"[bold yellow]waiting for approval[/bold yellow] ({req['severity']}) "
                     f"id {view.pending_approval['id']}")
    for p in values.get("proposals", []):
        decision = p.get("decision") or {}
        pstyle = PROPOSAL_STYLE.get(p["status"], "")
        gate = (f"{decision['outcome']} ({', '.join(decision.get('reasons', []))})"
                if decision else "not gated")
        line = (f"  [{pstyle}]{p['status']:>14}[/{pstyle}]  [bold]{p['tool']}[/bold]  "
                f"[dim]{gate}[/dim]\n                  {p['description']}")
        if p.get("review"):
            line += f"  [dim]· {p['review']['type']} by {p['review']['reviewer']}[/dim]"
        if p.get("replayed"):
            line += "  [dim]· recorded result returned[/dim]"
        lines.append(line)
    return Panel("\n".join(lines), title=title or f"{view.graph} · {view.thread_id}",
                 subtitle=view.thread_id if title else None, border_style=style or "white")


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
