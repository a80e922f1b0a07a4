"""Scheduled trigger detection for platform_ops: the signals (alerts, trust & safety signals,
support tickets, growth and pipeline alerts) that fired in the tick's window become tasks.

The scan is set-based over the indexed `ops_signals.fired_at` and bounded by the window
`(since, until]` (no `since`: everything fired so far), so a tick reads only what is new.
The tick also brings the `events.ops_agents.v1` outbox up to date for the runs that moved in
the window (blocked, failed, rejected or finished runs included): an idempotent projection of
the ledger into `ops_agent_events`, committed with the tick's session.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from autopilot.sandbox.platform_ops import OpsSignal, publish_pending


def detect(session: Session, since: datetime | None, until: datetime) -> list[dict[str, Any]]:
    publish_pending(session, since)
    q = select(OpsSignal.tenant_id, OpsSignal.id, OpsSignal.kind, OpsSignal.source,
               OpsSignal.payload, OpsSignal.fired_at).where(OpsSignal.fired_at <= until)
    if since is not None:
        q = q.where(OpsSignal.fired_at > since)
    return [{"event_id": f"signal:{sid}", "tenant_id": tenant_id, "source": source,
             "event_type": kind, "occurred_at": fired_at.isoformat(), "payload": dict(payload)}
            for tenant_id, sid, kind, source, payload, fired_at in session.execute(
                q.order_by(OpsSignal.fired_at, OpsSignal.id))]
