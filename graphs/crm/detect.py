"""The Trigger Engine (seed 000 section 2.1, stage 1): scheduled, set-based detection.

Each scan is one query across tenants over an indexed threshold column, limited to what
crossed its threshold in the tick window `(since, until]`, so a tick emits each trigger once
(`since=None`: everything currently due). Triggers come out in seed 000's format as the
payload of an envelope whose `event_type` is the trigger id. The thresholds are module
constants, documented in docs/autopilots/crm.md.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, case, or_, select
from sqlalchemy.orm import Session

from autopilot.models import Run
from autopilot.sandbox.crm import (
    ACTIVE_LEAD_STATUSES,
    INBOUND_KINDS,
    STAGE_RANK,
    CrmAccount,
    CrmActivity,
    CrmDeal,
    CrmDealChange,
    CrmLead,
    CrmSuggestion,
)

LEAD_STAGNANT_DAYS = 10  # an open lead with no activity this long is stagnant
ACCOUNT_QUIET_DAYS = 30  # an account with no activity this long ...
RENEWAL_WINDOW_DAYS = 60  # ... with a renewal this close and open support issues is at risk
CLOSE_SLIP_MIN_DAYS = 7  # a close date pushed out at least this far is a slip
AMOUNT_DROP_MIN = 0.10  # an amount cut by at least this share is a drop
REGRESSION_FRESH_DAYS = 30  # on a first tick, regressions older than this are not due
REENGAGE_FRESH_DAYS = 14  # nor inbound activity older than this
SOURCE = "crm-trigger-engine"


def detect(session: Session, since: datetime | None, until: datetime) -> list[dict[str, Any]]:
    return [*_stagnant_leads(session, since, until), *_deal_regressions(session, since, until),
            *_accounts_at_risk(session, since, until), *_reengagements(session, since, until),
            *_suggestion_outcomes(session, since, until)]


def _trigger(tenant_id: str, event_id: str, trigger_id: str, at: datetime, record_id: str,
             context: dict[str, Any]) -> dict[str, Any]:
    return {"event_id": event_id, "tenant_id": tenant_id, "source": SOURCE,
            "event_type": trigger_id, "occurred_at": at.isoformat(),
            "payload": {"trigger_id": trigger_id, "tenant_id": tenant_id,
                        "record_id": record_id, "context": context}}


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def _stagnant_leads(session: Session, since: datetime | None,
                    until: datetime) -> list[dict[str, Any]]:
    """An open lead crosses into stagnation LEAD_STAGNANT_DAYS after its last activity."""
    lag = timedelta(days=LEAD_STAGNANT_DAYS)
    q = select(CrmLead.tenant_id, CrmLead.id, CrmLead.last_activity_at).where(
        CrmLead.status.in_(ACTIVE_LEAD_STATUSES), CrmLead.last_activity_at <= until - lag)
    if since is not None:
        q = q.where(CrmLead.last_activity_at > since - lag)
    return [_trigger(tenant, f"lead_stagnant:{lead_id}:{last:%Y%m%dT%H%M%S}", "lead_stagnant",
                     last + lag, lead_id, {"days_stagnant": (until - last).days})
            for tenant, lead_id, last in session.execute(
                q.order_by(CrmLead.last_activity_at, CrmLead.tenant_id, CrmLead.id))]


def _deal_regressions(session: Session, since: datetime | None,
                      until: datetime) -> list[dict[str, Any]]:
    """Changes (not made by the autopilot) that moved an open deal back a stage, pushed its
    close date out, or cut its amount. The query narrows to candidates on the indexed
    `changed_at`; the day threshold of a slip is checked on that handful of rows."""
    h = CrmDealChange
    from_rank, to_rank = (case(STAGE_RANK, value=h.from_stage, else_=0),
                          case(STAGE_RANK, value=h.to_stage, else_=0))
    start = since if since is not None else until - timedelta(days=REGRESSION_FRESH_DAYS)
    q = select(h).where(
        h.changed_at > start, h.changed_at <= until, ~h.changed_by.startswith("autopilot:"),
        or_(and_(to_rank > 0, to_rank < from_rank), h.to_close_date > h.from_close_date,
            h.to_amount <= h.from_amount * Decimal(str(1 - AMOUNT_DROP_MIN))))
    events = []
    for change in session.scalars(q.order_by(h.changed_at, h.tenant_id, h.id)):
        kinds = []
        if 0 < STAGE_RANK.get(change.to_stage, 0) < STAGE_RANK.get(change.from_stage, 0):
            kinds.append("stage_moved_back")
        if (change.to_close_date - change.from_close_date).days >= CLOSE_SLIP_MIN_DAYS:
            kinds.append("close_date_slipped")
        if float(change.to_amount) <= float(change.from_amount) * (1 - AMOUNT_DROP_MIN):
            kinds.append("amount_dropped")
        if kinds:
            events.append(_trigger(change.tenant_id, f"deal_regressed:{change.id}",
                                   "deal_regressed", change.changed_at, change.deal_id,
                                   {"change_id": change.id, "regressions": kinds}))
    return events


def _accounts_at_risk(session: Session, since: datetime | None,
                      until: datetime) -> list[dict[str, Any]]:
    """No activity for ACCOUNT_QUIET_DAYS, open support issues, and a renewal within
    RENEWAL_WINDOW_DAYS, all true at `until`; it becomes true when the last of the three
    does, so with a window start, at least one of them crossed inside the window."""
    a = CrmAccount
    quiet, window = timedelta(days=ACCOUNT_QUIET_DAYS), timedelta(days=RENEWAL_WINDOW_DAYS)
    q = select(a.tenant_id, a.id, a.last_activity_at, a.open_support_issues,
               a.support_open_since, a.renewal_date).where(
        a.renewal_date > until.date(), a.renewal_date <= until.date() + window,
        a.last_activity_at <= until - quiet,
        a.open_support_issues > 0, a.support_open_since <= until)
    if since is not None:
        q = q.where(or_(a.renewal_date > since.date() + window,
                        a.last_activity_at > since - quiet, a.support_open_since > since))
    events = []
    for tenant, account_id, last, issues, issues_since, renewal in session.execute(
            q.order_by(a.renewal_date, a.tenant_id, a.id)):
        became = max(last + quiet, issues_since, _midnight(renewal - window))
        events.append(_trigger(
            tenant, f"account_at_risk:{account_id}:{became:%Y%m%d}", "account_at_risk", became,
            account_id, {"days_since_activity": (until - last).days,
                         "open_support_issues": issues,
                         "days_to_renewal": (renewal - until.date()).days}))
    return events


def _reengagements(session: Session, since: datetime | None,
                   until: datetime) -> list[dict[str, Any]]:
    """Inbound activity (a reply, a web visit) from a nurture lead or on a lost deal."""
    act = CrmActivity
    start = since if since is not None else until - timedelta(days=REENGAGE_FRESH_DAYS)
    q = (select(act.tenant_id, act.id, act.lead_id, act.deal_id, act.occurred_at,
                CrmLead.status)
         .outerjoin(CrmLead, and_(CrmLead.tenant_id == act.tenant_id, CrmLead.id == act.lead_id))
         .outerjoin(CrmDeal, and_(CrmDeal.tenant_id == act.tenant_id, CrmDeal.id == act.deal_id))
         .where(act.occurred_at > start, act.occurred_at <= until, act.kind.in_(INBOUND_KINDS),
                or_(CrmLead.status == "nurture", CrmDeal.stage == "Lost")))
    events = []
    for tenant, activity_id, lead_id, deal_id, at, lead_status in session.execute(
            q.order_by(act.occurred_at, act.tenant_id, act.id)):
        record_type, record_id = (("lead", lead_id) if lead_status == "nurture"
                                  else ("deal", deal_id))
        events.append(_trigger(tenant, f"reengagement_opportunity:{activity_id}",
                               "reengagement_opportunity", at, record_id,
                               {"record_type": record_type, "activity_id": activity_id}))
    return events


def _suggestion_outcomes(session: Session, since: datetime | None,
                         until: datetime) -> list[dict[str, Any]]:
    """Pending suggestions whose run ended (in the window): their review is over, so the
    queue records how (rejected, or approved but not applied)."""
    from autopilot.runtime import TERMINAL

    s = CrmSuggestion
    q = select(s.tenant_id, s.id, Run.updated_at).join(
        Run, and_(Run.thread_id == s.thread_id, Run.tenant_id == s.tenant_id)).where(
        s.status == "pending", Run.status.in_(TERMINAL), Run.updated_at <= until)
    if since is not None:
        q = q.where(Run.updated_at > since)
    return [{"event_id": f"crm_suggestion_outcome:{sid}:{ended:%Y%m%dT%H%M%S%f}",
             "tenant_id": tenant, "source": SOURCE, "event_type": "crm_suggestion_outcome",
             "occurred_at": ended.isoformat(), "payload": {"suggestion_id": sid}}
            for tenant, sid, ended in session.execute(q.order_by(Run.updated_at, s.id))]
