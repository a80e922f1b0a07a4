"""revenue autopilot (seed 003): CRM, support, telemetry and news sources; signals with TTL,
account states, decisions, tasks, documents and the customer outbox

Revision ID: 0008_revenue
Revises: 0007
"""
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from autopilot.rls import protect

revision: str = "0008_revenue"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)
TABLES = ("rev_accounts", "rev_contacts", "rev_deals", "rev_meetings", "rev_tickets",
          "rev_usage_weeks", "rev_market_events", "rev_signals", "rev_account_states",
          "rev_decisions", "rev_tasks", "rev_documents", "rev_outreach")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _keyed(name: str, *columns: Any) -> None:
    """A tenant-keyed table: primary key (tenant_id, id), like every sandbox table."""
    op.create_table(
        name,
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("id", sa.String(64), nullable=False),
        *columns,
        sa.PrimaryKeyConstraint("tenant_id", "id", name=f"pk_{name}"),
    )


def _check(table: str, name: str, condition: str) -> sa.CheckConstraint:
    return sa.CheckConstraint(condition, name=f"ck_{table}_{name}")


def _index(table: str, *columns: str, name: str | None = None) -> None:
    op.create_index(name or f"ix_{table}_{columns[-1]}", table, list(columns))


def upgrade() -> None:
    t = "rev_accounts"
    _keyed(t,
           sa.Column("name", sa.String(200), nullable=False),
           sa.Column("industry", sa.String(60), nullable=False),
           sa.Column("country", sa.String(2), nullable=False),
           sa.Column("plan_tier", sa.String(20), nullable=False),
           sa.Column("seats", sa.Integer(), nullable=False),
           sa.Column("arr", sa.Numeric(14, 2), nullable=False),
           sa.Column("owner", sa.String(200), nullable=False),
           sa.Column("health_score", sa.Integer(), nullable=False),
           sa.Column("next_step", sa.String(500), nullable=True),
           sa.Column("next_step_due", TZ, nullable=True),
           sa.Column("renewal_date", TZ, nullable=False),
           sa.Column("crm_synced_at", TZ, nullable=False),
           sa.Column("support_synced_at", TZ, nullable=False),
           sa.Column("telemetry_synced_at", TZ, nullable=False),
           sa.Column("updated_at", TZ, nullable=False),
           _check(t, "health_range", "health_score BETWEEN 0 AND 100"),
           _check(t, "seats_positive", "seats >= 0"))
    _index(t, "renewal_date")
    _index(t, "updated_at")

    t = "rev_contacts"
    _keyed(t,
           sa.Column("account_id", sa.String(64), nullable=False),
           sa.Column("name", sa.String(200), nullable=False),
           sa.Column("email", sa.String(200), nullable=False),
           sa.Column("title", sa.String(200), nullable=False),
           sa.Column("role", sa.String(20), nullable=False),
           sa.Column("status", sa.String(10), nullable=False),
           sa.Column("engagement_score", sa.Integer(), nullable=False),
           sa.Column("prior_engagement_score", sa.Integer(), nullable=False),
           sa.Column("changed_at", TZ, nullable=True),
           sa.Column("updated_at", TZ, nullable=False),
           _check(t, "status_known", "status IN ('ACTIVE', 'LEFT')"),
           _check(t, "engagement_range", "engagement_score BETWEEN 0 AND 100 AND "
                                         "prior_engagement_score BETWEEN 0 AND 100"))
    _index(t, "account_id")
    _index(t, "updated_at")

    t = "rev_deals"
    stages = ("DISCOVERY", "EVALUATION", "PROPOSAL", "NEGOTIATION", "COMMIT", "CLOSED_WON",
              "CLOSED_LOST")
    _keyed(t,
           sa.Column("account_id", sa.String(64), nullable=False),
           sa.Column("name", sa.String(200), nullable=False),
           sa.Column("kind", sa.String(12), nullable=False),
           sa.Column("stage", sa.String(12), nullable=False),
           sa.Column("prior_stage", sa.String(12), nullable=True),
           sa.Column("stage_changed_at", TZ, nullable=True),
           sa.Column("amount", sa.Numeric(14, 2), nullable=False),
           sa.Column("seats", sa.Integer(), nullable=False),
           sa.Column("close_date", TZ, nullable=False),
           sa.Column("prior_close_date", TZ, nullable=True),
           sa.Column("close_date_changed_at", TZ, nullable=True),
           sa.Column("updated_at", TZ, nullable=False),
           _check(t, "stage_known", _in("stage", stages)),
           _check(t, "amount_positive", "amount >= 0"))
    _index(t, "account_id")
    _index(t, "updated_at")

    t = "rev_meetings"
    _keyed(t,
           sa.Column("account_id", sa.String(64), nullable=False),
           sa.Column("title", sa.String(300), nullable=False),
           sa.Column("starts_at", TZ, nullable=False),
           sa.Column("status", sa.String(10), nullable=False),
           sa.Column("attendee_ids", sa.JSON(), nullable=False),
           sa.Column("summary", sa.Text(), nullable=True),
           sa.Column("updated_at", TZ, nullable=False),
           _check(t, "status_known", "status IN ('SCHEDULED', 'HELD', 'CANCELLED')"))
    _index(t, "account_id")
    _index(t, "starts_at")
    _index(t, "updated_at")

    t = "rev_tickets"
    _keyed(t,
           sa.Column("account_id", sa.String(64), nullable=False),
           sa.Column("subject", sa.String(300), nullable=False),
           sa.Column("severity", sa.String(4), nullable=False),
           sa.Column("status", sa.String(10), nullable=False),
           sa.Column("escalated", sa.Boolean(), nullable=False),
           sa.Column("opened_at", TZ, nullable=False),
           sa.Column("first_response_minutes", sa.Integer(), nullable=True),
           sa.Column("updated_at", TZ, nullable=False),
           _check(t, "severity_known", _in("severity", ("SEV1", "SEV2", "SEV3", "SEV4"))),
           _check(t, "status_known", "status IN ('OPEN', 'PENDING', 'RESOLVED')"))
    _index(t, "account_id")
    _index(t, "updated_at")

    t = "rev_usage_weeks"
    _keyed(t,
           sa.Column("account_id", sa.String(64), nullable=False),
           sa.Column("week_start", TZ, nullable=False),
           sa.Column("active_users", sa.Integer(), nullable=False),
           sa.Column("events", sa.Integer(), nullable=False),
           sa.Column("updated_at", TZ, nullable=False),
           sa.UniqueConstraint("tenant_id", "account_id", "week_start",
                               name="uq_rev_usage_weeks_account_week"),
           _check(t, "counts_positive", "active_users >= 0 AND events >= 0"))
    _index(t, "updated_at")

    t = "rev_market_events"
    _keyed(t,
           sa.Column("account_id", sa.String(64), nullable=False),
           sa.Column("kind", sa.String(20), nullable=False),
           sa.Column("headline", sa.String(400), nullable=False),
           sa.Column("source", sa.String(100), nullable=False),
           sa.Column("published_at", TZ, nullable=False),
           sa.Column("updated_at", TZ, nullable=False),
           _check(t, "kind_known", _in("kind", ("FUNDING", "PARTNERSHIP", "EXECUTIVE_CHANGE",
                                                "COMPETITOR"))))
    _index(t, "account_id")
    _index(t, "updated_at")

    t = "rev_signals"
    _keyed(t,
           sa.Column("account_id", sa.String(64), nullable=False),
           sa.Column("signal_type", sa.String(40), nullable=False),
           sa.Column("severity", sa.Integer(), nullable=False),
           sa.Column("confidence", sa.Numeric(4, 3), nullable=False),
           sa.Column("direction", sa.Integer(), nullable=False),
           sa.Column("dimension", sa.String(40), nullable=False),
           sa.Column("subject", sa.String(100), nullable=False),
           sa.Column("summary", sa.String(500), nullable=False),
           sa.Column("source", sa.String(100), nullable=False),
           sa.Column("evidence_refs", sa.JSON(), nullable=False),
           sa.Column("dedupe_key", sa.String(240), nullable=False),
           sa.Column("batch_id", sa.String(64), nullable=False),
           sa.Column("detected_at", TZ, nullable=False),
           sa.Column("expires_at", TZ, nullable=False),
           sa.Column("resolved_at", TZ, nullable=True),
           sa.Column("thread_id", sa.String(80), nullable=True),
           sa.UniqueConstraint("tenant_id", "dedupe_key", name="uq_rev_signals_dedupe_key"),
           _check(t, "severity_range", "severity BETWEEN 1 AND 5"),
           _check(t, "confidence_range", "confidence >= 0 AND confidence <= 1"),
           _check(t, "direction_known", "direction IN (-1, 0, 1)"),
           _check(t, "ttl_positive", "expires_at > detected_at"))
    _index(t, "account_id")
    _index(t, "batch_id")
    _index(t, "expires_at")
    _index(t, "tenant_id", "account_id", "expires_at", name="ix_rev_signals_active")

    t = "rev_account_states"
    _keyed(t,
           sa.Column("posture", sa.String(12), nullable=False),
           sa.Column("momentum", sa.String(12), nullable=False),
           sa.Column("risk_points", sa.Integer(), nullable=False),
           sa.Column("health_estimate", sa.Integer(), nullable=False),
           sa.Column("top_risks", sa.JSON(), nullable=False),
           sa.Column("opportunities", sa.JSON(), nullable=False),
           sa.Column("unknowns", sa.JSON(), nullable=False),
           sa.Column("recent_changes", sa.JSON(), nullable=False),
           sa.Column("signal_ids", sa.JSON(), nullable=False),
           sa.Column("version", sa.Integer(), nullable=False),
           sa.Column("computed_at", TZ, nullable=False),
           sa.Column("thread_id", sa.String(80), nullable=True),
           _check(t, "posture_known", _in("posture", ("HEALTHY", "WATCH", "AT_RISK",
                                                      "EXPANSION"))),
           _check(t, "health_range", "health_estimate BETWEEN 0 AND 100"),
           _check(t, "version_positive", "version >= 1"))

    t = "rev_decisions"
    _keyed(t,
           sa.Column("account_id", sa.String(64), nullable=False),
           sa.Column("thread_id", sa.String(80), nullable=False),
           sa.Column("trigger_type", sa.String(40), nullable=False),
           sa.Column("outcome", sa.String(24), nullable=False),
           sa.Column("reasons", sa.JSON(), nullable=False),
           sa.Column("validators", sa.JSON(), nullable=False),
           sa.Column("signal_ids", sa.JSON(), nullable=False),
           sa.Column("actions", sa.JSON(), nullable=False),
           sa.Column("decided_at", TZ, nullable=False),
           sa.UniqueConstraint("tenant_id", "thread_id", name="uq_rev_decisions_thread_id"),
           _check(t, "outcome_known", _in("outcome", (
               "ACTION_PROPOSALS", "DATA_REQUEST", "CLARIFICATION_REQUEST", "APPROVAL_REQUEST",
               "NO_ACTION"))))
    _index(t, "account_id")

    t = "rev_tasks"
    _keyed(t,
           sa.Column("account_id", sa.String(64), nullable=False),
           sa.Column("kind", sa.String(14), nullable=False),
           sa.Column("task_key", sa.String(240), nullable=False),
           sa.Column("title", sa.String(300), nullable=False),
           sa.Column("body", sa.Text(), nullable=False),
           sa.Column("assignee", sa.String(200), nullable=False),
           sa.Column("questions", sa.JSON(), nullable=False),
           sa.Column("due_at", TZ, nullable=True),
           sa.Column("status", sa.String(10), nullable=False),
           sa.Column("created_at", TZ, nullable=False),
           sa.Column("thread_id", sa.String(80), nullable=True),
           _check(t, "kind_known", _in("kind", ("TASK", "NOTE", "DATA_REQUEST",
                                                "CLARIFICATION"))),
           _check(t, "status_known", "status IN ('OPEN', 'DONE', 'CANCELLED')"))
    _index(t, "account_id")
    _index(t, "tenant_id", "account_id", "task_key", "status", name="ix_rev_tasks_open_by_key")

    t = "rev_documents"
    _keyed(t,
           sa.Column("account_id", sa.String(64), nullable=False),
           sa.Column("kind", sa.String(20), nullable=False),
           sa.Column("meeting_id", sa.String(64), nullable=True),
           sa.Column("title", sa.String(300), nullable=False),
           sa.Column("content", sa.JSON(), nullable=False),
           sa.Column("created_at", TZ, nullable=False),
           sa.Column("thread_id", sa.String(80), nullable=True),
           _check(t, "kind_known", "kind IN ('MEETING_BRIEF')"))
    _index(t, "account_id")
    _index(t, "meeting_id")

    t = "rev_outreach"
    _keyed(t,
           sa.Column("account_id", sa.String(64), nullable=False),
           sa.Column("contact_id", sa.String(64), nullable=False),
           sa.Column("kind", sa.String(16), nullable=False),
           sa.Column("subject", sa.String(300), nullable=False),
           sa.Column("body", sa.Text(), nullable=False),
           sa.Column("cc", sa.JSON(), nullable=False),
           sa.Column("deal_id", sa.String(64), nullable=True),
           sa.Column("discount_pct", sa.Integer(), nullable=True),
           sa.Column("new_seats", sa.Integer(), nullable=True),
           sa.Column("status", sa.String(10), nullable=False),
           sa.Column("sent_at", TZ, nullable=False),
           sa.Column("thread_id", sa.String(80), nullable=True),
           _check(t, "kind_known", _in("kind", ("EMAIL", "DISCOUNT_OFFER",
                                                "CONTRACT_CHANGE"))),
           _check(t, "discount_range", "discount_pct IS NULL OR discount_pct BETWEEN 1 AND 100"))
    _index(t, "account_id")
    _index(t, "tenant_id", "account_id", "sent_at", name="ix_rev_outreach_recent")

    for table in TABLES:
        protect(op, table)


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table)
