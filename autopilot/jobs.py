"""The job queue: graph steps, scheduler ticks and housekeeping as procrastinate tasks.

One interface, two connectors. On Postgres the jobs live in procrastinate's tables (created by
migration 0007) and any number of `autopilot worker` processes share them: a job's `lock` is
its run id, so one run never advances in two places at once; failures retry with exponential
backoff; workers heartbeat, and the housekeeping task hands the jobs of a worker that stopped
heartbeating (SIGKILL, lost host) back to the queue. On the embedded SQLite default the same
tasks run in-process on procrastinate's in-memory connector; there the durable record is the
`runs` table, and start-up re-queues every unfinished run from it.

Advancing a run is always `Runner.resume`, which continues from the last checkpoint, and every
write carries an idempotency key, so a job that runs twice (a retry, a recovered job) never
repeats a side effect.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import procrastinate
import structlog
from croniter import croniter
from procrastinate.exceptions import AlreadyEnqueued, UniqueViolation
from procrastinate.job_context import JobContext
from procrastinate.jobs import Status
from procrastinate.testing import InMemoryConnector
from sqlalchemy import select

from autopilot.config import Settings
from autopilot.db import ALL_TENANTS
from autopilot.models import Run
from graphs import autopilots
from graphs.trigger import TriggerError

if TYPE_CHECKING:
    from autopilot.runtime import Runner

log = structlog.get_logger("autopilot.jobs")
T = TypeVar("T")
# Runs in these states need a job to move on (needs_approval waits for a person instead).
RESUMABLE = ("queued", "running", "executing", "failed_retryable")


def schedule_for(settings: Settings, graph: str) -> str:
    """The cron of an autopilot's scheduler tick: `AUTOPILOT_SCHEDULES`, else its default."""
    return settings.schedules.get(graph) or autopilots()[graph].schedule


