"""Sandbox CRM data for one tenant, and the demo triggers that exercise it.

Account names, sectors, sizes, revenue and offices, product names and prices, sales agents and
opportunity ids are borrowed from Maven Analytics' "CRM Sales Opportunities" sample
(fictitious company, public domain); people, leads and the dated story around them are ours.
Dates are relative to `now`, so the detectors find the same situations whenever it is seeded:

- leads: stagnant for 12 days, 25 days, 30 days (do not contact), 14 days with a task already
  planned; 9 days (stagnant tomorrow); a nurture lead who replied two hours ago;
- deals: moved back Negotiation -> Engaging yesterday, close date slipped 35 days, amount cut
  29 %, a 3-day slip (below the threshold), a lost deal whose contact wrote again;
- accounts: at risk now (renewal in 28 days, 2 open issues, 41 days quiet), at risk in 24 days
  and in 30 days, renewal close but no open issues (never at risk).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from autopilot.sandbox.crm import (
    CrmAccount,
    CrmActivity,
    CrmContact,
    CrmDeal,
    CrmDealChange,
    CrmLead,
)

# id, name, sector, employees, revenue (M USD), office, owner, renewal in days (None: not a
# customer), open support issues, issues open since (days ago), last activity (days ago)
ACCOUNTS: list[tuple[Any, ...]] = [
    ("ACC-CANCITY", "Cancity", "retail", 2448, 718.62, "United States", "Darcel Schlecht",
     28, 2, 9, 41),
    ("ACC-CODEHOW", "Codehow", "software", 2641, 2714.90, "United States", "Moses Frase",
     45, 1, 3, 6),
    ("ACC-BETATECH", "Betatech", "medical", 1185, 647.18, "Kenya", "Anna Snelling",
     200, 0, None, 12),
    ("ACC-GANJAFLEX", "Ganjaflex", "retail", 17479, 5158.71, "Japan", "Maureen Marcano",
     90, 3, 20, 50),
    ("ACC-GENCO", "Genco Pura Olive Oil Company", "retail", 1635, 894.33, "Italy",
     "Violet Mclelland", None, 0, None, 2 / 24),
    ("ACC-GLOBEX", "Globex Corporation", "technology", 2497, 1223.72, "Norway",
     "Versie Hillebrand", 20, 0, None, 35),
    ("ACC-BUBBAGUMP", "Bubba Gump", "software", 2253, 987.39, "United States", "Moses Frase",
     300, 0, None, 4),
]
# id, account, name, title, email (None: none on file), do not contact
CONTACTS: list[tuple[Any, ...]] = [
    ("CON-CANCITY-1", "ACC-CANCITY", "Rachel Okafor", "VP Operations",
     "rachel.okafor@cancity.example", False),
    ("CON-CANCITY-2", "ACC-CANCITY", "Tom Hughes", "IT Director", "tom.hughes@cancity.example",
     True),
    ("CON-CODEHOW-1", "ACC-CODEHOW", "Hannah Kim", "Head of Engineering",
     "hannah.kim@codehow.example", False),
    ("CON-BETATECH-1", "ACC-BETATECH", "Amara Mensah", "Procurement Lead",
     "amara.mensah@betatech.example", False),
    ("CON-GANJAFLEX-1", "ACC-GANJAFLEX", "Kenji Sato", "Purchasing Manager",
     "kenji.sato@ganjaflex.example", False),
    ("CON-GENCO-1", "ACC-GENCO", "Giulia Romano", "Operations Director",
     "giulia.romano@genco.example", False),
    ("CON-GLOBEX-1", "ACC-GLOBEX", "Lars Eriksen", "CTO", "lars.eriksen@globex.example", False),
    ("CON-BUBBAGUMP-1", "ACC-BUBBAGUMP", "Forrest Lane", "COO", None, False),
]
# id, account, primary contact, product, owner, stage, amount, engaged (days ago), close (days
# from now); the current values, after the changes in HISTORY
DEALS: list[tuple[Any, ...]] = [
    ("OPP-Z063OYW0", "ACC-CODEHOW", "CON-CODEHOW-1", "GTK 500", "Moses Frase", "Engaging",
     26768, 40, 21),
    ("OPP-EC4QE1BX", "ACC-BUBBAGUMP", "CON-BUBBAGUMP-1", "GTX Plus Pro", "Moses Frase",
     "Proposal", 5482, 30, 52),
    ("OPP-MV1LWRNH", "ACC-BETATECH", "CON-BETATECH-1", "MG Advanced", "Anna Snelling",
     "Negotiation", 2400, 35, 14),
    ("OPP-F5U1ACDD", "ACC-BUBBAGUMP", "CON-BUBBAGUMP-1", "GTX Basic", "Moses Frase",
     "Engaging", 550, 10, 33),
    ("OPP-KWVA7VR1", "ACC-GENCO", "CON-GENCO-1", "GTX Pro", "Violet Mclelland", "Lost",
     4821, 170, -120),
    ("OPP-1C1I7A6R", "ACC-CANCITY", "CON-CANCITY-1", "GTX Plus Basic", "Darcel Schlecht",
     "Won", 1054, 400, -337),
    ("OPP-UP409DSB", "ACC-GANJAFLEX", "CON-GANJAFLEX-1", "MG Advanced", "Maureen Marcano",
     "Won", 3393, 330, -275),
    ("OPP-HAXMC4IX", "ACC-GLOBEX", "CON-GLOBEX-1", "GTX Basic", "Versie Hillebrand", "Won",
     550, 390, -345),
]
# id, deal, days ago, by, (from stage, to stage), (from close, to close in days from now),
# (from amount, to amount), note
HISTORY: list[tuple[Any, ...]] = [
    ("DH-Z063-1", "OPP-Z063OYW0", 20, "Moses Frase", ("Engaging", "Proposal"), (21, 21),
     (26768, 26768), "Proposal sent"),
    ("DH-Z063-2", "OPP-Z063OYW0", 8, "Moses Frase", ("Proposal", "Negotiation"), (21, 21),
     (26768, 26768), "Redlines on the MSA"),
    ("DH-Z063-3", "OPP-Z063OYW0", 1, "Moses Frase", ("Negotiation", "Engaging"), (21, 21),
     (26768, 26768), "Buyer's CFO paused the purchase pending a budget review"),
    ("DH-EC4Q-1", "OPP-EC4QE1BX", 2, "Moses Frase", ("Proposal", "Proposal"), (17, 52),
     (5482, 5482), "Their legal review moved to next quarter"),
    ("DH-MV1L-1", "OPP-MV1LWRNH", 3, "Anna Snelling", ("Negotiation", "Negotiation"), (14, 14),
     (3393, 2400), "Customer cut the seat count"),
    ("DH-F5U1-1", "OPP-F5U1ACDD", 6, "Moses Frase", ("Prospecting", "Engaging"), (30, 30),
     (550, 550), "Demo booked"),
    ("DH-F5U1-2", "OPP-F5U1ACDD", 4, "Moses Frase", ("Engaging", "Engaging"), (30, 33),
     (550, 550), "Demo moved by three days"),
]
# id, name, company, title, email, do not contact, source, status, owner, product,
# last activity (days ago)
LEADS: list[tuple[Any, ...]] = [
    ("LEAD-1001", "Jordan Reyes", "Kinetic Freight", "Logistics Manager",
     "jordan.reyes@kineticfreight.example", False, "web", "working", "Anna Snelling",
     "GTX Basic", 12),
    ("LEAD-1002", "Priya Natarajan", "Harbor Analytics", "Head of Data",
     "priya@harboranalytics.example", False, "event", "new", "Darcel Schlecht", "GTX Pro", 25),
    ("LEAD-1003", "Tom Becker", "Alpine Outfitters", "IT Manager",
     "tom.becker@alpineoutfitters.example", False, "referral", "working", "Versie Hillebrand",
     "MG Special", 3),
    ("LEAD-1004", "Lena Fischer", "Nordlicht Media", "Marketing Director",
     "lena.fischer@nordlicht.example", False, "web", "nurture", "Violet Mclelland",
     "MG Advanced", 2 / 24),
    ("LEAD-1005", "Marcus Lee", "Bayside Clinics", "Practice Manager",
     "marcus.lee@baysideclinics.example", False, "web", "working", "Anna Snelling",
     "GTX Plus Basic", 9),
    ("LEAD-1006", "Sofia Alvarez", "Vertex Labs", "CTO", "sofia@vertexlabs.example", False,
     "partner", "qualified", "Moses Frase", "GTK 500", 40),
    ("LEAD-1007", "Ken Watanabe", "Sakura Robotics", "Operations Lead",
     "ken.watanabe@sakurarobotics.example", False, "event", "working", "Maureen Marcano",
     "GTK 500", 14),
    ("LEAD-1008", "Omar Haddad", "Cedar Freight", "Fleet Director",
     "omar.haddad@cedarfreight.example", True, "web", "new", "Darcel Schlecht", "GTX Basic",
     30),
]
# kind, subject, owner, days ago, links (lead, contact, account, deal), task due in days
ACTIVITIES: list[tuple[Any, ...]] = [
    ("email_out", "GTX Basic overview and pricing", "Anna Snelling", 15,
     ("LEAD-1001", None, None, None), None),
    ("call", "Discovery call: route planning pain points", "Anna Snelling", 12,
     ("LEAD-1001", None, None, None), None),
    ("meeting", "Met at the DataConnect booth", "Darcel Schlecht", 25,
     ("LEAD-1002", None, None, None), None),
    ("email_out", "MG Special trial access", "Versie Hillebrand", 3,
     ("LEAD-1003", None, None, None), None),
    ("email_out", "Quarterly newsletter", "Violet Mclelland", 95,
     ("LEAD-1004", None, None, None), None),
    ("email_in", "Re: MG Advanced pricing - we are revisiting this quarter", "Lena Fischer",
     2 / 24, ("LEAD-1004", None, None, None), None),
    ("call", "Intro call", "Anna Snelling", 9, ("LEAD-1005", None, None, None), None),
    ("meeting", "Technical deep dive", "Moses Frase", 40, ("LEAD-1006", None, None, None), None),
    ("call", "Requirements call", "Maureen Marcano", 14, ("LEAD-1007", None, None, None), None),
    ("task", "Send Ken the GTK 500 integration spec", "Maureen Marcano", 1,
     ("LEAD-1007", None, None, None), 2),
    ("email_out", "Welcome to GTX Basic", "Darcel Schlecht", 30,
     ("LEAD-1008", None, None, None), None),
    ("meeting", "Quarterly business review", "Darcel Schlecht", 41,
     (None, "CON-CANCITY-1", "ACC-CANCITY", None), None),
    ("call", "Security questionnaire walkthrough", "Moses Frase", 6,
     (None, "CON-CODEHOW-1", "ACC-CODEHOW", "OPP-Z063OYW0"), None),
    ("email_out", "Revised MG Advanced quote", "Anna Snelling", 12,
     (None, "CON-BETATECH-1", "ACC-BETATECH", "OPP-MV1LWRNH"), None),
    ("call", "Check-in on the MG Advanced rollout", "Maureen Marcano", 50,
     (None, "CON-GANJAFLEX-1", "ACC-GANJAFLEX", None), None),
    ("email_out", "Sorry to see you go - GTX Pro", "Violet Mclelland", 120,
     (None, "CON-GENCO-1", "ACC-GENCO", "OPP-KWVA7VR1"), None),
    ("email_in", "Re: GTX Pro - our new plant needs this after all", "Giulia Romano", 2 / 24,
     (None, "CON-GENCO-1", "ACC-GENCO", "OPP-KWVA7VR1"), None),
    ("email_out", "Renewal paperwork", "Versie Hillebrand", 35,
     (None, "CON-GLOBEX-1", "ACC-GLOBEX", None), None),
    ("meeting", "GTX Plus Pro proposal review", "Moses Frase", 4,
     (None, "CON-BUBBAGUMP-1", "ACC-BUBBAGUMP", "OPP-EC4QE1BX"), None),
]


def seed(session: Session, tenant_id: str, now: datetime) -> bool:
    """Idempotent: seeds nothing if the tenant already has CRM accounts."""
    if session.scalar(select(CrmAccount.id).where(CrmAccount.tenant_id == tenant_id).limit(1)):
        return False
    today = now.date()

    def ago(days: float) -> datetime:
        return now - timedelta(days=days)

    rows: list[Any] = []
    for aid, name, sector, staff, revenue, office, owner, renewal, issues, since, last in \
            ACCOUNTS:
        rows.append(CrmAccount(
            tenant_id=tenant_id, id=aid, name=name, sector=sector, employees=staff,
            annual_revenue_musd=revenue, office_location=office, owner=owner,
            renewal_date=today + timedelta(days=renewal) if renewal is not None else None,
            open_support_issues=issues,
            support_open_since=ago(since) if since is not None else None,
            last_activity_at=ago(last), created_at=ago(800)))
    last_touch = {a[0]: ago(a[-1]) for a in ACCOUNTS}
    for cid, account, name, title, email, dnc in CONTACTS:
        rows.append(CrmContact(tenant_id=tenant_id, id=cid, account_id=account, name=name,
                               title=title, email=email, phone=None, do_not_contact=dnc,
                               last_activity_at=last_touch[account], created_at=ago(700)))
    for did, account, contact, product, owner, stage, amount, engaged, close in DEALS:
        company = next(a[1] for a in ACCOUNTS if a[0] == account)
        touched = [ago(a[3]) for a in ACTIVITIES if a[4][3] == did]
        rows.append(CrmDeal(
            tenant_id=tenant_id, id=did, account_id=account, primary_contact_id=contact,
            name=f"{company} - {product}", product=product, owner=owner, stage=stage,
            amount=amount, engage_date=today - timedelta(days=engaged),
            close_date=today + timedelta(days=close),
            last_activity_at=max(touched, default=ago(engaged)), created_at=ago(engaged),
            updated_at=ago(min((h[2] for h in HISTORY if h[1] == did), default=engaged))))
    for hid, deal, days, by, stages, closes, amounts, note in HISTORY:
        rows.append(CrmDealChange(
            tenant_id=tenant_id, id=hid, deal_id=deal, changed_at=ago(days), changed_by=by,
            from_stage=stages[0], to_stage=stages[1],
            from_close_date=today + timedelta(days=closes[0]),
            to_close_date=today + timedelta(days=closes[1]),
            from_amount=amounts[0], to_amount=amounts[1], note=note))
    for lid, name, company, title, email, dnc, source, status, owner, product, last in LEADS:
        rows.append(CrmLead(
            tenant_id=tenant_id, id=lid, name=name, company=company, title=title, email=email,
            phone=None, do_not_contact=dnc, source=source, status=status, owner=owner,
            product_interest=product, last_activity_at=ago(last), created_at=ago(120)))
    for n, (kind, subject, owner, days, links, due) in enumerate(ACTIVITIES, start=1):
        lead, contact, account, deal = links
        rows.append(CrmActivity(
            tenant_id=tenant_id, id=f"ACT-{n:04d}", kind=kind,
            status="open" if kind == "task" else "done", subject=subject, body="",
            owner=owner, lead_id=lead, contact_id=contact, account_id=account, deal_id=deal,
            occurred_at=ago(days),
            due_date=today + timedelta(days=due) if due is not None else None,
            priority="normal", created_at=ago(days)))
    session.add_all(rows)
    return True


def demo(tenant_id: str, now: datetime) -> list[tuple[str, dict[str, Any]]]:
    """One trigger of each kind on the seeded data, in seed 000's trigger format."""

    def trigger(n: int, trigger_id: str, record_id: str,
                context: dict[str, Any]) -> dict[str, Any]:
        return {"event_id": f"crm-demo-{n}", "tenant_id": tenant_id,
                "source": "crm-trigger-engine", "event_type": trigger_id,
                "occurred_at": now.isoformat(), "trace_id": f"trace-crm-{n}",
                "payload": {"trigger_id": trigger_id, "tenant_id": tenant_id,
                            "record_id": record_id, "context": context}}

    stagnant = trigger(1, "lead_stagnant", "LEAD-1001", {"days_stagnant": 12})
    return [
        ("Lead inactive 12 days: a follow-up task is queued and waits for approval", stagnant),
        ("Deal moved back Negotiation -> Engaging: a task for the owner",
         trigger(2, "deal_regressed", "OPP-Z063OYW0",
                 {"change_id": "DH-Z063-3", "regressions": ["stage_moved_back"]})),
        ("Account at risk (renewal in 28 days, 2 open issues, 41 days quiet): task, note and "
         "a check-in email, each for approval",
         trigger(3, "account_at_risk", "ACC-CANCITY",
                 {"days_since_activity": 41, "open_support_issues": 2, "days_to_renewal": 28})),
        ("Nurture lead replied: a reply and a call task",
         trigger(4, "reengagement_opportunity", "LEAD-1004",
                 {"record_type": "lead", "activity_id": "ACT-0006"})),
        ("Contact on a lost deal wrote again: a task and reopening the deal",
         trigger(5, "reengagement_opportunity", "OPP-KWVA7VR1",
                 {"record_type": "deal", "activity_id": "ACT-0017"})),
        ("The stagnant lead reported again: deduplicated", stagnant),
    ]
