"""The revenue autopilot (seed 003: autonomous revenue decision loop) on the shared spine."""

from graphs.revenue import detect, playbook, seed
from graphs.revenue.events import EVENT_TYPES
from graphs.spine import AutopilotSpec

SPEC = AutopilotSpec(
    name="revenue",
    description="Signals (severity, confidence, evidence, TTL) -> account state -> decision "
                "protocol (ACTION_PROPOSALS, DATA_REQUEST, CLARIFICATION_REQUEST, "
                "APPROVAL_REQUEST, NO_ACTION) -> meeting briefs, tasks, CRM updates, "
                "customer outreach behind approval.",
    event_types=EVENT_TYPES,
    dedupe_ref=playbook.dedupe_ref,
    perceive=playbook.perceive,
    plan=playbook.plan,
    detect=detect.detect,
    schedule="*/15 * * * *",  # every 15 minutes: source changes, meetings 48 h out, TTLs
    seed=seed.seed,
    demo=seed.demo,
)
