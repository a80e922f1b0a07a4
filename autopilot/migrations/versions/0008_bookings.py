"""bookings sandbox (seed 002): resources, customers, bookings and holds, the slot claims that
make overbooking impossible, the mirrored calendar and the notification outbox

No overbooking is a unique constraint on `booking_slot_claims` (tenant, resource, 15-minute
slot number): it behaves identically on SQLite and Postgres (see autopilot/sandbox/bookings.py).

Revision ID: 0008_bookings
Revises: 0007
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from autopilot.models import UTCDateTime
from autopilot.rls import protect

revision: str = "0008_bookings"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("booking_resources", "booking_customers", "bookings", "booking_slot_claims",
          "booking_calendar_events", "booking_notification_outbox")


def _keys() -> list[sa.Column]:
    return [sa.Column("tenant_id", sa.String(64), nullable=False),
            sa.Column("id", sa.String(64), nullable=False)]


def _pk(table: str) -> sa.PrimaryKeyConstraint:
    return sa.PrimaryKeyConstraint("tenant_id", "id", name=f"pk_{table}")


def upgrade() -> None:
    op.create_table(
        "booking_resources", *_keys(),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("property_id", sa.String(64), nullable=False),
        sa.Column("service", sa.String(100), nullable=False),
        sa.Column("calendar_provider", sa.String(32), nullable=False),
        sa.Column("calendar_status", sa.String(16), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        _pk("booking_resources"),
        sa.CheckConstraint("calendar_status IN ('connected', 'unavailable', 'auth_expired')",
                           name="ck_booking_resources_calendar_status"),
    )
    op.create_table(
        "booking_customers", *_keys(),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("email", sa.String(200), nullable=True),
        sa.Column("phone", sa.String(40), nullable=True),
        sa.Column("webhook_url", sa.String(500), nullable=True),
        sa.Column("preferred_channel", sa.String(10), nullable=False),
        _pk("booking_customers"),
        sa.CheckConstraint("preferred_channel IN ('email', 'sms', 'webhook')",
                           name="ck_booking_customers_preferred_channel"),
    )
    op.create_table(
        "bookings", *_keys(),
        sa.Column("resource_id", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("service", sa.String(100), nullable=False),
        sa.Column("start_at", UTCDateTime(), nullable=False),
        sa.Column("end_at", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("hold_expires_at", UTCDateTime(), nullable=True),
        sa.Column("checked_in_at", UTCDateTime(), nullable=True),
        sa.Column("customer_note", sa.Text(), nullable=False),
        sa.Column("cancelled_at", UTCDateTime(), nullable=True),
        sa.Column("cancel_reason", sa.String(200), nullable=True),
        sa.Column("previous_start_at", UTCDateTime(), nullable=True),
        sa.Column("calendar_sync_status", sa.String(16), nullable=False),
        sa.Column("calendar_sync_attempts", sa.Integer(), nullable=False),
        sa.Column("calendar_last_error", sa.String(500), nullable=True),
        sa.Column("calendar_next_retry_at", UTCDateTime(), nullable=True),
        sa.Column("reminder_due_at", UTCDateTime(), nullable=True),
        sa.Column("reminder_sent_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        _pk("bookings"),
        sa.CheckConstraint("end_at > start_at", name="ck_bookings_time_range"),
        sa.CheckConstraint("status IN ('HELD', 'CONFIRMED', 'CANCELLED', 'EXPIRED', "
                           "'COMPLETED')", name="ck_bookings_status"),
        sa.CheckConstraint("calendar_sync_status IN ('PENDING', 'SYNCED', 'FAILED')",
                           name="ck_bookings_calendar_sync"),
        sa.CheckConstraint("calendar_sync_attempts >= 0", name="ck_bookings_calendar_attempts"),
    )
    op.create_index("ix_bookings_reminder_due", "bookings", ["status", "reminder_due_at"])
    op.create_index("ix_bookings_status_start", "bookings", ["status", "start_at"])
    op.create_index("ix_bookings_hold_expiry", "bookings", ["status", "hold_expires_at"])
    op.create_index("ix_bookings_calendar_retry", "bookings",
                    ["calendar_sync_status", "calendar_next_retry_at"])
    op.create_index("ix_bookings_resource_start", "bookings",
                    ["tenant_id", "resource_id", "start_at"])
    op.create_table(
        "booking_slot_claims", *_keys(),
        sa.Column("resource_id", sa.String(64), nullable=False),
        sa.Column("slot_no", sa.Integer(), nullable=False),
        sa.Column("slot_start", UTCDateTime(), nullable=False),
        sa.Column("booking_id", sa.String(64), nullable=False),
        _pk("booking_slot_claims"),
        # The no-overbooking guarantee: one active booking per resource and 15-minute slot.
        sa.UniqueConstraint("tenant_id", "resource_id", "slot_no",
                            name="uq_booking_slot_claims_resource_slot"),
    )
    op.create_index("ix_booking_slot_claims_booking", "booking_slot_claims",
                    ["tenant_id", "booking_id"])
    op.create_table(
        "booking_calendar_events", *_keys(),
        sa.Column("booking_id", sa.String(64), nullable=False),
        sa.Column("resource_id", sa.String(64), nullable=False),
        sa.Column("start_at", UTCDateTime(), nullable=False),
        sa.Column("end_at", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        _pk("booking_calendar_events"),
    )
    op.create_table(
        "booking_notification_outbox", *_keys(),
        sa.Column("booking_id", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("recipient", sa.String(500), nullable=False),
        sa.Column("template", sa.String(40), nullable=False),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=False),
        sa.Column("source_thread_id", sa.String(80), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        _pk("booking_notification_outbox"),
        sa.UniqueConstraint("tenant_id", "idempotency_key",
                            name="uq_booking_notification_outbox_idempotency"),
        sa.CheckConstraint("channel IN ('email', 'sms', 'webhook')",
                           name="ck_booking_notification_outbox_channel"),
        sa.CheckConstraint("status IN ('queued', 'sent', 'failed')",
                           name="ck_booking_notification_outbox_status"),
    )
    op.create_index("ix_booking_notification_outbox_booking", "booking_notification_outbox",
                    ["tenant_id", "booking_id"])
    op.create_index("ix_booking_notification_outbox_status", "booking_notification_outbox",
                    ["status", "created_at"])
    for table in TABLES:
        protect(op, table)


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table)
