"""Request-scoped access to the process's runner and job queue."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from autopilot.jobs import JobQueue
from autopilot.runtime import Runner


def _runner(request: Request) -> Runner:
    return request.app.state.runner  # type: ignore[no-any-return]


def _queue(request: Request) -> JobQueue:
    return request.app.state.queue  # type: ignore[no-any-return]


RunnerDep = Annotated[Runner, Depends(_runner)]
QueueDep = Annotated[JobQueue, Depends(_queue)]
