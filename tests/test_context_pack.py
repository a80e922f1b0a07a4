"""The approval context pack: what a reviewer sees is read now, diffed from the tool's declared
preview, and carries the request's policy reasons, evidence and blast radius."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel
from sqlalchemy import select

from api.context_pack import build_context_pack
from autopilot.models import Approval, Evidence, GatewayCall, WorkOrder
from autopilot.runtime import Runner
from tests.helpers import TENANT, issue
from tools.catalog import build_registry
from tools.maintenance import WORK_ORDER_UPDATE
from tools.registry import CostClass, Preview, RiskClass, ToolKind, ToolRegistry, ToolSpec

PHONE = "718-555-1234"
WATER_HEATER = f"Water heater is broken, no hot water since yesterday. Call me at {PHONE}."


def _paused(runner: Runner, n: int, unit: str, text: str) -> tuple[Approval, dict[str, Any]]:
    view = runner.submit("maintenance", issue(n, unit=unit, text=text))
    assert view.status == "needs_approval", view.values.get("escalation")
    approval = runner.approval_for(view.thread_id, TENANT)
    assert approval.status == "pending"
    return approval, runner.view(view.thread_id).values or {}


def _action(pack: dict[str, Any], tool: str) -> dict[str, Any]:
    return next(a for a in pack["actions"] if a["tool"] == tool)


def _reads(runner: Runner, thread_id: str) -> list[tuple[str, str, str]]:
    with runner.services.db.session(TENANT) as s:
        return [tuple(r) for r in s.execute(
            select(GatewayCall.tool, GatewayCall.principal, GatewayCall.status).where(
                GatewayCall.thread_id == thread_id, GatewayCall.kind == "read")
            .order_by(GatewayCall.id))]


def test_dispatch_pack_shows_the_work_order_now_and_what_dispatch_changes(
        runner: Runner) -> None:
    approval, values = _paused(runner, 1, "P-FLATBUSH-3B", WATER_HEATER)
    assert [a.id for a in runner.pending_approvals(TENANT)] == [approval.id]
    reads_before = _reads(runner, approval.thread_id)

    pack = build_context_pack(runner.services, approval, values)

    json.dumps(pack)  # JSON-able as returned by the API
    assert pack["summary"] == approval.request["summary"]
    assert pack["severity"] == "HIGH"
    assert [a["action_id"] for a in pack["actions"]] == approval.request["action_ids"]
    dispatch = _action(pack, "dispatch_vendor")
    args = dispatch["args"]
    assert (dispatch["kind"], dispatch["reversible"], dispatch["risk"],
            dispatch["cost_class"]) == ("write", True, "MEDIUM", "MED")
    assert args == approval.request["action_requests"][0]["args"]
    assert 0 < dispatch["confidence"] <= 1 and "AquaFlow" in dispatch["reasoning"]

    # The current record is the sandbox's work order, read now: open, nobody dispatched.
    with runner.services.db.session(TENANT) as s:
        row = s.get(WorkOrder, (TENANT, args["work_order_id"]))
        assert row is not None
        sandbox_status, sandbox_nte = row.status, row.not_to_exceed
    assert (sandbox_status, sandbox_nte) == ("OPEN", None)
    assert dispatch["record"]["state"] == "exists"
    assert dispatch["current"]["id"] == args["work_order_id"]
    assert dispatch["current"]["status"] == sandbox_status
    assert dispatch["current"]["vendor_id"] is None
    assert dispatch["diff"] == {
        "status": {"before": "OPEN", "after": "DISPATCHED"},
        "vendor_id": {"before": None, "after": args["vendor_id"]},
        "not_to_exceed": {"before": None, "after": 1400.0},
    }
    # ... through the gateway, as the run's autopilot, on the run's thread (budgeted, audited).
    new_reads = _reads(runner, approval.thread_id)[len(reads_before):]
    assert new_reads == [("get_work_order", "autopilot:maintenance", "ok")]

    blast = dispatch["blast_radius"]
    assert blast["money"] == {"not_to_exceed": 1400.0} and blast["money_total"] == 1400.0
    assert blast["people_notified"] == [f"vendor:{args['vendor_id']}"]
    assert f"work_order:{args['work_order_id']}" in blast["records"]

    # Policy reasons are the approval request's.
    request_policy = approval.request["policy"][0]
    assert dispatch["policy"]["reasons"] == request_policy["reasons"] == ["SPEND_OVER_AUTO_LIMIT"]
    assert dispatch["policy"]["outcome"] == "REQUIRE_APPROVAL"
    assert dispatch["policy"]["policy_version"] == request_policy["policy_version"]

    # Evidence: every cited ref, with the stored (redacted) summary from the evidence table.
    proposal = next(p for p in values["proposals"] if p["action_id"] == "dispatch")
    assert [e["ref"] for e in dispatch["evidence"]] == proposal["evidence_refs"]
    with runner.services.db.session(TENANT) as s:
        stored = {e.id: e.summary for e in s.scalars(select(Evidence).where(
            Evidence.tenant_id == TENANT))}
    for item in dispatch["evidence"]:
        assert item["captured"] and item["summary"] == stored[item["evidence_id"]]
    vendor = next(e for e in dispatch["evidence"] if e["ref"] == f"vendor:{args['vendor_id']}")
    assert vendor["record"]["score"] == 4.8
    message = next(e for e in dispatch["evidence"] if e["ref"] == "message:MSG-1")
    assert "[phone]" in message["summary"]

    # The trigger, with the resident's phone number redacted everywhere in the pack.
    trigger = pack["trigger"]
    assert (trigger["event_type"], trigger["source"]) == ("tenant_issue", "test")
    assert trigger["occurred_at"] == values["trigger"]["occurred_at"]
    assert trigger["text"].startswith("Water heater is broken") and "[phone]" in trigger["text"]
    assert PHONE not in json.dumps(pack)

    # What runs with it: the acknowledgement (irreversible, to the resident) and the timer.
    assert [a["action_id"] for a in pack["also_runs_on_approval"]] == [
        "ack_resident", "follow_up"]
    ack = pack["also_runs_on_approval"][0]
    assert ack["blast_radius"]["people_notified"] == ["resident:R-FLATBUSH-3B"]
    assert pack["blast_radius"]["money_total"] == 1400.0
    assert pack["blast_radius"]["irreversible"] == ["ack_resident"]
    assert set(pack["blast_radius"]["people_notified"]) == {
        f"vendor:{args['vendor_id']}", "resident:R-FLATBUSH-3B"}


def test_pack_reads_the_record_now_not_the_plan(runner: Runner) -> None:
    approval, values = _paused(runner, 2, "P-FLATBUSH-3B", WATER_HEATER)
    args = approval.request["action_requests"][0]["args"]
    # Someone dispatched a cheaper vendor by hand while the approval waited.
    with runner.services.db.session(TENANT) as s:
        wo = s.get(WorkOrder, (TENANT, args["work_order_id"]))
        assert wo is not None
        wo.status, wo.vendor_id, wo.not_to_exceed = "DISPATCHED", "V-BORO", 300

    dispatch = _action(build_context_pack(runner.services, approval, values),
                       "dispatch_vendor")

    assert dispatch["current"]["status"] == "DISPATCHED"
    assert dispatch["current"]["vendor_id"] == "V-BORO"
    assert dispatch["diff"] == {
        "vendor_id": {"before": "V-BORO", "after": args["vendor_id"]},
        "not_to_exceed": {"before": 300.0, "after": 1400.0},
    }  # status is already DISPATCHED: not a change the call would make
    plan = next(p for p in values["proposals"] if p["action_id"] == "dispatch")
    assert plan["status"] == "needs_approval" and plan["args"]["vendor_id"] != "V-BORO"


def test_emergency_pack_previews_creates_and_records_not_yet_created(runner: Runner) -> None:
    approval, values = _paused(runner, 3, "P-ASTORIA-1A",
                               "I smell gas in the hallway outside my door.")
    reads_before = _reads(runner, approval.thread_id)

    pack = build_context_pack(runner.services, approval, values)

    assert pack["severity"] == "CRITICAL" and pack["also_runs_on_approval"] == []
    assert [a["tool"] for a in pack["actions"]] == [
        "create_work_order", "dispatch_vendor", "send_resident_message", "schedule_follow_up"]
    for action, asked in zip(pack["actions"], approval.request["policy"], strict=True):
        assert action["policy"]["reasons"] == asked["reasons"] == ["EMERGENCY_ALWAYS_ESCALATE"]

    create = _action(pack, "create_work_order")
    wo_id = create["args"]["work_order_id"]
    assert create["record"] == {"kind": "work_order", "id": wo_id, "read_tool": "get_work_order",
                                "state": "new", "note": "the call creates this record"}
    assert create["current"] is None
    assert all(change["before"] is None for change in create["diff"].values())
    assert create["diff"]["id"]["after"] == wo_id
    assert create["diff"]["status"]["after"] == "OPEN"
    assert create["diff"]["priority"]["after"] == "EMERGENCY"
    assert create["blast_radius"]["creates"] == [f"work_order:{wo_id}"]

    # The dispatch's work order does not exist yet: its "before" is what create_wo will make.
    dispatch = _action(pack, "dispatch_vendor")
    assert dispatch["record"]["state"] == "pending_create"
    assert dispatch["record"]["created_by"] == "create_wo"
    assert dispatch["current"] is None
    assert dispatch["diff"]["status"] == {"before": "OPEN", "after": "DISPATCHED"}
    assert dispatch["blast_radius"]["money_total"] == 600.0

    ack = _action(pack, "send_resident_message")
    assert ack["reversible"] is False
    assert ack["blast_radius"]["people_notified"] == ["resident:R-ASTORIA-1A"]
    assert ack["diff"]["body"]["after"] == ack["args"]["body"]  # exactly what would be sent
    assert pack["blast_radius"]["irreversible"] == ["ack_resident"]
    assert pack["trigger"]["text"] == "I smell gas in the hallway outside my door."
    # Nothing existing to read, so nothing was read (and no failed read was ledgered).
    assert _reads(runner, approval.thread_id) == reads_before


def test_close_out_over_budget_shows_final_cost_and_notes(runner: Runner) -> None:
    runner.submit("maintenance", issue(4))  # leak: dispatched autonomously at NTE 250
    with runner.services.db.session(TENANT) as s:
        wo = s.scalar(select(WorkOrder).where(WorkOrder.source_ref == "msg:MSG-4"))
        assert wo is not None and wo.status == "DISPATCHED"
        wo_id, notes = wo.id, list(wo.notes)
    view = runner.submit("maintenance", {
        "event_id": "evt-5", "tenant_id": TENANT, "source": "test",
        "event_type": "work_completed", "occurred_at": datetime.now(UTC).isoformat(),
        "payload": {"work_order_id": wo_id, "final_cost": 1500,
                    "resolution": "replaced the whole stack"}})
    assert view.status == "needs_approval"
    approval = runner.approval_for(view.thread_id, TENANT)

    close = _action(build_context_pack(runner.services, approval, view.values or {}),
                    "close_work_order")

    assert close["current"]["status"] == "DISPATCHED"
    assert close["diff"]["status"] == {"before": "DISPATCHED", "after": "CLOSED"}
    assert close["diff"]["final_cost"] == {"before": None, "after": 1500.0}
    assert close["diff"]["notes"]["after"][-1] == "replaced the whole stack"
    assert len(close["diff"]["notes"]["after"]) == len(notes) + 1
    assert close["blast_radius"]["money"] == {"final_cost": 1500.0}
    assert close["policy"]["reasons"] == ["SPEND_OVER_AUTO_LIMIT"]


def test_every_write_tool_declares_a_preview_its_read_tool_can_back() -> None:
    registry = build_registry()
    for name in registry.names(ToolKind.WRITE):
        preview = registry.get(name).preview
        assert preview is not None, f"{name} declares no preview"
        read = registry.get(preview.read_tool)
        assert read.kind is ToolKind.READ
        assert (preview.read_arg or preview.key) in read.input_model.model_fields
        fields = {*preview.sets, *preview.fixed, *preview.appends}
        assert fields <= set(read.output_model.model_fields), name
    described = {t["name"]: t for t in registry.catalogue()["tools"]}
    assert described["close_work_order"]["preview"]["record"] == "work_order"


def test_update_preview_leaves_unset_arguments_alone_and_appends_notes() -> None:
    before = {"priority": "URGENT", "notes": ["first"]}
    assert WORK_ORDER_UPDATE.proposed({"work_order_id": "W", "priority": None,
                                       "note": "again"}, before) == {
        "notes": ["first", "again"]}
    assert WORK_ORDER_UPDATE.proposed({"work_order_id": "W", "priority": "EMERGENCY",
                                       "note": None}, before) == {"priority": "EMERGENCY"}


def test_registry_refuses_a_preview_naming_unknown_arguments() -> None:
    class In(BaseModel):
        record_id: str

    def spec(name: str, preview: Preview, kind: ToolKind = ToolKind.WRITE) -> ToolSpec:
        return ToolSpec(name, "d", In, In, kind, True, CostClass.CHEAP, RiskClass.LOW,
                        lambda ctx, a: a, preview=preview)

    reg = ToolRegistry()
    with pytest.raises(ValueError, match="amount"):
        reg.register(spec("w", Preview(record="r", read_tool="get_r", key="record_id",
                                       money=("amount",))))
    with pytest.raises(ValueError, match="read tool"):
        reg.register(spec("r", Preview(record="r", read_tool="get_r", key="record_id"),
                          ToolKind.READ))
    reg.register(spec("ok", Preview(record="r", read_tool="get_r", key="record_id")))


def test_pack_survives_missing_state(runner: Runner) -> None:
    """With no checkpoint state (e.g. a pruned run) the pack still shows what was asked."""
    approval, _ = _paused(runner, 6, "P-FLATBUSH-3B", WATER_HEATER)
    pack = build_context_pack(runner.services, approval, {})
    dispatch = _action(pack, "dispatch_vendor")
    assert dispatch["current"]["status"] == "OPEN"
    assert dispatch["policy"]["reasons"] == ["SPEND_OVER_AUTO_LIMIT"]
    assert pack["trigger"]["event_type"] == "tenant_issue"
    assert PHONE not in json.dumps(pack)
