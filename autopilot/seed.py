"""Realistic sandbox data for one tenant: three NYC buildings, residents, vendors, PM and
compliance calendars, and a few open work orders. Idempotent per tenant.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from autopilot.db import Database
from autopilot.models import (
    ComplianceItem,
    PMSchedule,
    Property,
    Resident,
    Unit,
    Vendor,
    WorkOrder,
)

PROPERTIES = [
    ("P-GRAND", "PF-NYC", "Grand Concourse Residences", "1340 Grand Concourse", "Bronx"),
    ("P-FLATBUSH", "PF-NYC", "Flatbush Gardens", "1401 Newkirk Ave", "Brooklyn"),
    ("P-ASTORIA", "PF-NYC", "Astoria Park Lofts", "21-15 Shore Blvd", "Queens"),
]

FIRST = ["Maria", "James", "Aisha", "Wei", "Carlos", "Fatima", "Dmitri", "Keisha", "Luis",
         "Priya", "Tomasz", "Grace", "Olu", "Hannah", "Jorge", "Mei", "Samuel", "Yara"]
LAST = ["Rodriguez", "Okafor", "Chen", "Kowalski", "Nguyen", "Haddad", "Johnson", "Patel",
        "Romero", "Ivanova", "Brown", "Santos", "Kim", "Mensah", "Levy", "Diallo", "Park",
        "Moreno"]

# (id, name, categories, hourly, callout, score, completed, open, emergency)
VENDORS = [
    ("V-AQUA", "AquaFlow Plumbing", ["PLUMBING"], 115, 95, 4.8, 412, 7, True),
    ("V-BORO", "Boro Pipe & Drain", ["PLUMBING"], 98, 75, 4.3, 230, 12, False),
    ("V-RAPID", "Rapid Rooter 24/7", ["PLUMBING"], 140, 150, 4.5, 510, 25, True),
    ("V-COMFORT", "Comfort Zone HVAC", ["HVAC"], 125, 110, 4.7, 305, 9, True),
    ("V-COOLAIR", "CoolAir Mechanical", ["HVAC"], 105, 90, 4.1, 188, 4, False),
    ("V-VOLT", "Voltline Electric", ["ELECTRICAL"], 130, 120, 4.6, 276, 6, True),
    ("V-SPARK", "Sparkright Electrical", ["ELECTRICAL"], 110, 85, 3.9, 95, 3, False),
    ("V-HANDY", "Five Boroughs Handyman", ["GENERAL", "DOOR_WINDOW", "PAINT_PLASTER"],
     70, 50, 4.4, 640, 14, False),
    ("V-PAINT", "Fresh Coat Painters", ["PAINT_PLASTER"], 65, 40, 4.2, 150, 2, False),
    ("V-PEST", "Metro Pest Solutions", ["PEST"], 85, 60, 4.5, 390, 8, False),
    ("V-APPLY", "ApplianceDoc NYC", ["APPLIANCE"], 95, 80, 4.0, 210, 5, False),
    ("V-STRUCT", "Keystone Structural", ["STRUCTURAL"], 160, 250, 4.6, 80, 2, False),
    ("V-MASON", "Bedrock Masonry", ["STRUCTURAL"], 145, 200, 4.2, 64, 1, False),
    ("V-LIFT", "Empire Elevator Service", ["ELEVATOR"], 175, 300, 4.4, 120, 3, True),
    ("V-BOILER", "Tri-State Boiler Co.", ["HVAC"], 150, 180, 4.5, 98, 5, True),
]


def seed_tenant(db: Database, tenant_id: str, now: datetime | None = None) -> bool:
    """Seed the sandbox for `tenant_id`: the shared property data, then each autopilot's own
    (`AutopilotSpec.seed`). Returns False if everything was already seeded."""
    from graphs import autopilots

    now = now or datetime.now(UTC)
    seeded = _seed_properties(db, tenant_id, now)
    for spec in autopilots().values():
        if spec.seed is not None:
            with db.session(tenant_id) as s:
                seeded = spec.seed(s, tenant_id, now) or seeded
    return seeded


def _seed_properties(db: Database, tenant_id: str, now: datetime) -> bool:
    with db.session(tenant_id) as s:
        if s.scalar(select(Property.id).where(Property.tenant_id == tenant_id).limit(1)):
            return False
        n = 0
        for pid, portfolio, name, address, city in PROPERTIES:
            s.add(Property(tenant_id=tenant_id, id=pid, portfolio_id=portfolio, name=name,
                           address=address, city=city, timezone="America/New_York"))
            for floor in range(1, 4):
                for letter in "AB":
                    uid = f"{pid}-{floor}{letter}"
                    s.add(Unit(tenant_id=tenant_id, id=uid, property_id=pid,
                               number=f"{floor}{letter}", bedrooms=1 + (floor + n) % 3))
                    first, last = FIRST[n % len(FIRST)], LAST[(n * 7) % len(LAST)]
                    s.add(Resident(
                        tenant_id=tenant_id, id=f"R-{pid[2:]}-{floor}{letter}",
                        unit_id=uid, name=f"{first} {last}",
                        email=f"{first.lower()}.{last.lower()}@example.com",
                        phone=f"+1718555{1000 + n:04d}",
                        preferred_channel="sms" if n % 3 else "email"))
                    n += 1
        for vid, vname, cats, hourly, callout, score, done, open_, emergency in VENDORS:
            s.add(Vendor(tenant_id=tenant_id, id=vid, name=vname, categories=cats,
                         hourly_rate=hourly, callout_fee=callout, score=score,
                         completed_jobs=done, open_work_orders=open_, active=True,
                         emergency_service=emergency,
                         email=f"dispatch@{vname.split()[0].lower()}.example.com",
                         phone=f"+1212555{2000 + len(vid):04d}"))
        day = timedelta(days=1)
        s.add_all([
            PMSchedule(tenant_id=tenant_id, id="PM-GRAND-BOILER", property_id="P-GRAND",
                       task="Annual boiler overhaul and combustion test before heat season",
                       category="HVAC", frequency_days=365, next_due_at=now + 3 * day,
                       contract_vendor_id="V-BOILER", contract_price=6200),
            PMSchedule(tenant_id=tenant_id, id="PM-FLAT-PEST", property_id="P-FLATBUSH",
                       task="Quarterly integrated pest management, common areas",
                       category="PEST", frequency_days=90, next_due_at=now + 2 * day,
                       contract_vendor_id="V-PEST", contract_price=420),
            PMSchedule(tenant_id=tenant_id, id="PM-ASTORIA-FILTERS", property_id="P-ASTORIA",
                       task="Replace HVAC filters in hallway air handlers", category="HVAC",
                       frequency_days=90, next_due_at=now + 1 * day,
                       contract_vendor_id="V-COOLAIR", contract_price=340),
            PMSchedule(tenant_id=tenant_id, id="PM-GRAND-ELEVATOR", property_id="P-GRAND",
                       task="Monthly elevator maintenance visit", category="ELEVATOR",
                       frequency_days=30, next_due_at=now + 5 * day,
                       contract_vendor_id="V-LIFT", contract_price=650),
            PMSchedule(tenant_id=tenant_id, id="PM-FLAT-GUTTERS", property_id="P-FLATBUSH",
                       task="Clean roof drains and gutters", category="GENERAL",
                       frequency_days=180, next_due_at=now - 2 * day,
                       contract_vendor_id=None, contract_price=None),
        ])
        s.add_all([
            ComplianceItem(tenant_id=tenant_id, id="CI-GRAND-LL152", property_id="P-GRAND",
                           kind="GAS_PIPING_INSPECTION", authority="NYC DOB (Local Law 152)",
                           description="Periodic gas piping system inspection",
                           due_at=now + 5 * day, status="OPEN"),
            ComplianceItem(tenant_id=tenant_id, id="CI-FLAT-LL11", property_id="P-FLATBUSH",
                           kind="FACADE_INSPECTION", authority="NYC DOB (Local Law 11 / FISP)",
                           description="Facade inspection report filing",
                           due_at=now + 40 * day, status="OPEN"),
            ComplianceItem(tenant_id=tenant_id, id="CI-ASTORIA-BOILER", property_id="P-ASTORIA",
                           kind="BOILER_INSPECTION", authority="NYC DOB Boiler Division",
                           description="Annual low-pressure boiler inspection",
                           due_at=now - 3 * day, status="OPEN"),
        ])
        s.add(WorkOrder(tenant_id=tenant_id, id="WO-1001", property_id="P-FLATBUSH",
                        unit_id="P-FLATBUSH-2A", category="PLUMBING", priority="ROUTINE",
                        status="DISPATCHED", title="Slow kitchen drain",
                        description="Kitchen sink drains slowly.", estimated_cost=180,
                        not_to_exceed=250, vendor_id="V-BORO", sla_due_at=now + 2 * day,
                        source_ref="msg:seed-1", notes=[], created_at=now - day,
                        updated_at=now - day))
    return True
