"""`autopilot keys ...` (API keys: mint, list, revoke) and `autopilot db ...` (schema
migrations), the operator commands around the HTTP service.

Keys: the plaintext is printed once at creation and never stored (only its SHA-256 hash is),
so a lost key is revoked and replaced, never recovered. `db` commands open the database with
`make_engine` directly instead of `Services.create`, which would migrate as a side effect:
`db current` must report an outdated schema, not silently fix it.
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import psycopg
import typer
from pydantic import ValidationError
from rich.table import Table
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from autopilot.config import Settings
from autopilot.console import err, fail, out
from autopilot.db import Database, make_engine, migrate, schema_revision

keys_app = typer.Typer(help="API keys for the HTTP API (only their hashes are stored).",
                       no_args_is_help=True)
db_app = typer.Typer(help="The database schema (Alembic migrations).", no_args_is_help=True)

_OPTION = {"tenant": "--tenant", "subject": "--subject", "roles": "--role"}


def _settings() -> Settings:
    try:
        return Settings()
    except Exception as exc:  # pydantic-settings names the variable
        raise fail(f"bad configuration: {exc}", code=1) from None


def _where(settings: Settings) -> str:
    return "DATABASE_URL" if settings.uses_postgres else f"SQLite in {settings.data_dir}"


@contextmanager
def _database() -> Iterator[Database]:
    """The app database at head (like every other writing command, keys migrate first)."""
    settings = _settings()
    try:
        db = Database(settings)
        owner = db.migration_engine()
        try:
            migrate(owner)
        finally:
            owner.dispose()
    except (SQLAlchemyError, psycopg.Error) as exc:
        raise fail(f"cannot open the database ({_where(settings)}): {exc}", code=1) from None
    try:
        yield db
    finally:
        db.dispose()


@contextmanager
def _owner_engine() -> Iterator[tuple[Engine, Settings]]:
    """An engine as the connecting (owner) role, with no migration on open."""
    settings = _settings()
    engine = make_engine(settings)
    try:
        yield engine, settings
    except (SQLAlchemyError, psycopg.Error) as exc:
        raise fail(f"database error ({_where(settings)}): {exc}", code=1) from None
    finally:
        engine.dispose()


# ---------------------------------------------------------------------- keys


@keys_app.command("create")
def create(
    tenant: Annotated[str, typer.Option(help="the tenant the key acts in (never changeable "
                                             "by a request)")],
    subject: Annotated[str, typer.Option(help="who or what uses the key, e.g. an e-mail "
                                              "address or a system name")],
    role: Annotated[list[str], typer.Option("--role", help="viewer, ingest, approver or "
                                                           "admin; repeat for several")],
    by: Annotated[str | None, typer.Option("--as", help="who mints it (default: OS user)")]
    = None,
) -> None:
    """Mint an API key and print it once: it is not stored and cannot be shown again."""
    from api.auth import KeyGrant, create_key

    try:
        grant = KeyGrant.model_validate({"tenant": tenant, "subject": subject,
                                         "roles": role})
    except ValidationError as exc:
        e = exc.errors()[0]
        field = _OPTION.get(str(e["loc"][0]), "--role") if e["loc"] else "--role"
        message = str(e["msg"]).removeprefix("Value error, ")
        raise fail(f"{field}: {message}", code=1) from None
    with _database() as db:
        key, row = create_key(db, grant, created_by=by or getpass.getuser())
    out.print(key, markup=False, highlight=False, soft_wrap=True)
    err.print(f"key {row.id} for {row.subject} in tenant {row.tenant_id} "
              f"({', '.join(row.roles)}). [bold yellow]Store it now:[/bold yellow] it is shown "
              "once and not stored (only its hash is); a lost key is revoked and replaced.",
              highlight=False)


@keys_app.command("list")
def list_cmd(
    tenant: Annotated[str | None, typer.Option(help="only this tenant's keys")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """API keys: id (the key's public prefix), tenant, subject, roles, created, revoked."""
    from api.auth import list_keys

    with _database() as db:
        rows = list_keys(db, tenant)
    if as_json:
        out.print_json(json.dumps([{
            "id": r.id, "prefix": f"ap_{r.id}_", "tenant": r.tenant_id, "subject": r.subject,
            "roles": r.roles, "created_by": r.created_by, "created_at": r.created_at.isoformat(),
            "revoked_at": r.revoked_at.isoformat() if r.revoked_at else None} for r in rows]))
        return
    if not rows:
        out.print("No API keys." + ("" if tenant else " Mint one with `autopilot keys create`."))
        return
    table = Table(title="API keys")
    for col in ("id", "key prefix", "tenant", "subject", "roles", "created", "revoked"):
        table.add_column(col)
    for r in rows:
        table.add_row(r.id, f"ap_{r.id}_…", r.tenant_id, r.subject, ", ".join(r.roles),
                      f"{r.created_at:%Y-%m-%d %H:%M}",
                      f"[red]{r.revoked_at:%Y-%m-%d %H:%M}[/red]" if r.revoked_at else "")
    out.print(table)


@keys_app.command("revoke")
def revoke(key_id: Annotated[str, typer.Argument(help="the key id (or the key itself)")]
           ) -> None:
    """Revoke a key: requests with it get 401 from then on."""
    from api.auth import revoke_key

    if key_id.startswith("ap_"):  # accept the key or its prefix: ap_<id>_<secret>
        key_id = key_id.split("_")[1] if key_id.count("_") >= 2 else key_id[3:]
    with _database() as db:
        revoked = revoke_key(db, key_id)
    if not revoked:
        raise fail(f"no active key {key_id!r} (unknown, or already revoked); see "
                   "`autopilot keys list`", code=1)
    out.print(f"key {key_id} revoked")


# ---------------------------------------------------------------------- db


@db_app.command("upgrade")
def upgrade() -> None:
    """Run the schema migrations up to the newest revision (safe to run again)."""
    with _owner_engine() as (engine, settings):
        before, head = schema_revision(engine)
        if before == head:
            out.print(f"database schema already at {head} ({_where(settings)})",
                      soft_wrap=True)
            return
        migrate(engine)
        after, _ = schema_revision(engine)
    out.print(f"database schema upgraded from {before or '(empty database)'} to {after} "
              f"({_where(settings)})", soft_wrap=True)


def _behind(engine: Engine, revision: str | None) -> str:
    """What to do about a schema that is not at head: upgrade it, or (when the database is
    newer than this code) upgrade the code instead."""
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    from autopilot.db import alembic_config

    if revision is None:
        return "empty database: run `autopilot db upgrade`"
    try:
        script = ScriptDirectory.from_config(alembic_config(engine))
        for part in revision.split("+"):  # one per migration branch
            script.get_revision(part)
    except CommandError:
        return (f"revision {revision} is unknown to this code (a newer release migrated "
                "this database): run that release, not an upgrade")
    return "behind this code: run `autopilot db upgrade`"


@db_app.command("current")
def current(check: Annotated[bool, typer.Option(
        "--check", help="exit 1 unless the schema is at head (for deploy scripts)")] = False
            ) -> None:
    """Print the database's schema revision and the newest one this code knows."""
    with _owner_engine() as (engine, settings):
        revision, head = schema_revision(engine)
    out.print(f"current: {revision or '(none: empty database)'}\nhead:    {head}",
              soft_wrap=True)
    if revision == head:
        out.print("up to date")
        return
    out.print(_behind(engine, revision))
    if check:
        raise typer.Exit(1)
