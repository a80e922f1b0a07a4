"""The compliance + PM autopilot (seed 001, workflow C) on the shared spine."""

from graphs.compliance import detect, playbook, sandbox
from graphs.compliance.events import EVENT_TYPES
from graphs.spine import AutopilotSpec

SPEC = AutopilotSpec(
    name="compliance",
    description="Daily scan of due / overdue compliance items and overdue PM -> tasks and "
                "contractor work orders -> notify assignees -> re-check completion and record "
                "it -> escalate inside the critical window and always when overdue.",
    event_types=EVENT_TYPES,
    dedupe_ref=playbook.dedupe_ref,
    perceive=playbook.perceive,
    plan=playbook.plan,
    detect=detect.detect,
    schedule="0 12 * * *",  # daily, 07:00/08:00 in New York: tasks land at the start of the day
    seed=sandbox.seed,
    demo=sandbox.demo,
)
