"""Sandbox of the platform the `platform_ops` autopilot operates (seed 004): a social app's
users, posts and replies, appeals, queues and stream consumers, dashboards, the audit log,
request traces, feature flags, endpoint throttles, friction and push tokens, plus the
monitoring / trust & safety / support / growth signal feed the scheduler reads, and the
`events.ops_agents.v1` outbox (`ops_agent_events`).

The autopilot reaches these tables only through tools/platform_ops.py. The invariants the
tools rely on are database constraints, identical on SQLite and Postgres: friction always
expires after it starts, a throttle never goes below the edge's floor, a flag's rollout is a
percentage, an appeal is resolved exactly when it has a resolution, and an outbox event is
stored once (its id is a hash of what it records).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    select,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from autopilot.models import (
    Base,
    LedgerEntry,
    PolicyDecisionRecord,
    Run,
    TenantKeyed,
    UTCDateTime,
    utcnow,
)

TASK_TYPES = ("reliability_triage", "safety_triage", "support_assist", "growth_ops",
              "data_pipeline")
USER_STATUSES = ("ACTIVE", "SUSPENDED", "BANNED")
CONTENT_STATUSES = ("VISIBLE", "REMOVED")
FRICTION_TYPES = ("REPLY_RATE_LIMIT", "REPLY_INTERSTITIAL", "NEW_ACCOUNT_REPLY_BLOCK",
                  "SHARE_FRICTION")
CONSUMER_STATUSES = ("RUNNING", "STALLED", "CRASH_LOOP")
BACKFILL_STATUSES = ("NONE", "SCHEDULED", "RUNNING", "DONE", "CANCELLED")
APPEAL_RESOLUTIONS = ("UPHELD", "OVERTURNED")
# The seed's agent events, plus `rejected` (a reviewer's "no" feeds the eval set).
OPS_EVENT_TYPES = ("ops.agent_task.created", "ops.agent_task.evidence_attached",
                   "ops.agent_task.proposed_action", "ops.agent_task.approved",
                   "ops.agent_task.rejected", "ops.agent_task.executed",
                   "ops.agent_task.failed")
OPS_EVENT_STREAM = "events.ops_agents.v1"


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


# --------------------------------------------------------------------------- tables


class OpsUser(TenantKeyed, Base):
    """An account on the platform (no e-mail or phone kept here: support sees a handle)."""

    __tablename__ = "ops_users"
    handle: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="ACTIVE")
    banned_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    ban_reason: Mapped[str | None] = mapped_column(String(64), nullable=True)
    strikes: Mapped[int] = mapped_column(Integer, default=0)
    trust_score: Mapped[int] = mapped_column(Integer, default=50)  # 0..100
    followers: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    failed_logins_24h: Mapped[int] = mapped_column(Integer, default=0)
    reset_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (CheckConstraint(_in("status", USER_STATUSES), name="status"),)


class OpsContent(TenantKeyed, Base):
    """A post or a reply (`parent_id`) on a surface (discourse, gathering)."""

    __tablename__ = "ops_content"
    author_id: Mapped[str] = mapped_column(String(64))
    parent_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    surface: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="VISIBLE")
    removed_reason: Mapped[str | None] = mapped_column(String(64), nullable=True)
    removed_by: Mapped[str | None] = mapped_column(String(120), nullable=True)
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    reports: Mapped[int] = mapped_column(Integer, default=0)
    toxicity: Mapped[int] = mapped_column(Integer, default=0)  # classifier score, 0..100
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        CheckConstraint(_in("status", CONTENT_STATUSES), name="status"),
        Index("ix_ops_content_parent", "tenant_id", "parent_id", "created_at"),
        Index("ix_ops_content_author", "tenant_id", "author_id"),
    )


class OpsAppeal(TenantKeyed, Base):
    """A user's appeal of a content removal or a ban."""

    __tablename__ = "ops_appeals"
    user_id: Mapped[str] = mapped_column(String(64))
    content_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    kind: Mapped[str] = mapped_column(String(24))  # CONTENT_REMOVAL | BAN
    statement: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="OPEN")
    resolution: Mapped[str | None] = mapped_column(String(16), nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    filed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (
        CheckConstraint("(status = 'OPEN' AND resolution IS NULL) OR (status = 'RESOLVED' "
                        "AND resolution IN ('UPHELD', 'OVERTURNED'))", name="resolution"),
    )


class OpsQueue(TenantKeyed, Base):
    """A queue or stream consumer (moderation reports, warehouse ingestion), with its lag and
    the one backfill it may have scheduled. `poison_offset` is what the consumer dies on
    after a restart; the consumer's own error message does not show it."""

    __tablename__ = "ops_queues"
    kind: Mapped[str] = mapped_column(String(16))  # STREAM | MODERATION
    depth: Mapped[int] = mapped_column(Integer, default=0)
    lag_seconds: Mapped[int] = mapped_column(Integer, default=0)
    slo_lag_seconds: Mapped[int] = mapped_column(Integer, default=900)
    consumer_status: Mapped[str] = mapped_column(String(16), default="RUNNING")
    stalled_since: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    restarts_24h: Mapped[int] = mapped_column(Integer, default=0)
    last_restart_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    poison_offset: Mapped[int | None] = mapped_column(Integer, nullable=True)
    backfill_status: Mapped[str] = mapped_column(String(16), default="NONE")
    backfill_from: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    backfill_to: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        CheckConstraint(_in("consumer_status", CONSUMER_STATUSES), name="consumer_status"),
        CheckConstraint(_in("backfill_status", BACKFILL_STATUSES), name="backfill_status"),
        CheckConstraint("backfill_from IS NULL OR backfill_to > backfill_from",
                        name="backfill_range"),
    )


