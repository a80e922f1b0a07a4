"""The bookings autopilot (seed 002, gomomo.ai agent runtime) on the shared spine.

Domain events of the booking system (BookingCreated, BookingCancelled, BookingRescheduled,
HoldCreated, HoldExpired, CalendarWriteFailed) and scheduled scans (reminders due, no-shows,
expired holds, calendar retries) -> confirmations, reminders, no-show handling, follow-ups
and calendar-sync retries through a notification outbox, under the seeded allow/deny rules.
Overbooking is impossible by a database constraint (autopilot/sandbox/bookings.py).
"""

from graphs.bookings import detect, playbook, seed
from graphs.bookings.events import EVENT_TYPES
from graphs.spine import AutopilotSpec

SPEC = AutopilotSpec(
    name="bookings",
    description="Booking events and scheduled scans -> confirmations, reminders, no-show "
                "handling, follow-ups and calendar retries via a notification outbox, under "
                "the seed 002 rules; never overbooks.",
    event_types=EVENT_TYPES,
    dedupe_ref=playbook.dedupe_ref,
    perceive=playbook.perceive,
    plan=playbook.plan,
    detect=detect.detect,
    schedule="*/5 * * * *",  # every 5 minutes: reminders, no-shows and holds are time-critical
    seed=seed.seed,
    demo=seed.demo,
)
