"""Sandbox data for the revenue autopilot: eight B2B SaaS accounts, each set up to show one
path of the decision protocol, and the demo triggers that exercise them.

The shapes (industry, plan tier, seats, ARR, ticket priority and escalation, churn reasons
such as a competitor or support) follow the synthetic RavenStack SaaS dataset listed in
/work/shared/data/SOURCES.md; names and stories are made up. Times are relative to `now`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from autopilot.sandbox.revenue import (
    RevAccount,
    RevAccountState,
    RevContact,
    RevDeal,
    RevMarketEvent,
    RevMeeting,
    RevSignal,
    RevTicket,
    RevUsageWeek,
)
from tools.revenue import signal_key

D, H = timedelta(days=1), timedelta(hours=1)

# id, name, industry, country, tier, seats, ARR, owner, CRM health, renewal in days, story
ACCOUNTS = [
    ("ACC-NORTHWIND", "Northwind Health", "HealthTech", "US", "Enterprise", 120, 224472,
     "dana.kim@seller.example", 82, 75, "usage falls and a SEV2 ages: acts on its own"),
    ("ACC-HELIOS", "Helios Robotics", "DevTools", "DE", "Pro", 45, 62088,
     "marco.rossi@seller.example", 74, 200, "meeting in 30 hours: brief + agenda email"),
    ("ACC-BRIGHTLINE", "Brightline Analytics", "FinTech", "GB", "Pro", 30, 41160,
     "dana.kim@seller.example", 68, 120, "CRM not synced for 9 days: DATA_REQUEST"),
    ("ACC-QUANTA", "Quanta Freight", "Logistics", "NL", "Enterprise", 80, 95520,
     "ines.costa@seller.example", 77, 150, "telemetry and the CSM disagree: clarify"),
    ("ACC-ORBIT", "Orbit Learning", "EdTech", "US", "Basic", 25, 12348,
     "ines.costa@seller.example", 80, 300, "quiet and healthy: NO_ACTION"),
    ("ACC-VERTEX", "Vertex Security", "Cybersecurity", "US", "Enterprise", 300, 310000,
     "marco.rossi@seller.example", 70, 40, "renewal at risk, competitor: approvals"),
    ("ACC-SUMMIT", "Summit Pay", "FinTech", "IN", "Pro", 50, 41160,
     "dana.kim@seller.example", 78, 100, "usage above the licence: contract change"),
    ("ACC-CEDAR", "Cedar Clinics", "HealthTech", "CA", "Enterprise", 150, 184000,
     "ines.costa@seller.example", 71, 180, "champion left, deal slid back: acts on its own"),
]
# account -> weekly active users, oldest first (8 weeks)
USAGE = {
    "ACC-NORTHWIND": [96, 98, 95, 97, 94, 96, 58, 54],
    "ACC-HELIOS": [40, 41, 39, 42, 40, 41, 42, 40],
    "ACC-BRIGHTLINE": [27, 28, 26, 27, 28, 27, 26, 27],
    "ACC-QUANTA": [60, 62, 61, 63, 60, 62, 40, 38],
    "ACC-ORBIT": [22, 23, 22, 24, 23, 22, 23, 24],
    "ACC-VERTEX": [150, 152, 149, 151, 150, 148, 146, 149],
    "ACC-SUMMIT": [42, 44, 45, 46, 48, 47, 66, 70],
    "ACC-CEDAR": [120, 118, 121, 119, 122, 120, 118, 121],
}
# id, account, name, title, role, status, engagement, prior, changed days ago
CONTACTS = [
    ("C-NW-1", "ACC-NORTHWIND", "Priya Raman", "VP Clinical Operations", "CHAMPION",
     "ACTIVE", 72, 75, None),
    ("C-NW-2", "ACC-NORTHWIND", "Tom Becker", "CFO", "ECONOMIC_BUYER", "ACTIVE", 30, 32, None),
    ("C-HE-1", "ACC-HELIOS", "Lena Vogel", "Head of Platform", "CHAMPION", "ACTIVE", 65, 60,
     None),
    ("C-HE-2", "ACC-HELIOS", "Jonas Weber", "CTO", "EXEC", "ACTIVE", 40, 42, None),
    ("C-HE-3", "ACC-HELIOS", "Sara Kim", "Procurement Lead", "ECONOMIC_BUYER", "ACTIVE", 20,
     22, None),
    ("C-BL-1", "ACC-BRIGHTLINE", "Aisha Okafor", "Head of Data", "CHAMPION", "ACTIVE", 55, 58,
     None),
    ("C-QU-1", "ACC-QUANTA", "Willem de Vries", "Operations Lead", "CHAMPION", "ACTIVE", 61,
     63, None),
    ("C-QU-2", "ACC-QUANTA", "Eva Jansen", "COO", "ECONOMIC_BUYER", "ACTIVE", 35, 30, None),
    ("C-OR-1", "ACC-ORBIT", "Grace Mensah", "Director of Learning", "CHAMPION", "ACTIVE", 58,
     55, None),
    ("C-VX-1", "ACC-VERTEX", "Omar Haddad", "Director SecOps", "CHAMPION", "ACTIVE", 18, 64,
     None),
    ("C-VX-2", "ACC-VERTEX", "Rachel Moreno", "CFO", "ECONOMIC_BUYER", "ACTIVE", 25, 28, None),
    ("C-SU-1", "ACC-SUMMIT", "Arjun Mehta", "Head of Payments", "CHAMPION", "ACTIVE", 70, 66,
     None),
    ("C-SU-2", "ACC-SUMMIT", "Neha Iyer", "VP Finance", "ECONOMIC_BUYER", "ACTIVE", 40, 38,
     None),
    ("C-CE-1", "ACC-CEDAR", "Luis Romero", "VP Digital Health", "CHAMPION", "LEFT", 0, 62, 5),
    ("C-CE-2", "ACC-CEDAR", "Mei Park", "Clinical Systems Manager", "USER", "ACTIVE", 48, 44,
     None),
    ("C-CE-3", "ACC-CEDAR", "Samuel Levy", "CFO", "ECONOMIC_BUYER", "ACTIVE", 22, 25, None),
]
# id, account, name, kind, stage, prior stage, stage changed days ago, amount, seats,
# close in days, prior close in days, close changed days ago
DEALS = [
    ("D-NW-REN", "ACC-NORTHWIND", "Northwind renewal FY27", "RENEWAL", "NEGOTIATION", None,
     None, 224472, 120, 75, None, None),
    ("D-HE-EXP", "ACC-HELIOS", "Helios platform expansion", "EXPANSION", "PROPOSAL",
     "EVALUATION", 20, 38000, 25, 34, 20, 3),
    ("D-BL-REN", "ACC-BRIGHTLINE", "Brightline renewal", "RENEWAL", "PROPOSAL", None, None,
     41160, 30, 120, None, None),
    ("D-QU-REN", "ACC-QUANTA", "Quanta renewal", "RENEWAL", "DISCOVERY", None, None, 95520, 80,
     150, None, None),
    ("D-OR-REN", "ACC-ORBIT", "Orbit renewal", "RENEWAL", "DISCOVERY", None, None, 12348, 25,
     300, None, None),
    ("D-VX-REN", "ACC-VERTEX", "Vertex renewal FY27", "RENEWAL", "NEGOTIATION", None, None,
     310000, 300, 40, None, None),
    ("D-SU-REN", "ACC-SUMMIT", "Summit Pay renewal", "RENEWAL", "COMMIT", None, None, 41160,
     50, 100, None, None),
    ("D-CE-EXP", "ACC-CEDAR", "Cedar telehealth add-on", "EXPANSION", "EVALUATION",
     "NEGOTIATION", 2, 56000, 60, 45, None, None),
]
# id, account, title, starts in hours (negative: past), status, attendees, summary
MEETINGS = [
    ("M-NW-QBR", "ACC-NORTHWIND", "Quarterly business review", -12 * 24, "HELD",
     ["C-NW-1", "C-NW-2"], "Priya flagged overnight HL7 message drops; CFO asked for ROI data "
                           "before the renewal."),
    ("M-NW-NEXT", "ACC-NORTHWIND", "Clinical ops sync", 9 * 24, "SCHEDULED", ["C-NW-1"], None),
    ("M-HE-DEMO", "ACC-HELIOS", "Audit log demo", -10 * 24, "HELD", ["C-HE-1"],
     "Lena liked the audit log; asked about SSO for contractors."),
    ("M-HE-EXEC", "ACC-HELIOS", "Expansion review with Lena and Jonas", 30, "SCHEDULED",
     ["C-HE-1", "C-HE-2"], None),
    ("M-BL-SYNC", "ACC-BRIGHTLINE", "Data pipeline check-in", -8 * 24, "HELD", ["C-BL-1"],
     "Pipeline stable."),
    ("M-QU-SYNC", "ACC-QUANTA", "Weekly CSM sync", -4 * 24, "HELD", ["C-QU-1"],
     "Willem said the EU warehouse rollout roughly doubled the dispatchers using the app."),
    ("M-OR-SYNC", "ACC-ORBIT", "Monthly check-in", -6 * 24, "HELD", ["C-OR-1"],
     "All good; planning a new cohort in autumn."),
    ("M-OR-NEXT", "ACC-ORBIT", "Autumn cohort planning", 10 * 24, "SCHEDULED", ["C-OR-1"],
     None),
    ("M-VX-QBR", "ACC-VERTEX", "Quarterly business review", -25 * 24, "HELD",
     ["C-VX-1", "C-VX-2"], "Omar quiet; Rachel asked for pricing options ahead of renewal."),
    ("M-SU-SYNC", "ACC-SUMMIT", "Payments roadmap", -5 * 24, "HELD", ["C-SU-1"],
     "New merchant onboarding team starting next month."),
    ("M-CE-SYNC", "ACC-CEDAR", "Telehealth pilot review", -7 * 24, "HELD", ["C-CE-2"],
     "Pilot paused until the new CIO sets priorities."),
]
# id, account, subject, severity, status, escalated, opened days ago, first response minutes
TICKETS = [
    ("T-NW-4411", "ACC-NORTHWIND", "HL7 interface drops messages overnight", "SEV2", "OPEN",
     False, 8, 45),
    ("T-NW-4420", "ACC-NORTHWIND", "SSO login page shows the old logo", "SEV4", "OPEN", False,
     3, 300),
    ("T-BL-220", "ACC-BRIGHTLINE", "Export to S3 times out", "SEV3", "PENDING", False, 2, 60),
    ("T-VX-901", "ACC-VERTEX", "Alert rules not applied to new tenants", "SEV3", "OPEN", False,
     2, 30),
    ("T-CE-310", "ACC-CEDAR", "Appointment sync duplicates patients", "SEV3", "OPEN", True, 4,
     95),
]
# id, account, kind, headline, source, published days ago
NEWS = [
    ("ME-HE-FUND", "ACC-HELIOS", "FUNDING", "Helios Robotics raises $40M Series B",
     "TechWire", 5),
    ("ME-VX-COMP", "ACC-VERTEX", "COMPETITOR",
     "Vertex Security shortlists a rival SOC platform, per analyst note", "Analyst Brief", 6),
    ("ME-SU-PART", "ACC-SUMMIT", "PARTNERSHIP",
     "Summit Pay announces partnership with Northstar Bank", "FinNews", 8),
    ("ME-CE-EXEC", "ACC-CEDAR", "EXECUTIVE_CHANGE", "Cedar Clinics names a new CIO",
     "Health IT Daily", 9),
]


def seed(session: Session, tenant_id: str, now: datetime) -> bool:
    """Seed the tenant's revenue sandbox once (returns False if it already has accounts)."""
    if session.scalar(select(RevAccount.id).where(RevAccount.tenant_id == tenant_id).limit(1)):
        return False
    t = tenant_id
    for (aid, name, industry, country, tier, seats, arr, owner, health, renewal,
         _story) in ACCOUNTS:
        stale = 9 * D if aid == "ACC-BRIGHTLINE" else 2 * H
        session.add(RevAccount(
            tenant_id=t, id=aid, name=name, industry=industry, country=country, plan_tier=tier,
            seats=seats, arr=arr, owner=owner, health_score=health,
            next_step="Quarterly business review prep", next_step_due=now + 14 * D,
            renewal_date=(now + renewal * D).replace(hour=0, minute=0, second=0,
                                                     microsecond=0),
            crm_synced_at=now - stale, support_synced_at=now - 2 * H,
            telemetry_synced_at=now - 3 * H, updated_at=now - 2 * H))
        for i, users in enumerate(USAGE[aid]):
            week = (now - (8 - i) * 7 * D).replace(hour=0, minute=0, second=0, microsecond=0)
            session.add(RevUsageWeek(tenant_id=t, id=f"U-{aid[4:]}-{i + 1}", account_id=aid,
                                     week_start=week, active_users=users, events=users * 37,
                                     updated_at=week + 7 * D))
    for cid, aid, name, title, role, status, score, prior, changed in CONTACTS:
        first, last = name.lower().split()[0], name.lower().split()[-1]
        session.add(RevContact(
            tenant_id=t, id=cid, account_id=aid, name=name, title=title, role=role,
            email=f"{first}.{last}@{aid[4:].lower()}.example", status=status,
            engagement_score=score, prior_engagement_score=prior,
            changed_at=now - changed * D if changed is not None else None,
            updated_at=now - (changed or 30) * D))
    for (did, aid, name, kind, stage, prior_stage, stage_days, amount, seats, close,
         prior_close, close_days) in DEALS:
        session.add(RevDeal(
            tenant_id=t, id=did, account_id=aid, name=name, kind=kind, stage=stage,
            prior_stage=prior_stage,
            stage_changed_at=now - stage_days * D if stage_days is not None else None,
            amount=amount, seats=seats, close_date=now + close * D,
            prior_close_date=now + prior_close * D if prior_close is not None else None,
            close_date_changed_at=now - close_days * D if close_days is not None else None,
            updated_at=now - min(x for x in (stage_days, close_days, 20) if x is not None) * D))
    for mid, aid, title, hours, status, attendees, summary in MEETINGS:
        starts = now + hours * H
        session.add(RevMeeting(tenant_id=t, id=mid, account_id=aid, title=title,
                               starts_at=starts, status=status, attendee_ids=attendees,
                               summary=summary, updated_at=min(now - H, starts + H)))
    for tid, aid, subject, sev, status, escalated, days, first_response in TICKETS:
        session.add(RevTicket(tenant_id=t, id=tid, account_id=aid, subject=subject,
                              severity=sev, status=status, escalated=escalated,
                              opened_at=now - days * D,
                              first_response_minutes=first_response, updated_at=now - D))
    for eid, aid, kind, headline, source, days in NEWS:
        session.add(RevMarketEvent(tenant_id=t, id=eid, account_id=aid, kind=kind,
                                   headline=headline, source=source,
                                   published_at=now - days * D, updated_at=now - days * D))
    _seed_world(session, t, now)
    return True


