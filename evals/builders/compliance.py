"""Compliance incidents (seed 001, workflow C) derived from NYC HPD housing-code violations.

Source (`evals/sources/compliance/hpd_violations.csv`, see its README): HPD violations with
their hazard class (A non-hazardous, B hazardous, C immediately hazardous), the date the
notice of violation (NOV) was issued, the date by which the owner must certify the correction
(`OriginalCertifyByDate`), the date the owner certified it (`CertifiedDate`, if ever) and the
current status. Each violation is a compliance item (kind `HPD_VIOLATION_CLASS_<class>`, due at
the certify-by date, end of day in New York) at a property mirrored from its address, with
the property's compliance coordinator and superintendent.

What the row's own dates say happened becomes the trigger, replayed at the eval epoch with
every date shifted by the same amount (so days-until-due are the real ones):
- `intake`: the NOV arrives (at its issue date): `compliance_item_due` (stage `upcoming`
  inside the 60-day look-ahead, else `requested`); rows never certified but later closed by
  HPD, and a few certified ones.
- `critical`: three days before the certify-by date, no task yet; rows certified late (so the
  item was still open inside the 7-day critical window).
- `overdue`: after the certify-by date; rows still open and never validly certified (NOV SENT
  OUT, NOT COMPLIED WITH, INVALID CERTIFICATION). Some already have a live task that missed
  its deadline.
- `completed`: the owner's certification (`compliance_task_completed` at `CertifiedDate`,
  evidence = the NOV id), on time or late.

Labels, from seed 001 section 6 (`criticalDaysBeforeDue` 7, `autoCreateTasks`,
`overdueAlwaysEscalate`) and the hazard class, not from what the autopilot does:
- ahead of the window: task + notice run alone (human not required); class C (immediately
  hazardous) always needs a person (seed 001: safety risk escalates);
- inside the window or overdue: every new task / notice needs a person (never without one);
- an overdue item whose task is still open: an SLA escalation, no new task;
- a certification on time: complete the task and record the item, alone; a late one: a
  person approves (overdue always escalates, completions included).
"""

from __future__ import annotations

import csv
import hashlib
import random
import re
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from evals.format import EPOCH, EVAL_TENANT, Incident

GRAPH = "compliance"
NY = ZoneInfo("America/New_York")
RAW = "property_maintenance/nycdb_fixture_hpd_violations.csv"
SRC = "hpd_violations.csv"
DATASET = "NYC HPD Housing Maintenance Code Violations (wvxf-dwi5), nycdb fixture"
LICENCE = "NYC Open Data (public data); fixture file from the AGPL-3.0 nycdb repository"
AUTHORITY = "NYC HPD (Housing Maintenance Code)"
CRITICAL_DAYS = 7  # compliance.criticalDaysBeforeDue
LOOK_AHEAD_DAYS = 60  # graphs/compliance/detect.py LOOK_AHEAD
OPEN_UNCERTIFIED = ("NOV SENT OUT", "NOT COMPLIED WITH", "INVALID CERTIFICATION")
COLUMNS = ["ViolationID", "Class", "Borough", "HouseNumber", "StreetName", "Apartment",
           "NOVIssuedDate", "OriginalCorrectByDate", "OriginalCertifyByDate", "CertifiedDate",
           "CurrentStatus", "ViolationStatus", "NOVID", "NOVDescription", "scenario"]

# Rows drawn per (scenario, group): group = how the row's dates and status classify it.
QUOTA: list[tuple[str, str, int]] = [
    ("critical", "cert-late", 3),
    ("completed", "cert-late", 3),
    ("completed", "cert-ontime", 6),
    ("intake", "cert-ontime", 2),
    ("intake", "uncert-closed-C", 3),
    ("intake", "uncert-closed-AB", 4),
    ("overdue", "uncert-open", 8),
]
OVERDUE_WITH_TASK = 3  # of the overdue rows, how many already have a live, late task


def _d(text: str) -> date | None:
    return datetime.strptime(text, "%m/%d/%Y").date() if text else None


