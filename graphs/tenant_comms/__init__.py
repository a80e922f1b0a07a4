"""The tenant comms autopilot (seed 001, workflow B) on the shared spine."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from autopilot.sandbox import tenant_comms as sandbox
from graphs.spine import AutopilotSpec
from graphs.tenant_comms import detect, playbook
from graphs.tenant_comms.events import EVENT_TYPES

# What each seeded demo message shows (autopilot/sandbox/tenant_comms.py DEMO_MESSAGES).
# Auto-intent replies go out on their own outside quiet hours; inside, a person sends them.
DEMO_STORIES = [
    "Autopay question: answered from the resident handbook (auto intent, grounded)",
    "Repair status: answered from the unit's open work order (auto intent, grounded)",
    "Dripping faucet: acknowledged and handed to maintenance (auto intent, grounded)",
    "Renewal question: answered from the renewal policy (auto intent, grounded)",
    "Package question where no package policy is on file: routed to staff, the draft waits "
    "for a person (COMMS_REPLY_UNGROUNDED)",
    "Late-fee dispute: not an auto intent; billing is notified, the draft waits for a person "
    "(INTENT_NOT_AUTO)",
    "Repair request with a legal threat: nothing goes out until a manager decides "
    "(LEGAL_KEYWORD)",
]


def demo(tenant_id: str, now: datetime) -> list[tuple[str, dict[str, Any]]]:
    """The seeded morning inbox, one trigger per message, then the first one again."""
    def event(n: int, message_id: str, resident_id: str) -> dict[str, Any]:
        return {"event_id": f"comms-evt-{n}", "tenant_id": tenant_id,
                "source": "resident-messaging", "event_type": "resident_message",
                "occurred_at": now.isoformat(), "trace_id": f"comms-trace-{n}",
                "payload": {"thread_id": sandbox.thread_id_of(resident_id),
                            "message_id": message_id}}

    out = [(story, event(i, mid, resident)) for i, (story, (mid, resident, _, _)) in
           enumerate(zip(DEMO_STORIES, sandbox.DEMO_MESSAGES, strict=True), start=1)]
    return [*out, ("Same autopay question delivered twice: deduplicated", out[0][1])]


SPEC = AutopilotSpec(
    name="tenant_comms",
    description="Resident message -> intent -> reply grounded in the property's policy "
                "records, or route to the staff member who owns it; thread state and staff "
                "notifications kept up to date; legal, harassment, discrimination, injury "
                "and eviction contexts always reach a person; overdue replies escalate.",
    event_types=EVENT_TYPES,
    dedupe_ref=playbook.dedupe_ref,
    perceive=playbook.perceive,
    plan=playbook.plan,
    detect=detect.detect,
    schedule="*/15 * * * *",  # reply deadlines are hours apart; a quarter-hour scan suffices
    seed=sandbox.seed,
    demo=demo,
)
