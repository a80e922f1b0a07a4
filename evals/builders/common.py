"""CSV helpers shared by the builders: extracts are plain CSV with `\n` line ends, so the
committed bytes do not depend on the platform."""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def write_csv(path: Path, rows: list[dict[str, Any]], fields: list[str]) -> None:
    """Write `fields` of each row (missing ones empty), header first."""
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=fields, lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, "") for k in fields})


def short_key(name: str) -> str:
    """An id fragment from a name: upper-case letters and digits, at most 20."""
    return re.sub(r"[^A-Z0-9]", "", name.upper())[:20]