class JobQueue:
    """The procrastinate app with our tasks; `runner` must be bound where jobs execute."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.embedded = not settings.uses_postgres
        connector: Any = (InMemoryConnector() if self.embedded
                          else procrastinate.PsycopgConnector(conninfo=settings.postgres_conninfo))
        self.app = procrastinate.App(connector=connector)
        self.runner: Runner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._worker: asyncio.Task[None] | None = None
        # procrastinate counts retries after the first attempt; 0 would mean "no limit".
        self.retry: procrastinate.RetryStrategy | None = (
            procrastinate.RetryStrategy(max_attempts=settings.job_max_attempts - 1,
                                        exponential_wait=settings.job_retry_wait_s)
            if settings.job_max_attempts > 1 else None)
        self._register()

    # ------------------------------------------------------------------ tasks

    def _register(self) -> None:
        app, settings = self.app, self.settings

        @app.task(name="advance_run", pass_context=True, retry=self.retry or False)
        def advance_run(context: JobContext, thread_id: str) -> None:
            """Move a run on from its last checkpoint to its next stop (approval or end)."""
            runner = self._bound()
            try:
                runner.resume(thread_id)
            except Exception as exc:
                assert context.job is not None
                again = (self.retry.get_retry_decision(exception=exc, job=context.job)
                         if self.retry else None)
                log.warning("run_step_failed", thread_id=thread_id, error=str(exc),
                            attempt=context.job.attempts + 1, will_retry=again is not None)
                runner.mark_failed(thread_id, f"{type(exc).__name__}: {exc}",
                                   retryable=again is not None)
                raise

        @app.task(name="scheduler_tick", queueing_lock="scheduler_tick")
        def scheduler_tick(timestamp: int, graph: str) -> None:
            """Run an autopilot's trigger detectors over what changed since the last tick."""
            until = datetime.fromtimestamp(timestamp, UTC)
            since = datetime.fromtimestamp(
                croniter(schedule_for(settings, graph), timestamp).get_prev(float), UTC)
            self.tick(graph, since=since, until=until)

        for graph in autopilots():
            app.periodic(cron=schedule_for(settings, graph), periodic_id=f"tick:{graph}",
                         task_kwargs={"graph": graph})(scheduler_tick)

        every = max(1, min(30, settings.job_stale_timeout_ms // 3000))

        @app.periodic(cron=f"* * * * * */{every}", periodic_id="housekeeping")
        @app.task(name="housekeeping", queueing_lock="housekeeping")
        async def housekeeping(timestamp: int) -> None:
            """Recover stalled jobs and orphaned runs; expire approvals past their TTL."""
            await self.recover()
            runner = self._bound()
            expired = await asyncio.to_thread(runner.expire_approvals)
            if expired:
                log.info("approvals_expired", approvals=expired)

        self.advance_task = advance_run
        self.tick_task = scheduler_tick

    def _bound(self) -> Runner:
        if self.runner is None:
            raise RuntimeError("no runner bound to this job queue (worker not started)")
        return self.runner

    # ------------------------------------------------------------------ operations

    async def defer_advance_async(self, thread_id: str) -> bool:
        """Queue one step of a run; False if a step of it is already waiting in the queue."""
        try:
            await self.advance_task.configure(
                lock=thread_id, queueing_lock=f"advance:{thread_id}",
            ).defer_async(thread_id=thread_id)
        except AlreadyEnqueued:
            return False
        return True

    def defer_advance(self, thread_id: str) -> bool:
        return self._call(self.defer_advance_async(thread_id))

    async def recover(self) -> None:
        """Give the jobs of dead workers back to the queue and re-queue every run that should
        be moving but has no job (its job was lost: in-memory queue restarted, or a crash
        between recording a decision and queueing its step). Never raises: it runs on every
        worker, periodically, and one bad row must not stop a worker."""
        stale_s = self.settings.job_stale_timeout_ms / 1000
        manager = self.app.job_manager
        try:
            for job in await manager.get_stalled_jobs(seconds_since_heartbeat=stale_s):
                log.warning("job_recovered", job_id=job.id, task=job.task_name, lock=job.lock)
                try:
                    await manager.retry_job(job)
                except UniqueViolation:  # the same step is already queued again: it does it
                    assert job.id is not None
                    await manager.finish_job_by_id_async(job.id, status=Status.FAILED,
                                                         delete_job=False)
            runner = self._bound()
            cutoff = datetime.now(UTC) - timedelta(seconds=stale_s)

            def orphans() -> list[str]:
                with runner.services.db.session(ALL_TENANTS) as s:
                    return list(s.scalars(select(Run.thread_id).where(
                        Run.status.in_(RESUMABLE), Run.updated_at < cutoff)))

            for thread_id in await asyncio.to_thread(orphans):
                pending = await manager.list_jobs_async(lock=thread_id)
                if any(j.status in ("todo", "doing") for j in pending):
                    continue  # a job holds or awaits it: not an orphan, just slow
                if await self.defer_advance_async(thread_id):
                    log.info("run_requeued", thread_id=thread_id)
        except Exception as exc:  # noqa: BLE001 - logged; the next tick tries again
            log.error("recovery_failed", error=f"{type(exc).__name__}: {exc}")

    async def requeue_unfinished(self) -> int:
        """Embedded start-up: the in-memory queue is empty, so queue every unfinished run."""
        runner = self._bound()

        def unfinished() -> list[str]:
            with runner.services.db.session(ALL_TENANTS) as s:
                return list(s.scalars(select(Run.thread_id).where(Run.status.in_(RESUMABLE))
                                      .order_by(Run.created_at)))

        count = 0
        for thread_id in await asyncio.to_thread(unfinished):
            count += await self.defer_advance_async(thread_id)
        return count

    def tick(self, graph: str, *, since: datetime | None = None,
             until: datetime | None = None) -> list[str]:
        """Run a graph's detectors and queue a run per new trigger; returns the new run ids.
        Repeated triggers find their existing run through the dedupe key."""
        runner = self._bound()
        spec = autopilots()[graph]
        if spec.detect is None:
            return []
        until = until or datetime.now(UTC)
        with runner.services.db.session(ALL_TENANTS) as s:
            events = spec.detect(s, since, until)
        started = []
        for event in events:
            try:
                view, created = runner.enqueue(graph, event)
            except TriggerError as exc:  # a detector bug must not stop the other triggers
                log.error("detector_event_invalid", graph=graph, error=str(exc))
                continue
            if created:
                started.append(view.thread_id)
                if self._loop is not None:
                    self.defer_advance(view.thread_id)
        log.info("scheduler_tick", graph=graph, since=since, until=until,
                 triggers=len(events), new_runs=len(started))
        return started

    # ------------------------------------------------------------------ lifecycle

    def worker_options(self, *, in_thread: bool) -> dict[str, Any]:
        s = self.settings
        stale = s.job_stale_timeout_ms / 1000
        return {"concurrency": s.max_concurrent_jobs,
                "fetch_job_polling_interval": s.job_poll_interval_ms / 1000,
                "stalled_worker_timeout": stale,
                "update_heartbeat_interval": max(0.2, min(10.0, stale / 3)),
                "shutdown_graceful_timeout": 30.0,
                "install_signal_handlers": not in_thread,
                "listen_notify": True}

    def start(self, *, worker: bool) -> None:
        """Open the queue on a background event loop; with `worker`, run jobs here too."""
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="autopilot-jobs",
                                        daemon=True)
        self._thread.start()
        self._call(self._open())
        if worker:
            self.start_worker()

    def start_worker(self) -> None:
        """Run jobs on the started queue's loop (embedded: after re-queueing unfinished runs)."""
        if self._loop is None:
            raise RuntimeError("the job queue is not started")
        if self.embedded:
            self._call(self.requeue_unfinished())
        self._worker = self._call(self._spawn_worker())

    async def _spawn_worker(self) -> asyncio.Task[None]:
        return asyncio.create_task(
            self.app.run_worker_async(**self.worker_options(in_thread=True)),
            name="autopilot-worker")

    async def _stop_worker(self, task: asyncio.Task[None]) -> None:
        task.cancel()  # procrastinate's graceful stop: running jobs get their grace period
        with contextlib.suppress(asyncio.CancelledError):
            await task

    def stop(self) -> None:
        if self._loop is None:
            return
        if self._worker is not None:
            self._call(self._stop_worker(self._worker))
            self._worker = None
        self._call(self.app.close_async())
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._loop = None

    async def _open(self) -> None:
        await self.app.open_async()  # an awaitable context, not a coroutine

    async def run_worker(self) -> None:
        """Foreground worker (`autopilot worker`): SIGINT/SIGTERM stop it gracefully."""
        self._loop = asyncio.get_running_loop()
        async with self.app.open_async():
            if self.embedded:
                await self.requeue_unfinished()
            await self.recover()
            await self.app.run_worker_async(**self.worker_options(in_thread=False))

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._loop is None:
            raise RuntimeError("the job queue is not started")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=90)
