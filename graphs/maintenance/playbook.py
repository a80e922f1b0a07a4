"""Deterministic maintenance playbook: perceive the world through read tools, then propose
work-order, vendor, resident and follow-up actions with reasoning, evidence and rollback.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel

from graphs.maintenance.classify import BASE_COST, Triage, triage
from graphs.maintenance.events import Incident, PMDue, SLACheck, TenantIssue, WorkCompleted
from graphs.spine import NodeIO, Perception
from graphs.state import Escalation, PlanResult, Proposal, VerifySpec
from graphs.trigger import TriggerEnvelope, stable_id

PRIORITY_RANK = {"ROUTINE": 0, "URGENT": 1, "EMERGENCY": 2}
VISIT_AFTER = {"EMERGENCY": timedelta(hours=2), "URGENT": timedelta(hours=20),
               "ROUTINE": timedelta(days=2)}
FOLLOW_UP_LABEL = {"vendor_response": "vendor-response check", "sla_check": "SLA check",
                   "satisfaction": "vendor review prompt"}
SAFETY_NOTE = {
    "gas_smell": "If you smell gas: leave now, do not use switches or flames, and call 911 and "
                 "Con Edison at 1-800-752-6633 from outside.",
    "carbon_monoxide": "If a CO alarm sounds: get everyone outside and call 911.",
    "fire_or_smoke": "If there is fire or smoke: get out and call 911.",
}


def dedupe_ref(envelope: TriggerEnvelope, payload: BaseModel) -> tuple[str, str]:
    if isinstance(payload, TenantIssue):
        return payload.message_id, payload.unit_id
    if isinstance(payload, Incident):
        return payload.incident_id, payload.property_id
    if isinstance(payload, PMDue):
        return payload.pm_schedule_id, "pm"
    if isinstance(payload, SLACheck | WorkCompleted):
        return payload.work_order_id, "work_order"
    raise TypeError(f"no dedupe rule for {type(payload).__name__}")


# --------------------------------------------------------------------------- perceive


def _work_order_evidence(work_orders: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"ref": f"work_order:{w['id']}", "source": "sandbox",
             "summary": f"open {w['category']} {w['priority']} work order: {w['title']}"}
            for w in work_orders]


def perceive(io: NodeIO, envelope: TriggerEnvelope, payload: BaseModel) -> Perception:
    if isinstance(payload, TenantIssue):
        unit = io.read("get_unit_context", unit_id=payload.unit_id)
        return Perception(
            {"kind": "repair", "text": payload.text, "property_id": unit["property_id"],
             "unit_id": unit["unit_id"], "unit": unit, "source_ref": f"msg:{payload.message_id}",
             "resident": next((r for r in unit["residents"] if r["id"] == payload.resident_id),
                              None),
             "open_work_orders": unit["open_work_orders"]},
            [{"ref": f"message:{payload.message_id}", "source": f"resident:{payload.channel}",
              "summary": payload.text[:280]},
             {"ref": f"unit:{unit['unit_id']}", "source": "sandbox",
              "summary": f"{unit['property_name']} unit {unit['unit_number']}, "
                         f"{len(unit['open_work_orders'])} open work orders"},
             *_work_order_evidence(unit["open_work_orders"])])
    if isinstance(payload, Incident):
        unit = io.read("get_unit_context", unit_id=payload.unit_id) if payload.unit_id else None
        if unit is not None and unit["property_id"] != payload.property_id:
            raise ValueError(f"payload.unit_id {payload.unit_id} is in {unit['property_id']}, "
                             f"not in payload.property_id {payload.property_id}")
        open_wos = io.read("find_open_work_orders", property_id=payload.property_id,
                           unit_id=payload.unit_id)["work_orders"]
        return Perception(
            {"kind": "repair", "text": payload.description, "property_id": payload.property_id,
             "unit_id": payload.unit_id, "unit": unit, "resident": None,
             "source_ref": f"incident:{payload.incident_id}", "category_hint": payload.category,
             "open_work_orders": open_wos},
            [{"ref": f"incident:{payload.incident_id}", "source": payload.reported_by,
              "summary": payload.description[:280]}, *_work_order_evidence(open_wos)])
    if isinstance(payload, PMDue):
        pm = io.read("get_pm_schedule", pm_schedule_id=payload.pm_schedule_id)
        open_wos = io.read("find_open_work_orders", property_id=pm["property_id"])["work_orders"]
        return Perception(
            {"kind": "pm", "pm": pm, "open_work_orders": open_wos},
            [{"ref": f"pm_schedule:{pm['id']}", "source": "pm_calendar",
              "summary": f"{pm['task']} due {pm['next_due_at']}"}])
    assert isinstance(payload, SLACheck | WorkCompleted)
    wo = io.read("get_work_order", work_order_id=payload.work_order_id)
    unit = io.read("get_unit_context", unit_id=wo["unit_id"]) if wo["unit_id"] else None
    kind = "sla_check" if isinstance(payload, SLACheck) else "completed"
    evidence = [{"ref": f"work_order:{wo['id']}", "source": "sandbox",
                 "summary": f"{wo['title']} [{wo['status']}], SLA due {wo['sla_due_at']}"}]
    memory = None
    if kind == "completed" and wo["vendor_id"]:
        memory = _vendor_memory(io, wo["vendor_id"])
        evidence.append({"ref": f"memory:vendor:{wo['vendor_id']}", "source": "memory",
                         "summary": f"{wo['vendor_id']} so far: {_perf_line(memory)}"})
    return Perception({"kind": kind, "work_order": wo, "unit": unit,
                       "vendor_memory": memory}, evidence)


def _vendor_memory(io: NodeIO, vendor_id: str) -> dict[str, Any]:
    """What earlier close-outs taught us about a vendor (scoped memory, seed 001 2.4)."""
    out = io.read("recall_memory", scope="vendor", scope_id=vendor_id, key="performance")
    return out["value"] or {"jobs": 0, "late": 0, "over_budget": 0}


def _perf_line(perf: dict[str, Any]) -> str:
    return (f"{perf['jobs']} jobs closed, {perf['late']} after their SLA, "
            f"{perf['over_budget']} over the not-to-exceed")


# --------------------------------------------------------------------------- plan


def plan(io: NodeIO, envelope: TriggerEnvelope, payload: BaseModel,
         seen: Perception) -> PlanResult:
    ctx = seen.context
    refs = [e["ref"] for e in seen.evidence]
    if ctx["kind"] == "repair":
        return _plan_repair(io, envelope, ctx, refs)
    if ctx["kind"] == "pm":
        return _plan_pm(io, envelope, ctx, refs)
    if ctx["kind"] == "sla_check":
        return _plan_sla_check(envelope, ctx, refs)
    assert isinstance(payload, WorkCompleted)
    return _plan_close_out(io, envelope, payload, ctx, refs)


def _rank_vendors(io: NodeIO, category: str, emergency: bool) -> list[dict[str, Any]]:
    """Vendors for the trade with room under the policy cap, best score first, where what we
    learned closing their jobs (late, over budget) lowers the score of the front-runners."""
    cap = io.policy_limits["max_open_per_vendor"]
    vendors = io.read("list_vendors", category=category, emergency_only=emergency)["vendors"]
    open_ = sorted((v for v in vendors if v["open_work_orders"] < cap),
                   key=lambda v: (-v["score"], v["open_work_orders"], v["hourly_rate"]))
    for v in open_[:3]:
        perf = _vendor_memory(io, v["id"])
        misses = perf["late"] + perf["over_budget"]
        v["learned_penalty"] = round(misses / perf["jobs"], 2) if perf["jobs"] >= 2 else 0.0
    return sorted(open_, key=lambda v: (-(v["score"] - v.get("learned_penalty", 0.0)),
                                        v["open_work_orders"], v["hourly_rate"]))


def _nte(amount: float) -> float:
    return float(max(10, -(-int(round(amount)) // 10) * 10))


def _first_name(resident: dict[str, Any] | None) -> str:
    return resident["name"].split()[0] if resident else "there"


def _plan_repair(io: NodeIO, env: TriggerEnvelope, ctx: dict[str, Any],
                 refs: list[str]) -> PlanResult:
    tri = triage(ctx["text"], env.occurred_at, ctx.get("category_hint"))
    facts = {"is_emergency": tri.is_emergency, "priority": tri.priority,
             "category": tri.category, "property_id": ctx["property_id"], "text": ctx["text"]}
    unit_id, resident = ctx["unit_id"], ctx["resident"]
    why = (f"Classified as {tri.category}/{tri.priority}"
           f"{' (' + ', '.join(tri.signals) + ')' if tri.signals else ''}; "
           f"estimated cost {tri.estimated_cost:.0f}.")
    if ctx.get("unit") is not None and ctx["source_ref"].startswith("msg:") and resident is None:
        return PlanResult(run_facts=facts, summary="Reporter is not a resident of the unit",
                          escalation=Escalation(
                              severity="MEDIUM", category="SYSTEM",
                              title="Report from someone not on the unit's lease",
                              details=f"{ctx['source_ref']} names a resident who does not live "
                                      f"in {unit_id}.",
                              decision_requested="Confirm who reported it, then re-submit",
                              evidence_refs=refs))
    proposals: list[Proposal] = []
    dup = next((w for w in ctx["open_work_orders"] if w["category"] == tri.category), None)
    due = env.occurred_at + timedelta(hours=io.policy_limits["sla_hours"][tri.priority])
    if dup is not None:
        wo_id, wo_step = dup["id"], "update_wo"
        raise_to = max(dup["priority"], tri.priority, key=PRIORITY_RANK.__getitem__)
        proposals.append(Proposal(
            action_id=wo_step, tool="update_work_order",
            args={"work_order_id": wo_id, "priority": raise_to,
                  "note": f"New report {ctx['source_ref']}: {ctx['text'][:300]}"},
            description=f"Add the new report to open work order {wo_id} "
                        f"(priority {dup['priority']} -> {raise_to})",
            confidence=0.9, reasoning=f"{why} Work order {wo_id} is already open for "
                                      f"{tri.category} in this unit, so no duplicate is created.",
            evidence_refs=[*refs, f"work_order:{wo_id}"],
            expected_outcome=f"{wo_id} carries the new report at priority {raise_to}",
            rollback_plan="Remove the note and restore the previous priority",
            verify=VerifySpec(tool="get_work_order", args={"work_order_id": wo_id},
                              expect={"priority": raise_to})))
        needs_vendor = dup["status"] == "OPEN"
    else:
        wo_id, wo_step = stable_id("WO", env.tenant_id, io.thread_id), "create_wo"
        proposals.append(Proposal(
            action_id=wo_step, tool="create_work_order",
            args={"work_order_id": wo_id, "property_id": ctx["property_id"], "unit_id": unit_id,
                  "category": tri.category, "priority": tri.priority,
                  "title": _title(tri, ctx["text"]), "description": ctx["text"],
                  "estimated_cost": tri.estimated_cost, "sla_due_at": due.isoformat(),
                  "source_ref": ctx["source_ref"]},
            description=f"Open {tri.priority} {tri.category} work order {wo_id}",
            confidence=tri.confidence, reasoning=why, evidence_refs=refs,
            expected_outcome=f"Work order {wo_id} exists with SLA due {due:%Y-%m-%d %H:%M}Z",
            rollback_plan=f"Cancel work order {wo_id}",
            verify=VerifySpec(tool="get_work_order", args={"work_order_id": wo_id},
                              expect={"category": tri.category, "priority": tri.priority})))
        needs_vendor = True
    vendor_step, vendor_line = None, "A technician will be scheduled shortly."
    if needs_vendor:
        step = _vendor_step(io, env, tri, wo_id, wo_step, refs, why)
        if isinstance(step, Escalation):
            return PlanResult(run_facts=facts, summary=step.title, escalation=step)
        proposals.append(step[0])
        vendor_step, vendor_line = step[0].action_id, step[1]
    elif dup is not None:
        vendor_line = "It is already with our technician; we've added your report."
    if resident is not None:
        safety = " ".join(SAFETY_NOTE[s] for s in tri.signals if s in SAFETY_NOTE)
        body = (f"Hi {_first_name(resident)}, we received your report ({tri.category.lower()}, "
                f"{tri.priority.lower()}). Work order {wo_id}. {vendor_line} "
                f"We aim to resolve it by {due:%a %d %b %H:%M} UTC. {safety}").strip()
        proposals.append(Proposal(
            action_id="ack_resident", tool="send_resident_message",
            args={"message_id": stable_id("MSG", io.thread_id, "ack"),
                  "resident_id": resident["id"], "channel": _channel(resident),
                  "body": body, "related_work_order_id": wo_id},
            description=f"Acknowledge the report to {_first_name(resident)} by "
                        f"{_channel(resident)}",
            confidence=0.9, reasoning="Residents are told what happens next and by when.",
            evidence_refs=refs, expected_outcome="Resident has the work order number and ETA",
            rollback_plan="Irreversible: send a correction if anything in it was wrong",
            depends_on=[wo_step] + ([vendor_step] if vendor_step else []),
            verify=VerifySpec(tool="get_message",
                              args={"message_id": stable_id("MSG", io.thread_id, "ack")},
                              expect={"direction": "out", "resident_id": resident["id"]})))
    if vendor_step is not None:
        proposals.append(_follow_up(io, wo_id, "vendor_response", due, [vendor_step], refs))
    return PlanResult(proposals=proposals, run_facts=facts,
                      summary=f"{tri.priority} {tri.category}: "
                              f"{ctx['text'].strip().split('.')[0][:80]} -> {wo_id}")


def _vendor_step(io: NodeIO, env: TriggerEnvelope, tri: Triage, wo_id: str, wo_step: str,
                 refs: list[str], why: str) -> tuple[Proposal, str] | Escalation:
    limits = io.policy_limits
    ranked = _rank_vendors(io, tri.category, tri.is_emergency)
    if not ranked:
        return Escalation(
            severity="CRITICAL" if tri.is_emergency else "HIGH", category="SLA",
            title=f"No {tri.category} vendor coverage",
            details=f"No active {'emergency ' if tri.is_emergency else ''}{tri.category} vendor "
                    f"below the cap of {limits['max_open_per_vendor']} open work orders.",
            decision_requested="Assign a vendor by hand or onboard one", evidence_refs=refs)
    if tri.estimated_cost * 100 > limits["hard_block_above_cents"]:
        bidders = [v["id"] for v in ranked[:3]]
        return Proposal(
            action_id="request_bids", tool="request_bids",
            args={"work_order_id": wo_id, "vendor_ids": bidders, "due_in_days": 5},
            description=f"Request bids from {', '.join(bidders)}",
            confidence=0.85,
            reasoning=f"{why} Above the {limits['hard_block_above_cents'] / 100:.0f} hard limit "
                      "no single dispatch is allowed, so competing bids are collected first.",
            evidence_refs=[*refs, *(f"vendor:{b}" for b in bidders)],
            expected_outcome=f"{len(bidders)} bid requests open on {wo_id}",
            rollback_plan="Withdraw the bid requests", depends_on=[wo_step],
            verify=VerifySpec(tool="get_work_order", args={"work_order_id": wo_id},
                              expect={"status": "BIDDING"}),
        ), "We are collecting quotes from qualified contractors."
    vendor = ranked[0]
    nte = _nte(tri.estimated_cost)
    visit = env.occurred_at + VISIT_AFTER[tri.priority]
    return Proposal(
        action_id="dispatch", tool="dispatch_vendor",
        args={"work_order_id": wo_id, "vendor_id": vendor["id"], "category": tri.category,
              "priority": tri.priority, "not_to_exceed": nte,
              "scheduled_for": visit.isoformat()},
        description=f"Dispatch {vendor['name']} to {wo_id}, not to exceed {nte:.2f}",
        confidence=min(0.95, 0.6 + vendor["score"] / 12),
        reasoning=f"{why} {vendor['name']} has the best score ({vendor['score']}) among "
                  f"{len(ranked)} eligible {tri.category} vendors and "
                  f"{vendor['open_work_orders']} open jobs.",
        evidence_refs=[*refs, f"vendor:{vendor['id']}"],
        expected_outcome=f"{wo_id} DISPATCHED to {vendor['id']}",
        rollback_plan=f"Recall the dispatch and release {vendor['id']}", depends_on=[wo_step],
        verify=VerifySpec(tool="get_work_order", args={"work_order_id": wo_id},
                          expect={"status": "DISPATCHED", "vendor_id": vendor["id"]}),
    ), f"{vendor['name']} is scheduled for {visit:%a %d %b %H:%M} UTC."


def _follow_up(io: NodeIO, wo_id: str, kind: str, due: datetime, depends_on: list[str],
               refs: list[str]) -> Proposal:
    fu_id = stable_id("FU", io.thread_id, kind)
    return Proposal(
        action_id="follow_up", tool="schedule_follow_up",
        args={"follow_up_id": fu_id, "work_order_id": wo_id, "kind": kind,
              "due_at": due.isoformat()},
        description=f"Schedule {FOLLOW_UP_LABEL[kind]} on {wo_id} for "
                    f"{due:%Y-%m-%d %H:%M}Z",
        confidence=0.95, reasoning="Every dispatched job gets a timer so a silent vendor is "
                                   "caught before the SLA is missed.",
        evidence_refs=refs, expected_outcome=f"Follow-up {fu_id} scheduled",
        rollback_plan=f"Cancel follow-up {fu_id}", depends_on=depends_on,
        verify=VerifySpec(tool="get_follow_up", args={"follow_up_id": fu_id},
                          expect={"status": "SCHEDULED", "work_order_id": wo_id}))


def _plan_pm(io: NodeIO, env: TriggerEnvelope, ctx: dict[str, Any], refs: list[str]) -> PlanResult:
    pm = ctx["pm"]
    facts = {"is_emergency": False, "priority": "ROUTINE", "category": pm["category"],
             "property_id": pm["property_id"]}
    existing = next((w for w in ctx["open_work_orders"] if w["source_ref"] == f"pm:{pm['id']}"),
                    None)
    if existing is not None:
        return PlanResult(run_facts=facts,
                          summary=f"PM {pm['id']} already has open work order {existing['id']}")
    wo_id = stable_id("WO", env.tenant_id, io.thread_id)
    due = datetime.fromisoformat(pm["next_due_at"])
    cost = pm["contract_price"] or float(BASE_COST[pm["category"]])
    create = Proposal(
        action_id="create_wo", tool="create_work_order",
        args={"work_order_id": wo_id, "property_id": pm["property_id"], "unit_id": pm["unit_id"],
              "category": pm["category"], "priority": "ROUTINE", "title": pm["task"][:300],
              "description": f"Preventive maintenance: {pm['task']}", "estimated_cost": cost,
              "sla_due_at": due.isoformat(), "source_ref": f"pm:{pm['id']}"},
        description=f"Open PM work order {wo_id}: {pm['task']}", confidence=0.97,
        reasoning=f"PM task {pm['id']} is due {due:%Y-%m-%d}.", evidence_refs=refs,
        expected_outcome=f"Work order {wo_id} for the PM cycle", rollback_plan=f"Cancel {wo_id}",
        verify=VerifySpec(tool="get_work_order", args={"work_order_id": wo_id},
                          expect={"category": pm["category"], "source_ref": f"pm:{pm['id']}"}))
    if pm["contract_vendor_id"]:
        vendor = io.read("get_vendor", vendor_id=pm["contract_vendor_id"])
        why = f"{vendor['name']} holds the service contract for this task at {cost:.2f}."
    else:
        ranked = _rank_vendors(io, pm["category"], emergency=False)
        if not ranked:
            return PlanResult(run_facts=facts, summary="No vendor for PM", escalation=Escalation(
                severity="MEDIUM", category="SLA", title=f"No {pm['category']} vendor for PM",
                details=f"PM {pm['id']} is due and no vendor has capacity.",
                decision_requested="Assign a vendor by hand", evidence_refs=refs))
        vendor = ranked[0]
        why = f"No contract vendor; {vendor['name']} has the best score ({vendor['score']})."
    dispatch = Proposal(
        action_id="dispatch", tool="dispatch_vendor",
        args={"work_order_id": wo_id, "vendor_id": vendor["id"], "category": pm["category"],
              "priority": "ROUTINE", "not_to_exceed": _nte(cost),
              "scheduled_for": (due - timedelta(days=1)).isoformat()},
        description=f"Dispatch {vendor['name']} for {pm['task']}, not to exceed {_nte(cost):.2f}",
        confidence=0.9, reasoning=why, evidence_refs=[*refs, f"vendor:{vendor['id']}"],
        expected_outcome=f"{wo_id} DISPATCHED to {vendor['id']} before the due date",
        rollback_plan=f"Recall the dispatch and release {vendor['id']}", depends_on=["create_wo"],
        verify=VerifySpec(tool="get_work_order", args={"work_order_id": wo_id},
                          expect={"status": "DISPATCHED", "vendor_id": vendor["id"]}))
    return PlanResult(
        proposals=[create, dispatch, _follow_up(io, wo_id, "sla_check", due, ["dispatch"], refs)],
        run_facts=facts, summary=f"PM due: {pm['task']} -> {wo_id} with {vendor['name']}")


def _plan_sla_check(env: TriggerEnvelope, ctx: dict[str, Any], refs: list[str]) -> PlanResult:
    wo = ctx["work_order"]
    sla = datetime.fromisoformat(wo["sla_due_at"]) if wo["sla_due_at"] else None
    facts = {"is_emergency": wo["priority"] == "EMERGENCY", "priority": wo["priority"],
             "category": wo["category"], "property_id": wo["property_id"],
             "sla_breached": sla is not None and env.occurred_at >= sla}
    if wo["status"] in ("IN_PROGRESS", "COMPLETED", "CLOSED", "CANCELLED"):
        return PlanResult(run_facts=facts, summary=f"{wo['id']} is {wo['status']}: SLA on track")
    if sla is not None and env.occurred_at < sla:
        return PlanResult(run_facts=facts, summary=f"{wo['id']} SLA not due until {sla:%c}")
    if wo["status"] == "BIDDING":
        esc = Escalation(severity="MEDIUM", category="FINANCIAL",
                         title=f"Bids for {wo['id']} are due: choose one",
                         details=f"{wo['title']}: bidding window has closed.",
                         decision_requested="Pick a bid and approve the spend", evidence_refs=refs)
    else:
        esc = Escalation(severity="CRITICAL" if wo["priority"] == "EMERGENCY" else "HIGH",
                         category="SLA", title=f"No vendor progress on {wo['id']} by its SLA",
                         details=f"{wo['title']} is still {wo['status']} "
                                 f"(vendor {wo['vendor_id'] or 'none'}); SLA was {sla}.",
                         decision_requested="Call the vendor or reassign the work order",
                         evidence_refs=refs)
    return PlanResult(run_facts=facts, summary=esc.title, escalation=esc)


def _plan_close_out(io: NodeIO, env: TriggerEnvelope, payload: WorkCompleted,
                    ctx: dict[str, Any], refs: list[str]) -> PlanResult:
    wo = ctx["work_order"]
    facts = {"is_emergency": False, "priority": wo["priority"], "category": wo["category"],
             "property_id": wo["property_id"]}
    if wo["status"] in ("CLOSED", "CANCELLED"):
        return PlanResult(run_facts=facts, summary=f"{wo['id']} is already {wo['status']}")
    nte = wo["not_to_exceed"] or 0.0
    over = payload.final_cost > nte
    proposals = [Proposal(
        action_id="close_wo", tool="close_work_order",
        args={"work_order_id": wo["id"], "final_cost": payload.final_cost,
              "resolution": payload.resolution},
        description=f"Close {wo['id']} at {payload.final_cost:.2f}"
                    + (f" (over the {nte:.2f} not-to-exceed)" if over else ""),
        confidence=0.9 if not over else 0.6,
        reasoning=f"Vendor reports: {payload.resolution}."
                  + (" Invoice exceeds the authorised amount." if over else ""),
        evidence_refs=refs, expected_outcome=f"{wo['id']} CLOSED with final cost recorded",
        rollback_plan=f"Reopen {wo['id']}",
        verify=VerifySpec(tool="get_work_order", args={"work_order_id": wo["id"]},
                          expect={"status": "CLOSED"}))]
    unit = ctx.get("unit")
    resident = unit["residents"][0] if unit and unit["residents"] else None
    if resident is not None:
        msg_id = stable_id("MSG", io.thread_id, "satisfaction")
        proposals.append(Proposal(
            action_id="satisfaction_ping", tool="send_resident_message",
            args={"message_id": msg_id, "resident_id": resident["id"],
                  "channel": _channel(resident),
                  "body": f"Hi {_first_name(resident)}, work order {wo['id']} is complete "
                          f"({payload.resolution}). How did we do? Reply 1-5.",
                  "related_work_order_id": wo["id"]},
            description=f"Ask {_first_name(resident)} to rate the repair", confidence=0.9,
            reasoning="Close-out includes a satisfaction ping (seed 001, workflow A step 6).",
            evidence_refs=refs, expected_outcome="Resident asked for a rating",
            rollback_plan="Irreversible: nothing to undo", depends_on=["close_wo"],
            verify=VerifySpec(tool="get_message", args={"message_id": msg_id},
                              expect={"direction": "out"})))
    proposals.append(_follow_up(io, wo["id"], "satisfaction",
                                env.occurred_at + timedelta(days=3), ["close_wo"], refs))
    if wo["vendor_id"] and ctx.get("vendor_memory") is not None:
        proposals.append(_learn_vendor(wo, ctx["vendor_memory"], over, env.occurred_at, refs))
    return PlanResult(proposals=proposals, run_facts=facts,
                      summary=f"Close out {wo['id']}: {payload.resolution}")


def _learn_vendor(wo: dict[str, Any], perf: dict[str, Any], over: bool, done_at: datetime,
                  refs: list[str]) -> Proposal:
    """Remember how the vendor did on this job: the next dispatch reads it."""
    due = wo["sla_due_at"]
    late = due is not None and done_at > datetime.fromisoformat(str(due))
    value = {"jobs": perf["jobs"] + 1, "late": perf["late"] + int(late),
             "over_budget": perf["over_budget"] + int(over), "last_work_order": wo["id"]}
    return Proposal(
        action_id="learn_vendor", tool="remember",
        args={"scope": "vendor", "scope_id": wo["vendor_id"], "key": "performance",
              "value": value, "reason": f"close-out of {wo['id']}"
                                        + (" (after its SLA)" if late else "")
                                        + (" (over the not-to-exceed)" if over else "")},
        description=f"Remember {wo['vendor_id']}'s record: {_perf_line(value)}",
        confidence=0.95, reasoning="Vendor performance is learned from each close-out "
                                   "(seed 001 memory: vendor performance).",
        evidence_refs=refs, expected_outcome="The vendor's record includes this job",
        rollback_plan=f"Remember the previous record: {_perf_line(perf)}",
        depends_on=["close_wo"],
        verify=VerifySpec(tool="recall_memory", args={"scope": "vendor",
                                                      "scope_id": wo["vendor_id"],
                                                      "key": "performance"},
                          expect={"value": value}))


def _title(tri: Triage, text: str) -> str:
    first = text.strip().split(".")[0][:80]
    return f"{tri.category.title()}: {first}" if len(first) >= 3 else tri.category.title()


def _channel(resident: dict[str, Any]) -> str:
    return resident["preferred_channel"] if resident["preferred_channel"] in (
        "sms", "email", "in_app") else "in_app"
