"""Signal detectors (seed 003 phase 1.3): raw source records -> typed signals.

Each detector reads what perceive captured (the CRM commercial window, support tickets,
weekly telemetry, news) and returns candidate signals with severity (1-5), confidence
(0-1), the refs of the records that prove them, and a TTL. Deterministic; no network. The
catalogue (dimension, direction, default TTL per type) is the tool contract in
tools/revenue.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tools.revenue import SIGNALS, signal_key

STAGE_RANK = {"DISCOVERY": 0, "EVALUATION": 1, "PROPOSAL": 2, "NEGOTIATION": 3, "COMMIT": 4,
              "CLOSED_WON": 5, "CLOSED_LOST": -1}
OPEN_STAGES = ("DISCOVERY", "EVALUATION", "PROPOSAL", "NEGOTIATION", "COMMIT")
RENEWAL_WINDOW = timedelta(days=90)
RECENT_CHANGE = timedelta(days=14)
STAKEHOLDER_WINDOW = timedelta(days=30)
NEWS_WINDOW = timedelta(days=30)
MEETING_LEAD = timedelta(hours=48)
SILENCE = timedelta(days=21)
AGING = {"SEV1": timedelta(days=1), "SEV2": timedelta(days=5)}
USAGE_DROP, USAGE_SPIKE = 0.25, 0.30
# News is second-hand: it counts, but less than a system of record.
NEWS = {"FUNDING": ("FUNDING_ANNOUNCEMENT", 2, 0.75),
        "PARTNERSHIP": ("PARTNERSHIP_ANNOUNCEMENT", 2, 0.7),
        "EXECUTIVE_CHANGE": ("EXECUTIVE_CHANGE", 3, 0.7),
        "COMPETITOR": ("COMPETITIVE_THREAT_DETECTED", 4, 0.65)}


@dataclass
class Signal:
    """A signal as the planner reasons about it: detected now, or stored by an earlier run
    (`signal_id` set) and still inside its TTL."""

    signal_type: str
    severity: int
    confidence: float
    direction: int
    subject: str
    summary: str
    source: str
    evidence_refs: list[str]
    ttl_hours: int
    account_id: str
    signal_id: str | None = None
    expires_at: datetime | None = None
    detected_at: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # flags: stored, expired

    @property
    def key(self) -> str:
        return signal_key(self.account_id, self.signal_type, self.subject)

    @property
    def dimension(self) -> str:
        return SIGNALS[self.signal_type].dimension

    @property
    def weight(self) -> float:
        return self.severity * self.confidence

    def refs(self) -> list[str]:
        """What a claim based on this signal cites: the stored signal and its evidence."""
        own = [f"signal:{self.signal_id}"] if self.signal_id else []
        return [*own, *self.evidence_refs]

    def wire(self) -> dict[str, Any]:
        """The `SignalIn` the emit tool takes."""
        return {"signal_type": self.signal_type, "severity": self.severity,
                "confidence": round(self.confidence, 3), "direction": self.direction,
                "subject": self.subject, "summary": self.summary[:500], "source": self.source,
                "evidence_refs": self.evidence_refs[:20], "ttl_hours": self.ttl_hours}


def at(value: Any) -> datetime:
    """A timestamp of a read (JSON in the checkpointed context: an ISO string)."""
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def _maybe(value: Any) -> datetime | None:
    return None if value is None else at(value)


def _hours(delta: timedelta) -> int:
    return max(1, int(delta.total_seconds() // 3600))


def detect(ctx: dict[str, Any], as_of: datetime) -> list[Signal]:
    """Every signal the captured source data shows as of `as_of`."""
    account = ctx["account"]
    acc = account["id"]
    found: list[Signal] = []

    def add(signal_type: str, severity: int, confidence: float, subject: str, summary: str,
            source: str, refs: list[str], ttl_hours: int | None = None,
            direction: int | None = None) -> None:
        kind = SIGNALS[signal_type]
        found.append(Signal(
            signal_type=signal_type, severity=max(1, min(5, severity)), confidence=confidence,
            direction=kind.direction if kind.direction is not None else int(direction or 0),
            subject=subject, summary=summary, source=source, evidence_refs=refs,
            ttl_hours=min(ttl_hours or kind.ttl_hours, 24 * 180), account_id=acc))

    a_ref = f"revenue_account:{acc}"
    _renewal(account, as_of, a_ref, add)
    _deals(account, as_of, add)
    _people(account, as_of, add)
    _meetings(account, as_of, a_ref, add)
    _support(ctx.get("support") or {}, as_of, add)
    _usage(ctx.get("usage") or {}, add)
    for event in (ctx.get("market") or {}).get("market_events", []):
        if event["kind"] in NEWS and as_of - at(event["published_at"]) <= NEWS_WINDOW:
            signal_type, severity, confidence = NEWS[event["kind"]]
            add(signal_type, severity, confidence, event["id"],
                f"{event['source']}: {event['headline']}", "detector:news",
                [f"market_event:{event['id']}"])
    return found


def _renewal(account: dict[str, Any], as_of: datetime, a_ref: str, add: Any) -> None:
    renewal = at(account["renewal_date"])
    left = renewal - as_of
    if timedelta(0) <= left <= RENEWAL_WINDOW:
        days = left.days
        deal = next((d for d in account["deals"] if d["kind"] == "RENEWAL"
                     and d["stage"] in OPEN_STAGES), None)
        add("RENEWAL_WINDOW_ENTERED", 4 if days <= 30 else 3 if days <= 60 else 2, 0.99,
            f"renewal:{renewal:%Y-%m-%d}",
            f"Renewal on {renewal:%Y-%m-%d} is {days} days away (ARR {account['arr']:,.0f})",
            "detector:crm", [a_ref] + ([f"deal:{deal['id']}"] if deal else []),
            ttl_hours=_hours(left + timedelta(days=1)))


def _deals(account: dict[str, Any], as_of: datetime, add: Any) -> None:
    for deal in account["deals"]:
        ref = [f"deal:{deal['id']}"]
        moved = _maybe(deal["close_date_changed_at"])
        close, prior = _maybe(deal["close_date"]), _maybe(deal["prior_close_date"])
        if (deal["stage"] in OPEN_STAGES and moved and prior and close and close > prior
                and as_of - moved <= RECENT_CHANGE):
            slip = (close - prior).days
            add("CLOSE_DATE_SLIPPED", 4 if slip >= 30 else 3 if slip >= 14 else 2, 0.9,
                deal["id"], f"{deal['name']}: close date moved {slip} days, "
                            f"{prior:%Y-%m-%d} -> {close:%Y-%m-%d}", "detector:crm", ref)
        changed = _maybe(deal["stage_changed_at"])
        if deal["prior_stage"] and changed and as_of - changed <= RECENT_CHANGE:
            back = STAGE_RANK[deal["stage"]] < STAGE_RANK[deal["prior_stage"]]
            add("OPPORTUNITY_STAGE_CHANGED", 4 if back else 2, 0.9, deal["id"],
                f"{deal['name']}: stage {deal['prior_stage']} -> {deal['stage']}"
                + (" (went backwards)" if back else ""), "detector:crm", ref,
                direction=-1 if back else 1)


def _people(account: dict[str, Any], as_of: datetime, add: Any) -> None:
    for c in account["contacts"]:
        ref = [f"contact:{c['id']}"]
        changed = _maybe(c["changed_at"])
        key_role = c["role"] in ("CHAMPION", "ECONOMIC_BUYER", "EXEC")
        if c["status"] == "LEFT" and key_role and changed and \
                as_of - changed <= STAKEHOLDER_WINDOW:
            add("STAKEHOLDER_CHANGED", 4 if c["role"] != "EXEC" else 3, 0.85, c["id"],
                f"{c['name']} ({c['title']}, {c['role'].lower()}) has left",
                "detector:crm", ref)
        prior, now = c["prior_engagement_score"], c["engagement_score"]
        if c["role"] == "CHAMPION" and c["status"] == "ACTIVE" and prior >= 20 and \
                now <= prior * 0.6:
            drop = round(100 * (prior - now) / prior)
            add("CHAMPION_ENGAGEMENT_DROPPED", 4 if now <= prior * 0.3 else 3, 0.8, c["id"],
                f"Champion {c['name']}'s engagement fell {drop}% ({prior} -> {now})",
                "detector:crm", ref)


def _meetings(account: dict[str, Any], as_of: datetime, a_ref: str, add: Any) -> None:
    held = [m for m in account["meetings"] if m["status"] == "HELD"
            and at(m["starts_at"]) <= as_of]
    upcoming = [m for m in account["meetings"] if m["status"] == "SCHEDULED"
                and at(m["starts_at"]) > as_of]
    last = max(held, key=lambda m: m["starts_at"], default=None)
    soon = [m for m in upcoming if at(m["starts_at"]) - as_of <= timedelta(days=7)]
    if (last is None or as_of - at(last["starts_at"]) > SILENCE) and not soon:
        renewal_close = at(account["renewal_date"]) - as_of <= RENEWAL_WINDOW
        since = (f"since {at(last['starts_at']):%Y-%m-%d}" if last
                 else "in the last 60 days")
        add("NO_MEETING_IN_21_DAYS", 3 if renewal_close else 2, 0.95, "meetings",
            f"No customer meeting {since} and none booked this week", "detector:crm",
            [a_ref] + ([f"meeting:{last['id']}"] if last else []))
    for m in upcoming:
        left = at(m["starts_at"]) - as_of
        if left <= MEETING_LEAD:
            add("MEETING_UPCOMING", 2, 0.99, m["id"],
                f"{m['title']} starts {at(m['starts_at']):%Y-%m-%d %H:%M} UTC",
                "detector:crm", [f"meeting:{m['id']}"], ttl_hours=_hours(left))


def _support(support: dict[str, Any], as_of: datetime, add: Any) -> None:
    for t in support.get("tickets", []):
        ref = [f"ticket:{t['id']}"]
        age = as_of - at(t["opened_at"])
        if t["severity"] in AGING and age > AGING[t["severity"]]:
            add("SUPPORT_SEV2_AGING", 4 if t["severity"] == "SEV1" or age.days > 10 else 3, 0.95,
                t["id"], f"{t['severity']} ticket {t['id']} open {age.days} days: "
                         f"{t['subject']}", "detector:support", ref)
        if t["escalated"]:
            add("SUPPORT_TICKET_ESCALATION", 4, 0.95, t["id"],
                f"Ticket {t['id']} escalated by the customer: {t['subject']}",
                "detector:support", ref)


def _usage(usage: dict[str, Any], add: Any) -> None:
    weeks = usage.get("usage_weeks", [])
    if len(weeks) < 6:
        return
    recent, baseline = weeks[-2:], weeks[-6:-2]
    now = sum(w["active_users"] for w in recent) / 2
    before = sum(w["active_users"] for w in baseline) / 4
    if before <= 0:
        return
    change = (now - before) / before
    refs = [f"usage_week:{w['id']}" for w in weeks[-6:]]
    if change <= -USAGE_DROP:
        add("USAGE_DROP_PERCENT", 4 if change <= -0.4 else 3, 0.9, "usage",
            f"Weekly active users down {-change:.0%} ({before:.0f} -> {now:.0f})",
            "detector:telemetry", refs)
    elif change >= USAGE_SPIKE:
        over = now > usage.get("seats", 0)
        add("PRODUCT_USAGE_SPIKE", 3 if over else 2, 0.9, "usage",
            f"Weekly active users up {change:.0%} ({before:.0f} -> {now:.0f})"
            + (f", above the {usage['seats']} licensed seats" if over else ""),
            "detector:telemetry", refs)


def describe(signal: Signal, ctx: dict[str, Any]) -> dict[str, Any]:
    """Names for the record a signal is about (its subject), for task and brief text."""
    account = ctx["account"]
    out: dict[str, Any] = {"account": account["name"], "summary": signal.summary,
                           "subject": signal.subject}
    contact = next((c for c in account["contacts"] if c["id"] == signal.subject), None)
    if contact is not None:
        out.update(contact=contact["name"], role=contact["role"].lower())
    deal = next((d for d in account["deals"] if d["id"] == signal.subject), None)
    if deal is not None:
        out.update(deal=deal["name"], stage=deal["stage"], prior_stage=deal["prior_stage"],
                   close_date=f"{at(deal['close_date']):%Y-%m-%d}")
    ticket = next((t for t in (ctx.get("support") or {}).get("tickets", [])
                   if t["id"] == signal.subject), None)
    if ticket is not None:
        out.update(ticket_id=ticket["id"], subject_line=ticket["subject"])
    news = next((e for e in (ctx.get("market") or {}).get("market_events", [])
                 if e["id"] == signal.subject), None)
    if news is not None:
        out.update(headline=news["headline"])
    return out


class Described(dict[str, Any]):
    """Format values for a template; a name the subject has not got reads as the summary."""

    def __missing__(self, key: str) -> str:
        return str(self.get("summary", ""))
