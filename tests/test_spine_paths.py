"""Every route through the spine: reject, edit (re-gated), retries, failures, verification,
invalid plans, dedupe — on SQLite and on Postgres.
"""

from __future__ import annotations

from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from sqlalchemy import func, select

from autopilot.db import ALL_TENANTS
from autopilot.models import Message, ToolCall, Vendor, WorkOrder
from autopilot.runtime import DecisionError, Runner
from autopilot.services import RunContext
from graphs.maintenance import SPEC as MAINTENANCE
from graphs.spine import AutopilotSpec, build_graph
from graphs.state import PlanResult, Proposal, VerifySpec
from tests.helpers import approve_all, issue

WATER_HEATER = "Water heater is broken, no hot water since yesterday."


def _count(runner: Runner, model: Any, *where: Any) -> int:
    with runner.services.db.session(ALL_TENANTS) as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def _vendor_load(runner: Runner, vendor_id: str = "V-AQUA") -> int:
    with runner.services.db.session(ALL_TENANTS) as s:
        return s.get(Vendor, ("acme", vendor_id)).open_work_orders


def _by_action(view: Any) -> dict[str, dict[str, Any]]:
    return {p["action_id"]: p for p in view.values["proposals"]}


def _needs_dispatch_approval(runner: Runner, n: int = 10) -> Any:
    view = runner.submit("maintenance", issue(n, unit="P-FLATBUSH-3B", text=WATER_HEATER))
    assert view.status == "needs_approval"
    req = view.pending_approval["request"]
    assert [r["name"] for r in req["action_requests"]] == ["dispatch_vendor"]
    return view


def test_interrupt_payload_follows_langchain_hitl_shape(runner: Runner) -> None:
    view = _needs_dispatch_approval(runner)
    req = view.pending_approval["request"]
    [action] = req["action_requests"]
    assert set(action) == {"name", "args", "description"}
    assert action["args"]["not_to_exceed"] == 1400.0
    [review] = req["review_configs"]
    assert review["action_name"] == "dispatch_vendor"
    assert review["allowed_decisions"] == ["approve", "edit", "reject"]
    assert req["policy"][0]["reasons"] == ["SPEND_OVER_AUTO_LIMIT"]
    assert req["evidence_refs"] and req["rollback_plans"] and req["summary"]
    state = runner.graph("maintenance").get_state(runner.config(view.thread_id))
    schema = state.interrupts[0].response_schema
    assert "decisions" in schema["properties"]


def test_nothing_is_written_before_the_approval(runner: Runner) -> None:
    view = runner.submit("maintenance", issue(11, unit="P-ASTORIA-1A",
                                              text="Strong smell of gas in the kitchen"))
    assert view.status == "needs_approval"
    assert _count(runner, ToolCall, ToolCall.thread_id == view.thread_id) == 0
    assert _count(runner, WorkOrder, WorkOrder.source_ref == "msg:MSG-11") == 0


def test_rejected_action_never_runs_and_dependents_are_skipped(runner: Runner) -> None:
    view = _needs_dispatch_approval(runner)
    load = _vendor_load(runner)
    done = runner.decide(view.thread_id, {"decisions": [{"type": "reject",
                                                         "message": "get a quote first"}]},
                         reviewer="mgr")
    steps = _by_action(done)
    assert steps["dispatch"]["status"] == "rejected"
    assert steps["dispatch"]["review"]["message"] == "get a quote first"
    assert steps["create_wo"]["status"] == "executed"
    assert steps["ack_resident"]["status"] == "skipped"  # it would have named the vendor
    assert steps["follow_up"]["status"] == "skipped"
    assert _count(runner, ToolCall, ToolCall.thread_id == view.thread_id,
                  ToolCall.tool == "dispatch_vendor") == 0
    assert _vendor_load(runner) == load
    assert done.status == "completed"


def test_reject_needs_a_message(runner: Runner) -> None:
    view = _needs_dispatch_approval(runner)
    with pytest.raises(DecisionError) as err:
        runner.decide(view.thread_id, {"decisions": [{"type": "reject"}]}, reviewer="mgr")
    assert "decisions.0.reject.message" in str(err.value)
    assert runner.approval_for(view.thread_id).status == "pending"


