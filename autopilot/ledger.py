"""The tamper-evident audit ledger: append-only, one row per event, hash-chained per tenant.

Each entry's SHA-256 covers its content and the previous entry's hash, so changing, inserting
or removing an entry breaks the chain from that point; `verify` recomputes it and names the
first entry that does not fit. Entries are appended inside the transaction of what they
record (the tool call's effect, the policy decision, the approval), under a per-tenant lock,
so nothing happens that the ledger does not record, and the chain has no forks. The tables
refuse UPDATE and DELETE with a trigger (migration 0004).

Payloads are PII-redacted before they are hashed and stored.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from autopilot.db import ALL_TENANTS, Database
from autopilot.models import LedgerEntry
from autopilot.privacy import redact

# CONTROL: governance changes (kill switch flips, policy activations).
EVENT_TYPES = ("INTENT", "SIGNAL", "EVIDENCE", "PROPOSAL", "POLICY_DECISION", "APPROVAL",
               "TOOL_CALL", "VERIFICATION", "ESCALATION", "ERROR", "CONTROL")
GENESIS = "0" * 64


def entry_hash(prev_hash: str, tenant_id: str, seq: int, thread_id: str, trace_id: str,
               event_type: str, event_key: str | None, payload: Any,
               created_at: datetime) -> str:
    body = json.dumps([prev_hash, tenant_id, seq, thread_id, trace_id, event_type, event_key,
                       payload, created_at.astimezone(UTC).isoformat(timespec="microseconds")],
                      sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(body.encode()).hexdigest()


@dataclass
class ChainReport:
    tenant_id: str
    entries: int
    ok: bool
    problem: str = ""
    seq: int | None = None  # the first entry that does not fit
    entry_id: int | None = None


class Ledger:
    def __init__(self, db: Database) -> None:
        self.db = db

    def append(self, session: Session, *, tenant_id: str, event_type: str,
               payload: dict[str, Any], thread_id: str = "", trace_id: str = "",
               event_key: str | None = None) -> LedgerEntry | None:
        """Append one entry in the caller's transaction; with an `event_key` already on the
        ledger (a node re-run after a crash) nothing is appended and None is returned."""
        if event_type not in EVENT_TYPES:
            raise ValueError(f"event_type must be one of {', '.join(EVENT_TYPES)}")
        if self.db.is_postgres:
            session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"),
                            {"k": f"ledger:{tenant_id}"})
        if event_key is not None and session.scalar(select(LedgerEntry.id).where(
                LedgerEntry.tenant_id == tenant_id, LedgerEntry.event_key == event_key)):
            return None
        last = session.execute(select(LedgerEntry.seq, LedgerEntry.hash).where(
            LedgerEntry.tenant_id == tenant_id).order_by(LedgerEntry.seq.desc()).limit(1)
        ).first()
        seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
        clean = redact(payload)
        now = datetime.now(UTC)
        entry = LedgerEntry(tenant_id=tenant_id, seq=seq, thread_id=thread_id,
                            trace_id=trace_id or "", event_type=event_type, event_key=event_key,
                            payload=clean, created_at=now, prev_hash=prev,
                            hash=entry_hash(prev, tenant_id, seq, thread_id, trace_id or "",
                                            event_type, event_key, clean, now))
        session.add(entry)
        session.flush()
        return entry

    def record(self, **kwargs: Any) -> LedgerEntry | None:
        """Append in a transaction of its own (for events with no other record)."""
        with self.db.session(kwargs["tenant_id"]) as s:
            return self.append(s, **kwargs)

    # ------------------------------------------------------------------ reading

    def story(self, thread_id: str, tenant_id: str = ALL_TENANTS) -> list[LedgerEntry]:
        with self.db.session(tenant_id) as s:
            return list(s.scalars(select(LedgerEntry).where(LedgerEntry.thread_id == thread_id)
                                  .order_by(LedgerEntry.id)))

    def tenants(self) -> list[str]:
        with self.db.session(ALL_TENANTS) as s:
            return sorted(s.scalars(select(LedgerEntry.tenant_id).distinct()))

    def verify(self, tenant_id: str) -> ChainReport:
        """Recompute a tenant's chain; the first entry that is altered, out of place or
        missing is named. (Removing the newest entries cannot be seen from the chain alone.)"""
        t = LedgerEntry.__table__
        q = (select(t.c.id, t.c.seq, t.c.thread_id, t.c.trace_id, t.c.event_type,
                    t.c.event_key, t.c.payload, t.c.created_at, t.c.prev_hash, t.c.hash)
             .where(t.c.tenant_id == tenant_id).order_by(t.c.seq)
             .execution_options(yield_per=10_000))
        count, prev, expected = 0, GENESIS, 1
        with self.db.session(tenant_id) as s:
            for (eid, seq, thread_id, trace_id, event_type, event_key, payload, created_at,
                 prev_hash, stored) in s.execute(q):
                count += 1
                if seq != expected:
                    return ChainReport(tenant_id, count, False,
                                       f"entry #{expected} is missing (next is #{seq})",
                                       expected, eid)
                if prev_hash != prev:
                    return ChainReport(tenant_id, count, False,
                                       f"entry #{seq} does not link to entry #{seq - 1} "
                                       "(one of them was altered)", seq, eid)
                if entry_hash(prev, tenant_id, seq, thread_id, trace_id, event_type, event_key,
                              payload, created_at) != stored:
                    return ChainReport(tenant_id, count, False,
                                       f"entry #{seq} ({event_type}) was altered", seq, eid)
                prev, expected = stored, expected + 1
        return ChainReport(tenant_id, count, True)
