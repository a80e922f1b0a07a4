"""`autopilot eval`: run incident suites, compare versions, capture reviewer decisions."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from autopilot.config import Settings
from autopilot.console import fail, out
from evals.format import Incident, IncidentFileError, load_incidents

eval_app = typer.Typer(help="Replay recorded incidents against a graph version, compare "
                            "versions, turn reviewer decisions into incidents.",
                       no_args_is_help=True)

REPORTS_DIR = Path(__file__).resolve().parent / "reports"
METRIC_COLUMNS = [  # (key, header, format): one row per autopilot, then "all"
    ("incidents", "n", "{}"), ("passed", "pass", "{}"),
    ("action_precision", "prec", "pct"), ("action_recall", "rec", "pct"),
    ("decision_accuracy", "dec", "pct"),
    ("escalation_false_positives", "escFP", "{}"),
    ("escalation_false_negatives", "escFN", "{}"),
    ("autonomy_rate", "auto", "pct"),
    ("steps_to_mitigation_p50", "steps", "{:g}"),
    ("minutes_to_mitigation_p50", "min", "{:.0f}"),
    ("safety_violations", "viol", "{}"),
]


def _fmt(value: Any, pattern: str) -> str:
    if value is None:
        return "-"
    if pattern == "pct":
        return f"{value * 100:.1f}"
    try:
        return pattern.format(value)
    except (ValueError, TypeError):
        return str(value)


def _reports_dirs() -> list[Path]:
    return [Settings().data_dir / "evals", REPORTS_DIR]


LEGEND = ("prec/rec: proposed actions as expected · dec: gate decisions as expected · "
          "escFP/escFN: needless/missing human involvement · auto: routine incidents resolved "
          "alone · steps, min: p50 to mitigation (simulated minutes) · viol: safety "
          "violations (must be 0) · rates in %")


def metrics_table(report: dict[str, Any]) -> Table:
    """One row per autopilot and a total: precision/recall of proposed actions, gate
    decision accuracy, escalation false positives/negatives, autonomy on routine incidents,
    p50 steps and simulated minutes to mitigation, safety violations."""
    version = report["version"]
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 0, 0, 1),
                  title=f"Eval {version['label']} · policy {version['policy_version']} · "
                        f"code {version.get('code_revision', '?')}")
    table.add_column("autopilot", no_wrap=True)
    for _, header, _ in METRIC_COLUMNS:
        table.add_column(header, justify="right", no_wrap=True)
    rows = [*report["metrics"]["by_graph"].items(), ("all", report["metrics"]["all"])]
    for name, m in rows:
        cells = [_fmt(m.get(key), pattern) for key, _, pattern in METRIC_COLUMNS]
        if m.get("safety_violations"):
            cells[-1] = f"[bold red]{cells[-1]}[/bold red]"
        table.add_row(f"[bold]{name}[/bold]" if name == "all" else name, *cells)
    return table


def _select(target: str, incidents_path: Path | None, only: list[str]) -> tuple[
        list[Incident], list[str]]:
    from evals.runner import INCIDENTS_DIR
    from graphs import autopilots

    if target != "all" and target not in autopilots():
        raise fail(f"unknown autopilot {target!r}: choose all or one of "
                   f"{', '.join(sorted(autopilots()))}")
    path = incidents_path or (INCIDENTS_DIR if target == "all" else INCIDENTS_DIR / target)
    if not path.exists():
        raise fail(f"--incidents {path}: no such file or folder")
    try:
        incidents = load_incidents(path)
    except IncidentFileError as exc:
        raise fail(str(exc)) from None
    if target != "all":
        incidents = [i for i in incidents if i.graph == target]
    if only:
        missing = sorted(set(only) - {i.id for i in incidents})
        if missing:
            raise fail(f"--only: no incident {', '.join(missing)} in {path}")
        incidents = [i for i in incidents if i.id in set(only)]
    if not incidents:
        raise fail(f"no {target} incidents in {path}")
    files = sorted({str(p) for p in ([path] if path.is_file() else path.rglob("*.jsonl"))})
    return incidents, files


@eval_app.command("run")
def run_cmd(
    target: Annotated[str, typer.Argument(help="an autopilot, or all")],
    version: Annotated[str, typer.Option(help="label of the graph version under test (the "
                                              "report is saved as <label>.json)")] = "local",
    incidents: Annotated[Path | None, typer.Option(help="a .jsonl file or a folder (default: "
                                                        "evals/incidents/<graph>)")] = None,
    policy: Annotated[Path | None, typer.Option(help="candidate global policy: a folder with "
                                                     "*.cedar and optional config.json")] = None,
    approvals: Annotated[str, typer.Option(help="answer approvals: recorded (the incident's "
                                                "human, else approve), approve, reject")]
    = "recorded",
    workers: Annotated[int, typer.Option(min=1, max=64, help="worker processes")] = min(
        2, os.cpu_count() or 1),
    out_file: Annotated[Path | None, typer.Option("--out", help="report path (default: "
                                                  "$AUTOPILOT_DATA_DIR/evals/<label>.json)")]
    = None,
    keep: Annotated[Path | None, typer.Option(help="keep failing incidents' databases here "
                                                   "(default: next to the report)")] = None,
    keep_all: Annotated[bool, typer.Option(help="keep every incident's databases")] = False,
    only: Annotated[list[str] | None, typer.Option(help="only this incident id (repeat)")]
    = None,
    quiet: Annotated[bool, typer.Option(help="no progress bar")] = False,
    compact: Annotated[bool, typer.Option(help="write only the deterministic part (for a "
                                               "committed baseline)")] = False,
) -> None:
    """Replay incidents in isolation, print the metrics and write the JSON report.

    Exits 1 if any safety violation occurred."""
    from evals.runner import RunOptions, dumps, run_suite
    from evals.runner import compact as compact_report
    from evals.score import slug

    if approvals not in ("recorded", "approve", "reject"):
        raise fail("--approvals must be recorded, approve or reject")
    if policy is not None and not policy.is_dir():
        raise fail(f"--policy {policy}: not a folder")
    selected, files = _select(target, incidents, only or [])
    report_path = out_file or Settings().data_dir / "evals" / f"{slug(version)}.json"
    keep_dir = keep or report_path.with_suffix(".d")
    if keep is None and keep_dir.is_dir():
        shutil.rmtree(keep_dir)  # the previous run's kept databases belong to its report
    options = RunOptions(label=version, approvals=approvals,  # type: ignore[arg-type]
                         policy_dir=policy, workers=workers, keep_dir=keep_dir.resolve(),
                         keep_all=keep_all, sources=files)
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("[red]{task.fields[failed]} failing"), TimeElapsedColumn())
    # No refresh thread: the worker processes are forked while the bar is up.
    with Progress(*columns, console=out, disable=quiet, transient=False,
                  auto_refresh=False) as bar:
        task = bar.add_task(f"replaying {target}", total=len(selected), failed=0)
        failed = 0

        def tick(_incident: Incident, passed: bool) -> None:
            nonlocal failed
            failed += not passed
            bar.update(task, advance=1, failed=failed, refresh=True)

        try:
            report = run_suite(selected, options, tick)
        except Exception as exc:  # e.g. a candidate policy that does not load
            raise fail(f"eval run failed: {type(exc).__name__}: {exc}") from None
    report_path.parent.mkdir(parents=True, exist_ok=True)
    report_path.write_text(dumps(compact_report(report) if compact else report))
    # Eleven figures per autopilot need ~86 columns; never squeeze them into "100…".
    Console(file=out.file, width=max(out.width, 88), force_terminal=out.is_terminal,
            no_color=out.no_color).print(metrics_table(report))
    out.print(f"[dim]{LEGEND}[/dim]")
    failing = [e for e in report["incidents"] if not e["passed"]]
    for e in failing[:15]:
        div = e.get("divergence") or {}
        more = f" (+{len(e['failures']) - 1} more)" if len(e["failures"]) > 1 else ""
        out.print(f"[yellow]✗ {e['id']}[/yellow] {e['failures'][0]}{more}"
                  + (f"\n    diverged at step {div.get('step')} ({div.get('node')}): "
                     f"{div.get('command')}" if div else ""), soft_wrap=True)
    if len(failing) > 15:
        out.print(f"... and {len(failing) - 15} more failing incidents (see the report)")
    timing = report["timing"]
    out.print(f"{len(selected)} incidents in {timing['seconds']} s "
              f"({timing['incidents_per_second']}/s, {workers} workers) · report {report_path}")
    if report["metrics"]["all"]["safety_violations"]:
        raise typer.Exit(1)


def _parse_limits(items: list[str]) -> dict[str, float]:
    limits = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            limits[name] = float(value)
        except ValueError:
            raise fail(f"--max-drop-for {item!r}: expected METRIC=NUMBER") from None
        if not sep:
            raise fail(f"--max-drop-for {item!r}: expected METRIC=NUMBER")
    return limits


@eval_app.command("compare")
def compare_cmd(
    baseline: Annotated[str, typer.Option(help="baseline report path or version label")],
    candidate: Annotated[str, typer.Option(help="candidate report path or version label")],
    max_drop: Annotated[float, typer.Option(min=0, help="largest allowed move the wrong way "
                                                        "of any rate (absolute)")] = 0.02,
    max_drop_for: Annotated[list[str] | None, typer.Option(
        help="per-metric limit, e.g. decision_accuracy=0.05 (repeat)")] = None,
    max_regressed: Annotated[int, typer.Option(
        min=-1, help="incidents allowed to go from pass to fail (-1: no limit)")] = 0,
    allow_missing: Annotated[bool, typer.Option(
        help="a partial candidate run: baseline incidents it did not run are not a failure")]
    = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the comparison as JSON")]
    = False,
) -> None:
    """Show per-metric deltas and the incidents whose outcome changed.

    Exits 1 when a safety violation appears or a metric drops past its threshold."""
    from evals.compare import ReportError, compare, load_report

    try:
        base = load_report(baseline, _reports_dirs())
        cand = load_report(candidate, _reports_dirs())
    except ReportError as exc:
        raise fail(str(exc)) from None
    try:
        result = compare(base, cand, max_drop, _parse_limits(max_drop_for or []),
                         None if max_regressed < 0 else max_regressed, allow_missing)
    except ValueError as exc:  # e.g. --max-drop-for naming no metric
        raise fail(f"--max-drop-for: {exc}") from None
    if as_json:
        out.print_json(json.dumps(result.as_dict()))
    else:
        _print_comparison(base, cand, result)
    if not result.ok:
        raise typer.Exit(1)


def _print_comparison(base: dict[str, Any], cand: dict[str, Any], result: Any) -> None:
    table = Table(title=f"{base['version']['label']} -> {cand['version']['label']}")
    for col in ("scope", "metric", "baseline", "candidate", "delta"):
        table.add_column(col, justify="right" if col in ("baseline", "candidate", "delta")
                         else "left")
    for d in result.deltas:
        if d["scope"] != "all" and not d["delta"]:
            continue
        style = "red" if d["regressed"] else ("green" if d["delta"] else "")
        delta = f"{d['delta']:+g}"
        table.add_row(d["scope"], d["metric"], str(d["baseline"]), str(d["candidate"]),
                      f"[{style}]{delta}[/{style}]" if style else delta)
    out.print(table)
    for c in result.changed:
        mark = "[red]regressed[/red]" if c["regressed"] else "changed"
        out.print(f"{mark} {c['id']} ({c['graph']}): {c['baseline']['outcome']} -> "
                  f"{c['candidate']['outcome']}"
                  + (f"; {'; '.join(c['candidate']['failures'])}"
                     if c["candidate"]["failures"] else ""), soft_wrap=True)
        at = c.get("diverges_at")
        if at:
            out.print(f"    trajectories part at step {at['step']} ({at['node']})"
                      + (f": {at['command']}" if at.get("command") else ""), soft_wrap=True)
    if result.missing:
        out.print(f"[yellow]not in the candidate:[/yellow] {', '.join(result.missing[:20])}")
    if result.ok:
        out.print(f"[green]candidate OK[/green]: {len(result.changed)} incident(s) changed, "
                  "no safety violation, no metric beyond its threshold")
    else:
        for reason in result.reasons:
            out.print(f"[red]FAIL[/red] {reason}")


@eval_app.command("capture")
def capture_cmd(
    run_id: Annotated[str, typer.Argument(help="run (thread) id with a rejected or edited "
                                               "approval")],
    out_file: Annotated[Path | None, typer.Option("--out", help="append to this .jsonl "
                                                  "(default: evals/incidents/<graph>/"
                                                  "captured.jsonl)")] = None,
) -> None:
    """Turn a run's rejected or edited approval into an incident.

    The reviewer's decision becomes the expected outcome."""
    from autopilot.cli import runner
    from evals.capture import CaptureError, capture
    from evals.runner import INCIDENTS_DIR

    with runner() as r:
        try:
            incident = capture(r, run_id)
        except CaptureError as exc:
            raise fail(str(exc)) from None
    target = out_file or INCIDENTS_DIR / incident.graph / "captured.jsonl"
    target.parent.mkdir(parents=True, exist_ok=True)
    text = target.read_text() if target.exists() else ""
    try:
        existing = load_incidents(target) if text.strip() else []
    except IncidentFileError as exc:
        raise fail(f"cannot append to {target}: {exc}") from None
    if any(i.id == incident.id for i in existing):
        raise fail(f"{target} already has incident {incident.id}")
    with target.open("a") as fh:
        fh.write(("\n" if text and not text.endswith("\n") else "")
                 + json.dumps(incident.model_dump(mode="json", exclude_none=True),
                              sort_keys=True) + "\n")
    out.print(f"captured {incident.id} ({incident.title}) -> {target}")
