"""Run an incident suite: build the template sandbox once, replay incidents on worker
processes (each incident in a sandbox restored fresh), score them, write the JSON report."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import time_machine

from autopilot.checkpoint import open_checkpointer
from autopilot.seed import seed_tenant
from autopilot.services import Services
from evals.format import EPOCH, EVAL_TENANT, Incident
from evals.replay import ApprovalPolicy, Sandbox, check_world, eval_settings
from evals.score import FAILURE_NODE, Observed, metrics, score, slug
from graphs import autopilots, get_spec
from tools.http_adapter import ENV_VAR as HTTP_TOOLS_ENV

REPORT_FORMAT = "autopilot-eval-report/1"
ROOT = Path(__file__).resolve().parent.parent
INCIDENTS_DIR = Path(__file__).resolve().parent / "incidents"


@dataclass
class RunOptions:
    label: str = "local"
    approvals: ApprovalPolicy = "recorded"
    policy_dir: Path | None = None
    workers: int = 1
    keep_dir: Path | None = None  # failing incidents' databases go here (None: not kept)
    keep_all: bool = False
    sources: list[str] = field(default_factory=list)  # incident files, for the report


def make_template(target: Path, policy_dir: Path | None = None) -> str:
    """Migrate, seed the eval tenant at the epoch and install a candidate policy; returns the
    policy version the incidents will be decided under."""
    settings = eval_settings(target)
    with time_machine.travel(EPOCH, tick=True):
        services = Services.create(settings)
        try:
            seed_tenant(services.db, EVAL_TENANT, EPOCH)
            if policy_dir is not None:
                from policy.engine import PolicyBundle
                from policy.store import read_dir

                cedar, config = read_dir(policy_dir)
                services.policy_store.create(
                    scope_type="global", cedar=cedar, config=config or PolicyBundle.load().config,
                    author="eval", note=f"candidate {policy_dir}", activate=True)
            version = services.policy_for(EVAL_TENANT).version
            with open_checkpointer(settings):
                pass
        finally:
            services.close()
    return version


def _digest(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for path in sorted(paths):
        h.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:12]


def graph_version(label: str, graphs: list[str], policy_version: str) -> dict[str, Any]:
    """The version tuple: graph code revision, planner (and prompt) version per autopilot,
    policy version, model."""
    sources = [p for d in ("graphs", "tools", "policy") for p in (ROOT / d).rglob("*")
               if p.suffix in (".py", ".cedar", ".json") and "__pycache__" not in p.parts]
    try:
        rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short=12", "HEAD"],
                             capture_output=True, text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        rev = "unknown"
    return {"label": label, "code_revision": rev, "code_digest": _digest(sources),
            "planners": {g: get_spec(g).planner_version for g in graphs},
            "policy_version": policy_version,
            "model": sorted({get_spec(g).model for g in graphs})}


# ---------------------------------------------------------------------- worker processes

_sandbox: Sandbox | None = None


def _init_worker(template: str, work: str) -> None:
    global _sandbox
    _sandbox = Sandbox(Path(template), Path(work) / f"w{os.getpid()}")


def _replay_one(incident: Incident, options: RunOptions) -> dict[str, Any]:
    assert _sandbox is not None, "worker not initialised"
    started = time.perf_counter()
    try:
        seen = _sandbox.replay(incident, options.approvals)
    except Exception as exc:  # a crash in the replay is a failed incident, not a failed suite
        seen = Observed(thread_id="", outcome="failed", error=f"{type(exc).__name__}: {exc}")
    result = score(incident, seen)
    kept = None
    if seen.thread_id and options.keep_dir is not None and (options.keep_all
                                                            or not result.passed):
        kept = str(_sandbox.keep(options.keep_dir / kept_name(incident.id)))
    return {"incident": incident, "seen": seen, "score": result, "kept": kept,
            "seconds": time.perf_counter() - started}


def _produced_by(trajectory: list[dict[str, Any]]) -> list[str]:
    """The node that produced each checkpoint (the previous checkpoint's `next`)."""
    out, before = [], "(input)"
    for t in trajectory:
        out.append(before)
        before = ", ".join(t["next"]) if t["next"] else "-"
    return out


def kept_name(incident_id: str) -> str:
    """A folder name per incident id (readable, and unique even where slugs collide)."""
    return f"{slug(incident_id)[:60]}-{hashlib.sha256(incident_id.encode()).hexdigest()[:6]}"


def open_command(kept: str | None, thread_id: str, checkpoint_id: str) -> str:
    """The shell command that shows a kept incident at a checkpoint (embedded SQLite, plain
    checkpoints: whatever DATABASE_URL or key the shell has set)."""
    where = kept or "<kept dir>"
    return (f"AUTOPILOT_DATA_DIR={where} DATABASE_URL= LANGGRAPH_AES_KEY= "
            f"autopilot show {thread_id} --checkpoint {checkpoint_id}")


def divergence(trajectory: list[dict[str, Any]], kinds: list[str], thread_id: str,
               kept: str | None) -> dict[str, Any] | None:
    """The checkpoint where a failing replay left the expected course: the first one made by
    the node that decided what went wrong (plan for actions, gate for decisions and human
    involvement, execute for safety), and how to open it."""
    if not trajectory:
        return None
    nodes = _produced_by(trajectory)
    wanted = [FAILURE_NODE.get(k) for k in kinds]
    index = next((i for node in ("plan", "gate", "execute") if node in wanted
                  for i, n in enumerate(nodes) if node in n), len(trajectory) - 1)
    point = trajectory[index]
    return {"checkpoint_id": point["checkpoint_id"], "step": point["step"],
            "node": nodes[index], "command": open_command(kept, thread_id,
                                                          point["checkpoint_id"])}


def _entry(result: dict[str, Any]) -> dict[str, Any]:
    inc: Incident = result["incident"]
    seen: Observed = result["seen"]
    sc = result["score"]
    nodes = _produced_by(seen.trajectory)
    return {
        "id": inc.id, "graph": inc.graph, "title": inc.title, "tags": inc.tags,
        "passed": sc.passed, "failures": sc.failures, "outcome": seen.outcome,
        "expected_outcome": sc.expected_outcome, "human_required": sc.human_required,
        "human_involved": sc.human_involved, "routine": sc.routine,
        "autonomous": sc.autonomous, "mitigated": sc.mitigated, "steps": sc.steps,
        "minutes": sc.minutes, "violations": sc.violations,
        "matched": sc.matched, "proposed": sc.proposed, "expected": sc.expected,
        "decisions_right": sc.decisions_right, "decisions_total": sc.decisions_total,
        "constrains_extra": sc.constrains_extra, "requires_expected": sc.requires_expected,
        "proposals": seen.proposals, "thread_id": seen.thread_id,
        "trajectory": [{**t, "node": n, "state": state_hash(t["signature"])}
                       for t, n in zip(seen.trajectory, nodes, strict=True)],
        "divergence": None if sc.passed else divergence(seen.trajectory, sc.failure_kinds,
                                                        seen.thread_id, result["kept"]),
        "kept": result["kept"], "seconds": round(result["seconds"], 4),
    }


def state_hash(signature: dict[str, Any]) -> str:
    """A short, stable digest of a checkpoint's signature (what compare lines up)."""
    return hashlib.sha256(json.dumps(signature, sort_keys=True).encode()).hexdigest()[:10]


# Per-incident fields a committed baseline keeps: what compare needs, nothing that changes
# from run to run (checkpoint ids, timings, paths), so a re-baseline diff shows real changes.
_COMPACT_KEYS = ("id", "graph", "title", "tags", "passed", "failures", "outcome",
                 "expected_outcome", "human_required", "human_involved", "routine",
                 "autonomous", "mitigated", "steps", "minutes", "violations", "matched",
                 "proposed", "expected", "decisions_right", "decisions_total",
                 "constrains_extra", "requires_expected")


def compact(report: dict[str, Any]) -> dict[str, Any]:
    """The deterministic part of a report (`eval run --compact`, used for baselines)."""
    return {
        "format": report["format"], "compact": True,
        "version": {k: v for k, v in report["version"].items() if k != "code_revision"},
        "options": {**report["options"], "incident_files": [
            str(Path(f).resolve().relative_to(ROOT)) if Path(f).resolve().is_relative_to(ROOT)
            else f for f in report["options"]["incident_files"]]},
        "metrics": report["metrics"],
        "incidents": [{**{k: e[k] for k in _COMPACT_KEYS},
                       "proposals": [{"tool": p["tool"], "status": p["status"],
                                      "decision": p["decision"]} for p in e["proposals"]],
                       "trajectory": [f"{t['node']}@{t['state']}" for t in e["trajectory"]]}
                      for e in report["incidents"]],
    }


def dumps(report: dict[str, Any]) -> str:
    """Report JSON with one incident per line (readable diffs of a committed baseline)."""
    head = json.dumps({k: v for k, v in report.items() if k != "incidents"}, indent=1,
                      sort_keys=True)
    rows = ",\n".join(json.dumps(e, sort_keys=True) for e in report["incidents"])
    return f'{head[:-2]},\n "incidents": [\n{rows}\n ]\n}}\n'


def run_suite(incidents: list[Incident], options: RunOptions,
              progress: Callable[[Incident, bool], None] | None = None) -> dict[str, Any]:
    """Replay every incident (isolated, deterministic) and return the report."""
    unknown = sorted({i.graph for i in incidents} - set(autopilots()))
    if unknown:
        raise ValueError(f"incidents for unknown autopilot(s): {', '.join(unknown)}")
    check_world(incidents)
    # The product's own tools only: deployment-specific HTTP adapters would reach the network.
    http_tools = os.environ.pop(HTTP_TOOLS_ENV, None)
    try:
        return _run_suite(incidents, options, progress)
    finally:
        if http_tools is not None:
            os.environ[HTTP_TOOLS_ENV] = http_tools


def _run_suite(incidents: list[Incident], options: RunOptions,
               progress: Callable[[Incident, bool], None] | None) -> dict[str, Any]:
    started = time.perf_counter()
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="autopilot-eval-") as tmp:
        template = Path(tmp) / "template"
        policy_version = make_template(template, options.policy_dir)
        for result in _replay_all(incidents, options, template, Path(tmp)):
            results[result["incident"].id] = result
            if progress is not None:
                progress(result["incident"], result["score"].passed)
    ordered = [results[i.id] for i in incidents]
    scores = [r["score"] for r in ordered]
    graphs = sorted({i.graph for i in incidents})
    seconds = time.perf_counter() - started
    return {
        "format": REPORT_FORMAT,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "version": graph_version(options.label, graphs, policy_version),
        "options": {"approvals": options.approvals,
                    "policy_dir": str(options.policy_dir) if options.policy_dir else None,
                    "incident_files": options.sources},
        "metrics": {"all": metrics(scores),
                    "by_graph": {g: metrics([s for s in scores if s.graph == g])
                                 for g in graphs}},
        "incidents": [_entry(r) for r in ordered],
        "timing": {"seconds": round(seconds, 2), "workers": options.workers,
                   "incidents_per_second": round(len(incidents) / seconds, 2)
                   if seconds else None},
    }


def _replay_all(incidents: list[Incident], options: RunOptions, template: Path,
                work: Path) -> Iterator[dict[str, Any]]:
    if options.workers <= 1 or len(incidents) < 2:
        _init_worker(str(template), str(work))
        try:
            for incident in incidents:
                yield _replay_one(incident, options)
        finally:
            _close_worker()
        return
    # fork: workers inherit the imported modules (and any test patches) instead of
    # re-importing; no threads exist in this process yet.
    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=options.workers, mp_context=ctx,
                             initializer=_init_worker,
                             initargs=(str(template), str(work))) as pool:
        futures = [pool.submit(_replay_one, incident, options) for incident in incidents]
        from concurrent.futures import as_completed

        for future in as_completed(futures):
            yield future.result()


def _close_worker() -> None:
    global _sandbox
    if _sandbox is not None:
        _sandbox.close()
        _sandbox = None

