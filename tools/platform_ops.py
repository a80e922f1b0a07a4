"""Platform operations tools (seed 004) over the sandbox social platform: read tools (user /
content 360, queue state, dashboards, audit log search, traces), reversible writes that may
run at L2 (friction with an expiry, feature flags, endpoint throttles, push-token revocation,
consumer restarts, backfills) and irreversible writes that always need a person (content
removal, bans, appeal resolutions, password-reset messages).

Every write computes a `risk_score` (0-100) for the policy gate from its own arguments and
the current records, with the same pure functions the planner uses to show the score to a
reviewer, appends to the platform's audit log, and records its `executed` agent event in its
own transaction. Every query is scoped to the caller's tenant.
"""

from __future__ import annotations

import hashlib
import statistics
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import func, or_, select

from autopilot.sandbox.platform_ops import (
    OpsAppeal,
    OpsAuditLog,
    OpsContent,
    OpsDashboard,
    OpsEndpoint,
    OpsFeatureFlag,
    OpsFriction,
    OpsPushToken,
    OpsQueue,
    OpsTrace,
    OpsUser,
    executed_event,
    publish_task_events,
    record_executed,
)
from tools.registry import (
    CostClass,
    PermanentToolError,
    Preview,
    RiskClass,
    ToolContext,
    ToolKind,
    ToolRegistry,
)

FrictionType = Literal["REPLY_RATE_LIMIT", "REPLY_INTERSTITIAL", "NEW_ACCOUNT_REPLY_BLOCK",
                       "SHARE_FRICTION"]
Resolution = Literal["UPHELD", "OVERTURNED"]
MAX_FRICTION = timedelta(days=7)  # friction is a temporary brake, never a standing sanction
MAX_BACKFILL = timedelta(days=7)
NEW_ACCOUNT = timedelta(days=7)
REPLY_WINDOW = timedelta(hours=1)
REASON_CODE = r"^[A-Z][A-Z0-9_]{2,63}$"
TARGET = r"^(content|user):[A-Za-z0-9_.-]{1,64}$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------- risk model
# Pure functions of the call and the records it touches: the tools' policy facts and the
# planner (which shows the score to reviewers) compute the same number from the same data.


def _cap(value: float) -> int:
    return max(0, min(100, round(value)))


def flag_risk(current: tuple[bool, int], new: tuple[bool, int],
              previous: tuple[bool, int]) -> int:
    """Share of users whose experience changes, cheaper when it restores the last state
    (a rollback) and dearer when it exposes more users to the flagged path."""
    cur, nxt = (current[1] if current[0] else 0), (new[1] if new[0] else 0)
    restoring = new == previous and new != current
    return _cap((10 if restoring else 20) + 0.4 * abs(nxt - cur) + (15 if nxt > cur else 0))


