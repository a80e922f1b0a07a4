"""Structured logs (structlog) on stderr, so command output on stdout stays machine-readable.

Every event passes the PII redactor before it is rendered, and carries the trace id bound
for the current run (`bind_trace`) or HTTP request (`api.metrics`), so a log line can be joined
to the ledger. Lines are human-readable by default; `fmt="json"` renders one JSON object per
line instead, and `request_logger()` always does (access logs are for machines).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, Literal

import structlog

from autopilot.privacy import redact

_configured = False
# Our own identifiers, never personal data: kept verbatim (the phone-number rule would otherwise
# eat digit runs in a hex trace id, and the line could no longer be joined to the ledger).
_VERBATIM = frozenset({"event", "level", "timestamp", "trace_id", "thread_id"})


def _redact(_logger: Any, _method: str, event: MutableMapping[str, Any]
            ) -> MutableMapping[str, Any]:
    return {k: (v if k in _VERBATIM else redact(v)) for k, v in event.items()}


def _processors(fmt: Literal["console", "json"]) -> list[Any]:
    renderer: Any = (structlog.processors.JSONRenderer() if fmt == "json"
                     else structlog.dev.ConsoleRenderer(colors=False))
    return [structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact,
            renderer]


def configure_logging(level: str = "WARNING", fmt: Literal["console", "json"] = "console"
                      ) -> None:
    """Once per process; `AUTOPILOT_LOG_LEVEL` (default WARNING) picks what is shown."""
    global _configured
    if _configured:
        return
    structlog.configure(
        processors=_processors(fmt),
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.WARNING)),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True)
    _configured = True


def request_logger(name: str = "api.access") -> Any:
    """A logger that writes one JSON line per event to stderr, whatever the process-wide
    format and level: access logs are read by machines and are wanted even when the rest of
    the service logs only warnings. Same context (trace id) and redaction as every line."""
    return structlog.wrap_logger(structlog.PrintLogger(sys.stderr),
                                 processors=_processors("json"),
                                 wrapper_class=structlog.make_filtering_bound_logger(
                                     logging.INFO),
                                 logger_name=name)


def bind_trace(trace_id: str, thread_id: str) -> None:
    """Attach the run's trace and thread ids to every log line of this context."""
    structlog.contextvars.bind_contextvars(trace_id=trace_id, thread_id=thread_id)
