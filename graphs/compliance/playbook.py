"""Deterministic compliance + PM playbook (seed 001, workflow C): perceive an obligation, its
tasks and the people responsible through read tools, then open a task (and book the licensed
contractor when the obligation needs one), notify the assignee, record completion, or
escalate a deadline breach.

Who decides what runs alone is the policy, not this planner: every compliance write carries
`days_until_due`, so inside the critical window and whenever the item is overdue the gate
sends the proposal to a person (`COMPLIANCE_CRITICAL_WINDOW`, `COMPLIANCE_OVERDUE`). The
planner escalates to the exception inbox only what no proposal can fix: a live task that
missed its deadline inside the window, an overdue item whose task is still open, no one to
assign, no contractor to book.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel

from graphs.compliance.events import (
    ComplianceItemDue,
    CompliancePMOverdue,
    ComplianceRecheck,
    ComplianceTaskCompleted,
)
from graphs.spine import NodeIO, Perception
from graphs.state import Escalation, PlanResult, Proposal, VerifySpec
from graphs.trigger import TriggerEnvelope, stable_id
from tools.compliance import days_until_due

LIVE = ("OPEN", "IN_PROGRESS")
WORK_DONE = ("COMPLETED", "CLOSED")
CONTACT_ORDER = ("COMPLIANCE_COORDINATOR", "SUPERINTENDENT", "PROPERTY_MANAGER")
CHANNELS = ("in_app", "email", "sms")
DAY = timedelta(days=1)


def dedupe_ref(envelope: TriggerEnvelope, payload: BaseModel) -> tuple[str, str]:
    if isinstance(payload, ComplianceItemDue):
        return payload.compliance_item_id, f"item-{payload.stage}"
    if isinstance(payload, CompliancePMOverdue):
        return payload.pm_schedule_id, "pm-overdue"
    if isinstance(payload, ComplianceRecheck):
        return payload.task_id, f"recheck-{payload.stage}"
    if isinstance(payload, ComplianceTaskCompleted):
        return payload.task_id or payload.compliance_item_id or "", "completed"
    raise TypeError(f"no dedupe rule for {type(payload).__name__}")


def _at(value: str | datetime) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


# --------------------------------------------------------------------------- perceive


def _item_evidence(item: dict[str, Any]) -> dict[str, Any]:
    return {"ref": f"compliance_item:{item['id']}", "source": item["authority"],
            "summary": f"{item['label']} at {item['property_id']}: due {item['due_at']} "
                       f"({item['days_until_due']} days), {item['status']}"}


def perceive(io: NodeIO, envelope: TriggerEnvelope, payload: BaseModel) -> Perception:
    if isinstance(payload, ComplianceItemDue):
        item = io.read("get_compliance_item", compliance_item_id=payload.compliance_item_id)
        tasks = io.read("find_compliance_tasks",
                        compliance_item_id=item["id"])["compliance_tasks"]
        contacts = io.read("list_compliance_contacts",
                           property_id=item["property_id"])["contacts"]
        return Perception({"kind": "item", "stage": payload.stage, "item": item, "tasks": tasks,
                           "contacts": contacts}, [_item_evidence(item)])
    if isinstance(payload, CompliancePMOverdue):
        pm = io.read("get_pm_schedule", pm_schedule_id=payload.pm_schedule_id)
        open_wos = io.read("find_open_work_orders", property_id=pm["property_id"])["work_orders"]
        tasks = io.read("find_compliance_tasks", pm_schedule_id=pm["id"])["compliance_tasks"]
        contacts = io.read("list_compliance_contacts", property_id=pm["property_id"])["contacts"]
        return Perception(
            {"kind": "pm", "pm": pm, "open_work_orders": open_wos, "tasks": tasks,
             "contacts": contacts},
            [{"ref": f"pm_schedule:{pm['id']}", "source": "pm_calendar",
              "summary": f"{pm['task']} was due {pm['next_due_at']}"}])
    assert isinstance(payload, ComplianceRecheck | ComplianceTaskCompleted)
    evidence: list[dict[str, Any]] = []
    item = None
    if isinstance(payload, ComplianceTaskCompleted):
        evidence.append({"ref": f"completion_report:{payload.evidence_ref}",
                         "source": payload.completed_by,
                         "summary": f"{payload.completed_by} reports the work done "
                                    f"({payload.evidence_ref})"
                                    + (f": {payload.note[:200]}" if payload.note else "")})
    if isinstance(payload, ComplianceTaskCompleted) and payload.compliance_item_id:
        item = io.read("get_compliance_item", compliance_item_id=payload.compliance_item_id)
        tasks = io.read("find_compliance_tasks",
                        compliance_item_id=item["id"])["compliance_tasks"]
        task = _cycle_task(tasks, item)
    else:
        task_id = payload.task_id
        assert task_id is not None
        task = io.read("get_compliance_task", task_id=task_id)
    if task is not None and task["compliance_item_id"] and item is None:
        item = io.read("get_compliance_item", compliance_item_id=task["compliance_item_id"])
    pm = (io.read("get_pm_schedule", pm_schedule_id=task["pm_schedule_id"])
          if task is not None and task["pm_schedule_id"] else None)
    wo = (io.read("get_work_order", work_order_id=task["work_order_id"])
          if task is not None and task["work_order_id"] else None)
    if item is not None:
        evidence.append(_item_evidence(item))
    kind = "completed" if isinstance(payload, ComplianceTaskCompleted) else "recheck"
    return Perception({"kind": kind, "task": task, "item": item, "pm": pm, "work_order": wo},
                      evidence)


def _cycle_task(tasks: list[dict[str, Any]], item: dict[str, Any]) -> dict[str, Any] | None:
    """The item's task for its current cycle: the live one, else the done one."""
    cycle = [t for t in tasks if _at(t["cycle_due_at"]) == _at(item["due_at"])]
    return (next((t for t in cycle if t["status"] in LIVE), None)
            or next((t for t in cycle if t["status"] == "DONE"), None))


