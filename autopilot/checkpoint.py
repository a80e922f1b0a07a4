"""Checkpointer factory: SQLite under the data dir by default, PostgresSaver on Postgres."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.serde.base import SerializerProtocol
from langgraph.checkpoint.serde.encrypted import EncryptedSerializer

from autopilot.config import Settings

_SETUP_LOCK_ID = 7_310_2027


def serializer(settings: Settings) -> SerializerProtocol | None:
    """LangGraph's `EncryptedSerializer` (AES-EAX) when `LANGGRAPH_AES_KEY` is set: checkpoints
    are then unreadable at rest without the key."""
    if not settings.aes_key:
        return None
    key = settings.aes_key.encode()
    if len(key) not in (16, 24, 32):
        raise ValueError("LANGGRAPH_AES_KEY must be 16, 24 or 32 bytes long")
    return EncryptedSerializer.from_pycryptodome_aes(key=key)


@contextmanager
def open_checkpointer(settings: Settings) -> Iterator[BaseCheckpointSaver]:
    """Yield a ready checkpointer (tables created) and close its connections afterwards."""
    serde = serializer(settings)
    if settings.uses_postgres:
        import psycopg
        from langgraph.checkpoint.postgres import PostgresSaver
        from psycopg.rows import dict_row
        from psycopg_pool import ConnectionPool

        with psycopg.connect(settings.postgres_conninfo, autocommit=True) as conn:
            # Serialise first-time setup across processes that start together.
            conn.execute("SELECT pg_advisory_lock(%s)", (_SETUP_LOCK_ID,))
            try:
                with psycopg.connect(settings.postgres_conninfo, autocommit=True,
                                     prepare_threshold=0, row_factory=dict_row) as setup_conn:
                    PostgresSaver(setup_conn).setup()
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (_SETUP_LOCK_ID,))
        pool = ConnectionPool(
            settings.postgres_conninfo, min_size=1, max_size=4, open=True,
            kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
        )
        try:
            yield PostgresSaver(pool, serde=serde)
        finally:
            pool.close()
    else:
        from langgraph.checkpoint.sqlite import SqliteSaver

        settings.data_dir.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(settings.checkpoint_path), check_same_thread=False,
                               timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")  # same durability trade-off as the app DB
        conn.execute("PRAGMA busy_timeout=30000")
        saver = SqliteSaver(conn, serde=serde)
        saver.setup()
        try:
            yield saver
        finally:
            conn.close()
