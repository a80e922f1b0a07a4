"""Reason codes are a stable, documented interface: every shipped code has a row in
docs/policy.md or an autopilot's page (docs/autopilots/<name>.md), and the documented codes
all still exist."""

from __future__ import annotations

import re
from pathlib import Path

from policy.engine import DEFAULT_DENY, NO_AUTO_PERMIT, POLICY_ERROR, PolicyEngine

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_every_reason_code_is_documented_and_every_documented_code_exists() -> None:
    shipped = set(re.findall(r'@id\("(\w+)"\)', PolicyEngine(strict=True).cedar))
    shipped |= {DEFAULT_DENY, NO_AUTO_PERMIT, POLICY_ERROR}
    pages = [DOCS / "policy.md", *sorted((DOCS / "autopilots").glob("*.md"))]
    documented = {code for page in pages for code in re.findall(
        r"^\| `([A-Z][A-Z0-9_]+)` \|", page.read_text(), re.MULTILINE)}
    assert shipped - documented == set(), "undocumented reason codes"
    assert documented - shipped == set(), "documented codes that no policy emits"
