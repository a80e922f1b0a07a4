"""`autopilot demo`: a realistic morning for the maintenance autopilot, end to end."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.rule import Rule
from rich.table import Table

from autopilot.display import approvals_table, run_panel
from autopilot.runtime import Runner
from autopilot.seed import seed_tenant
from graphs import autopilots
from policy.conditions import time_facts


def demo_triggers(tenant: str, now: datetime,
                  quiet: bool = False) -> list[tuple[str, dict[str, Any]]]:
    at = now.isoformat()

    def issue(n: int, unit: str, text: str, channel: str = "sms") -> dict[str, Any]:
        return {"event_id": f"evt-{n}", "tenant_id": tenant, "source": "resident-portal",
                "event_type": "tenant_issue", "occurred_at": at, "trace_id": f"trace-{n}",
                "payload": {"message_id": f"MSG-IN-{n}", "unit_id": unit, "channel": channel,
                            "resident_id": "R-" + unit[2:], "text": text}}

    def pm(n: int, schedule: str) -> dict[str, Any]:
        return {"event_id": f"evt-{n}", "tenant_id": tenant, "source": "pm-scheduler",
                "event_type": "pm_due", "occurred_at": at, "trace_id": f"trace-{n}",
                "payload": {"pm_schedule_id": schedule}}

    leak = issue(1, "P-GRAND-2B", "The pipe under my kitchen sink is leaking into the cabinet.")
    return [
        ("Routine leak: within limits, " + (
            "but it is quiet hours: the resident message waits for a person" if quiet
            else "runs on its own"), leak),
        ("Gas smell: an emergency always goes to a person",
         issue(2, "P-ASTORIA-1A", "I smell gas in the hallway outside my door, it's strong.")),
        ("Water heater: estimate above the 750 auto limit",
         issue(3, "P-FLATBUSH-3B", "Water heater is broken, no hot water since yesterday.",
               "email")),
        ("Boiler overhaul PM: contract price above the 5000 hard limit", pm(4, "PM-GRAND-BOILER")),
        ("HVAC filter PM: routine, contract vendor", pm(5, "PM-ASTORIA-FILTERS")),
        ("Same leak reported again: deduplicated", leak),
    ]


def run_demo(runner: Runner, out: Console, tenant: str | None = None) -> None:
    tenant = tenant or f"demo-{secrets.token_hex(3)}"
    started = time.perf_counter()
    seed_tenant(runner.services.db, tenant)
    backend = "PostgreSQL" if runner.services.settings.uses_postgres else (
        f"SQLite in {runner.services.settings.data_dir}")
    out.print(Rule(f"[bold]Maintenance autopilot demo[/bold] · tenant {tenant} · {backend}"))
    version = runner.services.policy_for(tenant).version
    out.print(f"policy version {version}: auto-approve spend <= 750, "
              "approval above 750, hard block above 5000, emergencies always to a person, "
              "auto-assign only PLUMBING/HVAC/ELECTRICAL/GENERAL, max 25 open per vendor")
    engine = runner.services.policy_for(tenant)
    local = time_facts(engine.config, runner.services.gate.clock(), "")
    quiet = bool(local["in_quiet_hours"])
    out.print(f"local time {local['local_minutes'] // 60:02d}:{local['local_minutes'] % 60:02d} "
              f"{local['timezone']}" + (": quiet hours, resident messages need a person\n"
                                        if quiet else "\n"))
    timings = []
    views = []
    for title, event in demo_triggers(tenant, datetime.now(UTC), quiet):
        t0 = time.perf_counter()
        view = runner.submit("maintenance", event)
        timings.append((title, view, time.perf_counter() - t0))
        views.append(view)
        out.print(run_panel(view, title=title))

    pending = runner.pending_approvals(tenant)
    out.print(approvals_table(pending))
    critical = next((a for a in pending if a.severity == "CRITICAL"), None)
    if critical is not None:
        out.print(Rule("A manager approves the emergency"))
        t0 = time.perf_counter()
        n = len(critical.request["action_requests"])
        view = runner.decide(critical.id, {"decisions": [{"type": "approve"}] * n},
                             reviewer="maria.manager@acme.example")
        timings.append(("Gas smell after approval", view, time.perf_counter() - t0))
        out.print(run_panel(view, title="Gas smell: approved and finished"))

    for name, spec in autopilots().items():
        if name == "maintenance" or spec.demo is None:
            continue
        out.print(Rule(f"[bold]{name}[/bold] autopilot: {spec.description}"))
        for title, event in spec.demo(tenant, datetime.now(UTC)):
            t0 = time.perf_counter()
            view = runner.submit(name, event)
            timings.append((f"{name}: {title}", view, time.perf_counter() - t0))
            out.print(run_panel(view, title=f"{name}: {title}"))

    table = Table(title="Runs in this demo")
    for col in ("trigger", "run", "status", "seconds"):
        table.add_column(col)
    for title, view, secs in timings:
        table.add_row(title, view.thread_id, view.status, f"{secs:.3f}")
    out.print(table)
    remaining = runner.pending_approvals(tenant)
    if remaining:
        out.print(f"Still waiting: {len(remaining)} approval(s). Try "
                  f"[bold]autopilot approvals[/bold] and [bold]autopilot approve "
                  f"{remaining[0].thread_id}[/bold] (or --edit '{{\"not_to_exceed\": 900}}', "
                  f"--reject 'reason').")
    for exc in runner.exceptions(tenant):
        out.print(f"[red]Exception inbox[/red] {exc.severity} {exc.category}: {exc.title}")
    out.print(f"\nDemo finished in {time.perf_counter() - started:.2f}s.")