# --------------------------------------------------------------------------- plan


def plan(io: NodeIO, envelope: TriggerEnvelope, payload: BaseModel,
         seen: Perception) -> PlanResult:
    ctx = seen.context
    # Proposals cite the chosen contact, not everyone who works at the property.
    refs = sorted({e["ref"] for e in seen.evidence if not e["ref"].startswith("contact:")})
    if ctx["kind"] == "item":
        return _plan_item(io, envelope, ctx, refs)
    if ctx["kind"] == "pm":
        return _plan_pm(io, envelope, ctx, refs)
    if ctx["kind"] == "recheck":
        return _plan_recheck(io, ctx, refs)
    assert isinstance(payload, ComplianceTaskCompleted)
    return _plan_completed(io, payload, ctx, refs)


def _position(days: int, critical: int) -> str:
    return "overdue" if days < 0 else "critical" if days <= critical else "ahead"


def _when(days: int, critical: int) -> str:
    if days < 0:
        return f"overdue by {-days} day{'s' if days != -1 else ''}"
    if days <= critical:
        return f"due in {days} days, inside the {critical}-day critical window"
    return f"due in {days} days"


def _deadline(due: datetime, now: datetime, critical: int) -> datetime:
    """When the task must be done: before the critical window opens; inside it, a day before
    the due date (and at least a day from now); when already overdue, within two days."""
    if due <= now:
        out = now + 2 * DAY
    elif due - critical * DAY >= now + DAY:
        out = due - critical * DAY
    else:
        out = min(due, max(now + DAY, due - DAY))
    return out.replace(microsecond=0)


def _assignee(contacts: list[dict[str, Any]]) -> dict[str, Any] | None:
    active = [c for c in contacts if c["active"]]
    return min(active, key=lambda c: (CONTACT_ORDER.index(c["role"])
                                      if c["role"] in CONTACT_ORDER else 9, c["id"]),
               default=None)


def _rank_vendors(io: NodeIO, trade: str) -> list[dict[str, Any]]:
    """Vendors of the trade with room under the policy cap, best historical score first."""
    cap = io.policy_limits["max_open_per_vendor"]
    vendors = io.read("list_vendors", category=trade)["vendors"]
    return sorted((v for v in vendors if v["open_work_orders"] < cap),
                  key=lambda v: (-v["score"], v["open_work_orders"], v["hourly_rate"]))