class OpsDashboard(TenantKeyed, Base):
    """A dashboard's recent series (5-minute points ending at `ends_at`) and its SLOs."""

    __tablename__ = "ops_dashboards"
    service: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(200))
    interval_minutes: Mapped[int] = mapped_column(Integer, default=5)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    series: Mapped[dict[str, Any]] = mapped_column(JSON)  # metric -> [values]
    slo: Mapped[dict[str, Any]] = mapped_column(JSON)  # metric -> {max|min: value}


class OpsAuditLog(TenantKeyed, Base):
    """The platform's append-only audit log (deploys, flag changes, logins, moderation)."""

    __tablename__ = "ops_audit_logs"
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(160))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    correlation_id: Mapped[str | None] = mapped_column(String(64), nullable=True)

    __table_args__ = (
        Index("ix_ops_audit_logs_at", "tenant_id", "at"),
        Index("ix_ops_audit_logs_target", "tenant_id", "target"),
    )


class OpsTrace(TenantKeyed, Base):
    """A sampled request trace, keyed by its correlation id."""

    __tablename__ = "ops_traces"
    service: Mapped[str] = mapped_column(String(64))
    route: Mapped[str] = mapped_column(String(160))
    status_code: Mapped[int] = mapped_column(Integer)
    duration_ms: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    spans: Mapped[list[Any]] = mapped_column(JSON)


class OpsFeatureFlag(TenantKeyed, Base):
    """A feature flag (`id` is its key) with the state it had before the last change."""

    __tablename__ = "ops_feature_flags"
    description: Mapped[str] = mapped_column(Text)
    owner_service: Mapped[str] = mapped_column(String(64))
    audience: Mapped[int] = mapped_column(Integer, default=0)  # users the flag can reach
    # The flag gates a notification campaign: turning it up sends pushes to its audience.
    sends_notifications: Mapped[bool] = mapped_column(Boolean, default=False)
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    rollout_pct: Mapped[int] = mapped_column(Integer, default=0)
    previous_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    previous_rollout_pct: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(120), default="")

    __table_args__ = (
        CheckConstraint("rollout_pct BETWEEN 0 AND 100", name="rollout"),
        CheckConstraint("previous_rollout_pct BETWEEN 0 AND 100", name="previous_rollout"),
    )


