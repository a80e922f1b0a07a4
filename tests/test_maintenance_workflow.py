"""Workflow A beyond the first report: bids, PM variants, incidents, SLA checks, close-out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from autopilot.db import ALL_TENANTS
from autopilot.models import BidRequest, FollowUp, PMSchedule, Vendor, WorkOrder
from autopilot.runtime import Runner
from graphs.maintenance.classify import triage
from tests.helpers import TENANT, approve_all, issue, pm_due
from tools.gateway import Principal


def event(n: int, event_type: str, payload: dict[str, Any],
          at: datetime | None = None) -> dict[str, Any]:
    return {"event_id": f"evt-{n}", "tenant_id": TENANT, "source": "test",
            "event_type": event_type, "occurred_at": (at or datetime.now(UTC)).isoformat(),
            "payload": payload}


def work_order(runner: Runner, source_ref: str) -> WorkOrder:
    with runner.services.db.session(ALL_TENANTS) as s:
        return s.scalar(select(WorkOrder).where(WorkOrder.source_ref == source_ref))


def test_triage_rules_from_seed_001() -> None:
    winter, summer = datetime(2026, 1, 10, tzinfo=UTC), datetime(2026, 7, 10, tzinfo=UTC)
    assert triage("I smell gas in the stairwell", winter).is_emergency
    assert triage("Outlet is sparking", winter).category == "ELECTRICAL"
    assert triage("Bathroom is flooding", winter).priority == "EMERGENCY"
    assert triage("My son fell and is bleeding", winter).is_emergency
    no_heat = "No heat in the apartment, radiators cold"
    assert triage(no_heat, winter).is_emergency and not triage(no_heat, summer).is_emergency
    assert triage("Roaches in the kitchen", winter).category == "PEST"
    assert triage("Closet door hinge is loose", winter).priority == "ROUTINE"


def test_high_cost_repair_requests_bids_instead_of_dispatching(runner: Runner) -> None:
    view = runner.submit("maintenance", issue(70, unit="P-GRAND-3A",
                                              text="Roof above my bedroom is caving in a bit"))
    assert view.status == "completed", view.values.get("escalation")
    tools = [p["tool"] for p in view.values["proposals"]]
    assert "request_bids" in tools and "dispatch_vendor" not in tools
    wo = work_order(runner, "msg:MSG-70")
    assert wo.status == "BIDDING"
    with runner.services.db.session(ALL_TENANTS) as s:
        bids = s.scalars(select(BidRequest).where(BidRequest.work_order_id == wo.id)).all()
    assert 1 <= len(bids) <= 3


def test_pm_without_contract_picks_best_scored_vendor(runner: Runner) -> None:
    view = runner.submit("maintenance", pm_due(71, "PM-FLAT-GUTTERS"))
    assert view.status == "completed"
    dispatch = next(p for p in view.values["proposals"] if p["tool"] == "dispatch_vendor")
    assert dispatch["args"]["vendor_id"] == "V-HANDY"  # the only GENERAL vendor


def test_pm_in_a_trade_that_is_not_auto_assigned_needs_approval(runner: Runner) -> None:
    view = runner.submit("maintenance", pm_due(72, "PM-FLAT-PEST"))
    assert view.status == "needs_approval"
    assert view.pending_approval["request"]["policy"][0]["reasons"] == [
        "CATEGORY_NOT_AUTO_ASSIGNABLE"]
    done = runner.decide(view.thread_id, approve_all(view), reviewer="mgr")
    assert done.status == "completed"
    same_day = runner.submit("maintenance", pm_due(73, "PM-FLAT-PEST"))
    assert same_day.deduplicated and same_day.thread_id == view.thread_id
    next_day = runner.submit("maintenance", event(74, "pm_due", {"pm_schedule_id": "PM-FLAT-PEST"},
                                                  at=datetime.now(UTC) + timedelta(days=1)))
    # this PM cycle already has its work order
    assert (next_day.status, next_day.outcome) == ("completed", "nothing_to_do")


def test_incident_from_staff_with_category(runner: Runner) -> None:
    view = runner.submit("maintenance", event(84, "incident", {
        "incident_id": "INC-1", "property_id": "P-ASTORIA", "reported_by": "super:jorge",
        "description": "Hallway light fixture on floor 2 is out", "category": "ELECTRICAL"}))
    assert view.status == "completed"
    assert work_order(runner, "incident:INC-1").category == "ELECTRICAL"


def _dispatched(runner: Runner, n: int, unit: str = "P-GRAND-2B") -> WorkOrder:
    runner.submit("maintenance", issue(n, unit=unit))
    return work_order(runner, f"msg:MSG-{n}")


def test_sla_check_escalates_when_the_vendor_is_silent(runner: Runner) -> None:
    wo = _dispatched(runner, 75)
    early = runner.submit("maintenance", event(76, "sla_check", {"work_order_id": wo.id}))
    assert (early.status, early.outcome) == ("completed", "nothing_to_do")
    late = runner.submit("maintenance", event(77, "sla_check", {"work_order_id": wo.id},
                                              at=datetime.now(UTC) + timedelta(days=3)))
    assert late.status == "escalated"
    assert late.values["escalation"]["category"] == "SLA"


def test_close_out_with_satisfaction_ping_and_review_prompt(runner: Runner) -> None:
    wo = _dispatched(runner, 78)
    with runner.services.db.session(ALL_TENANTS) as s:
        load = s.get(Vendor, (TENANT, wo.vendor_id)).open_work_orders
    view = runner.submit("maintenance", event(79, "work_completed", {
        "work_order_id": wo.id, "final_cost": 230, "resolution": "replaced trap and washer"}))
    assert view.status == "completed"
    assert [p["tool"] for p in view.values["proposals"]] == [
        "close_work_order", "send_resident_message", "schedule_follow_up", "remember"]
    with runner.services.db.session(ALL_TENANTS) as s:
        assert s.get(WorkOrder, (TENANT, wo.id)).status == "CLOSED"
        assert s.get(Vendor, (TENANT, wo.vendor_id)).open_work_orders == load - 1
        kinds = {f.kind for f in s.scalars(select(FollowUp).where(
            FollowUp.work_order_id == wo.id))}
    assert kinds == {"vendor_response", "satisfaction"}


def test_invoice_far_over_the_authorised_amount_needs_approval(runner: Runner) -> None:
    wo = _dispatched(runner, 80)
    view = runner.submit("maintenance", event(81, "work_completed", {
        "work_order_id": wo.id, "final_cost": 1500, "resolution": "replaced the whole stack"}))
    assert view.status == "needs_approval"  # 1500 - 250 NTE = 1250 of unauthorised spend
    assert view.pending_approval["request"]["policy"][0]["reasons"] == ["SPEND_OVER_AUTO_LIMIT"]


def test_closing_a_pm_work_order_advances_the_schedule(runner: Runner) -> None:
    runner.submit("maintenance", pm_due(82, "PM-ASTORIA-FILTERS"))
    wo = work_order(runner, "pm:PM-ASTORIA-FILTERS")
    runner.submit("maintenance", event(83, "work_completed", {
        "work_order_id": wo.id, "final_cost": 340, "resolution": "filters replaced"}))
    with runner.services.db.session(ALL_TENANTS) as s:
        pm = s.get(PMSchedule, (TENANT, "PM-ASTORIA-FILTERS"))
        assert pm.last_completed_at is not None
        assert pm.next_due_at > datetime.now(UTC).replace(tzinfo=pm.next_due_at.tzinfo) + \
            timedelta(days=80)


def test_vendor_performance_is_learned_at_close_out_and_used_at_dispatch(
        runner: Runner) -> None:
    """Scoped memory (seed 001 2.4): each close-out records how the vendor did, through the
    gated `remember` tool; the next dispatch reads it and passes over a vendor that keeps
    finishing late."""
    first = _dispatched(runner, 90)
    vendor = first.vendor_id
    late = datetime.now(UTC) + timedelta(days=30)  # long after the SLA
    for n, wo in ((91, first), (93, _dispatched(runner, 92, unit="P-ASTORIA-2A"))):
        assert wo.vendor_id == vendor
        done = runner.submit("maintenance", event(n, "work_completed", {
            "work_order_id": wo.id, "final_cost": 200, "resolution": "fixed"}, at=late))
        assert done.status == "completed"
    memory = runner.services.gateway.read(
        Principal.autopilot("maintenance", TENANT), "recall_memory",
        {"scope": "vendor", "scope_id": vendor, "key": "performance"})
    assert memory["value"] == {"jobs": 2, "late": 2, "over_budget": 0,
                               "last_work_order": wo.id}
    nxt = _dispatched(runner, 94, unit="P-FLATBUSH-1A")
    assert nxt.vendor_id not in (None, vendor)  # two late jobs of two: the runner-up gets it