def _edit_of(view: Any, **changes: Any) -> dict[str, Any]:
    args = {**view.pending_approval["request"]["action_requests"][0]["args"], **changes}
    return {"decisions": [{"type": "edit", "edited_action": {"name": "dispatch_vendor",
                                                             "args": args}}]}


def test_edit_above_hard_limit_is_blocked_not_executed(runner: Runner) -> None:
    view = _needs_dispatch_approval(runner)
    load = _vendor_load(runner)
    done = runner.decide(view.thread_id, _edit_of(view, not_to_exceed=6000), reviewer="mgr")
    assert done.status == "escalated"
    dispatch = _by_action(done)["dispatch"]
    assert dispatch["status"] == "blocked"
    assert dispatch["decision"]["reasons"] == ["SPEND_HARD_BLOCK"]
    assert _vendor_load(runner) == load
    assert _count(runner, ToolCall, ToolCall.thread_id == view.thread_id,
                  ToolCall.tool == "dispatch_vendor") == 0


def test_edit_still_over_auto_limit_goes_back_for_approval(runner: Runner) -> None:
    view = _needs_dispatch_approval(runner)
    again = runner.decide(view.thread_id, _edit_of(view, not_to_exceed=1200), reviewer="mgr")
    # The approver's edit alone does not execute: the edited call is re-gated and re-asked.
    assert again.status == "needs_approval"
    req = again.pending_approval["request"]
    assert req["round"] == 2
    assert req["action_requests"][0]["args"]["not_to_exceed"] == 1200.0
    assert _count(runner, ToolCall, ToolCall.thread_id == view.thread_id,
                  ToolCall.tool == "dispatch_vendor") == 0
    done = runner.decide(view.thread_id, approve_all(again), reviewer="owner")
    assert done.status == "completed"
    with runner.services.db.session(ALL_TENANTS) as s:
        wo = s.scalar(select(WorkOrder).where(WorkOrder.source_ref == "msg:MSG-10"))
        assert float(wo.not_to_exceed) == 1200.0 and wo.status == "DISPATCHED"


def test_edit_within_auto_limit_executes_after_regating(runner: Runner) -> None:
    view = _needs_dispatch_approval(runner)
    done = runner.decide(view.thread_id, _edit_of(view, not_to_exceed=700), reviewer="mgr")
    assert done.status == "completed"
    dispatch = _by_action(done)["dispatch"]
    assert dispatch["decision"]["outcome"] == "ALLOW"
    assert dispatch["review"]["original_args"]["not_to_exceed"] == 1400.0
    assert dispatch["result"]["not_to_exceed"] == 700.0


def test_invalid_edits_are_refused_with_the_field_and_claim_nothing(runner: Runner) -> None:
    view = _needs_dispatch_approval(runner)
    with pytest.raises(DecisionError) as err:
        runner.decide(view.thread_id, _edit_of(view, not_to_exceed="lots"), reviewer="mgr")
    assert "decisions.0.edited_action.args.not_to_exceed" in str(err.value)
    bad_tool = _edit_of(view)
    bad_tool["decisions"][0]["edited_action"]["name"] = "close_work_order"
    with pytest.raises(DecisionError, match="edited_action.name"):
        runner.decide(view.thread_id, bad_tool, reviewer="mgr")
    with pytest.raises(DecisionError, match="expected 1 decision"):
        runner.decide(view.thread_id, {"decisions": [{"type": "approve"}] * 2}, reviewer="mgr")
    with pytest.raises(DecisionError, match="decisions"):
        runner.decide(view.thread_id, {"decisions": [{"type": "maybe"}]}, reviewer="mgr")
    assert runner.approval_for(view.thread_id).status == "pending"
    assert runner.decide(view.thread_id, approve_all(view), reviewer="mgr").status == "completed"


def test_transient_failures_are_retried_three_times(runner: Runner) -> None:
    runner.services.gateway.faults.set("dispatch_vendor", transient=2)
    view = runner.submit("maintenance", issue(20))
    assert view.status == "completed"
    assert _count(runner, WorkOrder, WorkOrder.source_ref == "msg:MSG-20") == 1