class OpsEndpoint(TenantKeyed, Base):
    """An API route at the edge; `limit_rps` NULL means not throttled. The edge never
    accepts a limit below `min_limit_rps` (a constraint, not a convention)."""

    __tablename__ = "ops_endpoints"
    service: Mapped[str] = mapped_column(String(64))
    route: Mapped[str] = mapped_column(String(160))
    baseline_rps: Mapped[int] = mapped_column(Integer)
    current_rps: Mapped[int] = mapped_column(Integer)
    min_limit_rps: Mapped[int] = mapped_column(Integer)
    limit_rps: Mapped[int | None] = mapped_column(Integer, nullable=True)
    previous_limit_rps: Mapped[int | None] = mapped_column(Integer, nullable=True)
    throttled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    reason_code: Mapped[str | None] = mapped_column(String(64), nullable=True)

    __table_args__ = (
        UniqueConstraint("tenant_id", "service", "route", name="uq_ops_endpoints_route"),
        CheckConstraint("limit_rps IS NULL OR limit_rps >= min_limit_rps", name="floor"),
    )


class OpsFriction(TenantKeyed, Base):
    """Friction on a target (`content:<id>` or `user:<id>`) until `expires_at`; a friction
    is in force only while `status` is ACTIVE and it has not expired."""

    __tablename__ = "ops_frictions"
    target: Mapped[str] = mapped_column(String(80))
    friction_type: Mapped[str] = mapped_column(String(32))
    reason_code: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="ACTIVE")  # ACTIVE | LIFTED
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(120), default="")

    __table_args__ = (
        CheckConstraint("expires_at > created_at", name="expires_after_start"),
        CheckConstraint(_in("friction_type", FRICTION_TYPES), name="friction_type"),
        CheckConstraint(_in("status", ("ACTIVE", "LIFTED")), name="status"),
        Index("ix_ops_frictions_target", "tenant_id", "target", "expires_at"),
    )


class OpsPushToken(TenantKeyed, Base):
    """A device's push token; revoking keeps the row (so a revoke can be undone)."""

    __tablename__ = "ops_push_tokens"
    user_id: Mapped[str] = mapped_column(String(64))
    platform: Mapped[str] = mapped_column(String(16))
    device_label: Mapped[str] = mapped_column(String(120))
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_by: Mapped[str | None] = mapped_column(String(200), nullable=True)

    __table_args__ = (Index("ix_ops_push_tokens_user", "tenant_id", "user_id"),)


class OpsSignal(TenantKeyed, Base):
    """A signal from monitoring, trust & safety, support or growth analytics: what the
    scheduler turns into a task (`kind` is the task type, `payload` its trigger payload)."""

    __tablename__ = "ops_signals"
    kind: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    fired_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        CheckConstraint(_in("kind", TASK_TYPES), name="kind"),
        Index("ix_ops_signals_fired_at", "fired_at"),
    )


class OpsAgentEvent(TenantKeyed, Base):
    """One event of the `events.ops_agents.v1` stream (the seed's agent task events), an
    outbox projected from the audit ledger: `id` hashes `key` (what it records), so
    projecting twice stores it once."""

    __tablename__ = "ops_agent_events"
    key: Mapped[str] = mapped_column(String(300))
    task_id: Mapped[str] = mapped_column(String(80))  # the run (LangGraph thread) id
    event_type: Mapped[str] = mapped_column(String(48))
    ledger_seq: Mapped[int | None] = mapped_column(Integer, nullable=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)

    __table_args__ = (
        CheckConstraint(_in("event_type", OPS_EVENT_TYPES), name="event_type"),
        Index("ix_ops_agent_events_task", "tenant_id", "task_id", "occurred_at"),
    )


# --------------------------------------------------------------------------- outbox


