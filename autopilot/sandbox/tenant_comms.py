"""Sandbox tables of the tenant comms autopilot (seed 001, workflow B), and the resident
messaging system they stand for.

Messages themselves live in the shared `messages` table (one conversation per resident,
`TH-<resident id>`, the same thread the maintenance autopilot writes its acknowledgements
to). These tables hold what the messaging system keeps about a conversation and what the
autopilot grounds its replies in:

- `comms_threads`: the conversation's state (open / awaiting_resident / awaiting_staff /
  closed), its last classification, who on staff owns it, and when a reply is due. The
  database guarantees that a thread that does not owe a reply has no reply deadline.
- `comms_policy_docs`: the policy documents and FAQ records replies are grounded in, per
  property or for every property of the tenant; superseded versions stay, inactive.
- `comms_staff`: the people a conversation can be routed to, by role and property.
- `comms_staff_notifications`: what the autopilot told staff, and why.

`receive_message` is the messaging system's intake (portal, SMS gateway, mail): it stores an
inbound message and opens the thread's reply clock. Production deployments have their own;
the autopilot only reads what it stored.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, Boolean, CheckConstraint, Index, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from autopilot.models import Base, Message, Resident, TenantKeyed, Unit, UTCDateTime, utcnow

THREAD_STATES = ("open", "awaiting_resident", "awaiting_staff", "closed")
OWES_REPLY = ("open", "awaiting_staff")  # states in which a reply to the resident is due
CHANNELS = ("sms", "email", "in_app", "portal")
STAFF_ROLES = ("PROPERTY_MANAGER", "BILLING", "LEASING", "MAINTENANCE_COORDINATOR")
SEVERITIES = ("LOW", "MEDIUM", "HIGH", "CRITICAL")
# The messaging system's response standard: a resident's message is answered within a day.
RESPONSE_SLA = timedelta(hours=24)


def _quoted(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


class CommsThread(TenantKeyed, Base):
    """One resident's conversation with management (`id` = `TH-<resident id>`)."""

    __tablename__ = "comms_threads"
    resident_id: Mapped[str] = mapped_column(String(64))
    unit_id: Mapped[str] = mapped_column(String(64))
    property_id: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(20), default="open")
    intent: Mapped[str | None] = mapped_column(String(32), nullable=True)
    topic: Mapped[str | None] = mapped_column(String(32), nullable=True)
    assigned_staff_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    handoff: Mapped[str | None] = mapped_column(String(32), nullable=True)
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    last_inbound_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_outbound_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    reply_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        CheckConstraint(f"state IN ({_quoted(THREAD_STATES)})", name="state"),
        # A thread that does not owe the resident a reply has no reply deadline.
        CheckConstraint(f"state IN ({_quoted(OWES_REPLY)}) OR reply_due_at IS NULL",
                        name="due_only_when_owed"),
        CheckConstraint("escalation_level >= 0", name="escalation_level"),
        # The overdue scan: reply deadlines crossing the tick window.
        Index("ix_comms_threads_reply_due", "reply_due_at"),
        Index("ix_comms_threads_resident", "tenant_id", "resident_id", unique=True),
    )


class CommsPolicyDoc(TenantKeyed, Base):
    """A policy document or FAQ record a reply may quote (`property_id` NULL: every property)."""

    __tablename__ = "comms_policy_docs"
    property_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    topic: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(200))  # where the text comes from
    # Words a message must use for the record to answer it (a word prefix each); an empty
    # list means the record answers every message on its topic.
    keywords: Mapped[list[Any]] = mapped_column(JSON, default=list)
    answer: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        CheckConstraint("version >= 1", name="version"),
        Index("ix_comms_policy_docs_topic", "tenant_id", "topic", "active"),
    )


class CommsStaff(TenantKeyed, Base):
    """A staff member conversations are routed to (`property_id` NULL: every property)."""

    __tablename__ = "comms_staff"
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32))
    property_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    email: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    __table_args__ = (
        CheckConstraint(f"role IN ({_quoted(STAFF_ROLES)})", name="role"),
    )


class CommsStaffNotification(TenantKeyed, Base):
    """A notification the autopilot sent to a staff member about a thread."""

    __tablename__ = "comms_staff_notifications"
    staff_id: Mapped[str] = mapped_column(String(64))
    thread_id: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(64))
    summary: Mapped[str] = mapped_column(Text)
    channels: Mapped[list[Any]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default="SENT")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        CheckConstraint(f"severity IN ({_quoted(SEVERITIES)})", name="severity"),
        Index("ix_comms_staff_notifications_thread", "tenant_id", "thread_id"),
    )


