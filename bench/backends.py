"""Where the benchmarks run: a temporary SQLite directory always, and a throw-away database
on the Postgres server of `DATABASE_URL` when it is a postgresql:// URL (dropped afterwards,
so the database named in the URL is never touched)."""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from autopilot.config import Settings


def _with_dbname(url: str, dbname: str) -> str:
    parts = urlsplit(url.replace("postgres://", "postgresql://", 1))
    return urlunsplit(parts._replace(path="/" + dbname))


@contextmanager
def scratch_postgres(url: str) -> Iterator[str]:
    """A fresh database on the server of `url`, dropped afterwards; yields its URL."""
    admin_url = url.replace("postgres://", "postgresql://", 1)
    name = f"ap_bench_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield _with_dbname(admin_url, name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                         .format(sql.Identifier(name)))


def postgres_url() -> str:
    url = os.environ.get("DATABASE_URL", "")
    return url if url.startswith(("postgresql://", "postgres://")) else ""


def backends() -> Iterator[tuple[str, Settings]]:
    """(label, settings) for SQLite, then Postgres if configured; each cleaned up after use."""
    with tempfile.TemporaryDirectory(prefix="ap-bench-") as tmp:
        yield "SQLite", Settings(AUTOPILOT_DATA_DIR=Path(tmp), DATABASE_URL="")
    if postgres_url():
        with scratch_postgres(postgres_url()) as url, \
                tempfile.TemporaryDirectory(prefix="ap-bench-") as tmp:
            yield "Postgres", Settings(AUTOPILOT_DATA_DIR=Path(tmp), DATABASE_URL=url)