def event_id(key: str) -> str:
    return "OE-" + hashlib.sha256(key.encode()).hexdigest()[:32]


def _event(tenant_id: str, task_id: str, key: str, event_type: str, at: datetime,
           payload: dict[str, Any], seq: int | None) -> dict[str, Any]:
    return {"tenant_id": tenant_id, "id": event_id(key), "key": key, "task_id": task_id,
            "event_type": event_type, "ledger_seq": seq, "occurred_at": at,
            "payload": payload}


def _blast_radius(tool: str, args: dict[str, Any]) -> dict[str, Any] | None:
    """What the call touches, from the tool's declared Preview (None: none declared)."""
    from tools.catalog import build_registry  # the tools import this module

    registry = build_registry()
    preview = registry.get(tool).preview if tool in registry else None
    return preview.blast_radius(args) if preview is not None else None


def _from_ledger(e: LedgerEntry, tools: dict[tuple[str, str], str],
                 risks: dict[tuple[str, str], int | None]) -> list[dict[str, Any]]:
    """The agent events one ledger entry stands for (most stand for none)."""
    p, t, task = e.payload or {}, e.tenant_id, e.thread_id

    def ev(key: str, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        return _event(t, task, f"{task}:{key}", kind, e.created_at, payload, e.seq)

    if e.event_type == "INTENT":
        return [ev("created", "ops.agent_task.created", {
            "graph": p.get("graph"), "event_type": p.get("event_type"),
            "event_id": p.get("event_id"), "dedupe_key": p.get("dedupe_key")})]
    if e.event_type == "EVIDENCE":
        return [ev(f"evidence:{p.get('evidence_id')}", "ops.agent_task.evidence_attached", {
            k: p.get(k) for k in ("evidence_id", "ref", "source", "summary", "content_hash")})]
    if e.event_type == "PROPOSAL":
        action = str(p.get("action_id"))
        return [ev(f"proposed:{action}", "ops.agent_task.proposed_action", {
            **{k: p.get(k) for k in ("action_id", "tool", "args", "description", "confidence",
                                     "evidence_refs", "expected_outcome", "rollback_plan",
                                     "depends_on")},
            "risk_score": risks.get((task, action)),
            "blast_radius": _blast_radius(str(p.get("tool")), p.get("args") or {})})]
    if e.event_type == "APPROVAL":
        out = []
        for d in p.get("decisions", []):
            rejected = d.get("type") == "reject"
            action = str(d.get("action_id"))
            out.append(ev(f"{'rejected' if rejected else 'approved'}:{p.get('approval_id')}:"
                          f"{action}",
                          "ops.agent_task.rejected" if rejected else "ops.agent_task.approved",
                          {"approval_id": p.get("approval_id"), "action_id": action,
                           "tool": tools.get((task, action)), "decision": d.get("type"),
                           "reviewer": p.get("reviewer"), "message": d.get("message")}))
        return out
    if e.event_type == "TOOL_CALL" and p.get("kind") == "write":
        action = str(p.get("action_id"))
        if p.get("status") == "ok":
            return [ev(f"executed:{action}", "ops.agent_task.executed", {
                "action_id": action, "tool": p.get("tool"),
                "reason_code": p.get("reason_code"), "output": p.get("output")})]
        if p.get("status") in ("failed", "refused"):
            return [ev(f"failed:{e.seq}", "ops.agent_task.failed", {
                "stage": "tool_call", "action_id": action, "tool": p.get("tool"),
                "error": p.get("error")})]
    if e.event_type in ("ERROR", "ESCALATION"):
        return [ev(f"failed:{e.seq}", "ops.agent_task.failed", {
            "stage": "error" if e.event_type == "ERROR" else "escalated",
            **{k: p[k] for k in ("node", "error_type", "error", "exception_id", "severity",
                                 "category", "title", "blocked_rules") if k in p}})]
    return []


def _insert(session: Session, rows: list[dict[str, Any]]) -> int:
    """Insert the events not stored yet (a concurrent projection of the same event is
    skipped by the primary key); returns how many were new here."""
    unique = {(r["tenant_id"], r["id"]): r for r in rows}
    if not unique:
        return 0
    stored: set[tuple[str, str]] = set()
    for tenant_id in {t for t, _ in unique}:
        ids = sorted(i for t, i in unique if t == tenant_id)
        stored |= {(tenant_id, i) for i in session.scalars(select(OpsAgentEvent.id).where(
            OpsAgentEvent.tenant_id == tenant_id, OpsAgentEvent.id.in_(ids)))}
    new = [unique[k] for k in sorted(unique) if k not in stored]
    if new:
        postgres = session.get_bind().dialect.name == "postgresql"
        stmt = (pg_insert if postgres else sqlite_insert)(OpsAgentEvent).on_conflict_do_nothing(
            index_elements=["tenant_id", "id"])
        session.execute(stmt, new)
    return len(new)


def publish_task_events(session: Session, tenant_id: str, task_ids: Iterable[str]) -> int:
    """Project the ledger of these runs into the outbox (idempotent); returns rows added."""
    ids = sorted(set(task_ids))
    if not ids:
        return 0
    entries = list(session.scalars(select(LedgerEntry).where(
        LedgerEntry.tenant_id == tenant_id, LedgerEntry.thread_id.in_(ids))
        .order_by(LedgerEntry.seq)))
    return _insert(session, _project(session, entries))


def _project(session: Session, entries: list[LedgerEntry]) -> list[dict[str, Any]]:
    tools = {(e.thread_id, str(e.payload.get("action_id"))): str(e.payload.get("tool"))
             for e in entries if e.event_type == "PROPOSAL"}
    risks = _risks(session, entries)
    return [row for e in entries for row in _from_ledger(e, tools, risks)]


def _risks(session: Session, entries: list[LedgerEntry]) -> dict[tuple[str, str], int | None]:
    """The risk score the gate computed (from the tool's own facts) for each proposal, from
    its first recorded decision; absent when the plan never reached the gate."""
    threads = sorted({e.thread_id for e in entries if e.event_type == "PROPOSAL"})
    if not threads:
        return {}
    d = PolicyDecisionRecord
    out: dict[tuple[str, str], int | None] = {}
    for thread_id, action_id, request in session.execute(
            select(d.thread_id, d.action_id, d.request).where(
                d.tenant_id == entries[0].tenant_id, d.thread_id.in_(threads),
                d.stage == "gate").order_by(d.id)):
        facts = (request or {}).get("facts") or {}
        out.setdefault((thread_id, action_id), facts.get("risk_score"))
    return out


def publish_pending(session: Session, since: datetime | None, graph: str = "platform_ops") -> int:
    """Project every run of `graph` that moved since `since` (None: all), in every tenant
    the session sees (an all-tenant session in the scheduler); returns rows added."""
    runs = select(Run.tenant_id, Run.thread_id).where(Run.graph == graph)
    if since is not None:
        runs = runs.where(Run.updated_at > since)
    by_tenant: dict[str, list[str]] = {}
    for tenant_id, thread_id in session.execute(runs):
        by_tenant.setdefault(tenant_id, []).append(thread_id)
    return sum(publish_task_events(session, t, ids) for t, ids in sorted(by_tenant.items()))


def executed_event(tenant_id: str, task_id: str, action_id: str, tool: str, at: datetime,
                   payload: dict[str, Any]) -> dict[str, Any]:
    """The `executed` event a write records in its own transaction (the same key the ledger
    projection gives it, so the two never both land)."""
    return _event(tenant_id, task_id, f"{task_id}:executed:{action_id}",
                  "ops.agent_task.executed", at,
                  {"action_id": action_id, "tool": tool, **payload}, None)


def record_executed(session: Session, row: dict[str, Any]) -> int:
    return _insert(session, [row])