def thread_id_of(resident_id: str) -> str:
    """The resident's conversation (the convention the maintenance tools write to as well)."""
    return f"TH-{resident_id}"


def receive_message(session: Session, tenant_id: str, *, resident_id: str, text: str,
                    channel: str, at: datetime, message_id: str) -> Message:
    """The messaging system's intake: store an inbound message and open the reply clock.

    A closed or answered thread reopens; a thread already waiting on staff keeps its
    assignee and its (earlier) deadline.
    """
    if channel not in CHANNELS:
        raise ValueError(f"channel must be one of {', '.join(CHANNELS)}")
    resident = session.get(Resident, (tenant_id, resident_id))
    if resident is None:
        raise ValueError(f"resident {resident_id!r} does not exist")
    unit = session.get(Unit, (tenant_id, resident.unit_id))
    assert unit is not None
    thread_id = thread_id_of(resident_id)
    thread = session.get(CommsThread, (tenant_id, thread_id))
    if thread is None:
        thread = CommsThread(tenant_id=tenant_id, id=thread_id, resident_id=resident_id,
                             unit_id=unit.id, property_id=unit.property_id, state="open",
                             escalation_level=0, created_at=at)
        session.add(thread)
    if thread.state not in OWES_REPLY:
        thread.state, thread.escalation_level = "open", 0
    if thread.reply_due_at is None:
        thread.reply_due_at = at + RESPONSE_SLA
    thread.last_inbound_at = at
    thread.updated_at = at
    message = Message(tenant_id=tenant_id, id=message_id, thread_id=thread_id,
                      resident_id=resident_id, unit_id=unit.id, direction="in",
                      channel=channel, body=text, created_at=at)
    session.add(message)
    session.flush()
    return message


# --------------------------------------------------------------------------- seed data
# Replies are only as good as these records: each answer is what the property's handbook or
# notices actually say, so an auto-reply never invents policy.

