"""Structured logs (structlog) on stderr, so command output on stdout stays machine-readable.

Every event passes the PII redactor before it is rendered, and carries the trace id bound
for the current run (`bind_trace`), so a log line can be joined to the ledger.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from autopilot.privacy import redact

_configured = False


def _redact(_logger: Any, _method: str, event: MutableMapping[str, Any]
            ) -> MutableMapping[str, Any]:
    return {k: (v if k in ("event", "level", "timestamp") else redact(v))
            for k, v in event.items()}


def configure_logging(level: str = "WARNING") -> None:
    """Once per process; `AUTOPILOT_LOG_LEVEL` (default WARNING) picks what is shown."""
    global _configured
    if _configured:
        return
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars,
                    structlog.processors.add_log_level,
                    structlog.processors.TimeStamper(fmt="iso", utc=True),
                    _redact,
                    structlog.dev.ConsoleRenderer(colors=False)],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.WARNING)),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True)
    _configured = True


def bind_trace(trace_id: str, thread_id: str) -> None:
    """Attach the run's trace and thread ids to every log line of this context."""
    structlog.contextvars.bind_contextvars(trace_id=trace_id, thread_id=thread_id)
