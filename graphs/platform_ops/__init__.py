"""The platform_ops autopilot (seed 004) on the shared spine: reliability, safety, support,
growth and data-pipeline triage with graduated autonomy (reversible writes at L2, irreversible
ones always with a person) and drift downgrades."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from graphs.platform_ops import detect, playbook, seed
from graphs.platform_ops.events import EVENT_TYPES
from graphs.spine import AutopilotSpec


def demo(tenant_id: str, now: datetime) -> list[tuple[str, dict[str, Any]]]:
    """One trigger per task type on the seeded platform, a blocked case and a repeat."""

    def event(n: int, event_type: str, source: str, payload: dict[str, Any]) -> dict[str, Any]:
        return {"event_id": f"ops-demo-{n}", "tenant_id": tenant_id, "source": source,
                "event_type": event_type, "occurred_at": now.isoformat(),
                "trace_id": f"ops-trace-{n}", "payload": payload}

    signals = {sid: (kind, source, payload)
               for sid, kind, source, payload, _ in seed.signal_payloads()}

    def signal(n: int, sid: str) -> dict[str, Any]:
        kind, source, payload = signals[sid]
        return event(n, kind, source, payload)

    outage = signal(1, "SIG-DISC-5XX")
    return [
        ("5xx spike in discourse: flag rollback and throttle run on their own (L2)", outage),
        ("Reply burst on a post: friction runs on its own; removing the worst reply and "
         "banning its three-strike author wait for a person", signal(2, "SIG-DOGPILE-5001")),
        ("A pile-on led by an account with 2.4M followers: the ban is above the risk ceiling, "
         "so the whole plan is held for leadership",
         event(3, "safety_triage", "trust-safety", {"signal_id": "SIG-DOGPILE-5002",
                                                    "content_id": "C-5002"})),
        ("User can't log in: push tokens revoked on their own; the reset link waits for a "
         "person", signal(4, "SIG-T-88121")),
        ("Appeal of an automated removal: overturning it always needs a person",
         signal(5, "SIG-T-88140")),
        ("Gathering window underperforming: the campaign would notify 18,200 people, so a "
         "person decides", signal(6, "SIG-GATHER-FRI")),
        ("Warehouse lag: consumer restarted on its own; the backfill is suggest-only (L1)",
         signal(7, "SIG-WH-LAG")),
        ("The same 5xx alert again: deduplicated", outage),
    ]


SPEC = AutopilotSpec(
    name="platform_ops",
    description="Reliability / safety / support / growth / data-pipeline triage -> evidence "
                "-> rollback, throttle, friction, token revocation, restarts (L2 when low "
                "risk) and removals, bans, appeals (always with a person).",
    event_types=EVENT_TYPES,
    dedupe_ref=playbook.dedupe_ref,
    perceive=playbook.perceive,
    plan=playbook.plan,
    detect=detect.detect,
    schedule="* * * * *",  # every minute: alerts and pile-ons do not wait an hour
    seed=seed.seed,
    demo=demo,
)
