"""The one-process development service (`autopilot serve`, `make run`): schema, demo data, a
development admin key, and the demo triggers posted through the real queue."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from api.auth import KeyGrant, create_key, hash_key
from autopilot.config import Settings
from autopilot.db import Database, migrate
from autopilot.demo import demo_triggers
from autopilot.models import ApiKey
from autopilot.seed import seed_tenant


def prepare_dev_service(settings: Settings) -> str:
    """Migrate, seed the tenant once, and return the development admin key (made once and
    kept in the data dir, readable only by its owner)."""
    db = Database(settings)
    try:
        owner = db.migration_engine()
        try:
            migrate(owner)
        finally:
            owner.dispose()
        tenant = settings.tenant_id
        seed_tenant(db, tenant)  # idempotent: only what is missing
        path = settings.data_dir / "dev-api-key"
        if path.exists():
            key = path.read_text().strip()
            with db.session(tenant) as s:
                if s.scalar(select(ApiKey.id).where(ApiKey.key_hash == hash_key(key),
                                                    ApiKey.revoked_at.is_(None))):
                    return key
        key, _ = create_key(db, KeyGrant(tenant=tenant, subject="dev-admin",
                                         roles=["admin"]), created_by="autopilot serve")
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(key + "\n")
        os.chmod(path, 0o600)
        return key
    finally:
        db.dispose()


def post_demo_events(app: Any, tenant: str) -> None:
    """Queue the demo triggers as if a resident portal and the PM scheduler sent them."""
    runner, queue = app.state.runner, app.state.queue
    for _title, event in demo_triggers(tenant, datetime.now(UTC)):
        view, created = runner.enqueue("maintenance", event)
        if created:
            queue.defer_advance(view.thread_id)