def _nte(amount: float) -> float:
    return float(max(10, -(-int(round(amount)) // 10) * 10))


def _facts(property_id: str, category: str, position: str) -> dict[str, Any]:
    return {"is_emergency": False, "property_id": property_id, "category": category,
            "priority": "ROUTINE" if position == "ahead" else "URGENT"}


def _no_contact(property_id: str, what: str, refs: list[str]) -> Escalation:
    return Escalation(severity="HIGH", category="SYSTEM",
                      title=f"No compliance contact at {property_id}",
                      details=f"{what} needs an owner, and {property_id} has no active "
                              "compliance coordinator or superintendent.",
                      decision_requested="Add a compliance contact for the property, then "
                                         "re-run the trigger", evidence_refs=refs)


def _plan_item(io: NodeIO, env: TriggerEnvelope, ctx: dict[str, Any],
               refs: list[str]) -> PlanResult:
    item, limits = ctx["item"], io.policy_limits
    critical = int(limits["compliance_critical_days"])
    days, due = int(item["days_until_due"]), _at(item["due_at"])
    position = _position(days, critical)
    facts = _facts(item["property_id"], item["kind"], position)
    if item["status"] != "OPEN":
        return PlanResult(run_facts=facts,
                          summary=f"{item['id']} is {item['status']}: nothing to do")
    task = _cycle_task(ctx["tasks"], item)
    if task is not None and task["status"] == "DONE":
        return PlanResult(run_facts=facts, proposals=[_record(item, task, refs, [])],
                          summary=f"{item['label']}: task {task['id']} is done; record the "
                                  "item as compliant")
    if task is not None:
        return _watch(io, item, task, days, critical, facts, refs)
    contact = _assignee(ctx["contacts"])
    if contact is None:
        esc = _no_contact(item["property_id"], item["label"], refs)
        return PlanResult(run_facts=facts, summary=esc.title, escalation=esc)
    task_id = stable_id("CT", env.tenant_id, "item", item["id"], due.isoformat())
    deadline = _deadline(due, io.now, critical)
    why = (f"{item['label']} ({item['authority']}) at {item['property_id']} is "
           f"{_when(days, critical)} ({due:%Y-%m-%d}); no task covers this cycle yet.")
    obligation = {"compliance_item_id": item["id"]}
    proposals = [_create_task(task_id, obligation, item["label"], contact, deadline,
                              facts["priority"], why, refs)]
    if item["contractor_trade"]:
        ranked = _rank_vendors(io, item["contractor_trade"])
        if not ranked:
            esc = Escalation(
                severity="CRITICAL" if position == "overdue" else "HIGH", category="SLA",
                title=f"No {item['contractor_trade']} contractor for {item['label']}",
                details=f"{item['id']} is {_when(days, critical)} and needs a licensed "
                        f"{item['contractor_trade']} contractor; none is active below the cap "
                        f"of {limits['max_open_per_vendor']} open work orders.",
                decision_requested="Book a contractor by hand or onboard one",
                evidence_refs=refs)
            return PlanResult(run_facts=facts, summary=esc.title, escalation=esc)
        vendor = ranked[0]
        proposals.append(_book(
            stable_id("WO", env.tenant_id, io.thread_id), task_id, obligation, vendor,
            item["contractor_trade"], facts["priority"], f"{item['label']} - "
            f"{item['property_id']}", f"Compliance: {item['description']} for "
            f"{item['authority']}, due {due:%Y-%m-%d}.", item["typical_cost"], deadline,
            f"compliance:{item['id']}",
            f"{item['label']} needs a licensed {item['contractor_trade']} contractor "
            f"(typical fee {item['typical_cost']:.0f}); {vendor['name']} has the best score "
            f"({vendor['score']}) of {len(ranked)} with capacity.", refs))
    proposals.append(_notify(io, task_id, obligation, contact, item["label"],
                             item["authority"], due, deadline, position, refs))
    return PlanResult(proposals=proposals, run_facts=facts,
                      summary=f"{item['label']} at {item['property_id']} "
                              f"{_when(days, critical)} -> task {task_id} for {contact['name']}")


def _watch(io: NodeIO, item: dict[str, Any], task: dict[str, Any], days: int, critical: int,
           facts: dict[str, Any], refs: list[str]) -> PlanResult:
    """A live task covers the cycle: escalate if the deadline is breached, else leave it."""
    deadline = _at(task["due_at"])
    refs = sorted({*refs, f"compliance_task:{task['id']}"})
    state = (f"task {task['id']} (assignee {task['assignee_id']}) is still {task['status']}"
             + (f", work order {task['work_order_id']}" if task["work_order_id"] else ""))
    if days < 0 and io.policy_limits["compliance_overdue_escalate"]:
        esc = Escalation(
            severity="CRITICAL", category="SLA",
            title=f"Overdue: {item['label']} at {item['property_id']} ({-days} days late)",
            details=f"{item['id']} was due {item['due_at']} to {item['authority']}; {state}.",
            blocked_rules=["COMPLIANCE_OVERDUE"],
            decision_requested="Get the work done now, or file for an extension / cure with "
                               "the authority and record it",
            evidence_refs=refs)
        return PlanResult(run_facts=facts, summary=esc.title, escalation=esc)
    if 0 <= days <= critical and io.now >= deadline:
        esc = Escalation(
            severity="HIGH", category="SLA",
            title=f"{item['label']} due in {days} days: task missed its deadline",
            details=f"{item['id']} is inside the {critical}-day critical window; {state} "
                    f"after its deadline {deadline:%Y-%m-%d %H:%M}Z.",
            blocked_rules=["COMPLIANCE_CRITICAL_WINDOW"],
            decision_requested="Chase the assignee or contractor, or reassign the task",
            evidence_refs=refs)
        return PlanResult(run_facts=facts, summary=esc.title, escalation=esc)
    return PlanResult(run_facts=facts,
                      summary=f"{item['label']}: {state}, due {deadline:%Y-%m-%d}: on track")


def _create_task(task_id: str, obligation: dict[str, str], label: str, contact: dict[str, Any],
                 deadline: datetime, priority: str, why: str, refs: list[str]) -> Proposal:
    return Proposal(
        action_id="create_task", tool="create_compliance_task",
        args={"task_id": task_id, **obligation, "assignee_id": contact["id"],
              "title": label[:300], "due_at": deadline.isoformat(), "priority": priority},
        description=f"Open task {task_id} for {contact['name']}: {label}, done by "
                    f"{deadline:%Y-%m-%d}",
        confidence=0.95,
        reasoning=f"{why} {contact['name']} is the property's "
                  f"{contact['role'].lower().replace('_', ' ')}; the task is due before the "
                  "critical window opens so a slip is caught in time.",
        evidence_refs=[*refs, f"contact:{contact['id']}"],
        expected_outcome=f"Task {task_id} assigned to {contact['name']}, due "
                         f"{deadline:%Y-%m-%d}",
        rollback_plan=f"Cancel task {task_id}",
        verify=VerifySpec(tool="get_compliance_task", args={"task_id": task_id},
                          expect={**obligation, "assignee_id": contact["id"]}))


def _book(wo_id: str, task_id: str, obligation: dict[str, str], vendor: dict[str, Any],
          trade: str, priority: str, title: str, description: str, cost: float,
          deadline: datetime, source_ref: str, why: str, refs: list[str]) -> Proposal:
    nte = _nte(cost)
    return Proposal(
        action_id="book_contractor", tool="create_compliance_work_order",
        args={"work_order_id": wo_id, "task_id": task_id, **obligation,
              "vendor_id": vendor["id"],
              "category": trade, "priority": priority, "title": title[:300],
              "description": description[:4000], "not_to_exceed": nte,
              "sla_due_at": deadline.isoformat()},
        description=f"Book {vendor['name']} ({wo_id}), not to exceed {nte:.2f}",
        confidence=min(0.95, 0.6 + vendor["score"] / 12), reasoning=why,
        evidence_refs=[*refs, f"vendor:{vendor['id']}"],
        expected_outcome=f"{wo_id} DISPATCHED to {vendor['id']} for task {task_id}",
        rollback_plan=f"Cancel {wo_id} and release {vendor['id']}", depends_on=["create_task"],
        verify=VerifySpec(tool="get_work_order", args={"work_order_id": wo_id},
                          expect={"status": "DISPATCHED", "vendor_id": vendor["id"],
                                  "source_ref": source_ref}))


def _notify(io: NodeIO, task_id: str, obligation: dict[str, str], contact: dict[str, Any],
            label: str, authority: str, due: datetime, deadline: datetime, position: str,
            refs: list[str]) -> Proposal:
    notice_id = stable_id("CN", io.thread_id, "assigned")
    channel = contact["preferred_channel"] if contact["preferred_channel"] in CHANNELS \
        else "in_app"
    urgency = {"overdue": "OVERDUE - treat as urgent. ", "critical": "Due soon. ",
               "ahead": ""}[position]
    body = (f"{urgency}New compliance task {task_id}: {label}. Due to {authority} on "
            f"{due:%a %d %b %Y}; please complete it by {deadline:%a %d %b %Y} and report the "
            "inspection, filing or certificate number when done.")
    return Proposal(
        action_id="notify_assignee", tool="notify_compliance_assignee",
        args={"notice_id": notice_id, "task_id": task_id, **obligation, "channel": channel,
              "body": body},
        description=f"Tell {contact['name']} by {channel}", confidence=0.9,
        reasoning="Seed 001 workflow C: assigned parties are notified of their task.",
        evidence_refs=[*refs, f"contact:{contact['id']}"],
        expected_outcome=f"{contact['name']} has the task, its deadline and what to report",
        rollback_plan="Irreversible: send a correction if anything in it was wrong",
        depends_on=["create_task"],
        verify=VerifySpec(tool="get_compliance_notice", args={"notice_id": notice_id},
                          expect={"task_id": task_id, "channel": channel}))


def _plan_pm(io: NodeIO, env: TriggerEnvelope, ctx: dict[str, Any],
             refs: list[str]) -> PlanResult:
    pm, critical = ctx["pm"], int(io.policy_limits["compliance_critical_days"])
    due = _at(pm["next_due_at"])
    days = days_until_due(due, io.now)
    facts = _facts(pm["property_id"], pm["category"], _position(days, critical))
    if days >= 0:
        return PlanResult(run_facts=facts, summary=f"PM {pm['id']} is not overdue (next due "
                                                   f"{due:%Y-%m-%d})")
    wo = next((w for w in ctx["open_work_orders"] if w["source_ref"] == f"pm:{pm['id']}"), None)
    if wo is not None:
        return PlanResult(run_facts=facts, summary=f"PM {pm['id']} is overdue but work order "
                                                   f"{wo['id']} is open ({wo['status']})")
    task = next((t for t in ctx["tasks"] if _at(t["cycle_due_at"]) == due
                 and t["status"] in LIVE), None)
    if task is not None:
        esc = Escalation(
            severity="HIGH", category="SLA",
            title=f"PM overdue: {pm['task'][:80]}",
            details=f"PM {pm['id']} was due {due:%Y-%m-%d}; task {task['id']} is "
                    f"{task['status']} but no work order is open"
                    + (f" (work order {task['work_order_id']} is no longer open)"
                       if task["work_order_id"] else "") + ".",
            blocked_rules=["COMPLIANCE_OVERDUE"],
            decision_requested="Re-book the PM or cancel the task with a reason",
            evidence_refs=sorted({*refs, f"compliance_task:{task['id']}"}))
        return PlanResult(run_facts=facts, summary=esc.title, escalation=esc)
    contact = _assignee(ctx["contacts"])
    if contact is None:
        esc = _no_contact(pm["property_id"], f"PM {pm['id']}", refs)
        return PlanResult(run_facts=facts, summary=esc.title, escalation=esc)
    if pm["contract_vendor_id"]:
        vendor = io.read("get_vendor", vendor_id=pm["contract_vendor_id"])
        cost = float(pm["contract_price"] or vendor["callout_fee"] + 2 * vendor["hourly_rate"])
        choice = f"{vendor['name']} holds the service contract at {cost:.2f}."
    else:
        ranked = _rank_vendors(io, pm["category"])
        if not ranked:
            esc = Escalation(severity="HIGH", category="SLA",
                             title=f"No {pm['category']} vendor for overdue PM {pm['id']}",
                             details=f"{pm['task']} was due {due:%Y-%m-%d}; no vendor has "
                                     "capacity.",
                             decision_requested="Assign a vendor by hand",
                             evidence_refs=refs)
            return PlanResult(run_facts=facts, summary=esc.title, escalation=esc)
        vendor = ranked[0]
        cost = float(vendor["callout_fee"] + 2 * vendor["hourly_rate"])
        choice = (f"No contract vendor; {vendor['name']} has the best score "
                  f"({vendor['score']}); estimate callout + 2 hours = {cost:.2f}.")
    task_id = stable_id("CT", env.tenant_id, "pm", pm["id"], due.isoformat())
    deadline = _deadline(due, io.now, critical)
    why = (f"PM {pm['id']} ({pm['task']}) was due {due:%Y-%m-%d}, {-days} days ago, and has "
           "no open work order.")
    obligation = {"pm_schedule_id": pm["id"]}
    proposals = [
        _create_task(task_id, obligation, pm["task"], contact, deadline, "URGENT", why, refs),
        _book(stable_id("WO", env.tenant_id, io.thread_id), task_id, obligation, vendor,
              pm["category"], "URGENT", pm["task"], f"Overdue preventive maintenance: "
              f"{pm['task']}", cost, deadline, f"pm:{pm['id']}", f"{why} {choice}", refs),
        _notify(io, task_id, obligation, contact, pm["task"], "the PM calendar", due,
                deadline, "overdue", refs)]
    return PlanResult(proposals=proposals, run_facts=facts,
                      summary=f"Overdue PM {pm['task'][:60]} -> task {task_id} and "
                              f"{vendor['name']}")


def _complete(task: dict[str, Any], completed_by: str, evidence_ref: str, note: str | None,
              why: str, refs: list[str]) -> Proposal:
    return Proposal(
        action_id="complete_task", tool="complete_compliance_task",
        args={"task_id": task["id"], "completed_by": completed_by,
              "evidence_ref": evidence_ref, "note": note},
        description=f"Mark task {task['id']} done ({evidence_ref})", confidence=0.9,
        reasoning=why, evidence_refs=sorted({*refs, f"compliance_task:{task['id']}"}),
        expected_outcome=f"Task {task['id']} DONE with {evidence_ref} on record",
        rollback_plan=f"Re-open task {task['id']}",
        verify=VerifySpec(tool="get_compliance_task", args={"task_id": task["id"]},
                          expect={"status": "DONE", "evidence_ref": evidence_ref}))


def _record(item: dict[str, Any], task: dict[str, Any], refs: list[str],
            depends_on: list[str]) -> Proposal:
    return Proposal(
        action_id="record_completion", tool="record_compliance_completion",
        args={"compliance_item_id": item["id"], "task_id": task["id"]},
        description=f"Record {item['id']} as COMPLIANT"
                    + (", opening its next occurrence" if item["cycle_days"] else ""),
        confidence=0.95,
        reasoning=f"Task {task['id']} discharges this cycle of {item['label']}; the item's "
                  "status must say so, or the scan keeps escalating it.",
        evidence_refs=sorted({*refs, f"compliance_item:{item['id']}",
                              f"compliance_task:{task['id']}"}),
        expected_outcome=f"{item['id']} COMPLIANT"
                         + (f"; next due in {item['cycle_days']} days" if item["cycle_days"]
                            else ""),
        rollback_plan=f"Set {item['id']} back to OPEN and remove the next occurrence",
        depends_on=depends_on,
        verify=VerifySpec(tool="get_compliance_item",
                          args={"compliance_item_id": item["id"]},
                          expect={"status": "COMPLIANT"}))


def _current(item: dict[str, Any] | None, task: dict[str, Any]) -> bool:
    """Is the task for the item's current, still open cycle?"""
    return item is not None and item["status"] == "OPEN" and (
        _at(item["due_at"]) == _at(task["cycle_due_at"]))


def _task_facts(ctx: dict[str, Any], io: NodeIO) -> tuple[dict[str, Any], int, int]:
    task, item, pm = ctx["task"], ctx["item"], ctx["pm"]
    critical = int(io.policy_limits["compliance_critical_days"])
    due = _at(item["due_at"] if item else pm["next_due_at"])
    days = days_until_due(due, io.now)
    facts = _facts(task["property_id"], item["kind"] if item else pm["category"],
                   _position(days, critical))
    return facts, days, critical


def _plan_recheck(io: NodeIO, ctx: dict[str, Any], refs: list[str]) -> PlanResult:
    task, item, wo = ctx["task"], ctx["item"], ctx["work_order"]
    facts, days, critical = _task_facts(ctx, io)
    refs = sorted({*refs, f"compliance_task:{task['id']}"})
    if task["status"] == "CANCELLED":
        return PlanResult(run_facts=facts, summary=f"Task {task['id']} was cancelled")
    if task["status"] == "DONE":
        if _current(item, task):
            return PlanResult(run_facts=facts, proposals=[_record(item, task, refs, [])],
                              summary=f"Task {task['id']} is done; record {item['id']}")
        return PlanResult(run_facts=facts, summary=f"Task {task['id']} is done and recorded")
    if item is not None and item["status"] != "OPEN":
        return PlanResult(run_facts=facts, summary=f"{item['id']} is {item['status']}; task "
                                                   f"{task['id']} is left to its assignee")
    if wo is not None and wo["status"] in WORK_DONE:
        why = (f"Work order {wo['id']} for task {task['id']} is {wo['status']}"
               + (f" at {wo['final_cost']:.2f}" if wo["final_cost"] is not None else "")
               + ": the contractor's work discharges the task.")
        last_note = wo["notes"][-1][:2000] if wo["notes"] else None
        proposals = [_complete(task, f"vendor:{wo['vendor_id']}", f"work_order:{wo['id']}",
                               last_note, why, [*refs, f"work_order:{wo['id']}"])]
        if _current(item, task):
            assert item is not None
            proposals.append(_record(item, task, refs, ["complete_task"]))
        return PlanResult(proposals=proposals, run_facts=facts,
                          summary=f"Re-check: {wo['id']} done -> close task {task['id']}")
    deadline = _at(task["due_at"])
    if io.now < deadline:
        return PlanResult(run_facts=facts, summary=f"Task {task['id']} is {task['status']}, "
                                                   f"due {deadline:%Y-%m-%d}: on track")
    position = _position(days, critical)
    rules = {"overdue": ["COMPLIANCE_OVERDUE"], "critical": ["COMPLIANCE_CRITICAL_WINDOW"],
             "ahead": []}[position]
    what = item["label"] if item else f"PM {ctx['pm']['task']}"
    esc = Escalation(
        severity={"overdue": "CRITICAL", "critical": "HIGH", "ahead": "MEDIUM"}[position],
        category="SLA", title=f"Compliance task {task['id']} missed its deadline",
        details=f"{what} is {_when(days, critical)}; task {task['id']} (assignee "
                f"{task['assignee_id']}) is still {task['status']} after its deadline "
                f"{deadline:%Y-%m-%d %H:%M}Z"
                + (f"; work order {wo['id']} is {wo['status']}" if wo else "") + ".",
        blocked_rules=rules,
        decision_requested="Chase the assignee or contractor, reassign, or record the work "
                           "if it was done", evidence_refs=refs)
    return PlanResult(run_facts=facts, summary=esc.title, escalation=esc)


def _plan_completed(io: NodeIO, payload: ComplianceTaskCompleted, ctx: dict[str, Any],
                    refs: list[str]) -> PlanResult:
    task, item = ctx["task"], ctx["item"]
    if task is None:
        assert item is not None
        esc = Escalation(
            severity="MEDIUM", category="SYSTEM",
            title=f"Completion reported for {item['id']} with no task",
            details=f"{payload.completed_by} reports {item['label']} done "
                    f"({payload.evidence_ref}), but no task covers its current cycle "
                    f"(status {item['status']}, due {item['due_at']}).",
            decision_requested="Check the report and record the item by hand",
            evidence_refs=refs)
        return PlanResult(run_facts=_facts(item["property_id"], item["kind"], "ahead"),
                          summary=esc.title, escalation=esc)
    facts, days, critical = _task_facts(ctx, io)
    refs = sorted({*refs, f"compliance_task:{task['id']}"})
    if task["status"] == "CANCELLED":
        esc = Escalation(severity="MEDIUM", category="SYSTEM",
                         title=f"Completion reported for cancelled task {task['id']}",
                         details=f"{payload.completed_by} reports {payload.evidence_ref}.",
                         decision_requested="Check the report and record it by hand",
                         evidence_refs=refs)
        return PlanResult(run_facts=facts, summary=esc.title, escalation=esc)
    if task["status"] == "DONE":
        if _current(item, task):
            assert item is not None
            return PlanResult(run_facts=facts, proposals=[_record(item, task, refs, [])],
                              summary=f"Task {task['id']} was done; record {item['id']}")
        return PlanResult(run_facts=facts, summary=f"Task {task['id']} is already done")
    why = (f"{payload.completed_by} reports the work done with {payload.evidence_ref}; the "
           f"obligation is {_when(days, critical)}.")
    proposals = [_complete(task, payload.completed_by, payload.evidence_ref, payload.note, why,
                           refs)]
    if _current(item, task):
        assert item is not None
        proposals.append(_record(item, task, refs, ["complete_task"]))
    return PlanResult(proposals=proposals, run_facts=facts,
                      summary=f"Completed: task {task['id']} ({payload.evidence_ref})")
