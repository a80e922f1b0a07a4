"""The kill switch over HTTP: read the three parts (environment, global, tenant) and flip the
caller's tenant switch.

Only the tenant's own switch is settable here: the global switch stops every tenant, so it
stays with the platform operators' `autopilot autonomy off --global` CLI, and the environment
part is deployment configuration (`AUTONOMY_ENABLED`). Every flip is ledgered as a CONTROL
event by `KillSwitch.set`, with the key's subject as who did it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from api.auth import Admin
from api.deps import RunnerDep
from api.errors import ERRORS, ApiError
from autopilot.killswitch import GLOBAL, PLATFORM_TENANT
from autopilot.models import AutonomySwitch
from autopilot.runtime import Runner

router = APIRouter(tags=["autonomy"], responses=ERRORS)


class SwitchOut(BaseModel):
    enabled: bool = Field(description="on unless someone switched it off")
    changed_by: str | None = Field(description="who flipped it last (None: never flipped)")
    changed_at: datetime | None
    reason: str | None = Field(description="why, as given when it was flipped")


class EnvironmentOut(BaseModel):
    name: str = Field(description="AUTOPILOT_ENV: development | production")
    autonomy_enabled: bool = Field(description="AUTONOMY_ENABLED (default: off in production)")


class AutonomyOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    tenant_id: str
    enabled: bool = Field(description="effective: autonomous writes run only when the "
                                      "environment, the global and the tenant switch are all on")
    why: str = Field(description="what turned it off, if anything")
    environment: EnvironmentOut
    global_: SwitchOut = Field(alias="global", description="every tenant; CLI only")
    tenant: SwitchOut = Field(description="this tenant; set with PUT /v1/autonomy")


class AutonomyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool = Field(description="false: every write waits for a person (suggest mode)")
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                             max_length=2000)] = Field(
        description="why; recorded on the switch and in the ledger")


def _switch(row: AutonomySwitch | None) -> SwitchOut:
    if row is None:
        return SwitchOut(enabled=True, changed_by=None, changed_at=None, reason=None)
    return SwitchOut(enabled=row.enabled, changed_by=row.changed_by, changed_at=row.changed_at,
                     reason=row.reason)


def autonomy_state(runner: Runner, tenant_id: str) -> AutonomyOut:
    """The effective state and both switch rows, read in one transaction."""
    services = runner.services
    with services.db.session(tenant_id) as s:
        state = services.kill_switch.state(tenant_id, s)
        g, t = s.get(AutonomySwitch, GLOBAL), s.get(AutonomySwitch, tenant_id)
        global_, tenant = _switch(g), _switch(t)
    return AutonomyOut(
        tenant_id=tenant_id, enabled=state.enabled, why=state.why,
        environment=EnvironmentOut(name=services.settings.environment,
                                   autonomy_enabled=state.env_enabled),
        global_=global_, tenant=tenant)


@router.get("/v1/autonomy", response_model=AutonomyOut,
            summary="Whether autonomous writes are on for this tenant, and why not")
def get_autonomy(caller: Admin, runner: RunnerDep) -> AutonomyOut:
    return autonomy_state(runner, caller.tenant_id)


@router.put("/v1/autonomy", response_model=AutonomyOut,
            summary="Switch autonomous writes off (or back on) for this tenant",
            description="Sets this tenant's switch only; it is read at every decision, so calls "
                        "already queued are re-checked before they write. The flip is ledgered "
                        "as a CONTROL event with the key's subject. The global switch (every "
                        "tenant) is not settable over HTTP: platform operators use "
                        "`autopilot autonomy off|on --global`.")
def put_autonomy(body: AutonomyIn, caller: Admin, runner: RunnerDep) -> AutonomyOut:
    tenant = caller.tenant_id
    if tenant.lower() in (GLOBAL, PLATFORM_TENANT):  # would flip every tenant's switch
        raise ApiError(403, "reserved_tenant", f"tenant id {tenant!r} is reserved; the global "
                       "switch is CLI only")
    try:
        runner.services.kill_switch.set(tenant, body.enabled, by=caller.id, reason=body.reason)
    except ValueError as exc:
        raise ApiError(422, "invalid_request", str(exc)) from None
    return autonomy_state(runner, tenant)
