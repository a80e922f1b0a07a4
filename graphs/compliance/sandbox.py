"""Sandbox data and demo triggers of the compliance autopilot.

The shared seed already holds three compliance items (gas piping due in 5 days, facade in
40, boiler 3 days overdue) and the PM calendar; this adds who is responsible at each
building and two staff filings, so every path of the autopilot has something to act on.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from autopilot.models import ComplianceItem, Property
from autopilot.sandbox.compliance import ComplianceContact

# (id, property, name, role, preferred channel)
CONTACTS = [
    ("CC-GRAND-COORD", "P-GRAND", "Renee Alvarez", "COMPLIANCE_COORDINATOR", "email"),
    ("CC-GRAND-SUPER", "P-GRAND", "Marcus Bell", "SUPERINTENDENT", "sms"),
    ("CC-FLAT-COORD", "P-FLATBUSH", "Dana Whitfield", "COMPLIANCE_COORDINATOR", "email"),
    ("CC-FLAT-SUPER", "P-FLATBUSH", "Andre Joseph", "SUPERINTENDENT", "sms"),
    ("CC-ASTORIA-COORD", "P-ASTORIA", "Nikos Pappas", "COMPLIANCE_COORDINATOR", "in_app"),
    ("CC-ASTORIA-SUPER", "P-ASTORIA", "Irina Volkova", "SUPERINTENDENT", "sms"),
]
# Staff filings (no contractor): (id, property, kind, authority, description, due in days)
ITEMS = [
    ("CI-ASTORIA-LL84", "P-ASTORIA", "ENERGY_BENCHMARKING",
     "NYC Mayor's Office of Climate & Environmental Justice (LL84)",
     "Annual energy and water benchmarking submission", 30),
    ("CI-GRAND-BEDBUG", "P-GRAND", "BEDBUG_REPORT", "NYC HPD (Local Law 69 of 2017)",
     "Annual bedbug infestation history filing", 65),
]


def seed(session: Session, tenant_id: str, now: datetime) -> bool:
    """Contacts per building and the staff filings; idempotent (nothing if contacts exist)."""
    if session.scalar(select(ComplianceContact.id).where(
            ComplianceContact.tenant_id == tenant_id).limit(1)) is not None:
        return False
    properties = set(session.scalars(select(Property.id).where(
        Property.tenant_id == tenant_id)))
    for cid, pid, name, role, channel in CONTACTS:
        if pid in properties:
            first, last = name.lower().split()
            session.add(ComplianceContact(
                tenant_id=tenant_id, id=cid, property_id=pid, name=name, role=role,
                email=f"{first}.{last}@acme-mgmt.example.com",
                phone=f"+1917555{3000 + CONTACTS.index((cid, pid, name, role, channel)):04d}",
                preferred_channel=channel, active=True))
    for iid, pid, kind, authority, description, days in ITEMS:
        if pid in properties and session.get(ComplianceItem, (tenant_id, iid)) is None:
            session.add(ComplianceItem(tenant_id=tenant_id, id=iid, property_id=pid, kind=kind,
                                       authority=authority, description=description,
                                       due_at=now + timedelta(days=days), status="OPEN"))
    return True


def demo(tenant_id: str, now: datetime) -> list[tuple[str, dict[str, Any]]]:
    """What `autopilot demo` fires for compliance, in order."""
    at = now.isoformat()

    def event(n: int, event_type: str, payload: dict[str, Any]) -> dict[str, Any]:
        return {"event_id": f"compliance-demo-{n}", "tenant_id": tenant_id,
                "source": "compliance-scan", "event_type": event_type, "occurred_at": at,
                "trace_id": f"trace-compliance-{n}", "payload": payload}

    facade = event(2, "compliance_item_due", {"compliance_item_id": "CI-FLAT-LL11",
                                              "stage": "upcoming"})
    return [
        ("LL84 benchmarking due in 30 days: a staff task and its notice run on their own",
         event(1, "compliance_item_due", {"compliance_item_id": "CI-ASTORIA-LL84",
                                          "stage": "upcoming"})),
        ("Facade (FISP) due in 40 days: the task runs on its own; booking the QEWI at 4500 "
         "waits for spend approval", facade),
        ("Gas piping (LL152) due in 5 days: inside the 7-day critical window, a person "
         "confirms", event(3, "compliance_item_due", {"compliance_item_id": "CI-GRAND-LL152",
                                                      "stage": "critical"})),
        ("Boiler inspection 3 days overdue: always escalated to a person",
         event(4, "compliance_item_due", {"compliance_item_id": "CI-ASTORIA-BOILER",
                                          "stage": "overdue"})),
        ("Gutter PM 2 days overdue with no work order: escalated to a person",
         event(5, "compliance_pm_overdue", {"pm_schedule_id": "PM-FLAT-GUTTERS"})),
        ("LL84 filed: task done, item recorded COMPLIANT and read back, next year's opened",
         event(6, "compliance_task_completed", {
             "compliance_item_id": "CI-ASTORIA-LL84", "completed_by": "Nikos Pappas",
             "evidence_ref": "LL84-BENCHMARK-CONF-58213"})),
        ("The facade trigger again: deduplicated", facade),
    ]
