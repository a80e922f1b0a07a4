"""Policies as versioned data: immutable versions per scope, activation, tenant overlays that
only narrow, broken versions refused with the previous one still in force.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from autopilot.db import ALL_TENANTS
from autopilot.models import Run
from autopilot.runtime import Runner
from policy.engine import PolicyBundle
from policy.schema import PolicyLoadError
from tests.helpers import TENANT, issue

WATER_HEATER = "Water heater is broken, no hot water since yesterday."


def _global_with(auto_max: float) -> tuple[str, dict]:
    base = PolicyBundle.load()
    config = json.loads(json.dumps(base.config))
    config["spend"]["autoApproveMax"] = auto_max
    config["spend"]["requireApprovalAbove"] = auto_max
    return base.cedar, config


def test_activated_version_changes_the_gate_and_runs_record_it(runner: Runner) -> None:
    store = runner.services.policy_store
    cedar, config = _global_with(1500)
    v = store.create(scope_type="global", cedar=cedar, config=config, author="alice",
                     note="owner raised the auto limit", activate=True)
    assert (v.number, v.active, v.author) == (1, True, "alice")
    view = runner.submit("maintenance", issue(1, unit="P-FLATBUSH-3B", text=WATER_HEATER))
    assert view.status == "completed"  # 1400 is now under the auto limit
    with runner.services.db.session(ALL_TENANTS) as s:
        assert s.get(Run, view.thread_id).policy_version.startswith("g1-")
    store.deactivate(v.id)
    again = runner.submit("maintenance", issue(2, unit="P-GRAND-1A", text=WATER_HEATER))
    assert again.status == "needs_approval"  # back on the shipped policies


def test_tenant_overlay_only_narrows_and_only_for_that_tenant(runner: Runner) -> None:
    store = runner.services.policy_store
    overlay = ('@id("TENANT_NO_AUTO_DISPATCH")\nforbid (principal, action == Action::"execute",'
               ' resource == Tool::"dispatch_vendor");\n')
    store.create(scope_type="tenant", scope_id=TENANT, cedar=overlay, config={},
                 author="bob", activate=True)
    decision_for = {t: runner.services.policy_for(t).version for t in (TENANT, "other")}
    assert "acme.t1" in decision_for[TENANT] and decision_for["other"].startswith("shipped")
    view = runner.submit("maintenance", issue(3))  # a cheap leak, normally automatic
    assert view.status == "needs_approval"
    assert view.pending_approval["request"]["policy"][0]["reasons"] == [
        "TENANT_NO_AUTO_DISPATCH"]
    with pytest.raises(PolicyLoadError, match="may only add forbid rules"):
        store.create(scope_type="tenant", scope_id=TENANT, author="bob", config={},
                     cedar='@id("WIDEN")\npermit (principal, action, resource);\n')


def test_broken_version_is_refused_and_the_active_one_stays(runner: Runner) -> None:
    store = runner.services.policy_store
    cedar, config = _global_with(750)
    good = store.create(scope_type="global", cedar=cedar, config=config, author="alice",
                        activate=True)
    broken = cedar + '\n// file: typo.cedar\n@id("TYPO")\nforbid (principal, action, resource)' \
                     ' when { context.facts.spend > 1 };\n'
    with pytest.raises(PolicyLoadError, match=r"TYPO \(typo.cedar:1\)"):
        store.create(scope_type="global", cedar=broken, config=config, author="mallory",
                     activate=True)
    assert [v.id for v in store.versions() if v.active] == [good.id]
    assert len(store.versions()) == 1  # nothing half-written
    with pytest.raises(PolicyLoadError, match="author"):
        store.create(scope_type="global", cedar=cedar, config=config, author=" ")


@pytest.mark.slow
def test_policy_version_cli(sqlite_env: dict[str, str], tmp_path: Path) -> None:
    folder = tmp_path / "v2"
    folder.mkdir()
    cedar, config = _global_with(900)
    (folder / "all.cedar").write_text(cedar)
    (folder / "config.json").write_text(json.dumps(config))

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "autopilot", "policy", *args],
                              env={**sqlite_env, "COLUMNS": "200"}, capture_output=True,
                              text=True, timeout=120)

    created = cli("create", str(folder), "--author", "alice", "--activate")
    assert created.returncode == 0, created.stderr
    listed = cli("versions")
    assert "alice" in listed.stdout and "active" in listed.stdout and "g1-" in listed.stdout
    dry = cli("eval", "--tool", "dispatch_vendor", "--facts",
              '{"spend_cents": 85000, "category": "PLUMBING"}', "--json")
    assert json.loads(dry.stdout)["outcome"] == "ALLOW"  # 850 <= the new 900 limit
    (folder / "all.cedar").write_text(cedar + '\n@id("BAD")\nforbid (principal, action, '
                                              'resource) when { context.nope };\n')
    refused = cli("create", str(folder), "--author", "mallory", "--activate")
    assert refused.returncode == 2 and "BAD" in refused.stderr
