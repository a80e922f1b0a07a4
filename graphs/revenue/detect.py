"""Scheduled trigger detection for revenue (seed 003 phase 1.2: delta-only, no full scans).

One tick reads, over indexed columns and only inside the window `(since, until]`:
- source rows (account, contacts, deals, meetings, tickets, telemetry weeks, news) updated
  in the window -> one `account_changed` per account, naming the sources that moved;
- accounts whose renewal date comes within 90 days in the window -> `account_changed`;
- signals whose TTL ran out in the window (not those resolved early by a run) ->
  `account_changed`, so the account state stops counting them;
- scheduled meetings that come within 48 hours in the window -> `meeting_upcoming`.
The first tick (`since=None`) reads everything currently due. Every event is judged as of
the tick (`occurred_at = until`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, literal, select, union_all
from sqlalchemy.orm import Session

from autopilot.sandbox.revenue import (
    RevAccount,
    RevContact,
    RevDeal,
    RevMarketEvent,
    RevMeeting,
    RevSignal,
    RevTicket,
    RevUsageWeek,
)

MEETING_LEAD = timedelta(hours=48)
RENEWAL_WINDOW = timedelta(days=90)
SOURCES: list[tuple[Any, Any, str]] = [
    (RevAccount, RevAccount.id, "crm"), (RevContact, RevContact.account_id, "crm"),
    (RevDeal, RevDeal.account_id, "crm"), (RevMeeting, RevMeeting.account_id, "crm"),
    (RevTicket, RevTicket.account_id, "support"),
    (RevUsageWeek, RevUsageWeek.account_id, "telemetry"),
    (RevMarketEvent, RevMarketEvent.account_id, "news"),
]


def detect(session: Session, since: datetime | None, until: datetime) -> list[dict[str, Any]]:
    changed: dict[tuple[str, str], tuple[datetime, set[str]]] = {}

    def note(tenant: str, account: str, at: datetime, source: str) -> None:
        last, sources = changed.get((tenant, account), (at, set()))
        changed[(tenant, account)] = (max(last, at), sources | {source})

    parts = []
    for model, account_col, source in SOURCES:
        q = select(model.tenant_id.label("tenant_id"), account_col.label("account_id"),
                   model.updated_at.label("at"), literal(source).label("source")).where(
            model.updated_at <= until)
        parts.append(q.where(model.updated_at > since) if since is not None else q)
    rows = union_all(*parts).subquery()
    for tenant, account, at, source in session.execute(
            select(rows.c.tenant_id, rows.c.account_id, func.max(rows.c.at), rows.c.source)
            .group_by(rows.c.tenant_id, rows.c.account_id, rows.c.source)):
        note(tenant, account, _utc(at), source)

    renewals = select(RevAccount.tenant_id, RevAccount.id, RevAccount.renewal_date).where(
        RevAccount.renewal_date <= until + RENEWAL_WINDOW)
    renewals = renewals.where(RevAccount.renewal_date > (
        since + RENEWAL_WINDOW if since is not None else until))
    for tenant, account, renewal in session.execute(renewals):
        note(tenant, account, _utc(renewal) - RENEWAL_WINDOW, "renewal_window")

    expiring = select(RevSignal.tenant_id, RevSignal.account_id,
                      func.max(RevSignal.expires_at)).where(
        RevSignal.expires_at <= until, RevSignal.resolved_at.is_(None))
    if since is not None:
        expiring = expiring.where(RevSignal.expires_at > since)
    for tenant, account, at in session.execute(
            expiring.group_by(RevSignal.tenant_id, RevSignal.account_id)):
        note(tenant, account, _utc(at), "signal_expired")

    events = [_event(tenant, f"changes:{account}:{at:%Y%m%dT%H%M%S}", "account_changed", until,
                     {"account_id": account, "changed_through": at.isoformat(),
                      "sources": sorted(sources)})
              for (tenant, account), (at, sources) in sorted(changed.items())]
    meetings = select(RevMeeting.tenant_id, RevMeeting.id, RevMeeting.account_id,
                      RevMeeting.starts_at).where(
        RevMeeting.status == "SCHEDULED", RevMeeting.starts_at > until,
        RevMeeting.starts_at <= until + MEETING_LEAD)
    if since is not None:
        meetings = meetings.where(RevMeeting.starts_at > since + MEETING_LEAD)
    for tenant, meeting, account, starts in session.execute(
            meetings.order_by(RevMeeting.starts_at)):
        events.append(_event(tenant, f"meeting:{meeting}:{_utc(starts):%Y%m%dT%H%M}",
                             "meeting_upcoming", until,
                             {"account_id": account, "meeting_id": meeting}))
    return events


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _event(tenant_id: str, event_id: str, event_type: str, at: datetime,
           payload: dict[str, Any]) -> dict[str, Any]:
    return {"event_id": event_id, "tenant_id": tenant_id, "source": "scheduler",
            "event_type": event_type, "occurred_at": at.isoformat(), "payload": payload}
