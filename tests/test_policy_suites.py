"""YAML policy suites: the shipped ones pass, a wrong expectation fails, bad files are named."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from policy.engine import PolicyEngine
from policy.testing import SuiteError, run_suites
from tests.helpers import query_app_db
from tools.catalog import build_registry


def test_shipped_suites_cover_every_seeded_rule_and_pass() -> None:
    results = run_suites(PolicyEngine(), build_registry())
    assert results and all(r.passed for r in results), [r for r in results if not r.passed]
    engine_rules = {line.split('"')[1] for line in PolicyEngine().cedar.splitlines()
                    if line.startswith("@id(")}
    covered = {reason for r in results for reason in r.reasons}
    # The approval permit never is a reason: REQUIRE_APPROVAL reports what stopped `execute`.
    assert engine_rules - {"WRITE_WITH_APPROVAL"} <= covered


def test_a_wrong_expectation_fails(tmp_path: Path) -> None:
    suite = tmp_path / "wrong.yaml"
    suite.write_text("graph: maintenance\ncases:\n  - name: optimistic\n    tool: dispatch_vendor\n"
                     "    facts: {spend_cents: 600000, category: PLUMBING}\n"
                     "    expect: {outcome: ALLOW}\n")
    [result] = run_suites(PolicyEngine(), build_registry(), [suite])
    assert not result.passed and "SPEND_HARD_BLOCK" in result.got


@pytest.mark.parametrize(("text", "needle"), [
    ("graph: maintenance\ncases: []\n", "cases"),
    ("graph: maintenance\ncases:\n  - name: x\n    tool: dispatch_vendor\n"
     "    facts: {spend: 1}\n    expect: {outcome: ALLOW}\n", "cases.0.facts.spend"),
    ("graph: maintenance\ncases:\n  - name: x\n    tool: dispatch_vendor\n"
     "    expect: {outcome: MAYBE}\n", "cases.0.expect.outcome"),
    ("graph: maintenance\ncases:\n  - name: x\n    tool: teleport\n"
     "    expect: {outcome: ALLOW}\n", "'teleport' is not registered"),
    ("graph: [unclosed\n", "bad.yaml"),
])
def test_malformed_suites_name_the_problem(tmp_path: Path, text: str, needle: str) -> None:
    suite = tmp_path / "bad.yaml"
    suite.write_text(text)
    with pytest.raises(SuiteError) as err:
        run_suites(PolicyEngine(), build_registry(), [suite])
    assert needle in str(err.value)


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "autopilot", "policy", *args],
                          env={**env, "COLUMNS": "200"}, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.slow
def test_policy_cli_test_and_dry_run(sqlite_env: dict[str, str], tmp_path: Path) -> None:
    ok = _cli(sqlite_env, "test")
    assert ok.returncode == 0 and " 0 failed" in ok.stdout
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("graph: maintenance\ncases:\n  - name: optimistic\n    tool: dispatch_vendor\n"
                     "    facts: {spend_cents: 600000}\n    expect: {outcome: ALLOW}\n")
    assert _cli(sqlite_env, "test", str(wrong)).returncode == 1
    subprocess.run([sys.executable, "-m", "autopilot", "seed"], env=sqlite_env, check=True,
                   capture_output=True, timeout=120)
    args = {"work_order_id": "WO-1001", "vendor_id": "V-AQUA", "category": "PLUMBING",
            "priority": "ROUTINE", "not_to_exceed": 900,
            "scheduled_for": "2026-12-01T10:00:00+00:00"}
    dry = _cli(sqlite_env, "eval", "--tool", "dispatch_vendor", "--args", json.dumps(args),
               "--json")
    assert dry.returncode == 0, dry.stderr
    decision = json.loads(dry.stdout)
    assert decision["outcome"] == "REQUIRE_APPROVAL"
    assert decision["reasons"] == ["SPEND_OVER_AUTO_LIMIT"]
    # A dry run changes nothing: no tool call, the work order is still with its vendor.
    assert query_app_db(sqlite_env, "SELECT count(*) FROM tool_calls") == [(0,)]
    assert query_app_db(sqlite_env, "SELECT vendor_id, status FROM work_orders "
                                    "WHERE id = 'WO-1001'") == [("V-BORO", "DISPATCHED")]
    bad = _cli(sqlite_env, "eval", "--tool", "dispatch_vendor", "--args", '{"vendor_id": 1}')
    assert bad.returncode == 2 and "work_order_id" in bad.stderr
