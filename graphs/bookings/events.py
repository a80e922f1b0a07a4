"""Trigger payloads of the bookings autopilot.

The first six are seed 002's domain events, under the seed's own names, as the booking
system emits them (section 5): BookingCreated, BookingCancelled, BookingRescheduled,
HoldCreated, HoldExpired, CalendarWriteFailed. The scheduled scan (detect.py) emits two more
for what no booking-system call announces: a reminder falling due (ReminderDue) and a
confirmed appointment whose customer never arrived (NoShowDetected); it is also the seed's
"hold cleanup timer" (HoldExpired) and the calendar retry timer (CalendarWriteFailed).
"""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BookingCreatedPayload(_Payload):
    """booking.service.confirmBooking: a booking was made (or a hold was completed)."""

    booking_id: str = Field(min_length=1, max_length=64)


class BookingCancelledPayload(_Payload):
    """booking.service.cancel: the customer or staff cancelled a booking."""

    booking_id: str = Field(min_length=1, max_length=64)
    reason: str = Field(default="", max_length=500)


class BookingRescheduledPayload(_Payload):
    """booking.service.reschedule: a booking moved to a new time (the old one is given)."""

    booking_id: str = Field(min_length=1, max_length=64)
    previous_start_at: AwareDatetime
    previous_end_at: AwareDatetime | None = None


class HoldCreatedPayload(_Payload):
    """availability.service.holdSlot: a slot is held while the customer completes booking."""

    hold_id: str = Field(min_length=1, max_length=64)


class HoldExpiredPayload(_Payload):
    """The hold cleanup timer: a hold passed its expiry without being completed."""

    hold_id: str = Field(min_length=1, max_length=64)
    slot_start: AwareDatetime | None = None
    slot_end: AwareDatetime | None = None


class CalendarWriteFailedPayload(_Payload):
    """booking.service's calendar write failed (or a retry is due after one that did)."""

    booking_id: str = Field(min_length=1, max_length=64)
    error: str = Field(default="", max_length=500)
    attempt: int | None = Field(default=None, ge=0, le=1000,
                                description="failed attempts so far, when the sender knows")


class ReminderDuePayload(_Payload):
    """Scheduler: the reminder of a confirmed appointment is due."""

    booking_id: str = Field(min_length=1, max_length=64)
    start_at: AwareDatetime = Field(description="the appointment time the reminder is for")


class NoShowDetectedPayload(_Payload):
    """Scheduler: a confirmed appointment began and the customer has not checked in."""

    booking_id: str = Field(min_length=1, max_length=64)


EVENT_TYPES: dict[str, type[BaseModel]] = {
    "BookingCreated": BookingCreatedPayload,
    "BookingCancelled": BookingCancelledPayload,
    "BookingRescheduled": BookingRescheduledPayload,
    "HoldCreated": HoldCreatedPayload,
    "HoldExpired": HoldExpiredPayload,
    "CalendarWriteFailed": CalendarWriteFailedPayload,
    "ReminderDue": ReminderDuePayload,
    "NoShowDetected": NoShowDetectedPayload,
}
SEED_EVENTS = ("BookingCreated", "BookingCancelled", "BookingRescheduled", "HoldCreated",
               "HoldExpired", "CalendarWriteFailed")
