"""row-level security on Postgres: every table of ours is visible only to the tenant set for
the transaction (`app.tenant_id`), through the non-superuser role the app runs as

Revision ID: 0005
Revises: 0004
"""
from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "autopilot_app"
TENANT_TABLES = (
    "properties", "units", "residents", "vendors", "work_orders", "bid_requests", "messages",
    "pm_schedules", "compliance_items", "follow_ups", "runs", "approvals", "tool_calls",
    "agent_exceptions", "policy_decisions", "ledger_entries", "evidence", "gateway_calls",
)
# Rows every tenant may read besides its own: global policy versions and the global switch.
SHARED = {"policy_versions": ("tenant_id", "''"), "autonomy_switches": ("scope", "'global'")}
CURRENT = "current_setting('app.tenant_id', true)"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite is single-tenant-per-file in practice; scoping is in every query
    op.execute(f"""
        DO $$ BEGIN
          IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
            CREATE ROLE {APP_ROLE} NOLOGIN NOSUPERUSER NOBYPASSRLS;
          END IF;
        END $$""")
    op.execute(f"GRANT USAGE ON SCHEMA public TO {APP_ROLE}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public "
               f"TO {APP_ROLE}")
    op.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {APP_ROLE}")
    op.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE "
               f"ON TABLES TO {APP_ROLE}")
    op.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES "
               f"TO {APP_ROLE}")
    for table in TENANT_TABLES:
        _protect(table, f"tenant_id = {CURRENT}")
    for table, (column, shared) in SHARED.items():
        read = f"{column} = {CURRENT} OR {column} = {shared}"
        _protect(table, read, write=f"{column} = {CURRENT}")


def _protect(table: str, visible: str, write: str | None = None) -> None:
    """Reads see `visible`; inserts, updates and deletes only `write` (own rows): a tenant
    may read the shared global rows but never change or delete them."""
    system = f"{CURRENT} = '*'"  # explicit all-tenant sessions (migrations, admin commands)
    own = write or visible
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY tenant_read ON {table} FOR SELECT USING ({system} OR {visible})")
    op.execute(f"CREATE POLICY tenant_insert ON {table} FOR INSERT WITH CHECK ({system} OR {own})")
    op.execute(f"CREATE POLICY tenant_update ON {table} FOR UPDATE USING ({system} OR {own}) "
               f"WITH CHECK ({system} OR {own})")
    op.execute(f"CREATE POLICY tenant_delete ON {table} FOR DELETE USING ({system} OR {own})")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in (*TENANT_TABLES, *SHARED):
        for policy in ("tenant_read", "tenant_insert", "tenant_update", "tenant_delete"):
            op.execute(f"DROP POLICY IF EXISTS {policy} ON {table}")
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
