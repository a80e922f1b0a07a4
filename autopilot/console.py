"""Console output shared by the CLI commands: stdout, stderr, and the one way to fail."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.console import Console

out = Console()
err = Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print an error (exit code 2 = bad input) and return the Exit to raise."""
    err.print(f"[bold red]error:[/bold red] {message}", highlight=False)
    return typer.Exit(code)


def load_json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise fail(f"{what} is not valid JSON: {exc}") from None