def _group(r: dict[str, str]) -> str:
    cert, due = _d(r["CertifiedDate"]), _d(r["OriginalCertifyByDate"])
    if cert is not None and due is not None:
        return "cert-ontime" if cert <= due else "cert-late"
    if r["ViolationStatus"] == "Open" and r["CurrentStatus"] in OPEN_UNCERTIFIED:
        return "uncert-open"
    return "uncert-closed-C" if r["Class"] == "C" else "uncert-closed-AB"


def _order_kind(text: str) -> str:
    body = re.sub(r"^SECTION [^A-Z]*(?:[A-Z/.]+ )*?(?:CODE|HMC)[:.]?\s*(?:& 309 M/D LAW )?",
                  "", " ".join(text.split()))
    return " ".join(body.split()[:9])


# --------------------------------------------------------------------------- extract


def extract(data_dir: Path, out_dir: Path) -> None:
    """Draw the rows of each scenario (random.Random(7), distinct orders first)."""
    with (data_dir / RAW).open(newline="", encoding="utf-8") as f:
        rows = sorted(csv.DictReader(f), key=lambda r: int(r["ViolationID"]))
    groups: dict[str, list[dict[str, str]]] = defaultdict(list)
    for r in rows:
        groups[_group(r)].append(r)
    rng = random.Random(7)
    for g in groups.values():
        rng.shuffle(g)
    used_rows: set[str] = set()
    picked: list[dict[str, str]] = []
    for scenario, group, n in QUOTA:
        # Fresh rows where the group has enough; else a row may serve a second scenario.
        pool = [r for r in groups[group] if r["ViolationID"] not in used_rows]
        if len(pool) < n:
            pool = groups[group]
        orders: set[str] = set()
        first, rest = [], []
        for r in pool:  # one row per kind of order first, then the others
            order = _order_kind(r["NOVDescription"])
            (rest if order in orders else first).append(r)
            orders.add(order)
        for r in (first + rest)[:n]:
            used_rows.add(r["ViolationID"])
            picked.append({**r, "scenario": scenario})
    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / SRC).open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, lineterminator="\n")
        w.writeheader()
        for r in sorted(picked, key=lambda r: int(r["ViolationID"])):
            w.writerow({c: " ".join((r.get(c) or "").split()) for c in COLUMNS})


# --------------------------------------------------------------------------- build


def _h(*parts: str) -> int:
    return int(hashlib.sha256("|".join(parts).encode()).hexdigest()[:8], 16)


def _end_of_day(day: date) -> datetime:
    return datetime.combine(day, time(23, 59), NY).astimezone(UTC)


def _world(vid: str, r: dict[str, str], due: datetime) -> tuple[dict[str, list[dict[str, Any]]],
                                                                  str, str, str]:
    pid, item_id, coord = f"P-HPDV-{vid}", f"CI-HPDV-{vid}", f"CC-HPDV-{vid}-COORD"
    address = f"{r['HouseNumber']} {r['StreetName']}".title()
    klass = r["Class"]
    text = " ".join(r["NOVDescription"].split())
    records: dict[str, list[dict[str, Any]]] = {
        "properties": [{"id": pid, "portfolio_id": "PF-EVAL", "name": address,
                        "address": address, "city": r["Borough"].title(),
                        "timezone": "America/New_York"}],
        "compliance_contacts": [
            {"id": coord, "property_id": pid, "name": "Rita Okonkwo",
             "role": "COMPLIANCE_COORDINATOR", "email": f"compliance+{vid}@example.com",
             "phone": f"+1917555{_h(vid) % 10000:04d}", "preferred_channel": "email",
             "active": True},
            {"id": f"CC-HPDV-{vid}-SUPER", "property_id": pid, "name": "Victor Nunez",
             "role": "SUPERINTENDENT", "email": f"super+{vid}@example.com",
             "phone": f"+1917556{_h(vid) % 10000:04d}", "preferred_channel": "sms",
             "active": True}],
        "compliance_items": [{
            "id": item_id, "property_id": pid, "kind": f"HPD_VIOLATION_CLASS_{klass}",
            "authority": AUTHORITY, "status": "OPEN", "due_at": due.isoformat(),
            "description": f"Correct and certify HPD class {klass} violation {vid}"
                           f"{' (apt ' + r['Apartment'] + ')' if r['Apartment'] else ''}: "
                           f"{text[:500]}"}]}
    return records, pid, item_id, coord


