"""Drift: an action type that keeps failing verification, or that people keep rejecting,
loses its autonomy automatically (seed 004, "auto-downgrade autonomy level if anomalies
occur").

For an autopilot with a `drift` rule in the condition data, the gate asks `downgraded()` about
every write it decides. When the action type (autopilot, tool) runs at L2 or above and its
failed verifications or rejected proposals since the window start (or since an admin last
reset it, whichever is later) reach a threshold, a row in `autonomy_downgrades` records the
downgrade (reason, counts, thresholds, when) with a CONTROL entry on the ledger, and from then
on the gate sets the `downgraded` fact, which the `AUTONOMY_DOWNGRADED` policy turns into
REQUIRE_APPROVAL: L1, suggest only. It stays so until an admin resets it (`reset()`), and a
reset starts the counts afresh. An admin can also pin an action type to L1 by hand
(`downgrade()`).

    "drift": {"graphs": {"platform_ops": {"windowMinutes": 1440,
                                          "verificationFailures": 2, "rejections": 3}}}

A threshold of 0 does not count that signal. `graphs."*"` is the rule for every autopilot
without its own. Without a rule nothing is counted (an active downgrade still applies).

Counting is set-based over indexed columns: rejections from the decided `approvals` of the
autopilot in the window; failed verifications from the VERIFICATION ledger entries of its
runs that escalated in the window (a failed verification always escalates), matched to the
tool through `tool_calls`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Index,
    Integer,
    String,
    Text,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from autopilot.db import ALL_TENANTS, Database
from autopilot.ledger import Ledger
from autopilot.models import Approval, Base, LedgerEntry, Run, ToolCall, UTCDateTime, utcnow
from policy.autonomy import AutonomyTable
from policy.schema import PolicyLoadError

log = structlog.get_logger("policy.drift")
FROM_LEVEL = 2  # an action type that may run on its own (L2 and above) ...
TO_LEVEL = 1  # ... falls back to suggest-only


class AutonomyDowngrade(Base):
    """One downgrade of an action type (tenant, autopilot, tool) and its reset, if any."""

    __tablename__ = "autonomy_downgrades"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    graph: Mapped[str] = mapped_column(String(64))
    tool: Mapped[str] = mapped_column(String(80))
    from_level: Mapped[int] = mapped_column(Integer)
    to_level: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    verification_failures: Mapped[int] = mapped_column(Integer, default=0)
    rejections: Mapped[int] = mapped_column(Integer, default=0)
    window_minutes: Mapped[int] = mapped_column(Integer, default=0)
    thresholds: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(200), default="drift")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    reset_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    reset_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    reset_note: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (
        # At most one active downgrade per action type: concurrent deciders cannot double it.
        Index("uq_autonomy_downgrades_active", "tenant_id", "graph", "tool", unique=True,
              sqlite_where=text("active"), postgresql_where=text("active")),
        Index("ix_autonomy_downgrades_lookup", "tenant_id", "graph", "tool", "active"),
        CheckConstraint("to_level < from_level", name="lowers"),
        CheckConstraint("active OR reset_at IS NOT NULL", name="reset_recorded"),
    )


class DriftError(ValueError):
    """A drift command that cannot be done (nothing to reset, no name given)."""


@dataclass(frozen=True)
class DriftRule:
    window_minutes: int
    verification_failures: int  # failed verifications that downgrade; 0: not counted
    rejections: int  # rejected proposals that downgrade; 0: not counted

    def thresholds(self) -> dict[str, int]:
        return {"window_minutes": self.window_minutes,
                "verification_failures": self.verification_failures,
                "rejections": self.rejections}


def _whole(section: dict[str, Any], key: str, where: str, default: int,
           minimum: int) -> int:
    value = section.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise PolicyLoadError([f"{where}.{key}: must be a whole number >= {minimum}"])
    return value


def parse_rules(config: dict[str, Any]) -> dict[str, DriftRule]:
    """The `drift` section as autopilot -> rule; a bad value names its field."""
    section = config.get("drift", {})
    if not isinstance(section, dict) or not isinstance(section.get("graphs", {}), dict):
        raise PolicyLoadError(["drift.graphs: must be an object of autopilot -> rule"])
    rules: dict[str, DriftRule] = {}
    for graph, rule in section.get("graphs", {}).items():
        where = f"drift.graphs.{graph}"
        if not isinstance(rule, dict):
            raise PolicyLoadError([f"{where}: must be an object"])
        unknown = set(rule) - {"windowMinutes", "verificationFailures", "rejections", "_doc"}
        if unknown:
            raise PolicyLoadError([f"{where}.{k}: unknown setting" for k in sorted(unknown)])
        rules[graph] = DriftRule(
            window_minutes=_whole(rule, "windowMinutes", where, 1440, 1),
            verification_failures=_whole(rule, "verificationFailures", where, 0, 0),
            rejections=_whole(rule, "rejections", where, 0, 0))
    return rules


def rule_for(config: dict[str, Any], graph: str) -> DriftRule | None:
    rules = parse_rules(config)
    return rules.get(graph, rules.get("*"))


def _active(session: Session, tenant_id: str, graph: str, tool: str) -> int | None:
    d = AutonomyDowngrade
    return session.scalar(select(d.id).where(d.tenant_id == tenant_id, d.graph == graph,
                                             d.tool == tool, d.active.is_(True)).limit(1))


def counts(session: Session, *, tenant_id: str, graph: str, tool: str,
           since: datetime) -> tuple[int, int]:
    """(failed verifications, rejections) of this action type after `since`."""
    rejections = 0
    for request, decision in session.execute(select(Approval.request, Approval.decision).where(
            Approval.tenant_id == tenant_id, Approval.graph == graph,
            Approval.status == "decided", Approval.decided_at > since)):
        names = [a.get("name") for a in (request or {}).get("action_requests", [])]
        for name, d in zip(names, (decision or {}).get("decisions", []), strict=False):
            rejections += int(name == tool and d.get("type") == "reject")
    escalated = select(Run.thread_id).where(Run.tenant_id == tenant_id, Run.graph == graph,
                                            Run.status == "escalated", Run.updated_at > since)
    failed: set[tuple[str, str]] = set()
    for thread_id, payload in session.execute(select(LedgerEntry.thread_id, LedgerEntry.payload)
                                              .where(LedgerEntry.tenant_id == tenant_id,
                                                     LedgerEntry.thread_id.in_(escalated),
                                                     LedgerEntry.event_type == "VERIFICATION",
                                                     LedgerEntry.created_at > since)):
        failed |= {(thread_id, str(c.get("action_id"))) for c in (payload or {}).get(
            "checks", []) if not c.get("ok")}
    failures = 0
    if failed:
        rows = session.execute(select(ToolCall.thread_id, ToolCall.action_id).where(
            ToolCall.tenant_id == tenant_id, ToolCall.tool == tool,
            ToolCall.thread_id.in_(sorted({t for t, _ in failed}))))
        failures = sum(1 for t, a in rows if (t, a) in failed)
    return failures, rejections


def downgraded(session: Session, config: dict[str, Any], *, tenant_id: str, graph: str,
               tool: str, ledger: Ledger | None = None, record: bool = True,
               now: datetime | None = None) -> bool:
    """Is this action type downgraded to L1? Records the downgrade when a threshold is
    crossed (unless `record` is False: dry runs). Fails closed on a bad `drift` section."""
    if _active(session, tenant_id, graph, tool) is not None:
        return True
    try:
        rule = rule_for(config, graph)
    except PolicyLoadError as exc:
        log.error("drift.bad_config", graph=graph, error=str(exc))
        return True  # a broken drift rule must not leave a tool autonomous
    if rule is None:
        return False
    level = AutonomyTable(config.get("autonomy", {})).level(graph, tool)
    if level < FROM_LEVEL:
        return False  # already suggest-only: nothing to downgrade
    now = now or datetime.now(UTC)
    since = now - timedelta(minutes=rule.window_minutes)
    d = AutonomyDowngrade
    last_reset = session.scalar(select(func.max(d.reset_at)).where(
        d.tenant_id == tenant_id, d.graph == graph, d.tool == tool))
    if last_reset is not None and last_reset > since:
        since = last_reset  # a reset starts the counts afresh
    failures, rejections = counts(session, tenant_id=tenant_id, graph=graph, tool=tool,
                                  since=since)
    why = []
    if rule.verification_failures and failures >= rule.verification_failures:
        why.append(f"{failures} failed verifications (threshold {rule.verification_failures})")
    if rule.rejections and rejections >= rule.rejections:
        why.append(f"{rejections} rejected proposals (threshold {rule.rejections})")
    if not why:
        return False
    if record:
        reason = (f"{graph}/{tool}: {' and '.join(why)} since {since:%Y-%m-%d %H:%M}Z; "
                  f"L{level} -> L{TO_LEVEL}")
        _record(session, ledger, tenant_id=tenant_id, graph=graph, tool=tool, level=level,
                reason=reason, failures=failures, rejections=rejections, rule=rule, by="drift",
                now=now)
    return True


def _record(session: Session, ledger: Ledger | None, *, tenant_id: str, graph: str, tool: str,
            level: int, reason: str, failures: int, rejections: int, rule: DriftRule | None,
            by: str, now: datetime) -> bool:
    row = {"tenant_id": tenant_id, "graph": graph, "tool": tool, "from_level": level,
           "to_level": TO_LEVEL, "reason": reason, "verification_failures": failures,
           "rejections": rejections, "window_minutes": rule.window_minutes if rule else 0,
           "thresholds": rule.thresholds() if rule else {}, "created_by": by, "active": True,
           "created_at": now}
    postgres = session.get_bind().dialect.name == "postgresql"
    stmt = (pg_insert if postgres else sqlite_insert)(AutonomyDowngrade).values(
        **row).on_conflict_do_nothing(index_elements=["tenant_id", "graph", "tool"],
                                      index_where=text("active")).returning(AutonomyDowngrade.id)
    added = session.execute(stmt).scalar() is not None  # None: another one is active
    if added:
        log.warning("drift.downgraded", tenant=tenant_id, graph=graph, tool=tool, reason=reason)
        if ledger is not None:
            ledger.append(session, tenant_id=tenant_id, event_type="CONTROL", payload={
                "control": "autonomy_downgrade", "graph": graph, "tool": tool,
                "from_level": level, "to_level": TO_LEVEL, "reason": reason,
                "verification_failures": failures, "rejections": rejections,
                "thresholds": row["thresholds"], "by": by})
    return added


# --------------------------------------------------------------------------- admin


def list_downgrades(db: Database, tenant_id: str | None = None,
                    include_reset: bool = False) -> list[AutonomyDowngrade]:
    """Downgrades (active ones, or all with `include_reset`), newest first."""
    d = AutonomyDowngrade
    q = select(d)
    if tenant_id is not None:
        q = q.where(d.tenant_id == tenant_id)
    if not include_reset:
        q = q.where(d.active.is_(True))
    with db.session(tenant_id or ALL_TENANTS) as s:
        return list(s.scalars(q.order_by(d.created_at.desc(), d.id.desc())))


def reset(db: Database, ledger: Ledger, *, tenant_id: str, graph: str, tool: str, by: str,
          note: str = "") -> AutonomyDowngrade:
    """Give the action type its configured level back; its counts start again from now."""
    if not by.strip():
        raise DriftError("resetting a downgrade needs the name of who does it")
    d = AutonomyDowngrade
    now = datetime.now(UTC)
    with db.session(tenant_id) as s:
        row = s.scalar(select(d).where(d.tenant_id == tenant_id, d.graph == graph,
                                       d.tool == tool, d.active.is_(True)))
        if row is None:
            raise DriftError(f"{graph}/{tool} is not downgraded for tenant {tenant_id}")
        claimed = s.execute(update(d).where(d.id == row.id, d.active.is_(True)).values(
            active=False, reset_at=now, reset_by=by, reset_note=note)).rowcount
        if claimed != 1:
            raise DriftError(f"{graph}/{tool} was reset concurrently")
        ledger.append(s, tenant_id=tenant_id, event_type="CONTROL", payload={
            "control": "autonomy_downgrade_reset", "downgrade_id": row.id, "graph": graph,
            "tool": tool, "level_restored": row.from_level, "by": by, "note": note})
        row.active, row.reset_at, row.reset_by, row.reset_note = False, now, by, note
        return row


def downgrade(db: Database, ledger: Ledger, *, tenant_id: str, graph: str, tool: str, by: str,
              reason: str) -> bool:
    """Pin an action type to L1 by hand (e.g. while a tool is investigated); False if it
    already is. Reset it like any other downgrade."""
    if not by.strip() or not reason.strip():
        raise DriftError("a manual downgrade needs who does it and why")
    with db.session(tenant_id) as s:
        return _record(s, ledger, tenant_id=tenant_id, graph=graph, tool=tool,
                       level=max(FROM_LEVEL, TO_LEVEL + 1), reason=f"manual: {reason}",
                       failures=0, rejections=0, rule=None, by=by, now=datetime.now(UTC))


def describe(row: AutonomyDowngrade) -> dict[str, Any]:
    """A downgrade as JSON (for a CLI or an API)."""
    return {"id": row.id, "tenant_id": row.tenant_id, "graph": row.graph, "tool": row.tool,
            "from_level": f"L{row.from_level}", "to_level": f"L{row.to_level}",
            "reason": row.reason, "verification_failures": row.verification_failures,
            "rejections": row.rejections, "thresholds": row.thresholds,
            "created_by": row.created_by, "active": row.active,
            "created_at": row.created_at.isoformat(),
            "reset_at": row.reset_at.isoformat() if row.reset_at else None,
            "reset_by": row.reset_by, "reset_note": row.reset_note}