def test_exhausted_retries_escalate_with_what_was_done(runner: Runner) -> None:
    runner.services.gateway.faults.set("dispatch_vendor", transient=3)
    view = runner.submit("maintenance", issue(21))
    assert view.status == "escalated"
    esc = view.values["escalation"]
    assert esc["title"] == "Tool kept failing after 3 tries"
    assert "create_wo" in esc["details"]
    [exc] = runner.exceptions()
    assert exc.category == "SYSTEM"
    # The work order was created once, despite three attempts of the execute node.
    assert _count(runner, WorkOrder, WorkOrder.source_ref == "msg:MSG-21") == 1


def test_permanent_failure_escalates_without_retry(runner: Runner) -> None:
    runner.services.gateway.faults.set("send_resident_message", permanent=True)
    view = runner.submit("maintenance", issue(22))
    assert view.status == "escalated"
    assert view.values["escalation"]["title"] == "Tool failed permanently"
    assert _count(runner, Message, Message.related_work_order_id.is_not(None),
                  Message.direction == "out") == 0


def test_same_trigger_twice_is_one_run(runner: Runner) -> None:
    first = runner.submit("maintenance", issue(30))
    second = runner.submit("maintenance", issue(30))
    assert second.thread_id == first.thread_id and second.deduplicated
    assert _count(runner, WorkOrder, WorkOrder.source_ref == "msg:MSG-30") == 1


def test_second_report_updates_the_open_work_order(runner: Runner) -> None:
    runner.submit("maintenance", issue(40, text="Kitchen sink is leaking."))
    view = runner.submit("maintenance", issue(41, text="The leak under the sink got worse"))
    tools = [p["tool"] for p in view.values["proposals"]]
    assert tools[0] == "update_work_order" and "create_work_order" not in tools
    assert "dispatch_vendor" not in tools  # already dispatched: no second vendor
    assert view.status == "completed"


def test_no_vendor_coverage_escalates(runner: Runner) -> None:
    with runner.services.db.session(ALL_TENANTS) as s:
        for v in s.scalars(select(Vendor).where(Vendor.tenant_id == "acme")):
            if "ELECTRICAL" in v.categories:
                v.open_work_orders = 25
    view = runner.submit("maintenance", issue(50, text="The outlet in my bedroom is dead"))
    assert view.status == "escalated"
    assert view.values["escalation"]["category"] == "SLA"


def test_unknown_unit_escalates_instead_of_crashing(runner: Runner) -> None:
    view = runner.submit("maintenance", issue(51, unit="P-NOWHERE-9Z"))
    assert view.status == "escalated"
    assert "does not exist" in view.values["escalation"]["details"]


# --------------------------------------------------------------------------- spine-level


def _spec(plan: Any) -> AutopilotSpec:
    return AutopilotSpec(name="maintenance", description="test", event_types=
                         MAINTENANCE.event_types, dedupe_ref=MAINTENANCE.dedupe_ref,
                         perceive=lambda io, env, payload: MAINTENANCE.perceive(io, env, payload),
                         plan=plan)


def _run_spec(runner: Runner, spec: AutopilotSpec, n: int) -> dict[str, Any]:
    graph = build_graph(spec, runner.services.settings).compile(checkpointer=InMemorySaver())
    return graph.invoke({"trigger": issue(n)}, {"configurable": {"thread_id": f"t{n}"}},
                        context=RunContext(runner.services))


def _create(wo: str, expect: dict[str, Any]) -> Proposal:
    return Proposal(action_id="create", tool="create_work_order", args={
        "work_order_id": wo, "property_id": "P-GRAND", "unit_id": "P-GRAND-2B",
        "category": "PLUMBING", "priority": "ROUTINE", "title": "Tap drips",
        "description": "Tap drips", "estimated_cost": 100,
        "sla_due_at": "2026-12-01T00:00:00+00:00"}, description="create", confidence=0.9,
        reasoning="test", expected_outcome="exists", rollback_plan="cancel",
        evidence_refs=["unit:P-GRAND-2B"],  # captured by the maintenance perceive step
        verify=VerifySpec(tool="get_work_order", args={"work_order_id": wo}, expect=expect))


