"""The maintenance autopilot (seed 001, workflow A) on the shared spine."""

from graphs.maintenance import detect, playbook
from graphs.maintenance.events import EVENT_TYPES
from graphs.spine import AutopilotSpec

SPEC = AutopilotSpec(
    name="maintenance",
    description="Tenant issue / incident / PM due -> classify -> work order -> bids or vendor "
                "-> dispatch + acknowledge -> SLA follow-up -> close-out.",
    event_types=EVENT_TYPES,
    dedupe_ref=playbook.dedupe_ref,
    perceive=playbook.perceive,
    plan=playbook.plan,
    detect=detect.detect,
    schedule="0 * * * *",  # hourly: PM due dates and SLA follow-ups
)
