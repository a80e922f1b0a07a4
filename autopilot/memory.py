"""Scoped memory (seed 001 section 2.4): context snapshots and learned preferences per
property, resident, vendor or account, kept in LangGraph's store (`PostgresStore` on Postgres,
`SqliteStore` on the embedded default).

Graphs read it through the `recall_memory` read tool and change it only through the
`remember` write tool (tools/memory.py), so every read is evidence and every write is gated,
exactly-once and on the ledger like any other. The same store is handed to the compiled graphs
(`runtime.store`), so a LangGraph host sees the same memory.
"""

from __future__ import annotations

import sqlite3
from typing import Any, Literal

from langgraph.store.base import BaseStore

from autopilot.config import Settings

Scope = Literal["property", "resident", "vendor", "account"]
_SETUP_LOCK_ID = 7_310_2028


def namespace(tenant_id: str, scope: str, scope_id: str) -> tuple[str, ...]:
    """Memory is always inside one tenant: the tenant is the first namespace label."""
    return ("memory", tenant_id, scope, scope_id)


class MemoryBackend:
    """The store plus what it holds open (a SQLite connection or a Postgres pool)."""

    def __init__(self, settings: Settings) -> None:
        self._close: Any
        if settings.uses_postgres:
            import psycopg
            from langgraph.store.postgres import PostgresStore
            from psycopg.rows import dict_row
            from psycopg_pool import ConnectionPool

            with psycopg.connect(settings.postgres_conninfo, autocommit=True) as conn:
                conn.execute("SELECT pg_advisory_lock(%s)", (_SETUP_LOCK_ID,))
                try:
                    with psycopg.connect(settings.postgres_conninfo, autocommit=True,
                                         prepare_threshold=0, row_factory=dict_row) as setup:
                        PostgresStore(setup).setup()
                finally:
                    conn.execute("SELECT pg_advisory_unlock(%s)", (_SETUP_LOCK_ID,))
            pool = ConnectionPool(settings.postgres_conninfo, min_size=1, max_size=4, open=True,
                                  kwargs={"autocommit": True, "prepare_threshold": 0,
                                          "row_factory": dict_row})
            self.store: BaseStore = PostgresStore(pool)
            self._close = pool.close
        else:
            from langgraph.store.sqlite import SqliteStore

            settings.data_dir.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str((settings.data_dir / "memory.sqlite").resolve()),
                                   check_same_thread=False, isolation_level=None, timeout=30)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA busy_timeout=30000")
            store = SqliteStore(conn)
            store.setup()
            self.store = store
            self._close = conn.close

    def close(self) -> None:
        self._close()
