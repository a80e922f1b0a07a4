"""The LangGraph ecosystem: `langgraph dev` (what LangGraph Studio talks to) loads every
autopilot from `graphs/studio.py`, and the official `langgraph-sdk` client drives a run to its
interrupt and answers it with approve, edit and reject through `command={"resume": ...}`.

The dev server is started on a copy of `langgraph.json` whose env file points at this test's
seeded SQLite data directory (the committed one points at `.autopilot`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from graphs import autopilots
from tests.conftest import POLICY_TIME
from tests.helpers import TENANT, free_port, run_cli, stop_process

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
ROOT = Path(__file__).resolve().parent.parent
NODES = {"perceive", "plan", "gate", "approval", "execute", "verify"}
HEATER = "Water heater is broken, no hot water since yesterday."  # estimate 1400: approval


@pytest.fixture(scope="module")
def dev_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("langgraph-dev")
    data = tmp / "data"
    env_file = tmp / ".env"
    env_file.write_text(f"AUTOPILOT_DATA_DIR={data}\nDATABASE_URL=\nAUTOPILOT_TENANT={TENANT}\n"
                        f"AUTOPILOT_POLICY_TIME={POLICY_TIME}\nAUTOPILOT_SCHEDULES=\n")
    config = json.loads((ROOT / "langgraph.json").read_text())
    config["dependencies"] = [str(ROOT)]
    config["graphs"] = {name: str(ROOT / path.removeprefix("./"))
                        for name, path in config["graphs"].items()}
    config["env"] = str(env_file)
    (tmp / "langgraph.json").write_text(json.dumps(config))
    env = {**os.environ, "AUTOPILOT_DATA_DIR": str(data), "DATABASE_URL": "",
           "AUTOPILOT_TENANT": TENANT}
    seeded = run_cli(env, "seed")
    assert seeded.returncode == 0, seeded.stderr
    port = free_port()
    log = (tmp / "dev.log").open("wb")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "langgraph"), "dev", "--no-browser", "--no-reload",
         "--port", str(port), "--config", str(tmp / "langgraph.json")],
        cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"langgraph dev exited:\n{(tmp / 'dev.log').read_text()}")
            try:
                if httpx.get(f"{base}/ok", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"langgraph dev did not start:\n"
                                     f"{(tmp / 'dev.log').read_text()[-3000:]}")
            time.sleep(0.5)
        yield base
    finally:
        stop_process(proc)
        log.close()


def _trigger(n: int, unit: str) -> dict[str, Any]:
    return {"event_id": f"sdk-{n}", "tenant_id": TENANT, "source": "langgraph-sdk",
            "event_type": "tenant_issue", "occurred_at": datetime.now(UTC).isoformat(),
            "payload": {"message_id": f"SDK-{n}", "unit_id": unit,
                        "resident_id": "R-" + unit[2:], "text": HEATER}}


def _interrupt(client: Any, thread_id: str) -> dict[str, Any]:
    state = client.threads.get_state(thread_id)
    found = [i for task in state["tasks"] for i in task.get("interrupts", [])]
    assert len(found) == 1, state
    return found[0]["value"]  # type: ignore[no-any-return]


def test_every_autopilot_loads_with_the_spine_nodes(dev_server: str) -> None:
    from langgraph_sdk import get_sync_client

    client = get_sync_client(url=dev_server)
    assistants = client.assistants.search(limit=50)
    by_graph = {a["graph_id"]: a["assistant_id"] for a in assistants}
    assert set(by_graph) == set(autopilots())
    for graph, assistant_id in by_graph.items():
        nodes = {n["id"] for n in client.assistants.get_graph(assistant_id)["nodes"]}
        assert NODES <= nodes, (graph, nodes)


@pytest.mark.parametrize("answer", ["approve", "edit", "reject"])
def test_sdk_resumes_an_interrupted_run(dev_server: str, answer: str) -> None:
    from langgraph_sdk import get_sync_client

    client = get_sync_client(url=dev_server)
    n, unit = {"approve": (1, "P-FLATBUSH-3B"), "edit": (2, "P-ASTORIA-2A"),
               "reject": (3, "P-GRAND-3A")}[answer]
    thread = client.threads.create()
    client.runs.wait(thread["thread_id"], "maintenance", input={"trigger": _trigger(n, unit)})
    request = _interrupt(client, thread["thread_id"])
    # LangChain v1 HITL shapes: action requests, review configs with the allowed decisions.
    names = [r["name"] for r in request["action_requests"]]
    assert "dispatch_vendor" in names
    assert all(set(c["allowed_decisions"]) == {"approve", "edit", "reject"}
               for c in request["review_configs"])
    decisions: list[dict[str, Any]] = []
    for req in request["action_requests"]:
        if answer == "reject":
            decisions.append({"type": "reject", "message": "the landlord fixes heaters"})
        elif answer == "edit" and req["name"] == "dispatch_vendor":
            decisions.append({"type": "edit", "edited_action": {
                "name": req["name"], "args": {**req["args"], "not_to_exceed": 700}}})
        else:
            decisions.append({"type": "approve"})
    client.runs.wait(thread["thread_id"], "maintenance",
                     command={"resume": {"decisions": decisions}})
    state = client.threads.get_state(thread["thread_id"])
    values = state["values"]
    assert state["next"] == []
    dispatch = next(p for p in values["proposals"] if p["tool"] == "dispatch_vendor")
    if answer == "reject":
        assert dispatch["status"] == "rejected" and values["outcome"] in ("completed",
                                                                          "rejected")
        return
    assert values["outcome"] == "completed", values.get("escalation")
    assert dispatch["status"] == "executed" and dispatch["result"]["status"] == "DISPATCHED"
    if answer == "edit":  # the edit went back through the gate: 700 is within the auto limit
        assert dispatch["args"]["not_to_exceed"] == 700
        assert dispatch["result"]["not_to_exceed"] == 700
        assert dispatch["decision"]["outcome"] == "ALLOW"
    else:
        assert dispatch["review"]["type"] == "approve"
