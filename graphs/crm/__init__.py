"""The crm autopilot (seed 000, Phase 3 autonomous CRM operations) on the shared spine.

Trigger engine (`detect`) -> suggestion engine (`playbook`, propose_actions) -> suggestion
queue (`enqueue_suggestion`) -> review (the spine's approval: approve / edit / reject) ->
safe apply (the CRM write tools, which only apply an approved, pending suggestion).
"""

from graphs.crm import detect, playbook, seed
from graphs.crm.events import EVENT_TYPES
from graphs.spine import AutopilotSpec

SPEC = AutopilotSpec(
    name="crm",
    description="CRM triggers (lead stagnation, deal regression, account risk, "
                "re-engagement) -> queued suggestions with confidence and reasoning -> review "
                "-> safe apply; no CRM write without a person's approval.",
    event_types=EVENT_TYPES,
    dedupe_ref=playbook.dedupe_ref,
    perceive=playbook.perceive,
    plan=playbook.plan,
    detect=detect.detect,
    schedule="*/15 * * * *",  # every 15 minutes: also closes reviewed suggestions promptly
    seed=seed.seed,
    demo=seed.demo,
)
