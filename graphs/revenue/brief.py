"""The meeting-prep brief (seed 003 quick start): the account state, its top risks and why,
every active signal with its evidence, open issues, the last meeting, what is unknown, and
talking points that follow from the signals. Deterministic text, no model.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from graphs.revenue.signals import Described, Signal, at, describe
from graphs.revenue.world import AccountState

# What to say about each signal (formatted with the signal's `extra` and `summary`).
TALKING_POINTS: dict[str, str] = {
    "RENEWAL_WINDOW_ENTERED": "Confirm the renewal timeline and who signs: {summary}.",
    "CLOSE_DATE_SLIPPED": "Ask what moved the close date and agree the next concrete step: "
                          "{summary}.",
    "OPPORTUNITY_STAGE_CHANGED": "Walk through where the deal stands now: {summary}.",
    "STAKEHOLDER_CHANGED": "Ask who now owns the relationship after {contact} left, and for "
                           "an introduction.",
    "CHAMPION_ENGAGEMENT_DROPPED": "Check in with {contact} personally: their engagement has "
                                   "dropped.",
    "NO_MEETING_IN_21_DAYS": "Acknowledge the gap since the last meeting and set a regular "
                             "cadence.",
    "SUPPORT_SEV2_AGING": "Own the open ticket before they raise it: {subject_line} - give "
                          "a date for the fix.",
    "SUPPORT_TICKET_ESCALATION": "Address the escalation head-on: {subject_line}.",
    "USAGE_DROP_PERCENT": "Explore why usage fell ({summary}) and offer an adoption session.",
    "PRODUCT_USAGE_SPIKE": "Celebrate the growth ({summary}) and discuss whether the "
                           "licence still fits.",
    "COMPETITIVE_THREAT_DETECTED": "Surface the competitive evaluation early and restate "
                                   "the value delivered.",
    "EXECUTIVE_CHANGE": "Ask how the leadership change affects priorities: {headline}.",
    "FUNDING_ANNOUNCEMENT": "Congratulate them on the funding and ask what it lets them do "
                            "next: {headline}.",
    "PARTNERSHIP_ANNOUNCEMENT": "Ask how the partnership changes their plans: {headline}.",
}


def talking_points(signals: list[Signal], ctx: dict[str, Any], limit: int = 6) -> list[str]:
    points: list[str] = []
    for s in signals:
        template = TALKING_POINTS.get(s.signal_type)
        if template is None:
            continue
        text = template.format_map(Described(describe(s, ctx)))
        if text not in points:
            points.append(text)
        if len(points) >= limit:
            break
    return points or ["No open risks: confirm goals for the next quarter and ask for a "
                      "reference or an introduction."]


def build(ctx: dict[str, Any], meeting: dict[str, Any], state: AccountState,
          signals: list[Signal], as_of: datetime) -> dict[str, Any]:
    """The `MeetingBrief` content for `meeting`."""
    account = ctx["account"]
    tickets = ctx["support"]["tickets"]
    people = {c["id"]: c for c in account["contacts"]}
    held = [m for m in account["meetings"] if m["status"] == "HELD"
            and at(m["starts_at"]) <= as_of]
    last = max(held, key=lambda m: m["starts_at"], default=None)
    return {
        "meeting": {"id": meeting["id"], "title": meeting["title"],
                    "starts_at": meeting["starts_at"],
                    "attendees": [f"{people[i]['name']} ({people[i]['title']})"
                                  for i in meeting["attendee_ids"] if i in people]},
        "account_state": {"account": account["name"], "posture": state.posture,
                          "momentum": state.momentum, "health_estimate": state.health_estimate,
                          "crm_health_score": account["health_score"],
                          "arr": account["arr"], "renewal_date": account["renewal_date"],
                          "owner": account["owner"], "next_step": account["next_step"]},
        "top_risks": state.top_risks,
        "signals": [{"signal_id": s.signal_id, "signal_type": s.signal_type,
                     "severity": s.severity, "confidence": round(s.confidence, 3),
                     "summary": s.summary, "evidence_refs": s.evidence_refs,
                     "expires_at": (s.expires_at.isoformat() if s.expires_at else
                                    _expiry(s, as_of))}
                    for s in signals if s.signal_id],
        "open_issues": [{"ticket_id": t["id"], "severity": t["severity"],
                         "subject": t["subject"], "opened_at": t["opened_at"],
                         "escalated": t["escalated"]} for t in tickets],
        "last_meeting": ({"id": last["id"], "title": last["title"],
                          "date": last["starts_at"], "summary": last["summary"]}
                         if last else None),
        "unknowns": state.unknowns,
        "talking_points": talking_points(signals, ctx),
    }


def _expiry(s: Signal, as_of: datetime) -> str:
    return (as_of + timedelta(hours=s.ttl_hours)).isoformat()