DOCS: list[dict[str, Any]] = [
    {"id": "DOC-RENT-PAYMENT", "property_id": None, "topic": "RENT_PAYMENT", "version": 2,
     "title": "Paying rent", "source": "Resident Handbook 2026, section 3.1",
     "keywords": ["rent", "pay", "payment", "autopay", "portal", "due", "online", "ach",
                  "card", "receipt", "grace"],
     "answer": "Rent is due on the 1st of each month. You can pay in the resident portal under "
               "Payments > Pay rent, by bank transfer (free) or card (2.95% processing fee), "
               "and turn on AutoPay on the same page so it is paid on the 1st automatically. "
               "Payments received by the 5th are on time."},
    {"id": "DOC-RENT-PAYMENT-2025", "property_id": None, "topic": "RENT_PAYMENT", "version": 1,
     "active": False, "title": "Paying rent (2025, superseded)",
     "source": "Resident Handbook 2025, section 3.1",
     "keywords": ["rent", "pay", "payment", "check", "money order"],
     "answer": "Rent is due on the 1st; checks and money orders go in the drop box at the "
               "management office."},
    {"id": "DOC-LATE-FEES", "property_id": None, "topic": "BILLING_DISPUTE", "version": 1,
     "title": "Late fees and charges", "source": "Lease rider R-4 (late charges)",
     "keywords": ["late fee", "fee", "charge", "charged", "ledger", "balance", "refund"],
     "answer": "A late fee of $50 applies to rent received after the 5th of the month (the NYC "
               "limit is $50 or 5% of the monthly rent, whichever is less). Charges posted in "
               "error are reversed on the resident ledger within 5 business days."},
    {"id": "DOC-MAINT-REQUESTS", "property_id": None, "topic": "MAINTENANCE_REQUEST",
     "version": 1, "title": "Maintenance requests", "source": "Resident Handbook 2026, "
                                                              "section 5.2",
     "keywords": [],  # the intake procedure answers every repair report
     "answer": "Routine repairs are scheduled within 72 hours and urgent ones (no hot water, "
               "leaks, broken locks) within 24 hours. If anything is dangerous (gas smell, "
               "fire, flooding) call 911 first, then the 24-hour emergency line at "
               "(718) 555-0100."},
    {"id": "DOC-RENEWAL", "property_id": None, "topic": "LEASE_RENEWAL", "version": 1,
     "title": "Lease renewals", "source": "Resident Handbook 2026, section 2.4",
     "keywords": ["renew", "renewal", "lease", "offer", "expire", "ends", "extend"],
     "answer": "Renewal offers are sent 90 to 150 days before your lease ends, by mail and in "
               "the portal under Documents > Lease. Please accept or decline within 60 days of "
               "the offer date; 1-year and 2-year terms are offered, with the new rent shown "
               "in the offer."},
    {"id": "DOC-MOVE", "property_id": None, "topic": "MOVE_IN_OUT", "version": 1,
     "title": "Moving in and out", "source": "House Rules 2026, rule 12",
     "keywords": ["move", "moving", "movers", "elevator", "truck", "insurance", "coi", "keys"],
     "answer": "Moves are allowed Monday to Saturday, 9:00 to 17:00. Reserve the service "
               "elevator at least 5 business days ahead in the portal (Requests > Move "
               "reservation); movers must send a certificate of insurance naming the owner "
               "before the move. Keys are returned to the management office at move-out."},
    {"id": "DOC-GRAND-AMENITIES", "property_id": "P-GRAND", "topic": "AMENITY", "version": 1,
     "title": "Grand Concourse amenities", "source": "Grand Concourse building guide",
     "keywords": ["gym", "fitness", "community room", "book", "reserve", "hours", "fob"],
     "answer": "The gym on the lower level is open 5:00 to 23:00 with your key fob. The "
               "community room can be booked in the portal (Amenities > Community room) for "
               "up to 4 hours, free of charge."},
    {"id": "DOC-FLATBUSH-LAUNDRY", "property_id": "P-FLATBUSH", "topic": "AMENITY",
     "version": 1, "title": "Flatbush Gardens laundry room",
     "source": "Flatbush Gardens building guide",
     "keywords": ["laundry", "washer", "dryer", "card", "reload", "hours"],
     "answer": "The laundry room in building B is open 7:00 to 22:00. Laundry cards are "
               "reloaded in the portal (Amenities > Laundry card) or at the machine by the "
               "entrance."},
    {"id": "DOC-ASTORIA-ROOF", "property_id": "P-ASTORIA", "topic": "AMENITY", "version": 1,
     "title": "Astoria Park roof deck", "source": "Astoria Park Lofts building guide",
     "keywords": ["roof", "deck", "grill", "reserve", "guests", "hours"],
     "answer": "The roof deck is open May to October, 8:00 to 22:00. Groups of more than 6 "
               "need a reservation in the portal (Amenities > Roof deck); grills must be "
               "cleaned after use."},
    {"id": "DOC-GRAND-PACKAGES", "property_id": "P-GRAND", "topic": "PACKAGE", "version": 1,
     "title": "Grand Concourse package room", "source": "Grand Concourse building guide",
     "keywords": ["package", "parcel", "delivery", "mailroom", "pickup"],
     "answer": "Packages are logged by the front desk and kept in the package room next to "
               "the lobby; you get a text when one arrives. Pick-up is 7:00 to 22:00 with "
               "photo ID; packages are held for 14 days."},
    {"id": "DOC-ASTORIA-LOCKERS", "property_id": "P-ASTORIA", "topic": "PACKAGE", "version": 1,
     "title": "Astoria Park smart lockers", "source": "Astoria Park Lofts building guide",
     "keywords": ["package", "parcel", "delivery", "locker", "code"],
     "answer": "Carriers leave packages in the smart lockers in the lobby and you receive a "
               "pick-up code by text and email. Oversized packages are held at the "
               "management office."},
    {"id": "DOC-GRAND-TRASH", "property_id": "P-GRAND", "topic": "GENERAL_INFO", "version": 1,
     "title": "Grand Concourse trash and recycling", "source": "House Rules 2026, rule 7",
     "keywords": ["trash", "garbage", "recycling", "compost", "bins", "pickup"],
     "answer": "Trash goes down the chute on each floor at any time. Recycling (blue bins for "
               "metal, glass and plastic, green for paper) is in the basement trash room and "
               "is collected Tuesdays and Fridays."},
]

