"""`python -m autopilot` is the `autopilot` CLI."""

from autopilot.cli import app

app()
