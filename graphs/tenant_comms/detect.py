"""Scheduled trigger detection for tenant comms: conversations whose reply deadline passed.

One set-based query over the indexed `comms_threads.reply_due_at`, bounded by the tick window
`(since, until]`: a tick sees only deadlines that passed since the previous tick (the first
tick, with no window start, sees every deadline already passed). A thread that was answered
has no deadline (the database enforces it), so it is never reported.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from autopilot.sandbox.tenant_comms import OWES_REPLY, CommsThread


def detect(session: Session, since: datetime | None, until: datetime) -> list[dict[str, Any]]:
    q = select(CommsThread.tenant_id, CommsThread.id, CommsThread.reply_due_at).where(
        CommsThread.reply_due_at <= until, CommsThread.state.in_(OWES_REPLY))
    if since is not None:
        q = q.where(CommsThread.reply_due_at > since)
    return [{"event_id": f"overdue:{thread_id}:{due.isoformat()}", "tenant_id": tenant_id,
             "source": "scheduler", "event_type": "comms_reply_overdue",
             "occurred_at": due.isoformat(),
             "payload": {"thread_id": thread_id, "reply_due_at": due.isoformat()}}
            for tenant_id, thread_id, due in session.execute(
                q.order_by(CommsThread.reply_due_at, CommsThread.tenant_id, CommsThread.id))]
