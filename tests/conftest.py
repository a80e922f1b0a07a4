"""Fixtures: a fresh backend per test (SQLite data dir, or a fresh Postgres database).

Postgres comes from AUTOPILOT_TEST_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/test).
Without a server the Postgres tests skip, unless AUTOPILOT_REQUIRE_POSTGRES=1 (CI), which
turns a missing server into a failure.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from autopilot.checkpoint import open_checkpointer
from autopilot.config import Settings
from autopilot.runtime import Runner
from autopilot.seed import seed_tenant
from autopilot.services import Services
from tests.helpers import TENANT

ADMIN_URL = os.environ.get("AUTOPILOT_TEST_POSTGRES_URL",
                           "postgresql://postgres@127.0.0.1:5432/test")
REQUIRE_PG = os.environ.get("AUTOPILOT_REQUIRE_POSTGRES") == "1"


def _postgres_available() -> str | None:
    try:
        with psycopg.connect(ADMIN_URL, connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return str(exc)


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    problem = _postgres_available()
    if problem:
        if REQUIRE_PG:
            pytest.fail(f"AUTOPILOT_REQUIRE_POSTGRES=1 but Postgres is unreachable: {problem}")
        pytest.skip(f"Postgres unavailable: {problem}")
    return ADMIN_URL


@pytest.fixture
def fresh_postgres_url(postgres_admin_url: str) -> Iterator[str]:
    """A brand-new database on the server, dropped after the test."""
    name = f"ap_test_{secrets.token_hex(5)}"
    with psycopg.connect(postgres_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = postgres_admin_url.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with psycopg.connect(postgres_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


POLICY_TIME = "2026-11-18T19:00:00+00:00"


def settings_env(tmp_path: Path, database_url: str = "") -> dict[str, str]:
    """Environment for a child process (or Settings) pointing at this test's backend."""
    env = {**os.environ, "AUTOPILOT_DATA_DIR": str(tmp_path / "data"),
           "DATABASE_URL": database_url, "AUTOPILOT_RETRY_INITIAL_INTERVAL": "0.01",
           "AUTOPILOT_TENANT": TENANT,
           # Quiet hours must not depend on when the suite runs: a Wednesday, 14:00 in NY.
           "AUTOPILOT_POLICY_TIME": POLICY_TIME}
    env.pop("AUTOPILOT_SANDBOX_FAULTS", None)
    return env


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend_env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """Settings env for a fresh backend; parametrised over SQLite and Postgres."""
    url = request.getfixturevalue("fresh_postgres_url") if request.param == "postgres" else ""
    return settings_env(tmp_path, url)


@pytest.fixture
def sqlite_env(tmp_path: Path) -> dict[str, str]:
    return settings_env(tmp_path)


@pytest.fixture
def postgres_env(tmp_path: Path, fresh_postgres_url: str) -> dict[str, str]:
    return settings_env(tmp_path, fresh_postgres_url)


def make_settings(env: dict[str, str]) -> Settings:
    """Settings from a test env dict only (never from this process's own environment)."""
    aliases = [f.alias for f in Settings.model_fields.values() if f.alias]
    return Settings.model_validate({a: env[a] for a in aliases if a in env})


RunnerFactory = Callable[[dict[str, str]], Runner]


@pytest.fixture
def open_runner() -> Iterator[RunnerFactory]:
    """Open a seeded Runner on a backend env; everything is closed after the test."""
    stack: list[tuple[Services, object]] = []

    def factory(env: dict[str, str]) -> Runner:
        settings = make_settings(env)
        services = Services.create(settings)
        seed_tenant(services.db, TENANT)
        cm = open_checkpointer(settings)
        checkpointer = cm.__enter__()
        stack.append((services, cm))
        return Runner(services, checkpointer)

    yield factory
    for services, cm in reversed(stack):
        cm.__exit__(None, None, None)  # type: ignore[attr-defined]
        services.close()


@pytest.fixture
def runner(backend_env: dict[str, str], open_runner: RunnerFactory) -> Runner:
    """A seeded Runner on each backend (SQLite, and Postgres when available)."""
    return open_runner(backend_env)