def _task_row(task_id: str, item_id: str, pid: str, due: datetime, coord: str,
              deadline: datetime, created: datetime, priority: str) -> dict[str, Any]:
    return {"id": task_id, "compliance_item_id": item_id, "property_id": pid,
            "cycle_due_at": due.isoformat(), "title": f"Correct and certify {item_id}",
            "assignee_id": coord, "due_at": deadline.isoformat(), "priority": priority,
            "status": "IN_PROGRESS", "notes": [], "created_at": created.isoformat(),
            "updated_at": created.isoformat()}


def _event(event_id: str, event_type: str, payload: dict[str, Any],
           source: str = "compliance-scan") -> dict[str, Any]:
    return {"event_id": event_id, "tenant_id": EVAL_TENANT, "source": source,
            "event_type": event_type, "occurred_at": EPOCH.isoformat(), "payload": payload}


def build(sources_dir: Path) -> list[Incident]:
    with (sources_dir / SRC).open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    out = []
    overdue_seen = 0
    for r in rows:
        scenario = r["scenario"]
        with_task = False
        if scenario == "overdue":
            with_task = overdue_seen < OVERDUE_WITH_TASK and r["Class"] != "A"
            overdue_seen += int(with_task)
        out.append(_incident(r, scenario, with_task))
    return out


