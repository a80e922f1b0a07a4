"""Trigger builders shared by the tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

TENANT = "acme"


def issue(n: int | str, unit: str = "P-GRAND-2B", text: str = "Kitchen sink is leaking.",
          tenant: str = TENANT, at: datetime | None = None) -> dict[str, Any]:
    """A resident's report in `unit` (resident id follows the seed's R-<property>-<unit>)."""
    return {"event_id": f"evt-{n}", "tenant_id": tenant, "source": "test",
            "event_type": "tenant_issue",
            "occurred_at": (at or datetime.now(UTC)).isoformat(),
            "payload": {"message_id": f"MSG-{n}", "unit_id": unit,
                        "resident_id": "R-" + unit[2:], "text": text}}


def pm_due(n: int | str, schedule: str, tenant: str = TENANT) -> dict[str, Any]:
    return {"event_id": f"evt-{n}", "tenant_id": tenant, "source": "test",
            "event_type": "pm_due", "occurred_at": datetime.now(UTC).isoformat(),
            "payload": {"pm_schedule_id": schedule}}


def approve_all(view_or_request: Any) -> dict[str, Any]:
    request = getattr(view_or_request, "pending_approval", None)
    request = request["request"] if request else view_or_request
    return {"decisions": [{"type": "approve"} for _ in request["action_requests"]]}
