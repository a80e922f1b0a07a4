"""The three gate paths end to end, on both backends."""

from autopilot.runtime import Runner
from tests.helpers import approve_all, issue, pm_due


def test_allow_path_completes_without_a_person(runner: Runner) -> None:
    view = runner.submit("maintenance", issue(1))
    assert view.status == "completed"
    tools = [p["tool"] for p in view.values["proposals"]]
    assert tools == ["create_work_order", "dispatch_vendor", "send_resident_message",
                     "schedule_follow_up"]
    assert all(p["status"] == "executed" for p in view.values["proposals"])
    assert all(c["ok"] for c in view.values["verification"])


def test_emergency_waits_for_approval_then_finishes(runner: Runner) -> None:
    view = runner.submit("maintenance", issue(2, text="I smell gas near the stove"))
    assert view.status == "needs_approval"
    assert view.pending_approval["request"]["severity"] == "CRITICAL"
    done = runner.decide(view.thread_id, approve_all(view), reviewer="mgr")
    assert done.status == "completed"


def test_block_path_escalates(runner: Runner) -> None:
    view = runner.submit("maintenance", pm_due(3, "PM-GRAND-BOILER"))
    assert view.status == "escalated"
    [exc] = runner.exceptions()
    assert "SPEND_HARD_BLOCK" in exc.context["blocked_rules"]
