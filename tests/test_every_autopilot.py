"""Every autopilot runs end to end through the CLI, on SQLite and Postgres: its first demo
trigger is validated, run and stopped where its policies say, and a second submission of the
same trigger finds the same run."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from graphs import autopilots
from tests.helpers import TENANT, run_cli

pytestmark = pytest.mark.slow
NAMES = sorted(n for n, spec in autopilots().items() if spec.demo is not None)


@pytest.mark.parametrize("name", NAMES)
def test_each_autopilot_runs_through_the_cli(name: str, backend_env: dict[str, str]) -> None:
    assert run_cli(backend_env, "seed").returncode == 0
    _title, event = autopilots()[name].demo(TENANT, datetime.now(UTC))[0]
    first = run_cli(backend_env, "run", name, "--json", input_=json.dumps(event))
    assert first.returncode == 0, first.stdout + first.stderr
    run = json.loads(first.stdout)
    assert run["status"] in ("completed", "needs_approval", "escalated"), run
    again = json.loads(run_cli(backend_env, "run", name, "--json",
                               input_=json.dumps(event)).stdout)
    assert again["thread_id"] == run["thread_id"] and again["deduplicated"] is True
