"""SQLAlchemy tables: the sandbox property backend and the runtime's own records.

Every table carries `tenant_id`; domain rows are keyed by (tenant_id, id) so two
tenants can use the same human-readable ids without colliding.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on every backend (SQLite would otherwise hand back naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class TenantKeyed:
    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)


# --------------------------------------------------------------------------- sandbox


class Property(TenantKeyed, Base):
    __tablename__ = "properties"
    portfolio_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(String(300))
    city: Mapped[str] = mapped_column(String(100))
    timezone: Mapped[str] = mapped_column(String(64), default="America/New_York")


class Unit(TenantKeyed, Base):
    __tablename__ = "units"
    property_id: Mapped[str] = mapped_column(String(64), index=True)
    number: Mapped[str] = mapped_column(String(20))
    bedrooms: Mapped[int] = mapped_column(Integer, default=1)


class Resident(TenantKeyed, Base):
    __tablename__ = "residents"
    unit_id: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str] = mapped_column(String(40))
    preferred_channel: Mapped[str] = mapped_column(String(10), default="sms")


class Vendor(TenantKeyed, Base):
    __tablename__ = "vendors"
    name: Mapped[str] = mapped_column(String(200))
    categories: Mapped[list[Any]] = mapped_column(JSON)
    hourly_rate: Mapped[float] = mapped_column(Numeric(10, 2))
    callout_fee: Mapped[float] = mapped_column(Numeric(10, 2))
    score: Mapped[float] = mapped_column(Float)  # historical quality score, 0..5
    completed_jobs: Mapped[int] = mapped_column(Integer, default=0)
    open_work_orders: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    emergency_service: Mapped[bool] = mapped_column(Boolean, default=False)
    email: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str] = mapped_column(String(40))


class WorkOrder(TenantKeyed, Base):
    __tablename__ = "work_orders"
    property_id: Mapped[str] = mapped_column(String(64))
    unit_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    category: Mapped[str] = mapped_column(String(32))
    priority: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text)
    estimated_cost: Mapped[float] = mapped_column(Numeric(12, 2))
    not_to_exceed: Mapped[float | None] = mapped_column(Numeric(12, 2), nullable=True)
    vendor_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    sla_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    source_ref: Mapped[str | None] = mapped_column(String(200), nullable=True)
    notes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    final_cost: Mapped[float | None] = mapped_column(Numeric(12, 2), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (
        Index("ix_work_orders_open_by_unit", "tenant_id", "unit_id", "category", "status"),
    )


class BidRequest(TenantKeyed, Base):
    __tablename__ = "bid_requests"
    work_order_id: Mapped[str] = mapped_column(String(64), index=True)
    vendor_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="REQUESTED")
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Message(TenantKeyed, Base):
    __tablename__ = "messages"
    thread_id: Mapped[str] = mapped_column(String(64), index=True)
    resident_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    unit_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    direction: Mapped[str] = mapped_column(String(8))  # in | out
    channel: Mapped[str] = mapped_column(String(10))
    body: Mapped[str] = mapped_column(Text)
    related_work_order_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class PMSchedule(TenantKeyed, Base):
    __tablename__ = "pm_schedules"
    property_id: Mapped[str] = mapped_column(String(64))
    unit_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    task: Mapped[str] = mapped_column(String(300))
    category: Mapped[str] = mapped_column(String(32))
    frequency_days: Mapped[int] = mapped_column(Integer)
    next_due_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    last_completed_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime(), nullable=True
    )
    contract_vendor_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    contract_price: Mapped[float | None] = mapped_column(Numeric(12, 2), nullable=True)


class ComplianceItem(TenantKeyed, Base):
    __tablename__ = "compliance_items"
    property_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text)
    authority: Mapped[str] = mapped_column(String(100))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    status: Mapped[str] = mapped_column(String(16), default="OPEN")


class FollowUp(TenantKeyed, Base):
    __tablename__ = "follow_ups"
    work_order_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    status: Mapped[str] = mapped_column(String(16), default="SCHEDULED")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


# --------------------------------------------------------------------------- runtime


class Run(Base):
    """One autopilot run; its id is the LangGraph thread id, derived from the dedupe key."""

    __tablename__ = "runs"
    thread_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64), index=True)
    graph: Mapped[str] = mapped_column(String(40), index=True)
    dedupe_key: Mapped[str] = mapped_column(String(400), unique=True)
    trigger: Mapped[dict[str, Any]] = mapped_column(JSON)
    # The seed 004 task state machine: queued -> running -> needs_approval -> executing ->
    # completed, or failed_retryable / failed_terminal / escalated / cancelled.
    status: Mapped[str] = mapped_column(String(24), index=True)
    # How a completed run ended: resolved | rejected | nothing_to_do (None while unfinished).
    outcome: Mapped[str | None] = mapped_column(String(24), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    current_node: Mapped[str | None] = mapped_column(String(40), nullable=True)
    policy_version: Mapped[str | None] = mapped_column(String(80), nullable=True)
    trace_id: Mapped[str] = mapped_column(String(100), default="")
    # Set by a replay: every later step of this thread (even after an approval) is a replay,
    # so writes that never ran are simulated, not executed.
    replaying: Mapped[bool] = mapped_column(Boolean, default=False)
    # A replay pinned to a policy version decides under it instead of the active one.
    replay_policy_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    summary: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Approval(Base):
    """A pending human decision; its id is the LangGraph interrupt id.

    The single conditional UPDATE pending -> decided is what makes a second answer lose.
    """

    __tablename__ = "approvals"
    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    thread_id: Mapped[str] = mapped_column(String(80), index=True)
    tenant_id: Mapped[str] = mapped_column(String(64), index=True)
    graph: Mapped[str] = mapped_column(String(40))
    # pending | decided | expired | cancelled | superseded
    status: Mapped[str] = mapped_column(String(16), index=True)
    severity: Mapped[str] = mapped_column(String(16))
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    decision: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ToolCall(Base):
    """The recorded result of a write, keyed by (run, action): a repeat returns this row."""

    __tablename__ = "tool_calls"
    idempotency_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64), index=True)
    thread_id: Mapped[str] = mapped_column(String(80), index=True)
    action_id: Mapped[str] = mapped_column(String(80))
    tool: Mapped[str] = mapped_column(String(80))
    args: Mapped[dict[str, Any]] = mapped_column(JSON)
    output: Mapped[dict[str, Any]] = mapped_column(JSON)
    authorization: Mapped[dict[str, Any]] = mapped_column(JSON)
    reason_code: Mapped[str] = mapped_column(String(200), default="")
    principal: Mapped[str] = mapped_column(String(120), default="")
    trace_id: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AgentException(Base):
    """An escalation for a manager: what was blocked or failed and the decision requested."""

    __tablename__ = "agent_exceptions"
    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64), index=True)
    thread_id: Mapped[str] = mapped_column(String(80))
    graph: Mapped[str] = mapped_column(String(40))
    severity: Mapped[str] = mapped_column(String(16))
    category: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(300))
    details: Mapped[str] = mapped_column(Text)
    context: Mapped[dict[str, Any]] = mapped_column(JSON)
    # OPEN | ACKNOWLEDGED | RESOLVED
    status: Mapped[str] = mapped_column(String(16), default="OPEN")
    acked_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    acked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    resolved_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    resolution: Mapped[str | None] = mapped_column(Text, nullable=True)
    decision: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    requires_by: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (UniqueConstraint("thread_id", name="uq_agent_exceptions_thread_id"),)


class PolicyVersion(Base):
    """An immutable policy version (Cedar text + condition data) for a scope.

    Global versions are complete bundles; tenant, portfolio and property versions are
    overlays that may only add `forbid` rules (so they can only narrow what the broader
    policies allow), override condition data and add priority rules. One version per scope is
    active; at most one is the shadow (evaluated beside it, log-only).
    """

    __tablename__ = "policy_versions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    scope_type: Mapped[str] = mapped_column(String(16))  # global | tenant | portfolio | property
    tenant_id: Mapped[str] = mapped_column(String(64), default="")  # "" for global
    scope_id: Mapped[str] = mapped_column(String(64), default="")
    number: Mapped[int] = mapped_column(Integer)
    cedar: Mapped[str] = mapped_column(Text)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    content_hash: Mapped[str] = mapped_column(String(64))
    author: Mapped[str] = mapped_column(String(200))
    note: Mapped[str] = mapped_column(Text, default="")
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    shadow: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (UniqueConstraint("scope_type", "tenant_id", "scope_id", "number",
                                       name="uq_policy_versions_scope_number"),)


class PolicyDecisionRecord(Base):
    """One evaluation of the gate on a real call, with the redacted request it saw.

    `stage` is `gate` (the plan's decision) or `execute` (the re-check just before the write);
    `proceeds` marks execute-stage decisions whose write went ahead, which is what the rate and
    spend windows count (done or still in flight). The shadow columns hold what the shadow
    version would have decided. Simulation replays `request`.
    """

    __tablename__ = "policy_decisions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    graph: Mapped[str] = mapped_column(String(64))
    thread_id: Mapped[str] = mapped_column(String(200))
    action_id: Mapped[str] = mapped_column(String(64))
    tool: Mapped[str] = mapped_column(String(64))
    stage: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str] = mapped_column(String(24))
    reasons: Mapped[list[str]] = mapped_column(JSON)
    policy_version: Mapped[str] = mapped_column(String(120))
    errors: Mapped[list[str]] = mapped_column(JSON, default=list)
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    spend_cents: Mapped[int] = mapped_column(Integer, default=0)
    proceeds: Mapped[bool] = mapped_column(Boolean, default=False)
    shadow_version: Mapped[str | None] = mapped_column(String(120), nullable=True)
    shadow_outcome: Mapped[str | None] = mapped_column(String(24), nullable=True)
    shadow_reasons: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        Index("ix_policy_decisions_tenant_time", "tenant_id", "created_at"),
        Index("ix_policy_decisions_window", "tenant_id", "proceeds", "created_at"),
    )


class LedgerEntry(Base):
    """One audit event, hash-chained to the previous entry of the same tenant (append-only:
    a trigger refuses UPDATE and DELETE)."""

    __tablename__ = "ledger_entries"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(Integer)
    thread_id: Mapped[str] = mapped_column(String(200), default="")
    trace_id: Mapped[str] = mapped_column(String(100), default="")
    event_type: Mapped[str] = mapped_column(String(24))
    event_key: Mapped[str | None] = mapped_column(String(300), nullable=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        UniqueConstraint("tenant_id", "seq", name="uq_ledger_entries_tenant_seq"),
        UniqueConstraint("tenant_id", "event_key", name="uq_ledger_entries_tenant_event_key"),
        Index("ix_ledger_entries_thread", "thread_id"),
    )


class Evidence(Base):
    """An immutable piece of evidence (what a read returned, a message, a document), named
    by its content hash; proposals and signals reference it by `id`."""

    __tablename__ = "evidence"
    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    thread_id: Mapped[str] = mapped_column(String(200), default="")
    source: Mapped[str] = mapped_column(String(200))
    summary: Mapped[str] = mapped_column(Text, default="")
    provenance: Mapped[dict[str, Any]] = mapped_column(JSON)
    content: Mapped[dict[str, Any]] = mapped_column(JSON)
    content_hash: Mapped[str] = mapped_column(String(64))
    captured_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AutonomySwitch(Base):
    """The persistent kill switch: one row for `global` and one per tenant that was flipped."""

    __tablename__ = "autonomy_switches"
    scope: Mapped[str] = mapped_column(String(64), primary_key=True)  # "global" or a tenant id
    enabled: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str] = mapped_column(Text, default="")
    changed_by: Mapped[str] = mapped_column(String(200))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class GatewayCall(Base):
    """One call through the tool gateway; rows in flight count against budgets."""

    __tablename__ = "gateway_calls"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    principal: Mapped[str] = mapped_column(String(120))
    tool: Mapped[str] = mapped_column(String(80))
    kind: Mapped[str] = mapped_column(String(8))
    cost_class: Mapped[str] = mapped_column(String(8))
    thread_id: Mapped[str] = mapped_column(String(200), default="")
    action_id: Mapped[str] = mapped_column(String(80), default="")
    trace_id: Mapped[str] = mapped_column(String(100), default="")
    status: Mapped[str] = mapped_column(String(16))  # in_flight | ok | failed | refused
    error: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (
        Index("ix_gateway_calls_budget", "tenant_id", "cost_class", "started_at"),
    )


class ApiKey(Base):
    """An API key, stored only as its SHA-256 hash, mapped to a principal in one tenant."""

    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # the key's public prefix
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    tenant_id: Mapped[str] = mapped_column(String(64), index=True)
    subject: Mapped[str] = mapped_column(String(200))
    roles: Mapped[list[str]] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
