"""platform_ops sandbox (seed 004): users, content, appeals, queues, dashboards, audit log,
traces, feature flags, endpoints, friction, push tokens, the signal feed and the
`events.ops_agents.v1` outbox; and `autonomy_downgrades` (policy/drift.py), where drift records
which action types lost their autonomy and who gave it back

Invariants are constraints: friction expires after it starts, a throttle is never below the
edge's floor, rollouts are percentages, an appeal is resolved exactly when it has a
resolution, and at most one downgrade per action type is active (a partial unique index).

Revision ID: 0008_platform_ops
Revises: 0007
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from autopilot.models import UTCDateTime
from autopilot.rls import protect

revision: str = "0008_platform_ops"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("ops_users", "ops_content", "ops_appeals", "ops_queues", "ops_dashboards",
          "ops_audit_logs", "ops_traces", "ops_feature_flags", "ops_endpoints", "ops_frictions",
          "ops_push_tokens", "ops_signals", "ops_agent_events", "autonomy_downgrades")


def _keys() -> list[sa.Column]:
    return [sa.Column("tenant_id", sa.String(64), nullable=False),
            sa.Column("id", sa.String(64), nullable=False)]


def _pk(table: str) -> sa.PrimaryKeyConstraint:
    return sa.PrimaryKeyConstraint("tenant_id", "id", name=f"pk_{table}")


def _in(table: str, name: str, column: str, values: tuple[str, ...]) -> sa.CheckConstraint:
    return sa.CheckConstraint(f"{column} IN ({', '.join(repr(v) for v in values)})",
                              name=f"ck_{table}_{name}")


def upgrade() -> None:
    op.create_table(
        "ops_users", *_keys(),
        sa.Column("handle", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("banned_until", UTCDateTime(), nullable=True),
        sa.Column("ban_reason", sa.String(64), nullable=True),
        sa.Column("strikes", sa.Integer(), nullable=False),
        sa.Column("trust_score", sa.Integer(), nullable=False),
        sa.Column("followers", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_login_at", UTCDateTime(), nullable=True),
        sa.Column("failed_logins_24h", sa.Integer(), nullable=False),
        sa.Column("reset_sent_at", UTCDateTime(), nullable=True),
        _pk("ops_users"),
        _in("ops_users", "status", "status", ("ACTIVE", "SUSPENDED", "BANNED")),
    )
    op.create_table(
        "ops_content", *_keys(),
        sa.Column("author_id", sa.String(64), nullable=False),
        sa.Column("parent_id", sa.String(64), nullable=True),
        sa.Column("surface", sa.String(32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("removed_reason", sa.String(64), nullable=True),
        sa.Column("removed_by", sa.String(120), nullable=True),
        sa.Column("removed_at", UTCDateTime(), nullable=True),
        sa.Column("reports", sa.Integer(), nullable=False),
        sa.Column("toxicity", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        _pk("ops_content"),
        _in("ops_content", "status", "status", ("VISIBLE", "REMOVED")),
    )
    op.create_index("ix_ops_content_parent", "ops_content", ["tenant_id", "parent_id",
                                                             "created_at"])
    op.create_index("ix_ops_content_author", "ops_content", ["tenant_id", "author_id"])
    op.create_table(
        "ops_appeals", *_keys(),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("content_id", sa.String(64), nullable=True),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("statement", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("resolution", sa.String(16), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("filed_at", UTCDateTime(), nullable=False),
        sa.Column("resolved_at", UTCDateTime(), nullable=True),
        _pk("ops_appeals"),
        sa.CheckConstraint("(status = 'OPEN' AND resolution IS NULL) OR (status = 'RESOLVED' "
                           "AND resolution IN ('UPHELD', 'OVERTURNED'))",
                           name="ck_ops_appeals_resolution"),
    )
    op.create_table(
        "ops_queues", *_keys(),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("depth", sa.Integer(), nullable=False),
        sa.Column("lag_seconds", sa.Integer(), nullable=False),
        sa.Column("slo_lag_seconds", sa.Integer(), nullable=False),
        sa.Column("consumer_status", sa.String(16), nullable=False),
        sa.Column("stalled_since", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("restarts_24h", sa.Integer(), nullable=False),
        sa.Column("last_restart_at", UTCDateTime(), nullable=True),
        sa.Column("poison_offset", sa.Integer(), nullable=True),
        sa.Column("backfill_status", sa.String(16), nullable=False),
        sa.Column("backfill_from", UTCDateTime(), nullable=True),
        sa.Column("backfill_to", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        _pk("ops_queues"),
        _in("ops_queues", "consumer_status", "consumer_status",
            ("RUNNING", "STALLED", "CRASH_LOOP")),
        _in("ops_queues", "backfill_status", "backfill_status",
            ("NONE", "SCHEDULED", "RUNNING", "DONE", "CANCELLED")),
        sa.CheckConstraint("backfill_from IS NULL OR backfill_to > backfill_from",
                           name="ck_ops_queues_backfill_range"),
    )
    op.create_table(
        "ops_dashboards", *_keys(),
        sa.Column("service", sa.String(64), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("interval_minutes", sa.Integer(), nullable=False),
        sa.Column("ends_at", UTCDateTime(), nullable=False),
        sa.Column("series", sa.JSON(), nullable=False),
        sa.Column("slo", sa.JSON(), nullable=False),
        _pk("ops_dashboards"),
    )
    op.create_table(
        "ops_audit_logs", *_keys(),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(120), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(160), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("correlation_id", sa.String(64), nullable=True),
        _pk("ops_audit_logs"),
    )
    op.create_index("ix_ops_audit_logs_at", "ops_audit_logs", ["tenant_id", "at"])
    op.create_index("ix_ops_audit_logs_target", "ops_audit_logs", ["tenant_id", "target"])
    op.create_table(
        "ops_traces", *_keys(),
        sa.Column("service", sa.String(64), nullable=False),
        sa.Column("route", sa.String(160), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("spans", sa.JSON(), nullable=False),
        _pk("ops_traces"),
    )
    op.create_table(
        "ops_feature_flags", *_keys(),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("owner_service", sa.String(64), nullable=False),
        sa.Column("audience", sa.Integer(), nullable=False),
        sa.Column("sends_notifications", sa.Boolean(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("rollout_pct", sa.Integer(), nullable=False),
        sa.Column("previous_enabled", sa.Boolean(), nullable=False),
        sa.Column("previous_rollout_pct", sa.Integer(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("updated_by", sa.String(120), nullable=False),
        _pk("ops_feature_flags"),
        sa.CheckConstraint("rollout_pct BETWEEN 0 AND 100", name="ck_ops_feature_flags_rollout"),
        sa.CheckConstraint("previous_rollout_pct BETWEEN 0 AND 100",
                           name="ck_ops_feature_flags_previous_rollout"),
    )
    op.create_table(
        "ops_endpoints", *_keys(),
        sa.Column("service", sa.String(64), nullable=False),
        sa.Column("route", sa.String(160), nullable=False),
        sa.Column("baseline_rps", sa.Integer(), nullable=False),
        sa.Column("current_rps", sa.Integer(), nullable=False),
        sa.Column("min_limit_rps", sa.Integer(), nullable=False),
        sa.Column("limit_rps", sa.Integer(), nullable=True),
        sa.Column("previous_limit_rps", sa.Integer(), nullable=True),
        sa.Column("throttled_at", UTCDateTime(), nullable=True),
        sa.Column("reason_code", sa.String(64), nullable=True),
        _pk("ops_endpoints"),
        sa.UniqueConstraint("tenant_id", "service", "route", name="uq_ops_endpoints_route"),
        sa.CheckConstraint("limit_rps IS NULL OR limit_rps >= min_limit_rps",
                           name="ck_ops_endpoints_floor"),
    )
    op.create_table(
        "ops_frictions", *_keys(),
        sa.Column("target", sa.String(80), nullable=False),
        sa.Column("friction_type", sa.String(32), nullable=False),
        sa.Column("reason_code", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(120), nullable=False),
        _pk("ops_frictions"),
        sa.CheckConstraint("expires_at > created_at", name="ck_ops_frictions_expires_after_start"),
        _in("ops_frictions", "friction_type", "friction_type",
            ("REPLY_RATE_LIMIT", "REPLY_INTERSTITIAL", "NEW_ACCOUNT_REPLY_BLOCK",
             "SHARE_FRICTION")),
        _in("ops_frictions", "status", "status", ("ACTIVE", "LIFTED")),
    )
    op.create_index("ix_ops_frictions_target", "ops_frictions",
                    ["tenant_id", "target", "expires_at"])
    op.create_table(
        "ops_push_tokens", *_keys(),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("device_label", sa.String(120), nullable=False),
        sa.Column("first_seen_at", UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_by", sa.String(200), nullable=True),
        _pk("ops_push_tokens"),
    )
    op.create_index("ix_ops_push_tokens_user", "ops_push_tokens", ["tenant_id", "user_id"])
    op.create_table(
        "ops_signals", *_keys(),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("fired_at", UTCDateTime(), nullable=False),
        _pk("ops_signals"),
        _in("ops_signals", "kind", "kind", ("reliability_triage", "safety_triage",
                                            "support_assist", "growth_ops", "data_pipeline")),
    )
    op.create_index("ix_ops_signals_fired_at", "ops_signals", ["fired_at"])
    op.create_table(
        "ops_agent_events", *_keys(),
        sa.Column("key", sa.String(300), nullable=False),
        sa.Column("task_id", sa.String(80), nullable=False),
        sa.Column("event_type", sa.String(48), nullable=False),
        sa.Column("ledger_seq", sa.Integer(), nullable=True),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        _pk("ops_agent_events"),
        _in("ops_agent_events", "event_type", "event_type",
            ("ops.agent_task.created", "ops.agent_task.evidence_attached",
             "ops.agent_task.proposed_action", "ops.agent_task.approved",
             "ops.agent_task.rejected", "ops.agent_task.executed", "ops.agent_task.failed")),
    )
    op.create_index("ix_ops_agent_events_task", "ops_agent_events",
                    ["tenant_id", "task_id", "occurred_at"])
    op.create_table(
        "autonomy_downgrades",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("graph", sa.String(64), nullable=False),
        sa.Column("tool", sa.String(80), nullable=False),
        sa.Column("from_level", sa.Integer(), nullable=False),
        sa.Column("to_level", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("verification_failures", sa.Integer(), nullable=False),
        sa.Column("rejections", sa.Integer(), nullable=False),
        sa.Column("window_minutes", sa.Integer(), nullable=False),
        sa.Column("thresholds", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("reset_at", UTCDateTime(), nullable=True),
        sa.Column("reset_by", sa.String(200), nullable=True),
        sa.Column("reset_note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_autonomy_downgrades"),
        sa.CheckConstraint("to_level < from_level", name="ck_autonomy_downgrades_lowers"),
        sa.CheckConstraint("active OR reset_at IS NOT NULL",
                           name="ck_autonomy_downgrades_reset_recorded"),
    )
    op.create_index("uq_autonomy_downgrades_active", "autonomy_downgrades",
                    ["tenant_id", "graph", "tool"], unique=True,
                    sqlite_where=sa.text("active"), postgresql_where=sa.text("active"))
    op.create_index("ix_autonomy_downgrades_lookup", "autonomy_downgrades",
                    ["tenant_id", "graph", "tool", "active"])
    for table in TABLES:
        protect(op, table)


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table)