def flag_recipients(audience: int, sends_notifications: bool, current: tuple[bool, int],
                    new: tuple[bool, int]) -> int | None:
    """People a campaign flag newly sends notifications to (None: the flag sends none)."""
    if not sends_notifications:
        return None
    cur, nxt = (current[1] if current[0] else 0), (new[1] if new[0] else 0)
    return max(0, audience * (nxt - cur) // 100)


def throttle_risk(limit: int, baseline_rps: int) -> int:
    """Legitimate traffic a limit would turn away: a limit at the normal rate sheds only a
    surge; one at a seventh of it is an outage."""
    cut = max(0.0, 1 - limit / max(1, baseline_rps))
    return _cap(30 + 70 * cut)


def friction_risk(target: str, hours: float) -> int:
    return _cap((30 if target.startswith("user:") else 10) + hours / 4)


def revoke_risk(active_tokens: int) -> int:
    return _cap(15 + 5 * min(active_tokens, 6))


def restart_risk(consumer_status: str) -> int:
    return 55 if consumer_status == "RUNNING" else 25  # restarting a healthy consumer


def backfill_risk(hours: float) -> int:
    return _cap(20 + min(40.0, hours / 2))


def remove_risk(author_followers: int) -> int:
    return _cap(50 + min(30, author_followers // 50_000))


def ban_risk(followers: int, duration_days: int | None) -> int:
    return _cap(60 + min(35, followers // 20_000) + (5 if duration_days is None else 0))


def resolve_risk(resolution: str) -> int:
    return 40 if resolution == "OVERTURNED" else 30


RESET_RISK = 30


# --------------------------------------------------------------------------- output models


class DeviceOut(Strict):
    id: str
    platform: str
    device_label: str
    first_seen_at: datetime
    last_seen_at: datetime


class User360(Strict):
    id: str
    handle: str
    status: str
    banned_until: datetime | None
    ban_reason: str | None
    strikes: int
    trust_score: int
    followers: int
    account_age_days: int
    last_login_at: datetime | None
    failed_logins_24h: int
    active_push_tokens: int
    devices: list[DeviceOut]
    password_reset_pending: bool
    open_appeal_ids: list[str]
    removed_content_30d: int


class ReplySample(Strict):
    id: str
    author_id: str
    author_handle: str
    author_followers: int
    author_strikes: int
    author_new_account: bool
    toxicity: int
    reports: int
    status: str


class FrictionOut(Strict):
    id: str
    target: str
    friction_type: str
    reason_code: str
    status: str  # ACTIVE | EXPIRED | LIFTED: an expired friction is no longer in force
    created_at: datetime
    expires_at: datetime


class ReplyStats(Strict):
    window_minutes: int
    replies: int
    distinct_repliers: int
    new_account_share_pct: int
    mean_toxicity: int


class Content360(Strict):
    id: str
    author_id: str
    author_handle: str
    author_followers: int
    parent_id: str | None
    surface: str
    excerpt: str
    status: str
    removed_reason: str | None
    removed_by: str | None
    reports: int
    toxicity: int
    created_at: datetime
    reply_stats: ReplyStats
    reply_samples: list[ReplySample]
    frictions: list[FrictionOut]


class QueueState(Strict):
    id: str
    kind: str
    depth: int
    lag_seconds: int
    slo_lag_seconds: int
    lag_over_slo: bool
    consumer_status: str
    stalled_since: datetime | None
    last_error: str | None
    restarts_24h: int
    last_restart_at: datetime | None
    backfill_status: str
    backfill_from: datetime | None
    backfill_to: datetime | None


class MetricOut(Strict):
    name: str
    current: float
    baseline: float
    peak: float
    change_pct: int
    slo_max: float | None
    slo_min: float | None
    breaching: bool
    breach_started_at: datetime | None


class DashboardSnapshot(Strict):
    id: str
    service: str
    title: str
    interval_minutes: int
    ends_at: datetime
    metrics: list[MetricOut]
    breaching: list[str]
    series: dict[str, list[float]]


class AuditEntry(Strict):
    id: str
    at: datetime
    actor: str
    action: str
    target: str
    detail: dict[str, Any]
    correlation_id: str | None


class AuditLogs(Strict):
    logs: list[AuditEntry]
    total: int


class TraceOut(Strict):
    id: str
    service: str
    route: str
    status_code: int
    duration_ms: int
    at: datetime
    spans: list[dict[str, Any]]


class FlagOut(Strict):
    id: str
    flag_key: str
    description: str
    owner_service: str
    audience: int
    sends_notifications: bool
    value: bool
    rollout: int
    previous_value: bool
    previous_rollout: int
    updated_at: datetime
    updated_by: str


class EndpointOut(Strict):
    id: str
    service: str
    route: str
    baseline_rps: int
    current_rps: int
    min_limit_rps: int
    limit: int | None
    previous_limit: int | None
    throttled_at: datetime | None
    reason_code: str | None


class AppealOut(Strict):
    id: str
    user_id: str
    content_id: str | None
    kind: str
    statement: str
    status: str
    resolution: str | None
    note: str | None
    filed_at: datetime
    resolved_at: datetime | None


class RevokeOut(Strict):
    user_id: str
    revoked_token_ids: list[str]
    active_push_tokens: int


# --------------------------------------------------------------------------- input models


class UserRef(Strict):
    user_id: str = Field(min_length=1, max_length=64)


class ContentRef(Strict):
    content_id: str = Field(min_length=1, max_length=64)


class QueueRef(Strict):
    queue: str = Field(min_length=1, max_length=64)


class DashboardRef(Strict):
    dashboard_id: str = Field(min_length=1, max_length=64)


class AuditSearch(Strict):
    query: str = Field(min_length=1, max_length=200,
                       description="matched (case-insensitive) against action, target, actor")
    target: str | None = Field(default=None, max_length=160, description="exact target")
    since_hours: int = Field(default=24, ge=1, le=720)
    limit: int = Field(default=50, ge=1, le=100)


class TraceRef(Strict):
    correlation_id: str = Field(min_length=1, max_length=64)


class FlagRef(Strict):
    flag_key: str = Field(min_length=1, max_length=64)


class EndpointRef(Strict):
    route: str = Field(min_length=1, max_length=160)
    service: str | None = Field(default=None, max_length=64,
                                description="needed only when several services share a route")


class FrictionRef(Strict):
    friction_id: str = Field(min_length=1, max_length=64)


class AppealRef(Strict):
    appeal_id: str = Field(min_length=1, max_length=64)


class ApplyFriction(Strict):
    friction_id: str = Field(min_length=1, max_length=64)
    target: str = Field(pattern=TARGET, description="content:<id> or user:<id>")
    friction_type: FrictionType
    expires_at: AwareDatetime = Field(description="when the friction lifts; at most 7 days")
    reason_code: str = Field(pattern=REASON_CODE)

    @field_validator("expires_at")
    @classmethod
    def _bounded(cls, value: datetime) -> datetime:
        now = datetime.now(value.tzinfo)
        if value <= now:
            raise ValueError("must be in the future")
        if value > now + MAX_FRICTION:
            raise ValueError("friction lasts at most 7 days")
        return value


class ToggleFeatureFlag(Strict):
    flag_key: str = Field(min_length=1, max_length=64)
    value: bool
    rollout: int = Field(ge=0, le=100, description="percentage of the audience")


class ThrottleEndpoint(Strict):
    service: str = Field(min_length=1, max_length=64)
    route: str = Field(min_length=1, max_length=160)
    limit: int = Field(ge=1, le=1_000_000, description="requests per second at the edge")
    reason_code: str = Field(default="SHED_LOAD", pattern=REASON_CODE)


class RevokePushTokens(Strict):
    user_id: str = Field(min_length=1, max_length=64)


class RestartConsumer(Strict):
    queue: str = Field(min_length=1, max_length=64)
    reason_code: str = Field(pattern=REASON_CODE)


class StartBackfill(Strict):
    queue: str = Field(min_length=1, max_length=64)
    from_at: AwareDatetime
    to_at: AwareDatetime


class RemoveContent(Strict):
    content_id: str = Field(min_length=1, max_length=64)
    reason_code: str = Field(pattern=REASON_CODE)


class BanUser(Strict):
    user_id: str = Field(min_length=1, max_length=64)
    duration_days: int | None = Field(default=None, ge=1, le=3650,
                                      description="None bans permanently")
    reason_code: str = Field(pattern=REASON_CODE)


class ResolveAppeal(Strict):
    appeal_id: str = Field(min_length=1, max_length=64)
    resolution: Resolution
    note: str = Field(min_length=1, max_length=2000)


class SendPasswordReset(Strict):
    user_id: str = Field(min_length=1, max_length=64)


# --------------------------------------------------------------------------- helpers



def _user_360(ctx: ToolContext, user: OpsUser) -> User360:
    tokens = ctx.session.scalars(select(OpsPushToken).where(
        OpsPushToken.tenant_id == ctx.tenant_id, OpsPushToken.user_id == user.id,
        OpsPushToken.revoked_at.is_(None)).order_by(OpsPushToken.first_seen_at)).all()
    appeals = ctx.session.scalars(select(OpsAppeal.id).where(
        OpsAppeal.tenant_id == ctx.tenant_id, OpsAppeal.user_id == user.id,
        OpsAppeal.status == "OPEN").order_by(OpsAppeal.id)).all()
    removed = ctx.session.scalar(select(func.count()).where(
        OpsContent.tenant_id == ctx.tenant_id, OpsContent.author_id == user.id,
        OpsContent.status == "REMOVED", OpsContent.removed_at >= ctx.now - timedelta(days=30)))
    pending = user.reset_sent_at is not None and ctx.now - user.reset_sent_at < timedelta(
        hours=24) and (user.last_login_at is None or user.last_login_at < user.reset_sent_at)
    return User360(
        id=user.id, handle=user.handle, status=user.status, banned_until=user.banned_until,
        ban_reason=user.ban_reason, strikes=user.strikes, trust_score=user.trust_score,
        followers=user.followers, account_age_days=(ctx.now - user.created_at).days,
        last_login_at=user.last_login_at, failed_logins_24h=user.failed_logins_24h,
        active_push_tokens=len(tokens),
        devices=[DeviceOut(id=t.id, platform=t.platform, device_label=t.device_label,
                           first_seen_at=t.first_seen_at, last_seen_at=t.last_seen_at)
                 for t in tokens],
        password_reset_pending=pending, open_appeal_ids=list(appeals),
        removed_content_30d=int(removed or 0))


def _friction(f: OpsFriction, now: datetime) -> FrictionOut:
    status = "LIFTED" if f.status == "LIFTED" else ("ACTIVE" if f.expires_at > now
                                                     else "EXPIRED")
    return FrictionOut(id=f.id, target=f.target, friction_type=f.friction_type,
                       reason_code=f.reason_code, status=status, created_at=f.created_at,
                       expires_at=f.expires_at)


def _content_360(ctx: ToolContext, c: OpsContent) -> Content360:
    author = ctx.fetch(OpsUser, c.author_id, "get_content_360", "user")
    since = ctx.now - REPLY_WINDOW
    rows = ctx.session.execute(select(OpsContent, OpsUser).join(
        OpsUser, (OpsUser.tenant_id == OpsContent.tenant_id) & (
            OpsUser.id == OpsContent.author_id)).where(
        OpsContent.tenant_id == ctx.tenant_id, OpsContent.parent_id == c.id,
        OpsContent.created_at > since)).all()
    repliers = {u.id: u for _, u in rows}
    new = [u for u in repliers.values() if ctx.now - u.created_at < NEW_ACCOUNT]
    samples = sorted(rows, key=lambda r: (-r[0].toxicity, -r[0].reports, r[0].id))[:5]
    frictions = ctx.session.scalars(select(OpsFriction).where(
        OpsFriction.tenant_id == ctx.tenant_id, OpsFriction.target == f"content:{c.id}")
        .order_by(OpsFriction.created_at)).all()
    return Content360(
        id=c.id, author_id=author.id, author_handle=author.handle,
        author_followers=author.followers, parent_id=c.parent_id, surface=c.surface,
        excerpt=c.text[:280], status=c.status, removed_reason=c.removed_reason,
        removed_by=c.removed_by, reports=c.reports, toxicity=c.toxicity,
        created_at=c.created_at,
        reply_stats=ReplyStats(
            window_minutes=int(REPLY_WINDOW.total_seconds() // 60), replies=len(rows),
            distinct_repliers=len(repliers),
            new_account_share_pct=round(100 * len(new) / len(repliers)) if repliers else 0,
            mean_toxicity=round(statistics.fmean(r.toxicity for r, _ in rows)) if rows else 0),
        reply_samples=[ReplySample(
            id=r.id, author_id=u.id, author_handle=u.handle, author_followers=u.followers,
            author_strikes=u.strikes, author_new_account=ctx.now - u.created_at < NEW_ACCOUNT,
            toxicity=r.toxicity, reports=r.reports, status=r.status) for r, u in samples],
        frictions=[_friction(f, ctx.now) for f in frictions])


def _queue(q: OpsQueue) -> QueueState:
    return QueueState(
        id=q.id, kind=q.kind, depth=q.depth, lag_seconds=q.lag_seconds,
        slo_lag_seconds=q.slo_lag_seconds, lag_over_slo=q.lag_seconds > q.slo_lag_seconds,
        consumer_status=q.consumer_status, stalled_since=q.stalled_since,
        last_error=q.last_error, restarts_24h=q.restarts_24h, last_restart_at=q.last_restart_at,
        backfill_status=q.backfill_status, backfill_from=q.backfill_from,
        backfill_to=q.backfill_to)


def _metric(name: str, values: list[float], slo: dict[str, Any], ends_at: datetime,
            interval: int) -> MetricOut:
    head = values[: max(1, len(values) // 2)]
    baseline = float(statistics.median(head))
    current = float(values[-1])
    hi, lo = slo.get("max"), slo.get("min")

    def bad(v: float) -> bool:
        return (hi is not None and v > hi) or (lo is not None and v < lo)

    started = None
    if bad(current):  # the first point of the current run of breaching points
        i = len(values) - 1
        while i > 0 and bad(values[i - 1]):
            i -= 1
        started = ends_at - timedelta(minutes=interval * (len(values) - 1 - i))
    return MetricOut(name=name, current=current, baseline=baseline, peak=float(max(values)),
                     change_pct=round(100 * (current - baseline) / baseline) if baseline else 0,
                     slo_max=hi, slo_min=lo, breaching=bad(current), breach_started_at=started)


def _flag(f: OpsFeatureFlag) -> FlagOut:
    return FlagOut(id=f.id, flag_key=f.id, description=f.description,
                   owner_service=f.owner_service, audience=f.audience,
                   sends_notifications=f.sends_notifications, value=f.enabled,
                   rollout=f.rollout_pct, previous_value=f.previous_enabled,
                   previous_rollout=f.previous_rollout_pct, updated_at=f.updated_at,
                   updated_by=f.updated_by)


def _endpoint(e: OpsEndpoint) -> EndpointOut:
    return EndpointOut(id=e.id, service=e.service, route=e.route, baseline_rps=e.baseline_rps,
                       current_rps=e.current_rps, min_limit_rps=e.min_limit_rps,
                       limit=e.limit_rps, previous_limit=e.previous_limit_rps,
                       throttled_at=e.throttled_at, reason_code=e.reason_code)


def _find_endpoint(ctx: ToolContext, route: str, service: str | None, tool: str) -> OpsEndpoint:
    q = select(OpsEndpoint).where(OpsEndpoint.tenant_id == ctx.tenant_id,
                                  OpsEndpoint.route == route)
    if service is not None:
        q = q.where(OpsEndpoint.service == service)
    rows = ctx.session.scalars(q).all()
    if not rows:
        raise PermanentToolError(tool, f"no endpoint {route!r}"
                                       + (f" on {service!r}" if service else ""))
    if len(rows) > 1:
        raise PermanentToolError(tool, f"route {route!r} is served by "
                                       f"{', '.join(sorted(r.service for r in rows))}; "
                                       "name the service")
    return rows[0]


def _appeal(a: OpsAppeal) -> AppealOut:
    return AppealOut(id=a.id, user_id=a.user_id, content_id=a.content_id, kind=a.kind,
                     statement=a.statement, status=a.status, resolution=a.resolution,
                     note=a.note, filed_at=a.filed_at, resolved_at=a.resolved_at)


def _actor(ctx: ToolContext) -> str:
    return f"agent:{ctx.thread_id}" if ctx.thread_id else "agent"


def _audit(ctx: ToolContext, action: str, target: str, detail: dict[str, Any]) -> None:
    """The platform's own audit trail of the change (what `search_audit_logs` finds)."""
    ctx.session.add(OpsAuditLog(
        tenant_id=ctx.tenant_id,
        id="AUD-" + hashlib.sha256("|".join((
            ctx.idempotency_key or ctx.now.isoformat(), action)).encode()).hexdigest()[:16].upper(),
        at=ctx.now, actor=_actor(ctx), action=action, target=target, detail=detail,
        correlation_id=ctx.thread_id))


def _executed(ctx: ToolContext, tool: str, summary: str) -> None:
    """Agent events of the run so far, and this write's `executed`, in its own transaction."""
    if not ctx.thread_id or not ctx.idempotency_key:
        return
    action = ctx.idempotency_key.removeprefix(f"{ctx.thread_id}:")
    publish_task_events(ctx.session, ctx.tenant_id, [ctx.thread_id])
    record_executed(ctx.session, executed_event(ctx.tenant_id, ctx.thread_id, action, tool,
                                                ctx.now, {"summary": summary}))


def _hours(delta: timedelta) -> float:
    return delta.total_seconds() / 3600


# --------------------------------------------------------------------------- write previews
# Which record each write changes, what it sets and what it touches: the approval context
# pack reads them (blast radius, diff), and so does the planner for its proposals.

FRICTION = Preview(
    record="friction", read_tool="get_friction", key="friction_id", creates=True,
    sets={"id": "friction_id", "target": "target", "friction_type": "friction_type",
          "expires_at": "expires_at", "reason_code": "reason_code"},
    fixed={"status": "ACTIVE"})
FLAG = Preview(record="feature_flag", read_tool="get_feature_flag", key="flag_key",
               sets={"value": "value", "rollout": "rollout"})
THROTTLE = Preview(record="endpoint", read_tool="get_endpoint", key="route",
                   sets={"limit": "limit", "reason_code": "reason_code"},
                   touches={"service": "service"})
REVOKE = Preview(record="user", read_tool="get_user_360", key="user_id",
                 fixed={"active_push_tokens": 0})
RESTART = Preview(record="queue", read_tool="get_queue_state", key="queue",
                  fixed={"consumer_status": "RUNNING"})
BACKFILL = Preview(record="queue", read_tool="get_queue_state", key="queue",
                   sets={"backfill_from": "from_at", "backfill_to": "to_at"},
                   fixed={"backfill_status": "SCHEDULED"})
REMOVE = Preview(record="content", read_tool="get_content_360", key="content_id",
                 sets={"removed_reason": "reason_code"}, fixed={"status": "REMOVED"})
BAN = Preview(record="user", read_tool="get_user_360", key="user_id",
              sets={"ban_reason": "reason_code"}, fixed={"status": "BANNED"},
              notifies={"user_id": "user"})
RESOLVE = Preview(record="appeal", read_tool="get_appeal", key="appeal_id",
                  sets={"resolution": "resolution", "note": "note"},
                  fixed={"status": "RESOLVED"})
RESET = Preview(record="user", read_tool="get_user_360", key="user_id",
                fixed={"password_reset_pending": True}, notifies={"user_id": "user"})


# --------------------------------------------------------------------------- registration


def register(registry: ToolRegistry) -> None:
    """Add the platform operations tools to `registry`."""
    _register_reads(registry)
    _register_reversible(registry)
    _register_irreversible(registry)


def _register_reads(registry: ToolRegistry) -> None:
    @registry.tool(name="get_user_360", kind=ToolKind.READ, input_model=UserRef,
                   output_model=User360,
                   description="A user's account state, strikes, reach, login failures, "
                               "active push devices and open appeals.")
    def get_user_360(ctx: ToolContext, args: UserRef) -> User360:
        return _user_360(ctx, ctx.fetch(OpsUser, args.user_id, "get_user_360", "user"))

    @registry.tool(name="get_content_360", kind=ToolKind.READ, input_model=ContentRef,
                   output_model=Content360,
                   description="A post or reply with its author, reports, toxicity, the "
                               "last hour of replies and the friction on it.")
    def get_content_360(ctx: ToolContext, args: ContentRef) -> Content360:
        content = ctx.fetch(OpsContent, args.content_id, "get_content_360", "content")
        return _content_360(ctx, content)

    @registry.tool(name="get_queue_state", kind=ToolKind.READ, input_model=QueueRef,
                   output_model=QueueState,
                   description="A queue or stream consumer: depth, lag against its SLO, "
                               "consumer status, restarts and backfill.")
    def get_queue_state(ctx: ToolContext, args: QueueRef) -> QueueState:
        return _queue(ctx.fetch(OpsQueue, args.queue, "get_queue_state", "queue"))

    @registry.tool(name="get_dashboard_snapshot", kind=ToolKind.READ, input_model=DashboardRef,
                   output_model=DashboardSnapshot,
                   description="A dashboard's metrics now against their baseline and SLO, "
                               "with the recent series.")
    def get_dashboard_snapshot(ctx: ToolContext, args: DashboardRef) -> DashboardSnapshot:
        d = ctx.fetch(OpsDashboard, args.dashboard_id, "get_dashboard_snapshot", "dashboard")
        metrics = [_metric(name, [float(v) for v in values], d.slo.get(name, {}), d.ends_at,
                           d.interval_minutes) for name, values in sorted(d.series.items())]
        return DashboardSnapshot(id=d.id, service=d.service, title=d.title,
                                 interval_minutes=d.interval_minutes, ends_at=d.ends_at,
                                 metrics=metrics,
                                 breaching=[m.name for m in metrics if m.breaching],
                                 series={k: [float(v) for v in vs]
                                         for k, vs in sorted(d.series.items())})

    @registry.tool(name="search_audit_logs", kind=ToolKind.READ, input_model=AuditSearch,
                   output_model=AuditLogs,
                   description="Search the platform audit log (deploys, flag changes, logins, "
                               "moderation), newest first.")
    def search_audit_logs(ctx: ToolContext, args: AuditSearch) -> AuditLogs:
        needle = args.query.lower()
        q = select(OpsAuditLog).where(
            OpsAuditLog.tenant_id == ctx.tenant_id,
            OpsAuditLog.at >= ctx.now - timedelta(hours=args.since_hours),
            or_(func.lower(OpsAuditLog.action).contains(needle, autoescape=True),
                func.lower(OpsAuditLog.target).contains(needle, autoescape=True),
                func.lower(OpsAuditLog.actor).contains(needle, autoescape=True)))
        if args.target is not None:
            q = q.where(OpsAuditLog.target == args.target)
        total = ctx.session.scalar(select(func.count()).select_from(q.subquery()))
        rows = ctx.session.scalars(q.order_by(OpsAuditLog.at.desc(), OpsAuditLog.id)
                                   .limit(args.limit)).all()
        return AuditLogs(logs=[AuditEntry(id=r.id, at=r.at, actor=r.actor, action=r.action,
                                          target=r.target, detail=dict(r.detail),
                                          correlation_id=r.correlation_id) for r in rows],
                         total=int(total or 0))

    @registry.tool(name="trace_lookup", kind=ToolKind.READ, input_model=TraceRef,
                   output_model=TraceOut, description="A sampled request trace by correlation id.")
    def trace_lookup(ctx: ToolContext, args: TraceRef) -> TraceOut:
        t = ctx.fetch(OpsTrace, args.correlation_id, "trace_lookup", "trace")
        return TraceOut(id=t.id, service=t.service, route=t.route, status_code=t.status_code,
                        duration_ms=t.duration_ms, at=t.at, spans=list(t.spans))

    @registry.tool(name="get_feature_flag", kind=ToolKind.READ, input_model=FlagRef,
                   output_model=FlagOut,
                   description="A feature flag: value, rollout, audience and its previous state.")
    def get_feature_flag(ctx: ToolContext, args: FlagRef) -> FlagOut:
        return _flag(ctx.fetch(OpsFeatureFlag, args.flag_key, "get_feature_flag", "flag"))

    @registry.tool(name="get_endpoint", kind=ToolKind.READ, input_model=EndpointRef,
                   output_model=EndpointOut,
                   description="An API route at the edge: normal and current rate, its "
                               "throttle and the edge's floor.")
    def get_endpoint(ctx: ToolContext, args: EndpointRef) -> EndpointOut:
        return _endpoint(_find_endpoint(ctx, args.route, args.service, "get_endpoint"))

    @registry.tool(name="get_friction", kind=ToolKind.READ, input_model=FrictionRef,
                   output_model=FrictionOut,
                   description="One friction measure; EXPIRED once past its expiry.")
    def get_friction(ctx: ToolContext, args: FrictionRef) -> FrictionOut:
        return _friction(ctx.fetch(OpsFriction, args.friction_id, "get_friction", "friction"),
                         ctx.now)

    @registry.tool(name="get_appeal", kind=ToolKind.READ, input_model=AppealRef,
                   output_model=AppealOut, description="One appeal of a removal or a ban.")
    def get_appeal(ctx: ToolContext, args: AppealRef) -> AppealOut:
        return _appeal(ctx.fetch(OpsAppeal, args.appeal_id, "get_appeal", "appeal"))


def _register_reversible(registry: ToolRegistry) -> None:
    def friction_facts(ctx: ToolContext, args: ApplyFriction) -> dict[str, object]:
        kind, _, key = args.target.partition(":")
        ctx.fetch(OpsContent if kind == "content" else OpsUser, key, "apply_friction", kind)
        return {"risk_score": friction_risk(args.target, _hours(args.expires_at - ctx.now))}

    @registry.tool(name="apply_friction", kind=ToolKind.WRITE, reversible=True,
                   input_model=ApplyFriction, output_model=FrictionOut,
                   risk=RiskClass.LOW, policy_facts=friction_facts, preview=FRICTION,
                   description="Slow a pile-on down (rate limit, interstitial, new-account "
                               "block) on a post or account until it expires (at most 7 days).")
    def apply_friction(ctx: ToolContext, args: ApplyFriction) -> FrictionOut:
        kind, _, key = args.target.partition(":")
        ctx.fetch(OpsContent if kind == "content" else OpsUser, key, "apply_friction", kind)
        if not ctx.now < args.expires_at <= ctx.now + MAX_FRICTION:
            raise PermanentToolError("apply_friction", "expires_at must be in the future and "
                                                       "at most 7 days away")
        if ctx.session.get(OpsFriction, (ctx.tenant_id, args.friction_id)) is not None:
            raise PermanentToolError("apply_friction",
                                     f"friction {args.friction_id!r} already exists")
        f = OpsFriction(tenant_id=ctx.tenant_id, id=args.friction_id, target=args.target,
                        friction_type=args.friction_type, reason_code=args.reason_code,
                        status="ACTIVE", created_at=ctx.now, expires_at=args.expires_at,
                        created_by=_actor(ctx))
        ctx.session.add(f)
        _audit(ctx, "friction.applied", args.target, {
            "friction_id": f.id, "friction_type": f.friction_type,
            "expires_at": f.expires_at.isoformat(), "reason_code": f.reason_code})
        ctx.session.flush()
        _executed(ctx, "apply_friction", f"{f.friction_type} on {f.target} until "
                                         f"{f.expires_at:%Y-%m-%d %H:%M}Z")
        return _friction(f, ctx.now)

    def flag_facts(ctx: ToolContext, args: ToggleFeatureFlag) -> dict[str, object]:
        f = ctx.fetch(OpsFeatureFlag, args.flag_key, "toggle_feature_flag", "flag")
        current, new = (f.enabled, f.rollout_pct), (args.value, args.rollout)
        facts: dict[str, object] = {"risk_score": flag_risk(
            current, new, (f.previous_enabled, f.previous_rollout_pct))}
        reach = flag_recipients(f.audience, f.sends_notifications, current, new)
        if reach is not None:
            facts["recipients"], facts["external"] = reach, reach > 0
        return facts

    @registry.tool(name="toggle_feature_flag", kind=ToolKind.WRITE, reversible=True,
                   input_model=ToggleFeatureFlag, output_model=FlagOut,
                   risk=RiskClass.MEDIUM, policy_facts=flag_facts, preview=FLAG,
                   description="Set a feature flag's value and rollout (the previous state is "
                               "kept for the rollback).")
    def toggle_feature_flag(ctx: ToolContext, args: ToggleFeatureFlag) -> FlagOut:
        f = ctx.fetch(OpsFeatureFlag, args.flag_key, "toggle_feature_flag", "flag")
        before = {"value": f.enabled, "rollout": f.rollout_pct}
        f.previous_enabled, f.previous_rollout_pct = f.enabled, f.rollout_pct
        f.enabled, f.rollout_pct = args.value, args.rollout
        f.updated_at, f.updated_by = ctx.now, _actor(ctx)
        _audit(ctx, "feature_flag.updated", f"flag:{f.id}",
               {"from": before, "to": {"value": f.enabled, "rollout": f.rollout_pct}})
        ctx.session.flush()
        _executed(ctx, "toggle_feature_flag", f"{f.id}: {before} -> value={f.enabled}, "
                                              f"rollout={f.rollout_pct}")
        return _flag(f)

    def throttle_facts(ctx: ToolContext, args: ThrottleEndpoint) -> dict[str, object]:
        e = _find_endpoint(ctx, args.route, args.service, "throttle_endpoint")
        return {"risk_score": throttle_risk(args.limit, e.baseline_rps)}

    @registry.tool(name="throttle_endpoint", kind=ToolKind.WRITE, reversible=True,
                   input_model=ThrottleEndpoint, output_model=EndpointOut,
                   risk=RiskClass.MEDIUM, cost_class=CostClass.MED,
                   policy_facts=throttle_facts, preview=THROTTLE,
                   description="Rate-limit a route at the edge (never below the edge's floor); "
                               "the previous limit is kept for the rollback.")
    def throttle_endpoint(ctx: ToolContext, args: ThrottleEndpoint) -> EndpointOut:
        e = _find_endpoint(ctx, args.route, args.service, "throttle_endpoint")
        if args.limit < e.min_limit_rps:
            raise PermanentToolError("throttle_endpoint", f"limit {args.limit} is below the "
                                                          f"edge's floor of {e.min_limit_rps}")
        e.previous_limit_rps, e.limit_rps = e.limit_rps, args.limit
        e.throttled_at, e.reason_code = ctx.now, args.reason_code
        _audit(ctx, "endpoint.throttled", f"endpoint:{e.id}", {
            "service": e.service, "route": e.route, "limit_rps": args.limit,
            "previous_limit_rps": e.previous_limit_rps, "reason_code": args.reason_code})
        ctx.session.flush()
        _executed(ctx, "throttle_endpoint", f"{e.service} {e.route} limited to {args.limit} rps")
        return _endpoint(e)

    def revoke_facts(ctx: ToolContext, args: RevokePushTokens) -> dict[str, object]:
        user = ctx.fetch(OpsUser, args.user_id, "revoke_push_tokens", "user")
        return {"risk_score": revoke_risk(_user_360(ctx, user).active_push_tokens)}

    @registry.tool(name="revoke_push_tokens", kind=ToolKind.WRITE, reversible=True,
                   input_model=RevokePushTokens, output_model=RevokeOut,
                   risk=RiskClass.LOW, policy_facts=revoke_facts, preview=REVOKE,
                   description="Revoke every active push token of a user (devices re-register "
                               "at their next login; revoked tokens can be restored).")
    def revoke_push_tokens(ctx: ToolContext, args: RevokePushTokens) -> RevokeOut:
        ctx.fetch(OpsUser, args.user_id, "revoke_push_tokens", "user")
        tokens = ctx.session.scalars(select(OpsPushToken).where(
            OpsPushToken.tenant_id == ctx.tenant_id, OpsPushToken.user_id == args.user_id,
            OpsPushToken.revoked_at.is_(None)).order_by(OpsPushToken.id)).all()
        for t in tokens:
            t.revoked_at, t.revoked_by = ctx.now, ctx.idempotency_key or _actor(ctx)
        ids = [t.id for t in tokens]
        _audit(ctx, "push_tokens.revoked", f"user:{args.user_id}", {"token_ids": ids})
        ctx.session.flush()
        _executed(ctx, "revoke_push_tokens", f"{len(ids)} push tokens of {args.user_id} revoked")
        return RevokeOut(user_id=args.user_id, revoked_token_ids=ids, active_push_tokens=0)

    def restart_facts(ctx: ToolContext, args: RestartConsumer) -> dict[str, object]:
        q = ctx.fetch(OpsQueue, args.queue, "restart_consumer", "queue")
        return {"risk_score": restart_risk(q.consumer_status)}

    @registry.tool(name="restart_consumer", kind=ToolKind.WRITE, reversible=True,
                   input_model=RestartConsumer, output_model=QueueState,
                   risk=RiskClass.MEDIUM, policy_facts=restart_facts, preview=RESTART,
                   description="Restart a stream consumer; it resumes from its committed "
                               "offset, so nothing is lost or applied twice.")
    def restart_consumer(ctx: ToolContext, args: RestartConsumer) -> QueueState:
        q = ctx.fetch(OpsQueue, args.queue, "restart_consumer", "queue")
        q.restarts_24h += 1
        q.last_restart_at = q.updated_at = ctx.now
        if q.poison_offset is not None:
            # The consumer comes back, reads the message it cannot decode, and dies again.
            q.consumer_status = "CRASH_LOOP"
        else:
            q.consumer_status, q.stalled_since, q.last_error = "RUNNING", None, None
        _audit(ctx, "consumer.restarted", f"queue:{q.id}", {"reason_code": args.reason_code,
                                                             "status": q.consumer_status})
        ctx.session.flush()
        _executed(ctx, "restart_consumer", f"{q.id} restarted: {q.consumer_status}")
        return _queue(q)

    def backfill_facts(ctx: ToolContext, args: StartBackfill) -> dict[str, object]:
        ctx.fetch(OpsQueue, args.queue, "start_backfill", "queue")
        return {"risk_score": backfill_risk(_hours(args.to_at - args.from_at))}

    @registry.tool(name="start_backfill", kind=ToolKind.WRITE, reversible=True,
                   input_model=StartBackfill, output_model=QueueState,
                   risk=RiskClass.MEDIUM, cost_class=CostClass.EXP,
                   policy_facts=backfill_facts, preview=BACKFILL,
                   description="Schedule a backfill of a time range into the warehouse "
                               "(idempotent upserts; cancellable until it runs).")
    def start_backfill(ctx: ToolContext, args: StartBackfill) -> QueueState:
        q = ctx.fetch(OpsQueue, args.queue, "start_backfill", "queue")
        if not args.from_at < args.to_at <= args.from_at + MAX_BACKFILL:
            raise PermanentToolError("start_backfill", "to_at must be after from_at and at "
                                                       "most 7 days later")
        if q.backfill_status in ("SCHEDULED", "RUNNING"):
            raise PermanentToolError("start_backfill", f"{q.id} already has a "
                                                       f"{q.backfill_status} backfill")
        q.backfill_status, q.backfill_from, q.backfill_to = "SCHEDULED", args.from_at, args.to_at
        q.updated_at = ctx.now
        _audit(ctx, "backfill.scheduled", f"queue:{q.id}", {
            "from": args.from_at.isoformat(), "to": args.to_at.isoformat()})
        ctx.session.flush()
        _executed(ctx, "start_backfill", f"{q.id} backfill {args.from_at:%H:%M}-"
                                         f"{args.to_at:%H:%M}Z scheduled")
        return _queue(q)


def _register_irreversible(registry: ToolRegistry) -> None:
    def remove_facts(ctx: ToolContext, args: RemoveContent) -> dict[str, object]:
        c = ctx.fetch(OpsContent, args.content_id, "remove_content", "content")
        author = ctx.fetch(OpsUser, c.author_id, "remove_content", "user")
        return {"risk_score": remove_risk(author.followers)}

    @registry.tool(name="remove_content", kind=ToolKind.WRITE, reversible=False,
                   input_model=RemoveContent, output_model=Content360,
                   risk=RiskClass.HIGH, policy_facts=remove_facts, preview=REMOVE,
                   description="Remove a post or reply and add a strike to its author (the "
                               "author is notified; only an appeal brings it back).")
    def remove_content(ctx: ToolContext, args: RemoveContent) -> Content360:
        c = ctx.fetch(OpsContent, args.content_id, "remove_content", "content")
        if c.status == "REMOVED":
            raise PermanentToolError("remove_content", f"{c.id} is already removed")
        author = ctx.fetch(OpsUser, c.author_id, "remove_content", "user")
        c.status, c.removed_reason, c.removed_at = "REMOVED", args.reason_code, ctx.now
        c.removed_by = _actor(ctx)
        author.strikes += 1
        _audit(ctx, "content.removed", f"content:{c.id}", {"reason_code": args.reason_code,
                                                            "author": author.id})
        ctx.session.flush()
        _executed(ctx, "remove_content", f"{c.id} removed ({args.reason_code})")
        return _content_360(ctx, c)

    def ban_facts(ctx: ToolContext, args: BanUser) -> dict[str, object]:
        user = ctx.fetch(OpsUser, args.user_id, "ban_user", "user")
        return {"risk_score": ban_risk(user.followers, args.duration_days)}

    @registry.tool(name="ban_user", kind=ToolKind.WRITE, reversible=False,
                   input_model=BanUser, output_model=User360,
                   risk=RiskClass.HIGH, policy_facts=ban_facts, preview=BAN,
                   description="Ban an account for a number of days or permanently (the "
                               "account is notified and signed out everywhere).")
    def ban_user(ctx: ToolContext, args: BanUser) -> User360:
        user = ctx.fetch(OpsUser, args.user_id, "ban_user", "user")
        if user.status == "BANNED":
            raise PermanentToolError("ban_user", f"{user.id} is already banned")
        user.status, user.ban_reason = "BANNED", args.reason_code
        user.banned_until = (ctx.now + timedelta(days=args.duration_days)
                             if args.duration_days else None)
        for t in ctx.session.scalars(select(OpsPushToken).where(
                OpsPushToken.tenant_id == ctx.tenant_id, OpsPushToken.user_id == user.id,
                OpsPushToken.revoked_at.is_(None))):
            t.revoked_at, t.revoked_by = ctx.now, ctx.idempotency_key or _actor(ctx)
        _audit(ctx, "user.banned", f"user:{user.id}", {
            "reason_code": args.reason_code, "duration_days": args.duration_days})
        ctx.session.flush()
        term = f"for {args.duration_days} days" if args.duration_days else "permanently"
        _executed(ctx, "ban_user", f"{user.id} banned {term}")
        return _user_360(ctx, user)

    def resolve_facts(ctx: ToolContext, args: ResolveAppeal) -> dict[str, object]:
        ctx.fetch(OpsAppeal, args.appeal_id, "resolve_appeal", "appeal")
        return {"risk_score": resolve_risk(args.resolution)}

    @registry.tool(name="resolve_appeal", kind=ToolKind.WRITE, reversible=False,
                   input_model=ResolveAppeal, output_model=AppealOut,
                   risk=RiskClass.MEDIUM, policy_facts=resolve_facts, preview=RESOLVE,
                   description="Decide an appeal: OVERTURNED restores the content (or lifts "
                               "the ban) and takes back the strike; the user is told either way.")
    def resolve_appeal(ctx: ToolContext, args: ResolveAppeal) -> AppealOut:
        a = ctx.fetch(OpsAppeal, args.appeal_id, "resolve_appeal", "appeal")
        if a.status != "OPEN":
            raise PermanentToolError("resolve_appeal", f"appeal {a.id} is already {a.status}")
        a.status, a.resolution, a.note, a.resolved_at = ("RESOLVED", args.resolution, args.note,
                                                         ctx.now)
        if args.resolution == "OVERTURNED":
            user = ctx.fetch(OpsUser, a.user_id, "resolve_appeal", "user")
            if a.kind == "BAN":
                user.status, user.banned_until, user.ban_reason = "ACTIVE", None, None
            elif a.content_id is not None:
                c = ctx.fetch(OpsContent, a.content_id, "resolve_appeal", "content")
                c.status, c.removed_reason, c.removed_at, c.removed_by = ("VISIBLE", None, None,
                                                                          None)
                user.strikes = max(0, user.strikes - 1)
        _audit(ctx, "appeal.resolved", f"appeal:{a.id}", {"resolution": args.resolution})
        ctx.session.flush()
        _executed(ctx, "resolve_appeal", f"appeal {a.id} {args.resolution}")
        return _appeal(a)

    def reset_facts(ctx: ToolContext, args: SendPasswordReset) -> dict[str, object]:
        ctx.fetch(OpsUser, args.user_id, "send_password_reset", "user")
        return {"risk_score": RESET_RISK, "recipients": 1, "external": True}

    @registry.tool(name="send_password_reset", kind=ToolKind.WRITE, reversible=False,
                   input_model=SendPasswordReset, output_model=User360,
                   risk=RiskClass.MEDIUM, policy_facts=reset_facts, preview=RESET,
                   description="Send the user a password-reset link (cannot be unsent).")
    def send_password_reset(ctx: ToolContext, args: SendPasswordReset) -> User360:
        user = ctx.fetch(OpsUser, args.user_id, "send_password_reset", "user")
        if user.status == "BANNED":
            raise PermanentToolError("send_password_reset", f"{user.id} is banned")
        user.reset_sent_at = ctx.now
        _audit(ctx, "auth.reset_link_sent", f"user:{user.id}", {})
        ctx.session.flush()
        _executed(ctx, "send_password_reset", f"reset link sent to {user.id}")
        return _user_360(ctx, user)
