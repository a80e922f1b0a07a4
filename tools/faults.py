"""Sandbox fault injection: make a tool fail or stall on purpose to exercise retries and crashes.

Configured by `AUTOPILOT_SANDBOX_FAULTS` (JSON) or programmatically in tests, e.g.
`{"dispatch_vendor": {"transient": 2}}` fails the next two calls with a transient error;
`{"create_work_order": {"delay_after_s": 30}}` stalls after the write has committed.
"""

from __future__ import annotations

import json
import threading
import time

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tools.registry import PermanentToolError, TransientToolError


class ToolFault(BaseModel):
    model_config = ConfigDict(extra="forbid")
    transient: int = Field(default=0, ge=0, description="fail this many next calls, retryably")
    permanent: bool = False
    delay_before_s: float = Field(default=0.0, ge=0)
    delay_after_s: float = Field(default=0.0, ge=0)


class SandboxFaults:
    def __init__(self, faults: dict[str, ToolFault] | None = None) -> None:
        self._faults = dict(faults or {})
        self._lock = threading.Lock()

    @classmethod
    def from_json(cls, raw: str) -> SandboxFaults:
        if not raw.strip():
            return cls()
        try:
            data = json.loads(raw)
            return cls({tool: ToolFault.model_validate(v) for tool, v in data.items()})
        except (ValueError, ValidationError, AttributeError) as exc:
            raise ValueError(f"AUTOPILOT_SANDBOX_FAULTS is not valid: {exc}") from exc

    def set(self, tool: str, **fault: object) -> None:
        with self._lock:
            self._faults[tool] = ToolFault.model_validate(fault)

    def before_call(self, tool: str) -> None:
        with self._lock:
            fault = self._faults.get(tool)
            if fault is None:
                return
            if fault.permanent:
                raise PermanentToolError(tool, "backend rejected the request (injected fault)")
            if fault.transient > 0:
                fault.transient -= 1
                raise TransientToolError(tool, "backend timed out (injected fault)")
            delay = fault.delay_before_s
        if delay:
            time.sleep(delay)

    def after_commit(self, tool: str) -> None:
        fault = self._faults.get(tool)
        if fault is not None and fault.delay_after_s:
            time.sleep(fault.delay_after_s)
