"""The kill switch for autonomous writes: an environment setting plus a persistent switch,
global and per tenant, that can be flipped at run time.

Autonomous writes are enabled only when all three agree: `AUTONOMY_ENABLED` (off by default
when `AUTOPILOT_ENV=production`), the global switch and the tenant's switch (both on unless
flipped). When off, the policy gate sees `autonomous_writes_enabled = false` and the
`KILL_SWITCH` policy turns every would-be ALLOW of a write into REQUIRE_APPROVAL: runs go on
in suggest mode. The switch is read at every decision, including the re-check just before
each write, so flipping it holds calls that were already queued.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from autopilot.db import ALL_TENANTS, Database
from autopilot.ledger import Ledger
from autopilot.models import AutonomySwitch

GLOBAL = "global"
PLATFORM_TENANT = "_platform"  # ledger chain of global controls


@dataclass
class SwitchState:
    enabled: bool
    env_enabled: bool
    global_enabled: bool
    tenant_enabled: bool
    why: str


class KillSwitch:
    def __init__(self, db: Database, ledger: Ledger, env_enabled: bool) -> None:
        self.db = db
        self.ledger = ledger
        self.env_enabled = env_enabled

    def state(self, tenant_id: str, session: Session | None = None) -> SwitchState:
        """The switch for a tenant (inside the caller's transaction when given one)."""
        if session is None:
            with self.db.session(tenant_id) as s:
                return self.state(tenant_id, s)
        rows = {r.scope: r for r in session.scalars(select(AutonomySwitch).where(
            AutonomySwitch.scope.in_([GLOBAL, tenant_id])))}
        g, t = rows.get(GLOBAL), rows.get(tenant_id)
        g_on, t_on = (g.enabled if g else True), (t.enabled if t else True)
        why = []
        if not self.env_enabled:
            why.append("AUTONOMY_ENABLED is off")
        if not g_on and g is not None:
            why.append(f"switched off globally by {g.changed_by}: {g.reason}")
        if not t_on and t is not None:
            why.append(f"switched off for {tenant_id} by {t.changed_by}: {t.reason}")
        return SwitchState(self.env_enabled and g_on and t_on, self.env_enabled, g_on, t_on,
                           "; ".join(why))

    def enabled(self, tenant_id: str, session: Session | None = None) -> bool:
        return self.state(tenant_id, session).enabled

    def set(self, scope: str, enabled: bool, *, by: str, reason: str) -> None:
        """Flip the global switch (`scope="global"`) or a tenant's; ledgered as CONTROL."""
        if not by.strip():
            raise ValueError("flipping the kill switch needs the name of who does it")
        with self.db.session(ALL_TENANTS) as s:  # the global row and the platform chain
            row = s.get(AutonomySwitch, scope)
            if row is None:
                s.add(AutonomySwitch(scope=scope, enabled=enabled, reason=reason, changed_by=by,
                                     changed_at=datetime.now(UTC)))
            else:
                row.enabled, row.reason, row.changed_by = enabled, reason, by
                row.changed_at = datetime.now(UTC)
            self.ledger.append(s, tenant_id=PLATFORM_TENANT if scope == GLOBAL else scope,
                               event_type="CONTROL",
                               payload={"control": "kill_switch", "scope": scope,
                                        "autonomous_writes": "on" if enabled else "off",
                                        "by": by, "reason": reason})
