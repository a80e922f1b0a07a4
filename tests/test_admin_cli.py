"""`autopilot keys ...` and `autopilot db ...`: a minted key works against the app until it is
revoked and only its hash is ever stored; `db current` reads without migrating and
`db upgrade` brings any database to head.

Commands run in-process through the real `autopilot` app (typer's CliRunner) for speed; one
test runs the installed entry point in a child process.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from alembic import command
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from api.auth import hash_key
from autopilot.db import SchemaOutdated, alembic_config, check_schema, make_engine, schema_revision
from tests.conftest import make_settings
from tests.helpers import TENANT, query_app_db, run_cli


def cli(env: dict[str, str], *args: str) -> Any:
    """`autopilot ARGS` in this process, with `env` as the environment (stdout and stderr
    kept apart, like a terminal)."""
    from autopilot.cli import app

    return CliRunner().invoke(app, list(args), env={**env, "COLUMNS": "200"})


def _head(env: dict[str, str]) -> tuple[str | None, str]:
    engine = make_engine(make_settings(env))
    try:
        return schema_revision(engine)
    finally:
        engine.dispose()


def test_keys_create_list_revoke(backend_env: dict[str, str]) -> None:
    env = backend_env
    made = cli(env, "keys", "create", "--tenant", TENANT, "--subject", "ops@acme.example",
                   "--role", "viewer", "--role", "admin", "--as", "root")
    assert made.exit_code == 0, made.output
    key = made.stdout.strip()
    assert key.startswith("ap_") and len(key.splitlines()) == 1
    assert "not stored" in made.stderr and "shown once" in made.stderr
    key_id = key.split("_")[1]

    other = cli(env, "keys", "create", "--tenant", "other", "--subject", "bot",
                    "--role", "ingest")
    assert other.exit_code == 0, other.stderr

    # The database holds the hash, never the key or its secret part.
    rows = query_app_db(env, "SELECT * FROM api_keys")
    assert len(rows) == 2
    dump = repr(rows)
    assert key not in dump and key.split("_", 2)[2] not in dump
    assert hash_key(key) in dump

    listed = cli(env, "keys", "list", "--tenant", TENANT, "--json")
    assert listed.exit_code == 0, listed.stderr
    [row] = json.loads(listed.stdout)
    assert (row["id"], row["tenant"], row["subject"], row["roles"], row["created_by"],
            row["revoked_at"]) == (key_id, TENANT, "ops@acme.example", ["viewer", "admin"],
                                   "root", None)
    assert "hash" not in json.dumps(row) and hash_key(key) not in listed.stdout
    table = cli(env, "keys", "list")
    assert table.exit_code == 0 and key_id in table.stdout and "other" in table.stdout
    assert hash_key(key) not in table.stdout

    settings = make_settings(env)  # no AUTOPILOT_API_KEYS: the stored key is the only one
    auth = {"Authorization": f"Bearer {key}"}
    with TestClient(create_app(settings, worker=False)) as client:
        assert client.get("/v1/autonomy", headers=auth).status_code == 200  # admin role
        assert client.get("/v1/policies", headers=auth).status_code == 200
        revoked = cli(env, "keys", "revoke", key_id)
        assert revoked.exit_code == 0, revoked.stderr
        assert client.get("/v1/policies", headers=auth).status_code == 401
    again = cli(env, "keys", "revoke", key_id)
    assert again.exit_code == 1 and "already revoked" in again.stderr
    after = json.loads(cli(env, "keys", "list", "--tenant", TENANT, "--json").stdout)
    assert after[0]["revoked_at"] is not None


def test_keys_create_refuses_bad_input_naming_the_option(sqlite_env: dict[str, str]) -> None:
    bad_role = cli(sqlite_env, "keys", "create", "--tenant", TENANT, "--subject", "x",
                       "--role", "boss")
    assert bad_role.exit_code == 1
    assert "--role" in bad_role.stderr and "unknown role" in bad_role.stderr
    bad_tenant = cli(sqlite_env, "keys", "create", "--tenant", "no spaces", "--subject",
                         "x", "--role", "viewer")
    assert bad_tenant.exit_code == 1 and "--tenant" in bad_tenant.stderr
    assert len(bad_tenant.stderr.strip().splitlines()) == 1
    assert cli(sqlite_env, "keys", "revoke", "nope").exit_code == 1


def test_db_current_and_upgrade_on_a_fresh_sqlite_file(sqlite_env: dict[str, str]) -> None:
    before, head = _head(sqlite_env)  # opening creates an empty SQLite file
    assert before is None
    engine = make_engine(make_settings(sqlite_env))
    try:
        with pytest.raises(SchemaOutdated, match="autopilot db upgrade"):
            check_schema(engine)
    finally:
        engine.dispose()

    current = cli(sqlite_env, "db", "current")
    assert current.exit_code == 0, current.stderr
    assert "empty database" in current.stdout and head in current.stdout
    assert "autopilot db upgrade" in current.stdout
    assert cli(sqlite_env, "db", "current", "--check").exit_code == 1
    assert _head(sqlite_env)[0] is None  # reading did not migrate

    upgraded = cli(sqlite_env, "db", "upgrade")
    assert upgraded.exit_code == 0, upgraded.stderr
    assert "(empty database)" in upgraded.stdout and f"to {head}" in upgraded.stdout
    assert _head(sqlite_env) == (head, head)
    now = cli(sqlite_env, "db", "current", "--check")
    assert now.exit_code == 0 and "up to date" in now.stdout
    assert "already at" in cli(sqlite_env, "db", "upgrade").stdout


def test_db_upgrade_from_an_older_revision(sqlite_env: dict[str, str]) -> None:
    engine = make_engine(make_settings(sqlite_env))
    try:
        command.upgrade(alembic_config(engine), "0006")
    finally:
        engine.dispose()
    _, head = _head(sqlite_env)
    current = cli(sqlite_env, "db", "current")
    assert "current: 0006" in current.stdout and "behind" in current.stdout
    upgraded = cli(sqlite_env, "db", "upgrade")
    assert upgraded.exit_code == 0, upgraded.stderr
    assert f"from 0006 to {head}" in upgraded.stdout
    assert _head(sqlite_env) == (head, head)


@pytest.mark.slow
def test_entry_point_registers_keys_and_db(sqlite_env: dict[str, str]) -> None:
    current = run_cli(sqlite_env, "db", "current")
    assert current.returncode == 0 and "head:" in current.stdout, current.stderr
    bad = run_cli(sqlite_env, "keys", "create", "--tenant", TENANT, "--subject", "x",
                  "--role", "boss")
    assert bad.returncode == 1 and "--role" in bad.stderr
