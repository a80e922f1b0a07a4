"""Account reality from signals (seed 003 phase 2.3 and 6.1): which signals count, the
account state they add up to, and the validators that decide whether anything may be done.

- **Signals**: stored signals past their TTL are ignored; a detection refreshes the stored
  signal with the same key; a detector signal its source no longer shows is resolved.
- **State**: posture, momentum, risk points, a health estimate, the top risks and why, the
  opportunities, unknowns and what changed since the last state.
- **Validators**: freshness (a source older than its limit -> DATA_REQUEST), contradiction
  (signals pointing opposite ways on the same subject -> CLARIFICATION_REQUEST) and grounding
  (a signal whose evidence this run could not read is only put to a person; the spine's own
  grounding check holds any proposal citing it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from graphs.revenue.signals import Signal, at

SOURCES = ("crm", "support", "telemetry")
REFRESH_WHEN_LEFT = 0.5  # re-emit a still-true signal once half its TTL has passed


def stored_signals(ctx: dict[str, Any]) -> list[Signal]:
    """The signals perceive read (expired ones included, flagged in `extra`)."""
    out = []
    for s in ctx["signals"]["signals"]:
        detected, expires = at(s["detected_at"]), at(s["expires_at"])
        out.append(Signal(
            signal_type=s["signal_type"], severity=s["severity"], confidence=s["confidence"],
            direction=s["direction"], subject=s["subject"], summary=s["summary"],
            source=s["source"], evidence_refs=list(s["evidence_refs"]),
            ttl_hours=max(1, int((expires - detected).total_seconds() // 3600)),
            account_id=ctx["account"]["id"], signal_id=s["id"], expires_at=expires,
            detected_at=detected, extra={"expired": s["expired"], "stored": True}))
    return out


@dataclass
class SignalView:
    """What counts now: `effective` (active, deduplicated); what to write: `emit` (new or
    refreshed, ids as the emit tool will assign them) and `resolved`; and `expired` (ignored)."""

    effective: list[Signal]
    emit: list[Signal]
    resolved: list[Signal]
    expired: list[Signal]


def merge(stored: list[Signal], detected: list[Signal], batch_id: str,
          as_of: datetime) -> SignalView:
    by_key = {s.key: s for s in stored}
    active = {k: s for k, s in by_key.items() if not s.extra["expired"]}
    effective: dict[str, Signal] = dict(active)
    emit: list[Signal] = []
    for d in detected:
        old = by_key.get(d.key)
        if old is not None and not old.extra["expired"] and _same(old, d) and \
                old.expires_at is not None and (old.expires_at - as_of).total_seconds() > \
                REFRESH_WHEN_LEFT * old.ttl_hours * 3600:
            continue  # still true and fresh: the stored signal stands
        # The emit tool keeps the id of a known key and numbers new ones in batch order.
        d.signal_id = old.signal_id if old is not None else f"SIG-{batch_id}-{len(emit) + 1}"
        d.extra["stored"] = old is not None  # a stored record this run read (citable)
        d.expires_at = None
        emit.append(d)
        effective[d.key] = d
    detected_keys = {d.key for d in detected}
    resolved = [s for s in active.values() if s.source.startswith("detector:")
                and s.key not in detected_keys]
    for s in resolved:
        effective.pop(s.key, None)
    expired = [s for s in stored if s.extra["expired"]]
    order = sorted(effective.values(), key=lambda s: (-s.weight, s.signal_type, s.subject))
    return SignalView(order, emit, resolved, expired)


def _same(old: Signal, new: Signal) -> bool:
    """A re-detection that says nothing new (the wording may differ: ages move daily)."""
    return (old.severity, round(old.confidence, 2), old.direction) == (
        new.severity, round(new.confidence, 2), new.direction)


def claim_refs(signal: Signal) -> list[str]:
    """Refs a claim about `signal` cites: the stored signal (read this run) and its
    evidence; a signal first written by this run cites only its evidence."""
    own = [f"signal:{signal.signal_id}"] if signal.signal_id and signal.extra.get("stored") \
        else []
    return [*own, *signal.evidence_refs]


# --------------------------------------------------------------------------- validators


def freshness(account: dict[str, Any], as_of: datetime,
              limits: dict[str, Any]) -> list[dict[str, Any]]:
    """Sources synced longer ago than their limit (`revenue_<source>_max_age_hours`)."""
    stale = []
    for source in SOURCES:
        synced = at(account[f"{source}_synced_at"])
        age = (as_of - synced).total_seconds() / 3600
        limit = int(limits[f"revenue_{source}_max_age_hours"])
        if age > limit:
            stale.append({"source": source, "synced_at": synced.isoformat(),
                          "age_hours": round(age, 1), "max_age_hours": limit})
    return stale


def contradictions(signals: list[Signal]) -> list[dict[str, Any]]:
    """Signals on the same dimension and subject that point opposite ways."""
    groups: dict[tuple[str, str], list[Signal]] = {}
    for s in signals:
        if s.direction:
            groups.setdefault((s.dimension, s.subject), []).append(s)
    out = []
    for (dimension, subject), group in sorted(groups.items()):
        down = [s for s in group if s.direction < 0]
        up = [s for s in group if s.direction > 0]
        if down and up:
            out.append({"dimension": dimension, "subject": subject, "risk": down[0],
                        "opportunity": up[0]})
    return out


def grounding(signals: list[Signal], captured: set[str]) -> dict[str, list[str]]:
    """Signal key -> the evidence it cites that this run did not capture."""
    return {s.key: missing for s in signals
            if (missing := [r for r in claim_refs(s) if r not in captured])}


# --------------------------------------------------------------------------- state


@dataclass
class AccountState:
    posture: str
    momentum: str
    risk_points: int
    health_estimate: int
    top_risks: list[dict[str, Any]]
    opportunities: list[dict[str, Any]]
    unknowns: list[str]
    recent_changes: list[str] = field(default_factory=list)
    signal_ids: list[str] = field(default_factory=list)

    def args(self) -> dict[str, Any]:
        return {"posture": self.posture, "momentum": self.momentum,
                "risk_points": self.risk_points, "health_estimate": self.health_estimate,
                "top_risks": self.top_risks, "opportunities": self.opportunities,
                "unknowns": self.unknowns, "recent_changes": self.recent_changes,
                "signal_ids": self.signal_ids}


def _item(s: Signal) -> dict[str, Any]:
    why = s.summary if s.confidence >= 0.8 else f"{s.summary} (confidence {s.confidence:.0%})"
    return {"signal_id": s.signal_id, "signal_type": s.signal_type, "severity": s.severity,
            "why": f"{why} [{s.source}]"[:500], "evidence_refs": s.evidence_refs}


def posture_of(signals: list[Signal]) -> tuple[str, int]:
    risks = [s for s in signals if s.direction < 0]
    points = round(sum(s.weight for s in risks) * 10)
    if any(s.severity >= 4 for s in risks) or points >= 80:
        return "AT_RISK", points
    if risks:
        return "WATCH", points
    if any(s.direction > 0 for s in signals):
        return "EXPANSION", points
    return "HEALTHY", points


def health_estimate(signals: list[Signal]) -> int:
    risk = sum(s.weight for s in signals if s.direction < 0)
    upside = sum(s.weight for s in signals if s.direction > 0)
    return max(0, min(100, round(85 - 6 * risk + 3 * upside)))


def basis_confidence(signals: list[Signal]) -> float:
    """How sure a conclusion drawn from these signals is: their confidence, weighted by
    severity (a severe, well-sourced signal counts most)."""
    pointed = [s for s in signals if s.direction]
    total = sum(s.severity for s in pointed)
    return round(sum(s.severity * s.confidence for s in pointed) / total, 2) if total else 0.0


def assess(account: dict[str, Any], view: SignalView, previous: dict[str, Any],
           unknowns: list[str]) -> AccountState:
    signals = view.effective
    posture, points = posture_of(signals)
    health = health_estimate(signals)
    if not previous["exists"]:
        momentum = "NEW"
    else:
        delta = points - previous["risk_points"]
        momentum = "DECLINING" if delta >= 10 else "IMPROVING" if delta <= -10 else "STEADY"
    ids = sorted(s.signal_id for s in signals if s.signal_id)
    changes = [f"New signal {s.signal_type}: {s.summary}" for s in view.emit
               if not s.extra.get("stored")]
    changes += [f"Refreshed {s.signal_type}: {s.summary}" for s in view.emit
                if s.extra.get("stored")]
    changes += [f"Resolved {s.signal_type} (no longer in {s.source.split(':')[-1]} data): "
                f"{s.summary}" for s in view.resolved]
    before = set(previous["signal_ids"])
    changes += [f"Expired {s.signal_type} (TTL passed): {s.summary}" for s in view.expired
                if s.signal_id in before]
    if previous["exists"] and previous["posture"] != posture:
        changes.append(f"Posture {previous['posture']} -> {posture}")
    if previous["exists"] and abs((previous["health_estimate"] or 0) - health) >= 5:
        changes.append(f"Health estimate {previous['health_estimate']} -> {health}")
    if not any(c["role"] == "CHAMPION" and c["status"] == "ACTIVE"
               for c in account["contacts"]):
        unknowns = [*unknowns, "No active champion on record"]
    risks = [s for s in signals if s.direction < 0]
    opps = [s for s in signals if s.direction > 0]
    return AccountState(
        posture=posture, momentum=momentum, risk_points=points, health_estimate=health,
        top_risks=[_item(s) for s in risks[:3]], opportunities=[_item(s) for s in opps[:3]],
        unknowns=unknowns[:10], recent_changes=changes[:20], signal_ids=ids)


def state_changed(state: AccountState, previous: dict[str, Any]) -> bool:
    """Whether the maintained state needs a refresh (momentum alone does not count)."""
    if not previous["exists"]:
        return True
    top = [r["signal_id"] for r in state.top_risks]
    return (previous["posture"], previous["risk_points"], previous["health_estimate"],
            sorted(previous["signal_ids"]), [r["signal_id"] for r in previous["top_risks"]],
            sorted(previous["unknowns"])) != (
        state.posture, state.risk_points, state.health_estimate, state.signal_ids, top,
        sorted(state.unknowns))


def signal_label(signal_type: str) -> str:
    return signal_type.replace("_", " ").lower()