# (id, name, role, property or None for every property, active)
STAFF: list[tuple[str, str, str, str | None, bool]] = [
    ("ST-PM-GRAND", "Renee Alvarez", "PROPERTY_MANAGER", "P-GRAND", True),
    ("ST-PM-FLATBUSH", "Marcus Webb", "PROPERTY_MANAGER", "P-FLATBUSH", True),
    ("ST-PM-ASTORIA", "Irene Papadakis", "PROPERTY_MANAGER", "P-ASTORIA", True),
    ("ST-BILLING", "Dana Fuller", "BILLING", None, True),
    ("ST-BILLING-OLD", "Victor Hale", "BILLING", None, False),
    ("ST-LEASING", "Priyanka Rao", "LEASING", None, True),
    ("ST-MAINT", "Tomas Ortega", "MAINTENANCE_COORDINATOR", None, True),
]

# The morning inbox `autopilot demo` answers: (message id, resident, channel, text).
DEMO_MESSAGES: list[tuple[str, str, str, str]] = [
    ("MSG-COMMS-1", "R-GRAND-1B", "sms", "Hi! How do I set up autopay for my rent?"),
    ("MSG-COMMS-2", "R-FLATBUSH-2A", "sms",
     "Any update on the plumber for my slow kitchen drain?"),
    ("MSG-COMMS-3", "R-GRAND-2A", "in_app", "The bathroom faucet has been dripping all week."),
    ("MSG-COMMS-4", "R-ASTORIA-3B", "email",
     "When will I get my renewal offer? My lease ends in March."),
    ("MSG-COMMS-5", "R-FLATBUSH-1B", "portal", "Where do packages go when I'm not home?"),
    ("MSG-COMMS-6", "R-GRAND-3A", "email",
     "I was charged a $50 late fee this month but I paid on the 3rd. Please remove it."),
    ("MSG-COMMS-7", "R-ASTORIA-1A", "sms",
     "The heat keeps going out. If it isn't fixed by Friday my lawyer will be in touch."),
]
# A conversation nobody answered in time: the overdue scan finds it on the first tick.
OVERDUE_MESSAGE = ("MSG-COMMS-OVERDUE", "R-ASTORIA-2B", "email",
                   "Hello, could you send me a copy of my lease with the rider? Thanks.")


def seed(session: Session, tenant_id: str, now: datetime) -> bool:
    """Policy documents, staff, a closed conversation, an overdue one and the demo inbox
    (idempotent: nothing happens if the tenant's documents exist)."""
    if session.scalar(select(CommsPolicyDoc.id).where(
            CommsPolicyDoc.tenant_id == tenant_id).limit(1)) is not None:
        return False
    for doc in DOCS:
        session.add(CommsPolicyDoc(tenant_id=tenant_id, active=doc.get("active", True),
                                   updated_at=now - timedelta(days=30),
                                   **{k: v for k, v in doc.items() if k != "active"}))
    for sid, name, role, prop, active in STAFF:
        first, last = name.lower().split()
        session.add(CommsStaff(tenant_id=tenant_id, id=sid, name=name, role=role,
                               property_id=prop, email=f"{first}.{last}@mgmt.example.com",
                               active=active))
    # An answered, closed conversation from last week (history the thread view shows).
    asked = now - timedelta(days=6)
    receive_message(session, tenant_id, resident_id="R-GRAND-1A", channel="sms", at=asked,
                    message_id="MSG-COMMS-HIST-1", text="Is the gym open on holidays?")
    session.add(Message(tenant_id=tenant_id, id="MSG-COMMS-HIST-2",
                        thread_id=thread_id_of("R-GRAND-1A"), resident_id="R-GRAND-1A",
                        unit_id="P-GRAND-1A", direction="out", channel="sms",
                        body="Hi, yes: the gym keeps its usual 5:00-23:00 hours on holidays.",
                        created_at=asked + timedelta(hours=1)))
    closed = session.get(CommsThread, (tenant_id, thread_id_of("R-GRAND-1A")))
    assert closed is not None
    closed.state, closed.reply_due_at, closed.topic, closed.intent = (
        "closed", None, "AMENITY", "FAQ")
    closed.last_outbound_at = asked + timedelta(hours=1)
    mid, resident, channel, text = OVERDUE_MESSAGE
    receive_message(session, tenant_id, resident_id=resident, channel=channel, text=text,
                    at=now - RESPONSE_SLA - timedelta(hours=6), message_id=mid)
    for i, (mid, resident, channel, text) in enumerate(DEMO_MESSAGES):
        receive_message(session, tenant_id, resident_id=resident, channel=channel, text=text,
                        at=now - timedelta(minutes=30 - i), message_id=mid)
    return True
