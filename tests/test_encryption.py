"""Checkpoints encrypted at rest with LangGraph's EncryptedSerializer (LANGGRAPH_AES_KEY)."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from tests.conftest import RunnerFactory
from tests.helpers import approve_all, issue

KEY = "0123456789abcdef0123456789abcdef"  # 32 bytes: AES-256
SECRET = "Water heater is broken, no hot water since yesterday. Gate code 4417."


def _checkpoint_blobs(env: dict[str, str]) -> bytes:
    path = Path(env["AUTOPILOT_DATA_DIR"]) / "checkpoints.sqlite"
    with closing(sqlite3.connect(path)) as conn:
        rows = conn.execute("SELECT checkpoint FROM checkpoints").fetchall()
        rows += conn.execute("SELECT value FROM writes").fetchall()
    return b"".join(r[0] for r in rows if r[0])


def test_checkpoints_are_unreadable_without_the_key(
        sqlite_env: dict[str, str], open_runner: RunnerFactory) -> None:
    env = {**sqlite_env, "LANGGRAPH_AES_KEY": KEY}
    runner = open_runner(env)
    view = runner.submit("maintenance", issue(1, unit="P-FLATBUSH-3B", text=SECRET))
    assert view.status == "needs_approval"  # state round-trips through the cipher
    done = runner.decide(view.thread_id, approve_all(view), reviewer="maria@acme.example")
    assert done.status == "completed"
    blobs = _checkpoint_blobs(env)
    assert blobs and b"Gate code 4417" not in blobs and b"Water heater" not in blobs
    wrong = open_runner({**env, "LANGGRAPH_AES_KEY": "f" * 32})
    with pytest.raises(ValueError):  # the MAC check fails: tampered or wrong key
        wrong.view(view.thread_id)


def test_plaintext_checkpoints_without_a_key(sqlite_env: dict[str, str],
                                             open_runner: RunnerFactory) -> None:
    runner = open_runner(sqlite_env)
    runner.submit("maintenance", issue(2, unit="P-FLATBUSH-3B", text=SECRET))
    assert b"Gate code 4417" in _checkpoint_blobs(sqlite_env)


def test_a_bad_key_length_is_refused(sqlite_env: dict[str, str]) -> None:
    from autopilot.checkpoint import serializer
    from tests.conftest import make_settings

    with pytest.raises(ValueError, match="16, 24 or 32 bytes"):
        serializer(make_settings({**sqlite_env, "LANGGRAPH_AES_KEY": "short"}))