def _signal(t: str, sid: str, account: str, signal_type: str, severity: int,
            confidence: float, direction: int, dimension: str, subject: str, summary: str,
            source: str, refs: list[str], detected: datetime, expires: datetime) -> RevSignal:
    return RevSignal(tenant_id=t, id=sid, account_id=account, signal_type=signal_type,
                     severity=severity, confidence=confidence, direction=direction,
                     dimension=dimension, subject=subject, summary=summary, source=source,
                     evidence_refs=refs, dedupe_key=signal_key(account, signal_type, subject),
                     batch_id=f"SEED-{account[4:]}", detected_at=detected, expires_at=expires)


def _seed_world(session: Session, t: str, now: datetime) -> None:
    """What earlier runs and other systems left behind: signals (one already expired, one
    from a call recording this sandbox cannot read) and one up-to-date account state."""
    session.add_all([
        _signal(t, "SIG-SEED-NW-1", "ACC-NORTHWIND", "CHAMPION_ENGAGEMENT_DROPPED", 3, 0.8, -1,
                "stakeholders", "C-NW-1", "Champion Priya Raman's engagement fell 40%",
                "detector:crm", ["contact:C-NW-1"], now - 20 * D, now - 6 * D),
        _signal(t, "SIG-SEED-QU-1", "ACC-QUANTA", "PRODUCT_USAGE_SPIKE", 2, 0.7, 1, "usage",
                "usage", "CSM weekly report: usage up about 40% after the EU warehouse rollout",
                "external:csm-weekly-report", ["meeting:M-QU-SYNC"], now - 2 * D, now + 5 * D),
        _signal(t, "SIG-SEED-VX-1", "ACC-VERTEX", "COMPETITIVE_THREAT_DETECTED", 4, 0.7, -1,
                "competition", "account",
                "On the last pricing call the CFO said they are benchmarking two alternatives",
                "external:call-intelligence", ["call_transcript:CALL-8812"], now - 3 * D,
                now + 20 * D),
    ])
    session.add(RevAccountState(
        tenant_id=t, id="ACC-ORBIT", posture="HEALTHY", momentum="STEADY", risk_points=0,
        health_estimate=85, top_risks=[], opportunities=[], unknowns=[], recent_changes=[],
        signal_ids=[], version=1, computed_at=now - 6 * D))


