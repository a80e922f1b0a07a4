"""Shared runtime of the governed autopilots: settings, storage, runner, CLI."""
