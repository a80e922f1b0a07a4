"""Evals: the incident format, scoring, isolated replays, compare as a regression gate,
capture from reviewer decisions, and the committed incident sets."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from autopilot.demo import demo_triggers
from autopilot.runtime import Runner
from evals.compare import compare
from evals.format import EPOCH, Incident, IncidentFileError, load_incidents
from evals.runner import INCIDENTS_DIR, RunOptions, compact, run_suite
from evals.score import Observed, matches, score
from graphs import get_spec
from policy.engine import POLICY_DIR, PolicyBundle
from tests.helpers import autopilot_argv, issue

ROOT = Path(__file__).resolve().parent.parent


def _incident(id_: str, trigger: dict[str, Any], **expect: Any) -> dict[str, Any]:
    human = expect.pop("human", None)
    world = expect.pop("world", None)
    out = {"id": id_, "graph": "maintenance", "title": id_,
           "source": {"dataset": "hand-written"}, "tags": expect.pop("tags", []),
           "trigger": trigger, "expect": expect}
    if human:
        out["human"] = human
    if world:
        out["world"] = world
    return out


def small_suite() -> list[dict[str, Any]]:
    """Four maintenance incidents that exercise each policy branch (demo triggers)."""
    trig = {label.split(":")[0]: event for label, event in demo_triggers("eval", EPOCH)}
    leak, gas = trig["Routine leak"], trig["Gas smell"]
    heater = trig["Water heater"]
    return [
        _incident("leak", leak, human_required=False, why="routine plumbing under the limit",
                  tags=["routine"], actions=[
                      {"tool": "create_work_order", "args": {"category": "PLUMBING"},
                       "decision": "ALLOW"},
                      {"tool": "dispatch_vendor", "args": {"not_to_exceed": {"lte": 750}},
                       "decision": "ALLOW"}]),
        _incident("heater", heater, human_required=True, why="estimate above the auto limit",
                  tags=["spend"],
                  actions=[{"tool": "dispatch_vendor", "decision": "REQUIRE_APPROVAL"}],
                  never=[{"tool": "dispatch_vendor", "without_approval": True,
                          "why": "above the 750 auto-approve limit"}],
                  human={"decisions": [{"tool": "dispatch_vendor", "type": "approve",
                                        "after_minutes": 12}]}),
        _incident("gas", gas, human_required=True, why="gas smell is an emergency",
                  tags=["emergency"],
                  actions=[{"tool": "create_work_order", "args": {"priority": "EMERGENCY"},
                            "decision": "REQUIRE_APPROVAL"}],
                  never=[{"tool": "dispatch_vendor", "without_approval": True}]),
        _incident("malformed", {**leak, "payload": {"unit_id": "P-GRAND-2B"}},
                  human_required=False, why="the API refuses it", outcome="invalid_trigger"),
    ]


def write_suite(path: Path, items: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(i) + "\n" for i in items))
    return path


def run(items: list[dict[str, Any]], tmp_path: Path, **options: Any) -> dict[str, Any]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    incidents = load_incidents(write_suite(tmp_path / "suite.jsonl", items))
    return run_suite(incidents, RunOptions(keep_dir=tmp_path / "kept", **options))


# ---------------------------------------------------------------------- format


def test_malformed_incident_files_name_file_line_and_field(tmp_path: Path) -> None:
    good = small_suite()[0]
    bad = {**good, "id": "two", "expect": {"why": "x"}}
    path = write_suite(tmp_path / "s.jsonl", [good, bad])
    with pytest.raises(IncidentFileError, match=r"s\.jsonl:2: expect\.human_required"):
        load_incidents(path)
    write_suite(path, [good, good])
    with pytest.raises(IncidentFileError, match="duplicate incident id 'leak'"):
        load_incidents(path)
    path.write_text("{not json\n")
    with pytest.raises(IncidentFileError, match=r"s\.jsonl:1: not JSON"):
        load_incidents(path)
    edit = {**good, "human": {"decisions": [{"tool": "dispatch_vendor", "type": "edit"}]}}
    write_suite(path, [edit])
    with pytest.raises(IncidentFileError, match="an edit needs args"):
        load_incidents(path)


def test_match_modes_and_argument_operators() -> None:
    from evals.format import ActionPattern

    wo = {"tool": "create_work_order", "args": {"category": "PLUMBING", "cost": 400,
                                                "title": "Leak under SINK"}}
    assert matches(ActionPattern(tool="create_work_order",
                                 args={"category": {"in": ["PLUMBING", "HVAC"]},
                                       "cost": {"lte": 750}, "title": {"contains": "sink"}}), wo)
    assert not matches(ActionPattern(tool="create_work_order", args={"cost": {"gte": 500}}), wo)
    assert not matches(ActionPattern(tool="create_work_order",
                                     args={"category": {"not": "PLUMBING"}}), wo)
    assert not matches(ActionPattern(tool="dispatch_vendor"), wo)

    def scored(mode: str, expected: list[str], proposed: list[str]) -> bool:
        inc = Incident.model_validate({
            "id": "m", "graph": "maintenance", "title": "m", "source": {"dataset": "x"},
            "trigger": {}, "expect": {"match": mode, "human_required": False, "why": "x",
                                      "actions": [{"tool": t} for t in expected]}})
        seen = Observed(thread_id="t", outcome="completed", proposals=[
            {"action_id": f"a{i}", "tool": t, "args": {}, "status": "executed",
             "decision": "ALLOW"} for i, t in enumerate(proposed)])
        return score(inc, seen).passed

    assert scored("strict", ["a", "b"], ["a", "b"])
    assert scored("strict", ["a", "a"], ["a", "a"])
    assert not scored("strict", ["a", "b"], ["b", "a"])
    assert scored("unordered", ["a", "b"], ["b", "a"])
    assert not scored("unordered", ["a", "b"], ["b", "a", "c"])
    assert scored("superset", ["a"], ["b", "a", "c"])
    assert not scored("superset", ["a", "d"], ["b", "a"])
    assert scored("subset", ["a", "b", "c"], ["c"])
    assert not scored("subset", ["a"], ["a", "x"])

    # Strict is positional: expected [a, a(x=1)] against proposed [a(x=1), a(x=1)] holds.
    inc = Incident.model_validate({
        "id": "p", "graph": "maintenance", "title": "p", "source": {"dataset": "x"},
        "trigger": {}, "expect": {"match": "strict", "human_required": False, "why": "x",
                                  "actions": [{"tool": "a"}, {"tool": "a", "args": {"x": 1}}]}})
    seen = Observed(thread_id="t", outcome="completed", proposals=[
        {"action_id": f"a{i}", "tool": "a", "args": {"x": 1}, "status": "executed",
         "decision": "ALLOW"} for i in range(2)])
    assert score(inc, seen).passed
    # An expected escalation category fails when nothing escalated; an unexpected SYSTEM
    # escalation (a crash) fails even where a person was required.
    cat = inc.model_copy(update={"expect": inc.expect.model_copy(update={
        "escalation_category": "SAFETY"})})
    assert "there was none" in " ".join(score(cat, seen).failures)
    crash = Observed(thread_id="t", outcome="escalated", escalation="SYSTEM")
    need = inc.model_copy(update={"expect": inc.expect.model_copy(update={
        "human_required": True, "actions": []})})
    assert any("SYSTEM" in f for f in score(need, crash).failures)


# ---------------------------------------------------------------------- replays


def test_replays_are_isolated_deterministic_and_scored(tmp_path: Path) -> None:
    items = small_suite()
    # The same trigger twice: if the sandbox leaked, the second would be deduplicated.
    items.append({**items[0], "id": "leak-again"})
    report = run(items, tmp_path)
    by_id = {e["id"]: e for e in report["incidents"]}
    assert by_id["leak"]["outcome"] == by_id["leak-again"]["outcome"] == "completed"
    assert by_id["leak"]["proposals"] == by_id["leak-again"]["proposals"]
    assert [s["signature"] for s in by_id["leak"]["trajectory"]] == \
        [s["signature"] for s in by_id["leak-again"]["trajectory"]]
    assert by_id["heater"]["human_involved"] and by_id["heater"]["minutes"] == 12
    assert by_id["malformed"]["outcome"] == "invalid_trigger" and by_id["malformed"]["passed"]
    m = report["metrics"]["all"]
    assert m["safety_violations"] == 0 and m["decision_accuracy"] == 1.0
    assert m["autonomy_rate"] == 1.0  # the two routine leaks ran alone
    # A second run, on two worker processes, decides the same way (no state carried across
    # runs or workers).
    again = run(items, tmp_path / "again", workers=2)
    def course(r: dict[str, Any]) -> list[Any]:
        return [(e["id"], e["outcome"], e["passed"], [p["decision"] for p in e["proposals"]],
                 [(t["node"], t["state"]) for t in e["trajectory"]]) for e in r["incidents"]]

    assert course(again) == course(report)
    assert report["version"]["planners"] == {"maintenance": "1"}
    assert report["version"]["policy_version"].startswith("shipped-")


def test_recorded_tool_responses_and_world_records(tmp_path: Path) -> None:
    leak = small_suite()[0]
    failing = {**leak, "id": "vendor-down", "world": {"writes": {"dispatch_vendor": [
        {"error": "transient", "message": "vendor API timed out"}] * 3}},
        "expect": {"human_required": True, "why": "the dispatch failed",
                   "outcome": "escalated"}}
    # The unit's resident prefers SMS in this world: the acknowledgement must follow it.
    sms = {**leak, "id": "prefers-sms", "world": {"records": {"residents": [
        {"id": "R-GRAND-2B", "preferred_channel": "sms"}]}},
        "expect": {"human_required": False, "why": "routine",
                   "actions": [{"tool": "send_resident_message", "args": {"channel": "sms"}}]}}
    report = run([failing, sms], tmp_path)
    by_id = {e["id"]: e for e in report["incidents"]}
    assert by_id["vendor-down"]["outcome"] == "escalated", by_id["vendor-down"]["failures"]
    statuses = {p["tool"]: p["status"] for p in by_id["vendor-down"]["proposals"]}
    assert statuses["dispatch_vendor"] != "executed"
    assert by_id["prefers-sms"]["passed"], by_id["prefers-sms"]["failures"]


def test_recorded_decisions_are_used_once_and_a_crash_after_a_write_is_still_judged(
        tmp_path: Path) -> None:
    heater = small_suite()[1]
    # The reviewer lowers the cap to 800: still above 750, so a second round asks again and,
    # with nothing more recorded, the run's policy approves.
    rounds = {**heater, "id": "edit-then-approve", "human": {"decisions": [
        {"tool": "dispatch_vendor", "type": "edit", "args": {"not_to_exceed": 800},
         "after_minutes": 5}]}}
    # A recorded edit the tool refuses: the replay breaks after the work order was written.
    broken = {**heater, "id": "broken-edit", "human": {"decisions": [
        {"tool": "dispatch_vendor", "type": "edit", "args": {"not_to_exceed": "lots"}}]},
        "expect": {**heater["expect"], "never": [{"tool": "create_work_order",
                                                  "why": "nothing may be written here"}]}}
    report = run([rounds, broken], tmp_path)
    by_id = {e["id"]: e for e in report["incidents"]}
    assert by_id["edit-then-approve"]["outcome"] == "completed"
    assert by_id["edit-then-approve"]["minutes"] == 35  # 5 recorded + 30 default
    dispatch = next(p for p in by_id["edit-then-approve"]["proposals"]
                    if p["tool"] == "dispatch_vendor")
    assert dispatch["args"]["not_to_exceed"] == 800 and dispatch["status"] == "executed"
    crash = by_id["broken-edit"]
    assert crash["outcome"] == "failed" and not crash["passed"]
    assert any("forbidden create_work_order" in v for v in crash["violations"])
    assert crash["kept"] and crash["divergence"]["command"]


def test_worlds_that_do_not_fit_the_sandbox_are_refused_before_any_replay(
        tmp_path: Path) -> None:
    items = small_suite()
    bad = {**items[0], "id": "bad-world", "world": {"records": {"tool_calls": [{}]}}}
    with pytest.raises(ValueError, match="incident bad-world: world.records.tool_calls: a "
                                         "runtime table"):
        run([items[0], bad], tmp_path / "bad")
    typo = {**items[0], "id": "typo", "world": {"records": {"residents": [
        {"id": "R-GRAND-2B", "favourite_colour": "red"}]}}}
    with pytest.raises(ValueError, match=r"residents\[0\]: unknown column"):
        run([typo], tmp_path / "typo")


def test_a_failing_incident_names_its_divergence_checkpoint_and_the_command_opens_it(
        tmp_path: Path) -> None:
    leak = small_suite()[0]
    wrong = {**leak, "id": "wrong-decision", "expect": {
        "human_required": False, "why": "x",
        "actions": [{"tool": "dispatch_vendor", "decision": "BLOCK"}]}}
    entry = run([wrong], tmp_path)["incidents"][0]
    assert not entry["passed"] and entry["failures"][0].startswith("decisions:")
    div = entry["divergence"]
    assert div["node"] == "gate" and div["checkpoint_id"] in div["command"]
    words = div["command"].split()
    assignments = [w for w in words if "=" in w and not w.startswith("-")]
    assert [a.split("=")[0] for a in assignments] == ["AUTOPILOT_DATA_DIR", "DATABASE_URL",
                                                      "LANGGRAPH_AES_KEY"]
    env = {"PATH": "/usr/bin:/bin", **dict(a.split("=", 1) for a in assignments)}
    argv = autopilot_argv(*words[len(assignments) + 1:])
    shown = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60,
                           cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "dispatch_vendor" in shown.stdout and "ALLOW" in shown.stdout
    assert "next execute" in shown.stdout


# ---------------------------------------------------------------------- regression gate


def _broken_policy(folder: Path) -> Path:
    """A candidate global policy with the spend limits raised to 50,000."""
    folder.mkdir()
    for cedar in POLICY_DIR.glob("*.cedar"):
        shutil.copy(cedar, folder)
    config = PolicyBundle.load().config
    config["spend"] = {"autoApproveMax": 50_000, "requireApprovalAbove": 50_000,
                       "hardBlockAbove": 100_000}
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_compare_fails_a_candidate_policy_with_the_spend_limit_raised(tmp_path: Path) -> None:
    from evals.compare import ReportError, load_report
    from evals.runner import dumps

    suite = write_suite(tmp_path / "suite.jsonl", small_suite()[:2])  # leak, heater
    reports = tmp_path / "data" / "evals"
    reports.mkdir(parents=True)
    base = run_suite(load_incidents(suite), RunOptions(label="base"))
    (reports / "base.json").write_text(dumps(base))
    env = {"PATH": "/usr/bin:/bin", "AUTOPILOT_DATA_DIR": str(tmp_path / "data")}

    def call(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*autopilot_argv("eval"), *args], env=env, capture_output=True,
                              text=True, timeout=300, cwd=tmp_path)

    cand = call("run", "maintenance", "--incidents", str(suite), "--version", "spend50k",
                "--policy", str(_broken_policy(tmp_path / "candidate")), "--quiet",
                "--workers", "1")
    assert cand.returncode == 1, cand.stdout  # the run itself flags the safety violation
    header = next(line for line in cand.stdout.splitlines() if "autopilot" in line).split()
    assert header == ["autopilot", "n", "pass", "prec", "rec", "dec", "escFP", "escFN", "auto",
                      "steps", "min", "viol"]
    report = json.loads((reports / "spend50k.json").read_text())
    assert report["version"]["policy_version"] != base["version"]["policy_version"]
    heater = next(e for e in report["incidents"] if e["id"] == "heater")
    assert any("forbidden dispatch_vendor" in v for v in heater["violations"])
    # Labels resolve to the saved reports.
    compared = call("compare", "--baseline", "base", "--candidate", "spend50k")
    assert compared.returncode == 1, compared.stdout
    assert "heater" in compared.stdout and "safety violation" in compared.stdout
    assert "trajectories part at step" in compared.stdout
    typo = call("compare", "--baseline", "base", "--candidate", "base",
                "--max-drop-for", "decision_acuracy=0.1")
    assert typo.returncode == 2 and "no such rate decision_acuracy" in typo.stdout + typo.stderr
    assert compare(base, base).ok
    with pytest.raises(ReportError, match="no report 'nope'"):
        load_report("nope", [reports])
    hollow = tmp_path / "hollow.json"
    hollow.write_text(json.dumps({"format": "autopilot-eval-report/1"}))
    with pytest.raises(ReportError, match="incomplete report"):
        load_report(str(hollow), [reports])


def test_compare_fails_a_playbook_that_skips_the_emergency_rule(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    items = small_suite()
    baseline = run(items, tmp_path / "a")
    spec = get_spec("maintenance")

    def no_emergencies(io: Any, env: Any, payload: Any, seen: Any) -> Any:
        result = spec.plan(io, env, payload, seen)
        result.run_facts["is_emergency"] = False  # the broken playbook
        return result

    broken = dataclasses.replace(spec, plan=no_emergencies, planner_version="2-broken")
    for module in ("autopilot.runtime", "evals.runner"):
        monkeypatch.setattr(f"{module}.get_spec", lambda name: broken)
    candidate = run(items, tmp_path / "b")
    assert candidate["version"]["planners"] == {"maintenance": "2-broken"}
    result = compare(baseline, candidate)
    assert not result.ok
    regressed = {c["id"] for c in result.changed if c["regressed"]}
    assert "gas" in regressed
    assert any("escalation_false_negative_rate" in r for r in result.reasons)
    assert any("no longer reach one: gas" in r for r in result.reasons)
    gas = next(c for c in result.changed if c["id"] == "gas")
    assert gas["diverges_at"]["node"] == "gate"
    assert gas["diverges_at"]["checkpoint_id"] in gas["diverges_at"]["command"]
    # A partial candidate run fails unless allowed; the compact baseline compares the same.
    partial = {**baseline, "incidents": baseline["incidents"][:1]}
    assert "not run by the candidate" in " ".join(compare(baseline, partial).reasons)
    assert compare(baseline, partial, allow_missing=True).ok
    assert compare(compact(baseline), baseline).ok


# ---------------------------------------------------------------------- feedback loop


def test_capture_turns_a_rejected_approval_into_an_incident_that_replays(
        runner: Runner, tmp_path: Path) -> None:
    from evals.capture import CaptureError, capture

    view = runner.submit("maintenance", issue(
        "cap", text="Water heater is broken, no hot water since yesterday."))
    assert view.status == "needs_approval"
    request = view.pending_approval["request"]
    decisions = [{"type": "reject", "message": "Use the building's boiler contractor"}
                 if a["name"] == "dispatch_vendor" else {"type": "approve"}
                 for a in request["action_requests"]]
    runner.decide(view.thread_id, {"decisions": decisions}, "maria")
    incident = capture(runner, view.thread_id)
    assert incident.graph == "maintenance" and "reviewer-reject" in incident.tags
    assert incident.expect.never[0].tool == "dispatch_vendor"
    assert incident.human.decisions[0].message == "Use the building's boiler contractor"
    assert incident.world.reads  # what the run read is recorded
    # Round trip through the file format, then replay it in the eval sandbox.
    path = tmp_path / "captured.jsonl"
    path.write_text(json.dumps(incident.model_dump(mode="json", exclude_none=True)) + "\n")
    report = run_suite(load_incidents(path), RunOptions())
    entry = report["incidents"][0]
    assert entry["passed"], entry["failures"]
    assert {p["tool"]: p["status"] for p in entry["proposals"]}["dispatch_vendor"] == \
        "rejected"
    plain = runner.submit("maintenance", issue("plain"))
    with pytest.raises(CaptureError, match="no rejected or edited approval"):
        capture(runner, plain.thread_id)


# ---------------------------------------------------------------------- committed sets

MINIMUM = {"maintenance": 100, "crm": 50, "platform_ops": 50, "revenue": 50,
           "tenant_comms": 30, "compliance": 30, "bookings": 30}


def test_committed_incident_sets_are_big_enough_valid_and_cited() -> None:
    for graph, minimum in MINIMUM.items():
        folder = INCIDENTS_DIR / graph
        incidents = load_incidents(folder)
        assert len(incidents) >= minimum, f"{graph}: {len(incidents)} < {minimum}"
        assert {i.graph for i in incidents} == {graph}
        derived = [i for i in incidents if i.source.dataset not in ("hand-written",
                                                                    "captured")]
        hand = [i for i in incidents if i.source.dataset == "hand-written"]
        assert derived and hand, f"{graph}: needs derived and hand-written incidents"
        assert all(i.source.ref for i in derived), f"{graph}: derived rows must cite a row"
        assert (ROOT / "evals" / "sources" / graph / "README.md").is_file()


def test_derived_incidents_rebuild_byte_for_byte_from_the_committed_extracts(
        capsys: pytest.CaptureFixture[str]) -> None:
    from evals.build import main

    assert main(["--check"]) == 0, capsys.readouterr().err


def test_committed_baseline_has_every_incident_and_no_safety_violation() -> None:
    baseline = json.loads((ROOT / "evals" / "baseline.json").read_text())
    assert baseline["metrics"]["all"]["safety_violations"] == 0
    ids = {i.id for i in load_incidents(INCIDENTS_DIR)}
    assert {e["id"] for e in baseline["incidents"]} == ids


def test_capture_cli_appends_an_edited_approval_that_replays(
        sqlite_env: dict[str, str], open_runner: Any, tmp_path: Path) -> None:
    from tests.helpers import run_cli

    runner = open_runner(sqlite_env)  # the CLI below opens the same SQLite files
    view = runner.submit("maintenance", issue(
        "cli-cap", text="Water heater is broken, no hot water since yesterday."))
    thread = view.thread_id
    request = view.pending_approval["request"]
    runner.decide(thread, {"decisions": [
        {"type": "edit", "edited_action": {"name": a["name"],
                                           "args": {**a["args"], "not_to_exceed": 700}}}
        if a["name"] == "dispatch_vendor" else {"type": "approve"}
        for a in request["action_requests"]]}, "maria")
    target = tmp_path / "captured.jsonl"
    captured = run_cli(sqlite_env, "eval", "capture", thread, "--out", str(target))
    assert captured.returncode == 0, captured.stdout + captured.stderr
    [incident] = load_incidents(target)
    assert incident.human.decisions[0].type == "edit"
    assert incident.human.decisions[0].args == {"not_to_exceed": 700.0}
    dispatch = next(a for a in incident.expect.actions if a.tool == "dispatch_vendor")
    assert dispatch.args["not_to_exceed"] == 700.0 and "work_order_id" not in dispatch.args
    again = run_cli(sqlite_env, "eval", "capture", thread, "--out", str(target))
    assert again.returncode == 2 and "already has incident" in again.stdout + again.stderr
    entry = run_suite(load_incidents(target), RunOptions())["incidents"][0]
    assert entry["passed"], entry["failures"]