def demo(tenant_id: str, now: datetime) -> list[tuple[str, dict[str, Any]]]:
    """One trigger per path of the decision protocol."""
    at = now.isoformat()

    def event(n: int, event_type: str, payload: dict[str, Any]) -> dict[str, Any]:
        return {"event_id": f"rev-demo-{n}", "tenant_id": tenant_id, "source": "revenue-demo",
                "event_type": event_type, "occurred_at": at, "trace_id": f"rev-trace-{n}",
                "payload": payload}

    def changed(n: int, account: str) -> dict[str, Any]:
        return event(n, "account_changed", {"account_id": account, "changed_through": at,
                                            "sources": ["crm", "support", "telemetry"]})

    return [
        ("Northwind: SEV2 aging + usage down 41% -> ACTION_PROPOSALS, all on its own",
         changed(1, "ACC-NORTHWIND")),
        ("Helios: meeting in 30 h -> brief on its own, agenda email waits (APPROVAL_REQUEST)",
         event(2, "meeting_upcoming", {"account_id": "ACC-HELIOS",
                                       "meeting_id": "M-HE-EXEC"})),
        ("Brightline: CRM 9 days stale -> DATA_REQUEST, no action",
         changed(3, "ACC-BRIGHTLINE")),
        ("Quanta: telemetry down vs CSM says up -> CLARIFICATION_REQUEST",
         changed(4, "ACC-QUANTA")),
        ("Orbit: nothing new -> NO_ACTION", changed(5, "ACC-ORBIT")),
        ("Vertex: renewal at risk, competitor -> discount, email, CRM change need approval",
         event(6, "next_best_action", {"request_id": "ask-1", "account_id": "ACC-VERTEX",
                                       "requested_by": "marco.rossi@seller.example"})),
        ("Summit: news feed pushes a funding signal; usage above licence -> order form "
         "waits", event(7, "signal_batch_ready", {
             "batch_id": "news-7", "account_id": "ACC-SUMMIT", "source": "news-feed",
             "signals": [{"signal_type": "FUNDING_ANNOUNCEMENT", "severity": 2,
                          "confidence": 0.75, "summary": "Summit Pay closes a $25M round",
                          "evidence": [{"ref": "news:summit-25m", "source": "FinNews",
                                        "summary": "Summit Pay closes a $25M round led by "
                                                   "Harbor Ventures"}]}]})),
    ]