@pytest.mark.parametrize("refs, why", [
    ([], "cites no evidence"),
    (["unit:P-GRAND-2B", "vendor:V-IMAGINARY"], "did not capture: vendor:V-IMAGINARY")])
def test_ungrounded_proposals_are_held_for_a_person(runner: Runner, refs: list[str],
                                                    why: str) -> None:
    def plan(io: Any, env: Any, payload: Any, seen: Any) -> PlanResult:
        p = _create("WO-G1", {})
        p.evidence_refs = refs
        return PlanResult(proposals=[p], summary="grounding")

    state = _run_spec(runner, _spec(plan), 62)
    [p] = state["proposals"]
    assert (p["status"], p["grounded"]) == ("needs_approval", False) and why in p["grounding"]
    assert p["decision"]["reasons"] == ["UNGROUNDED_PROPOSAL"]


def test_failed_verification_escalates(runner: Runner) -> None:
    def plan(io: Any, env: Any, payload: Any, seen: Any) -> PlanResult:
        return PlanResult(proposals=[_create("WO-V1", {"priority": "EMERGENCY"})],
                          summary="verify me")

    state = _run_spec(runner, _spec(plan), 60)
    assert state["outcome"] == "escalated"
    assert state["escalation"]["title"] == "Verification failed"
    assert state["verification"][0]["diff"]["priority"] == {"expected": "EMERGENCY",
                                                            "actual": "ROUTINE"}


def test_invalid_planner_output_escalates_and_executes_nothing(runner: Runner) -> None:
    bad = _create("WO-V2", {})
    bad.args["estimated_cost"] = "a lot"
    unknown = Proposal(action_id="x", tool="wire_money", args={}, description="?",
                       confidence=0.5, reasoning="?", expected_outcome="?", rollback_plan="?")
    def plan(io: Any, env: Any, payload: Any, seen: Any) -> PlanResult:
        return PlanResult(proposals=[bad, unknown], summary="bad plan")

    state = _run_spec(runner, _spec(plan), 61)
    assert state["outcome"] == "escalated"
    details = state["escalation"]["details"]
    assert "estimated_cost" in details and "wire_money" in details
    assert _count(runner, WorkOrder, WorkOrder.id == "WO-V2") == 0


def test_claimed_but_unapplied_decision_is_finished_by_resume(runner: Runner) -> None:
    """A crash between claiming an approval and resuming the graph loses nothing."""
    from sqlalchemy import update

    from autopilot.models import Approval, Run

    view = _needs_dispatch_approval(runner)
    approval_id = view.pending_approval["id"]
    decision = {"decisions": [{"type": "approve"}], "reviewer": "alice",
                "approval_id": approval_id}
    with runner.services.db.session(ALL_TENANTS) as s:  # what decide() commits before it resumes
        s.execute(update(Approval).where(Approval.id == approval_id).values(
            status="decided", decision=decision, decided_by="alice"))
        s.execute(update(Run).where(Run.thread_id == view.thread_id).values(status="executing"))
    assert view.thread_id in runner.unfinished()
    done = runner.resume(view.thread_id)
    assert done.status == "completed"
    assert _by_action(done)["dispatch"]["review"]["reviewer"] == "alice"
    again = runner.submit("maintenance", issue(10, unit="P-FLATBUSH-3B", text=WATER_HEATER))
    assert again.deduplicated and again.status == "completed"


@pytest.mark.parametrize("forged_status", ["approved", "allowed"])
def test_forged_state_cannot_execute_a_write(runner: Runner, forged_status: str) -> None:
    """Editing checkpointed state (time travel, a bug) to skip the approval still runs nothing."""
    view = _needs_dispatch_approval(runner)
    graph, config = runner.graph("maintenance"), runner.config(view.thread_id)
    proposals = graph.get_state(config).values["proposals"]
    for p in proposals:
        if p["status"] == "needs_approval":
            p["status"] = forged_status  # no review, decision still REQUIRE_APPROVAL
    graph.update_state(config, {"proposals": proposals}, as_node="approval")
    graph.invoke(None, config, context=RunContext(runner.services))
    snapshot = graph.get_state(config)
    if forged_status == "approved":  # an approval must exist in the approvals table
        assert snapshot.values["outcome"] == "escalated"
        assert "UnauthorizedWriteError" in snapshot.values["escalation"]["details"]
    else:  # re-gated at the write: back in front of a person
        assert snapshot.interrupts
        dispatch = next(p for p in snapshot.values["proposals"] if p["tool"] == "dispatch_vendor")
        assert dispatch["status"] == "needs_approval"
    assert _count(runner, ToolCall, ToolCall.thread_id == view.thread_id,
                  ToolCall.tool == "dispatch_vendor") == 0