def _incident(r: dict[str, str], scenario: str, with_task: bool) -> Incident:
    vid, klass = r["ViolationID"], r["Class"]
    issued, certify_by = _d(r["NOVIssuedDate"]), _d(r["OriginalCertifyByDate"])
    certified = _d(r["CertifiedDate"])
    assert issued is not None and certify_by is not None
    if scenario == "intake":
        anchor = issued
    elif scenario == "critical":
        anchor = certify_by - timedelta(days=3)
    elif scenario == "overdue":
        anchor = certify_by + timedelta(days=1 + _h(vid) % 20)
    else:
        assert certified is not None
        anchor = certified
    shift = EPOCH.date() - anchor
    due = _end_of_day(certify_by + shift)
    days = (certify_by - anchor).days  # whole days left, as the scan counts them
    records, pid, item_id, coord = _world(vid, r, due)
    hazard = {"A": "non-hazardous", "B": "hazardous", "C": "immediately hazardous"}[klass]
    source = {"dataset": DATASET, "ref": f"ViolationID={vid}; NOVID={r['NOVID']}",
              "licence": LICENCE,
              "note": f"class {klass}; NOV issued {r['NOVIssuedDate']}; certify by "
                      f"{r['OriginalCertifyByDate']}; certified "
                      f"{r['CertifiedDate'] or 'never'}; status {r['CurrentStatus']}; "
                      f"scenario {scenario} replayed on {anchor:%m/%d/%Y} -> eval epoch"}
    tags = ["derived", "hpd-violation", f"class-{klass.lower()}", scenario]
    what = f"HPD class {klass} violation {vid} ({hazard})"
    never: list[dict[str, Any]] = []
    if scenario in ("intake", "critical", "overdue") and not with_task:
        stage = ("overdue" if scenario == "overdue" else "critical" if scenario == "critical"
                 else "upcoming" if days <= LOOK_AHEAD_DAYS else "requested")
        trigger = _event(f"hpd-{vid}-{scenario}", "compliance_item_due",
                         {"compliance_item_id": item_id, "stage": stage})
        held = scenario != "intake" or klass == "C"
        decision = "REQUIRE_APPROVAL" if held else "ALLOW"
        priority = "ROUTINE" if scenario == "intake" else "URGENT"
        actions = [
            {"tool": "create_compliance_task", "decision": decision,
             "args": {"compliance_item_id": item_id, "assignee_id": coord,
                      **({"priority": priority} if klass != "C" or scenario != "intake"
                         else {})}},
            {"tool": "notify_compliance_assignee", "decision": decision,
             "args": {"compliance_item_id": item_id}}]
        if scenario == "overdue":
            why = (f"{what} was due {days * -1} days ago and is not certified: "
                   "overdueAlwaysEscalate, a person approves the remedy")
            rule = "COMPLIANCE_OVERDUE"
        elif scenario == "critical":
            why = (f"{what} is due in {days} days, inside the {CRITICAL_DAYS}-day critical "
                   "window, with no task: a person confirms")
            rule = "COMPLIANCE_CRITICAL_WINDOW"
        elif klass == "C":
            why = (f"{what}: due in {days} days, but class C is immediately hazardous, a "
                   "safety risk seed 001 escalates to a person")
            rule = ""
        else:
            why = (f"{what}: due in {days} days, ahead of the critical window: "
                   "autoCreateTasks, the task and its notice run alone")
            rule = ""
        if rule:
            never = [{"tool": t, "without_approval": True, "why": rule}
                     for t in ("create_compliance_task", "notify_compliance_assignee",
                               "create_compliance_work_order")]
        expect = {"outcome": "completed", "match": "superset", "actions": actions,
                  "human_required": held, "why": why, "never": never}
        title = f"{what}: {scenario}, due in {days} days"
        tags.append("routine" if not held else "escalation")
    elif scenario == "overdue":  # a live task missed its deadline and the item is overdue
        task_id = f"CT-HPDV-{vid}"
        deadline = _end_of_day(certify_by + shift - timedelta(days=CRITICAL_DAYS))
        records["compliance_tasks"] = [_task_row(
            task_id, item_id, pid, due, coord, deadline,
            _end_of_day(issued + shift), "ROUTINE")]
        trigger = _event(f"hpd-{vid}-overdue", "compliance_item_due",
                         {"compliance_item_id": item_id, "stage": "overdue"})
        expect = {"outcome": "escalated", "match": "strict", "actions": [],
                  "human_required": True, "escalation_category": "SLA",
                  "why": f"{what} was due {-days} days ago and its task {task_id} is still "
                         "open: an SLA breach for a manager, not a second task",
                  "never": [{"tool": "create_compliance_task",
                             "why": "one live task per obligation cycle"}]}
        title = f"{what}: overdue {-days} days with its task still open"
        tags += ["escalation", "duplicate"]
    else:  # completed: the owner certified the correction
        task_id = f"CT-HPDV-{vid}"
        deadline = _end_of_day(certify_by + shift - timedelta(days=CRITICAL_DAYS))
        records["compliance_tasks"] = [_task_row(
            task_id, item_id, pid, due, coord, deadline, _end_of_day(issued + shift),
            "ROUTINE")]
        evidence = f"HPD-CERT-NOV-{r['NOVID']}"
        by_item = _h(vid, "ref") % 2 == 0
        trigger = _event(f"hpd-{vid}-certified", "compliance_task_completed", {
            **({"compliance_item_id": item_id} if by_item else {"task_id": task_id}),
            "completed_by": "Owner's certification of correction",
            "evidence_ref": evidence}, source="hpd-certification")
        late = days < 0
        decision = "REQUIRE_APPROVAL" if late else "ALLOW"
        expect = {"outcome": "completed", "match": "superset", "human_required": late,
                  "actions": [
                      {"tool": "complete_compliance_task", "decision": decision,
                       "args": {"task_id": task_id, "evidence_ref": evidence}},
                      {"tool": "record_compliance_completion", "decision": decision,
                       "args": {"compliance_item_id": item_id, "task_id": task_id}}],
                  "why": (f"{what} certified {-days} days after its deadline: overdue "
                          "always escalates, completions included" if late else
                          f"{what} certified {days} days before its deadline: record it "
                          "alone"),
                  "never": ([{"tool": t, "without_approval": True,
                              "why": "COMPLIANCE_OVERDUE"}
                             for t in ("complete_compliance_task",
                                       "record_compliance_completion")] if late else [])}
        title = f"{what}: certified {'late' if late else 'on time'} ({r['CertifiedDate']})"
        tags += ["late" if late else "routine", "completion"]
    return Incident.model_validate({
        "id": f"compliance.hpd-violation.{vid}.{scenario}", "graph": GRAPH, "title": title,
        "source": source, "tags": sorted(set(tags)), "at": EPOCH.isoformat(),
        "trigger": trigger, "world": {"records": records}, "expect": expect})
