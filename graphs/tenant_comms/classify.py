"""Deterministic intent classification of a resident's message. No model, no network.

A message gets a fine-grained `topic` (what it is about, which picks the policy documents and
the staff role) and a policy `intent` (what the gate checks against
`messaging.allowedAutoIntents`). Topic rules are tried in precedence order: anything a person
must handle (a charge dispute, a complaint, a lease change) wins over an answerable question,
and a repair report wins over the amenity or package it mentions. A second subject the reply
would not address lowers the confidence, which the policy reads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from graphs.maintenance.classify import triage

# (topic, pattern), in precedence order.
TOPIC_RULES: list[tuple[str, str]] = [
    ("BILLING_DISPUTE",
     r"\b(late fees?|(was|been|got|am being) (charged|billed)|overcharg\w*|double[- ]charg\w*|"
     r"charged twice|refund\w*|dispute\w*|wrong (amount|charge|balance)|incorrect "
     r"(charge|balance|amount)|remove (the|this|that) (fee|charge)|security deposit)"),
    ("NOISE_COMPLAINT",
     r"\b(noise|noisy|loud\w*|blasting|music|part(y|ies)|stomping|banging|barking|yelling|"
     r"screaming)\b"),
    ("LEASE_CHANGE",
     r"\b(sublet\w*|sublease\w*|break (my|the) lease|terminat\w* (my|the) lease|early "
     r"termination|add (a |my )?(room ?mate|occupant|partner) to (my|the) lease|"
     r"(my|the) lease (transfer|assignment)|transfer (to another|my lease)|"
     r"take .* off (my|the) lease)"),
    ("MAINTENANCE_STATUS",
     r"\b(update on|status of|any (news|update)|still waiting|work order|wo-[a-z0-9]+|"
     r"when (will|is) (the|a|my) (plumber|technician|tech|repair|super|handyman|"
     r"electrician|contractor|exterminator)|follow(ing)?[- ]up on (my|the) (repair|request))"),
    ("MAINTENANCE_REQUEST",
     r"\b(broken|breaks|leak\w*|drip\w*|clog\w*|(not|isn'?t|aren'?t) working|"
     r"(doesn'?t|don'?t|won'?t) (work|open|close|lock|turn on|flush|drain|start)|"
     r"stopped working|out of order|no (heat|hot water|water|power|electricity)|"
     r"(heat|heating|power|hot water|electricity|lights?) (is |keeps )?(going )?(out|off)|"
     r"mold|mould|roach\w*|mice|mouse|rats?|bed ?bugs?|pests?|crack(ed|s)?|stuck|"
     r"repair\w*|fix\w*|flood\w*|gas smell|smell\w* (of |like )?gas|spark\w*|peeling|"
     r"ceiling|toilet|faucet|outlet|radiator)\b"),
    ("LEASE_RENEWAL",
     r"\b(renew\w*|lease (ends|expires|is up|end date)|extend (my|the) lease|new lease)"),
    ("MOVE_IN_OUT",
     r"\b(move[- ]?(in|out)|moving (in|out|day)|movers?|moving truck|service elevator|"
     r"certificate of insurance|coi)\b"),
    ("PACKAGE",
     r"\b(packages?|parcels?|deliver(y|ies)|mail ?room|lockers?|amazon|ups|fedex|usps)\b"),
    ("AMENITY",
     r"\b(gym|fitness|roof ?deck|roof|pool|laundry|washers?|dryers?|community room|"
     r"party room|lounge|bike room|storage|grills?|amenit\w*)\b"),
    ("RENT_PAYMENT",
     r"\b(rent|auto ?pay|auto-pay|pay(ment|ing)?s?|receipts?|grace period|due date)\b"),
    ("GENERAL_INFO",
     r"\b(trash|garbage|recycl\w*|compost|parking|pets?|dogs?|cats?|smoking|office hours|"
     r"guest policy)\b"),
]
TOPIC_INTENT = {
    "RENT_PAYMENT": "FAQ", "AMENITY": "FAQ", "PACKAGE": "FAQ", "MOVE_IN_OUT": "FAQ",
    "GENERAL_INFO": "FAQ", "MAINTENANCE_REQUEST": "MAINTENANCE_INTAKE",
    "MAINTENANCE_STATUS": "STATUS_UPDATE", "LEASE_RENEWAL": "RENEWAL_INFO",
    "BILLING_DISPUTE": "BILLING_DISPUTE", "NOISE_COMPLAINT": "COMPLAINT",
    "LEASE_CHANGE": "LEASE_CHANGE", "GENERAL": "GENERAL", "ACKNOWLEDGEMENT": "ACKNOWLEDGEMENT",
}
# Topics answered by the same reply family (a status question usually names the repair).
FAMILY = {"MAINTENANCE_STATUS": "maintenance", "MAINTENANCE_REQUEST": "maintenance",
          "LEASE_RENEWAL": "lease", "LEASE_CHANGE": "lease", "RENT_PAYMENT": "billing",
          "BILLING_DISPUTE": "billing"}
# Who on staff owns a topic; everything else goes to the property manager.
TOPIC_ROLE = {"RENT_PAYMENT": "BILLING", "BILLING_DISPUTE": "BILLING",
              "LEASE_RENEWAL": "LEASING", "LEASE_CHANGE": "LEASING", "MOVE_IN_OUT": "LEASING",
              "MAINTENANCE_REQUEST": "MAINTENANCE_COORDINATOR",
              "MAINTENANCE_STATUS": "MAINTENANCE_COORDINATOR"}
TOPIC_LABEL = {"ACKNOWLEDGEMENT": "your thanks", "RENT_PAYMENT": "rent payments",
               "BILLING_DISPUTE": "a charge on your account",
               "MAINTENANCE_REQUEST": "a repair", "MAINTENANCE_STATUS": "your repair",
               "AMENITY": "building amenities", "PACKAGE": "packages",
               "MOVE_IN_OUT": "your move", "LEASE_RENEWAL": "your lease renewal",
               "LEASE_CHANGE": "a change to your lease", "NOISE_COMPLAINT": "noise",
               "GENERAL_INFO": "building information", "GENERAL": "your question"}
CONFIDENT, SECOND_SUBJECT, RELATED_SUBJECT, UNCLASSIFIED = 0.9, 0.6, 0.8, 0.4
# A message made only of these words ("Thanks, that helps!", "ok got it") asks for nothing:
# it closes the conversation instead of opening a new question for staff.
ACK_WORDS = frozenset(
    "ok okay k thanks thank you so much a lot thx ty got it great perfect sounds good awesome "
    "cool noted will do appreciate have nice day night weekend one very many again all set "
    "that's thats helps helped helpful that".split())
ACK_MARKERS = frozenset("ok okay thanks thank thx ty got perfect great noted awesome cool "
                        "appreciate".split())


@dataclass(frozen=True)
class Classification:
    topic: str
    intent: str
    confidence: float
    matched: list[str] = field(default_factory=list)  # every topic whose rule matched
    is_emergency: bool = False
    safety_signals: list[str] = field(default_factory=list)

    def why(self) -> str:
        others = [t for t in self.matched if t != self.topic]
        return (f"Classified as {self.topic} (intent {self.intent}, confidence "
                f"{self.confidence:.2f})" + (f"; also mentions {', '.join(others)}"
                                             if others else "") +
                (f"; safety signals: {', '.join(self.safety_signals)}"
                 if self.safety_signals else "") + ".")


def classify(text: str, received_at: datetime) -> Classification:
    """Topic, intent and confidence of one message (emergencies as maintenance triage
    judges them: gas, fire, flooding, injury ... are a person's call whatever the topic)."""
    t = " ".join(text.lower().replace("\u2019", "'").split())
    tri = triage(text, received_at)
    words = re.findall(r"[a-z']+", t)
    if (words and len(words) <= 12 and set(words) <= ACK_WORDS and set(words) & ACK_MARKERS
            and not tri.is_emergency):
        return Classification("ACKNOWLEDGEMENT", "ACKNOWLEDGEMENT", CONFIDENT, [])
    matched = [topic for topic, rx in TOPIC_RULES if re.search(rx, t)]
    if not matched:
        return Classification("GENERAL", "GENERAL", UNCLASSIFIED, [], tri.is_emergency,
                              list(tri.signals) if tri.is_emergency else [])
    topic = matched[0]
    family = FAMILY.get(topic, topic)
    others = {FAMILY.get(m, m) for m in matched} - {family}
    if not others:
        confidence = CONFIDENT
    elif family == "maintenance" and others <= {"AMENITY"}:
        confidence = RELATED_SUBJECT  # broken amenity equipment is still a repair
    else:
        confidence = SECOND_SUBJECT
    return Classification(topic, TOPIC_INTENT[topic], confidence, matched, tri.is_emergency,
                          list(tri.signals) if tri.is_emergency else [])


def keyword_hits(text: str, keywords: list[str]) -> int:
    """How many of a document's keywords the message uses (a keyword matches a word prefix)."""
    t = " ".join(text.lower().replace("\u2019", "'").split())
    return sum(1 for k in keywords
               if re.search(r"\b" + re.escape(k.lower()).replace(r"\ ", r"\s+"), t))
