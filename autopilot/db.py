"""Database engine and schema migrations (Alembic) for the app tables on SQLite or Postgres."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from autopilot.config import Settings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
APP_ROLE = "autopilot_app"  # the non-superuser role row-level security applies to (0005)
ALL_TENANTS = "*"  # an explicit all-tenant session: admin commands and cross-tenant lookups
# Any constant shared by every process: serialises concurrent first-time migrations on Postgres.
_MIGRATION_LOCK_ID = 7_310_2026


def make_engine(settings: Settings) -> Engine:
    """Engine for the app tables; SQLite gets WAL and a busy timeout so processes can share it."""
    if settings.uses_postgres:
        return create_engine(settings.sqlalchemy_url, pool_pre_ping=True, pool_size=5)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine(settings.sqlalchemy_url, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: a commit survives a process crash (kill -9); only an OS crash or power
        # loss can drop the last commits. The usual setting for an embedded service.
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()
        # Let SQLAlchemy's "begin" event below issue BEGIN itself (pysqlite's own is deferred).
        dbapi_conn.isolation_level = None

    @event.listens_for(engine, "begin")
    def _sqlite_begin_immediate(conn) -> None:  # type: ignore[no-untyped-def]
        # Take the write lock at BEGIN so two writers queue instead of failing on upgrade.
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = engine
    return cfg


def migrate(engine: Engine) -> None:
    """Bring the app tables to the newest revision; safe to call from many processes at once."""
    cfg = alembic_config(engine)
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _MIGRATION_LOCK_ID})
            try:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "heads")
                conn.commit()
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _MIGRATION_LOCK_ID})
                conn.commit()
    else:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "heads")


class SchemaOutdated(RuntimeError):
    """The database schema is behind this code (or ahead of it)."""


def schema_revision(engine: Engine) -> tuple[str | None, str]:
    """(the database's Alembic revision(s) or None, the newest this code knows). Autopilots
    may add their tables on their own migration branch, so both sides can be several heads,
    written joined by `+`."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    heads = ScriptDirectory.from_config(alembic_config(engine)).get_heads()
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_heads()
    return ("+".join(sorted(current)) or None), "+".join(sorted(heads))


def check_schema(engine: Engine) -> None:
    """Refuse to serve on a schema that is not exactly at head, saying what to run."""
    current, head = schema_revision(engine)
    if current != head:
        raise SchemaOutdated(
            f"the database schema is at revision {current or '(none: empty database)'} but "
            f"this version needs {head}; run `autopilot db upgrade` (with the same "
            "DATABASE_URL) and start again")


class Database:
    """Engine plus a session factory; `session()` commits on success and rolls back on error.

    On Postgres every session runs as `autopilot_app` under row-level security: it sees the
    rows of the tenant it names (`session("acme")`), or all of them only when it says so
    (`session(ALL_TENANTS)`); a session that names no tenant sees none. So a query that forgets
    its `WHERE tenant_id = ...` cannot read or write another tenant's rows.
    """

    def __init__(self, settings: Settings) -> None:
        self.engine = make_engine(settings)
        if self.engine.dialect.name == "postgresql":
            self._run_as_app_role(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._settings = settings

    @staticmethod
    def _run_as_app_role(engine: Engine) -> None:
        @event.listens_for(engine, "connect")
        def _set_role(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (APP_ROLE,))
            if cur.fetchone() is not None:  # absent only before the first migration
                cur.execute(f"SET ROLE {APP_ROLE}")
            cur.close()
            dbapi_conn.commit()

    def migration_engine(self) -> Engine:
        """An engine as the connecting (owner) role, for migrations only."""
        return make_engine(self._settings)

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @contextmanager
    def session(self, tenant_id: str | None = None) -> Iterator[Session]:
        with self._sessions() as session:
            try:
                if tenant_id is not None and self.is_postgres:
                    session.execute(text("SELECT set_config('app.tenant_id', :t, true)"),
                                    {"t": tenant_id})
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def dispose(self) -> None:
        self.engine.dispose()
