"""Row-level security for a tenant table, for migrations that add tables (Postgres only).

The same per-command policies as migration 0005: a session sees and changes only the rows of
the tenant it set (`app.tenant_id`), or every row in an explicit all-tenant session (`*`).
"""

from __future__ import annotations

from typing import Any

CURRENT = "current_setting('app.tenant_id', true)"


def protect(op: Any, table: str) -> None:
    """Call from a migration's `upgrade()` after creating `table` (which has `tenant_id`)."""
    if op.get_bind().dialect.name != "postgresql":
        return
    system, own = f"{CURRENT} = '*'", f"tenant_id = {CURRENT}"
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY tenant_read ON {table} FOR SELECT USING ({system} OR {own})")
    op.execute(f"CREATE POLICY tenant_insert ON {table} FOR INSERT WITH CHECK ({system} OR {own})")
    op.execute(f"CREATE POLICY tenant_update ON {table} FOR UPDATE USING ({system} OR {own}) "
               f"WITH CHECK ({system} OR {own})")
    op.execute(f"CREATE POLICY tenant_delete ON {table} FOR DELETE USING ({system} OR {own})")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO autopilot_app")