def test_made_up_approval_reference_is_refused(runner: Runner) -> None:
    view = _needs_dispatch_approval(runner)
    graph, config = runner.graph("maintenance"), runner.config(view.thread_id)
    proposals = graph.get_state(config).values["proposals"]
    for p in proposals:
        if p["status"] == "needs_approval":
            p["status"] = "approved"
            p["review"] = {"type": "approve", "approval_id": "made-up", "reviewer": "nobody"}
    graph.update_state(config, {"proposals": proposals}, as_node="approval")
    graph.invoke(None, config, context=RunContext(runner.services))
    assert graph.get_state(config).values["outcome"] == "escalated"
    assert _count(runner, ToolCall, ToolCall.thread_id == view.thread_id,
                  ToolCall.tool == "dispatch_vendor") == 0


def test_vendor_cap_is_rechecked_at_the_moment_of_the_write(runner: Runner) -> None:
    first = _needs_dispatch_approval(runner, 90)
    with runner.services.db.session(ALL_TENANTS) as s:  # the vendor fills up while the run waits
        s.get(Vendor, ("acme", "V-AQUA")).open_work_orders = 25
    done = runner.decide(first.thread_id, approve_all(first), reviewer="mgr")
    assert done.status == "escalated"
    assert _by_action(done)["dispatch"]["decision"]["reasons"] == ["VENDOR_AT_CAPACITY"]
    assert _vendor_load(runner) == 25


def test_edit_of_the_vendor_keeps_verification_true(runner: Runner) -> None:
    view = _needs_dispatch_approval(runner, 91)
    done = runner.decide(view.thread_id, _edit_of(view, vendor_id="V-BORO", not_to_exceed=700),
                         reviewer="mgr")
    assert done.status == "completed", done.values.get("escalation")
    dispatch = _by_action(done)["dispatch"]
    assert dispatch["result"]["vendor_id"] == "V-BORO"
    assert "vendor_id V-AQUA -> V-BORO" in dispatch["description"]


def test_dispatch_category_must_match_the_work_order(runner: Runner) -> None:
    view = runner.submit("maintenance", issue(92, unit="P-GRAND-1B",
                                              text="The fridge stopped cooling."))
    assert view.pending_approval["request"]["policy"][0]["reasons"] == [
        "CATEGORY_NOT_AUTO_ASSIGNABLE"]
    done = runner.decide(view.thread_id, _edit_of(view, category="GENERAL",
                                                  vendor_id="V-HANDY"), reviewer="mgr")
    # Relabelling the trade does not dodge the rule: the work order says APPLIANCE.
    assert done.status == "needs_approval"
    assert done.pending_approval["request"]["policy"][0]["reasons"] == [
        "CATEGORY_NOT_AUTO_ASSIGNABLE"]


def test_allowed_work_runs_while_the_held_action_waits(runner: Runner) -> None:
    view = _needs_dispatch_approval(runner, 93)
    steps = _by_action(view)
    assert steps["create_wo"]["status"] == "executed"  # the work order exists already
    assert steps["ack_resident"]["status"] == "allowed"  # waits: it names the vendor
    assert _count(runner, ToolCall, ToolCall.thread_id == view.thread_id) == 1
    again = runner.submit("maintenance", issue(94, unit="P-FLATBUSH-3B",
                                               text="Still no hot water, water heater dead"))
    assert [p["tool"] for p in again.values["proposals"]][0] == "update_work_order"
    assert _count(runner, WorkOrder, WorkOrder.unit_id == "P-FLATBUSH-3B") == 1
