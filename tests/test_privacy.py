"""PII redaction on realistic property-management text: resident messages, vendor and manager
notes, work orders, and the JSON-like records that go to the ledger and decision log.

PII cases assert that each personal substring is gone (not merely that a placeholder appears)
and that the words a person or a keyword screen needs are still there. Over-redaction cases
assert that maintenance text comes back unchanged.
"""

from __future__ import annotations

import json

import pytest

from autopilot.privacy import PII_KEYS, redact, redact_text

# (text, substrings that must be gone, phrases that must survive)
PII_CASES: list[tuple[str, list[str], list[str]]] = [
    # --- resident messages (SMS / e-mail)
    ("Hi, this is Maria Lopez in 4B, call me at 917-555-0143 or maria.lopez@gmail.com. "
     "The radiator is banging all night.",
     ["Maria", "Lopez", "917", "555-0143", "maria.lopez", "gmail.com"],
     ["in 4B", "radiator is banging all night"]),
    ("hi maria, the tech can come tmrw between 9 and 5",
     ["maria"], ["hi ", "between 9 and 5"]),
    ("Good morning! My cell is (917) 555-0143, work line 917.555.0199. Sink still leaking.",
     ["(917)", "555-0143", "917.555.0199"], ["Sink still leaking"]),
    ("Text me at +1 212 555 0100 or 1-800-555-0199 if the super can't get in.",
     ["212 555 0100", "800-555-0199"], ["if the super can't get in"]),
    ("my number is 9175550143, no hot water since Monday",
     ["9175550143"], ["no hot water since Monday"]),
    ("I'm Aisha Bello from 7C. I'm abroad, reach me on +44 20 7946 0958 or +44 7700 900123",
     ["Aisha", "Bello", "7946 0958", "7700 900123"], ["from 7C"]),
    ("Mi hermana: +33 1 23 45 67 89, o +49 30 901820. Gracias!",
     ["23 45 67 89", "901820"], ["Gracias!"]),
    ("UK number 07700 900123 or landline 020 7946 0958, the ceiling is dripping",
     ["07700 900123", "020 7946 0958"], ["the ceiling is dripping"]),
    ("call me at 555-0143 after 6, buzzer is broken",
     ["555-0143"], ["after 6, buzzer is broken"]),
    ("Thanks,\nMaria Lopez\nApt 4B",
     ["Maria", "Lopez"], ["Thanks,", "Apt 4B"]),
    ("Thanks Kwame! Heat is back on.", ["Kwame"], ["Heat is back on."]),
    ("Best regards,\nDeShawn McDonald", ["DeShawn", "McDonald"], ["Best regards,"]),
    ("I moved, new address 1340 Grand Concourse, Bronx, NY 10451, please send the deposit",
     ["1340", "Grand Concourse", "10451"], ["please send the deposit"]),
    ("Deliver the keys to 21-15 Shore Blvd, Apt 3C tomorrow morning",
     ["21-15", "Shore Blvd", "Apt 3C"], ["tomorrow morning"]),
    ("My office is at 55 W 42nd St, #12F, drop the lease there",
     ["55 W", "42nd St", "12F"], ["drop the lease there"]),
    ("Former address 400 St. Nicholas Ave Apt. 2 and mail to PO Box 4417",
     ["400 St", "Nicholas Ave", "4417"], ["Former address"]),
    # --- manager notes
    ("Dear Mr. Okafor, your renewal is attached. Rent stays at $2,450/mo.",
     ["Okafor"], ["Dear Mr.", "Rent stays at $2,450/mo."]),
    ("Dear Mrs. O'Brien-Walsh,\nThe boiler inspection is on 2026-11-22.",
     ["O'Brien", "Walsh"], ["Dear Mrs.", "2026-11-22"]),
    ("Good afternoon Ms. Chen! Your parking spot is P-14.", ["Chen"], ["P-14"]),
    ("Hello Kwame Mensah, we received your report about the elevator.",
     ["Kwame", "Mensah"], ["we received your report about the elevator."]),
    ("Spoke with Mrs. Chen about access; Mr Patel will be home 10-12.",
     ["Chen", "Patel"], ["about access", "will be home 10-12."]),
    ("Applicant SSN 123-45-6789, DOB 04/12/1988, background check ok",
     ["123-45-6789", "04/12/1988"], ["background check ok"]),
    ("Guarantor ssn 987 65 4321, born March 3, 1990", ["987 65 4321", "March 3, 1990"], []),
    ("Refund the deposit to IBAN GB82 WEST 1234 5698 7654 32 by Friday",
     ["GB82", "WEST 1234", "5698 7654"], ["by Friday"]),
    ("Wire to DE89370400440532013000 UNIT 3B deposit",
     ["DE89370400440532013000", "3704"], ["UNIT 3B deposit"]),
    ("Autopay from acct # 0012-3456-7890 at Chase, routing 021000021",
     ["0012-3456-7890", "021000021"], ["at Chase"]),
    ("Account number: 4471229001 is 2 months behind", ["4471229001"], ["is 2 months behind"]),
    # --- vendor notes
    ("Tech Luis replaced the P-trap, invoice to billing@acmeplumbing.com, card ending 1111, "
     "charged 4111 1111 1111 1111 for $1,250.40",
     ["billing@acmeplumbing.com", "4111 1111 1111 1111"],
     ["replaced the P-trap", "card ending 1111", "$1,250.40"]),
    ("Paid parts with 5500-0000-0000-0004, ref WO-1001", ["5500-0000-0000-0004"], ["WO-1001"]),
    ("Amex 3782 822463 10005 on file for after-hours callouts",
     ["3782 822463 10005"], ["after-hours callouts"]),
    ("Hi Maria, this is Luis from Five Boroughs Handyman, running 15 min late",
     ["Maria", "Luis"], ["Five Boroughs Handyman", "running 15 min late"]),
    ("Resident at 1600 Broadway said call 212-555-0199 ext. 204 before coming",
     ["1600 Broadway", "212-555-0199"], ["before coming"]),
]


@pytest.mark.parametrize(("text", "gone", "kept"), PII_CASES,
                         ids=[f"pii-{i}" for i in range(len(PII_CASES))])
def test_pii_is_removed_and_the_message_survives(text: str, gone: list[str],
                                                 kept: list[str]) -> None:
    out = redact_text(text)
    for pii in gone:
        assert pii not in out, (pii, out)
    for phrase in kept:
        assert phrase in out, (phrase, out)
    assert "[" in out  # something was redacted, and marked as such


def test_placeholders_name_the_kind_of_pii() -> None:
    out = redact_text("Hi Maria, mail maria@example.com or call (917) 555-0143; SSN 123-45-6789; "
                      "card 4111-1111-1111-1111; IBAN GB82WEST12345698765432; "
                      "lives at 1340 Grand Concourse; acct 77001234")
    for placeholder in ("Hi [name]", "[email]", "[phone]", "[ssn]", "[card]", "[iban]",
                        "[address]", "acct [account]"):
        assert placeholder in out, (placeholder, out)


# Work-order and maintenance text that contains nothing personal: it must come back as is.
UNCHANGED = [
    "Replace 2 radiators in unit 3B, est. 450.00",
    "WO-1001 PLUMBING URGENT due 2026-11-22T10:00:00Z",
    "boiler PSI at 12, 3 zones down",
    "floor 3, apartment 3B",
    "Tech available between 9 and 5",
    "Parts on order #12345, ETA Thursday",
    "Replaced model GX-200-34 serial SN4418 condensate pump",
    "invoice total $1,250.40 incl. tax",
    "Created 2026-11-19T03:30:00+00:00, SLA 2026-11-20 09:30 UTC, visit 10:00-14:00",
    "NTE 300.00, callout 85.00, 3.5 hrs @ 95.00 = 417.50",
    "Units 12F and 4B, 4th floor, 2 bedrooms, rent $2,450/mo",
    "Water pooling near the Court Street entrance, mop and cone it",
    "Dispatch Five Boroughs Handyman to WO-1002 for the 2nd floor hallway",
    "Boiler installed 2019, last inspected 2025-03-14",
    "Heat outage RM12 NEED HEAT ASAP",
    "Hi there, the sink in 3B is leaking again",
    "Good morning team, 3 work orders still open in building C",
    "This is urgent, the ceiling is leaking into units 101-1050 riser",
    "Hello, Leak under the kitchen sink in 5A",
    "Thanks Five Boroughs Handyman for the quick fix on the 3rd floor",
    "Riverside Dr entrance: Maintenance crew on site until 17:30",
    "Temp 68-72F, humidity 45%, 2 of 3 zones back",
    "Invoice INV-2026-0042, PO 7731, 18 ft of 3/4 copper",
    "Thermostat set to 70 from 6 AM to 10 PM per NYC heat season rules",
    "Card reader at the laundry room is broken, account for it in the Q4 budget",
]


@pytest.mark.parametrize("text", UNCHANGED, ids=[f"keep-{i}" for i in range(len(UNCHANGED))])
def test_work_order_text_is_not_redacted(text: str) -> None:
    assert redact_text(text) == text


def test_luhn_invalid_and_short_numbers_are_not_cards() -> None:
    text = "Serial 4111 1111 1111 1112 on the pump, lot 1234-5678"
    assert redact_text(text) == text


def test_an_invalid_iban_shaped_code_is_kept() -> None:
    text = "Filter code GB00 WEST 1234 5698 7654 32"
    assert redact_text(text) == text


# ------------------------------------------------------------------------ records


def test_pii_keys_are_masked_and_the_rest_scrubbed() -> None:
    record = {"email": "ann.lee@example.com", "phone": "+1 718 555 1001", "ssn": "123-45-6789",
              "resident_email": "ann@example.com", "emergency_contact_phone": "917-555-0100",
              "iban": "GB82WEST12345698765432", "card_number": "4111111111111111",
              "text": "Call me at (212) 555-0199, the sink is leaking", "unit_id": "U-4B"}
    out = redact(record)
    for key in ("email", "phone", "ssn", "resident_email", "emergency_contact_phone", "iban",
                "card_number"):
        assert out[key] == "[redacted]"
    assert out["text"] == "Call me at [phone], the sink is leaking"
    assert out["unit_id"] == "U-4B"
    stored = json.dumps(out)
    assert "ann" not in stored and "555" not in stored and "6789" not in stored
    assert {"email", "phone", "ssn", "address", "iban"} <= PII_KEYS


@pytest.mark.parametrize("record", [
    {"resident_id": "R-1", "name": "Maria Lopez", "preferred_channel": "sms"},
    {"unit_id": "U-4B", "name": "Maria Lopez"},
    {"id": "R-7", "name": "Maria Lopez", "email": "maria@example.com"},
    {"id": "R-7", "name": "Maria Lopez", "phone": "+19175550143"},
    {"id": "R-7", "name": "Maria Lopez", "preferred_channel": "sms"},  # ResidentOut
])
def test_name_is_masked_in_a_person_record(record: dict) -> None:
    out = redact(record)
    assert out["name"] == "[redacted]"
    assert "Maria" not in json.dumps(out)


def test_name_is_masked_under_a_resident_key() -> None:
    out = redact({"unit": {"number": "4B", "residents": [{"id": "R-1", "name": "Maria Lopez"}]},
                  "tenant": {"name": "Kwame Mensah"}})
    assert out["unit"]["residents"][0] == {"id": "R-1", "name": "[redacted]"}
    assert out["tenant"] == {"name": "[redacted]"}


@pytest.mark.parametrize("record", [
    {"id": "V-PLUMB", "name": "Five Boroughs Handyman", "categories": ["PLUMBING"],
     "hourly_rate": 95.0, "email": "dispatch@five.example.com", "phone": "+12125552006"},
    {"vendor_id": "V-PLUMB", "name": "Acme Plumbing", "phone": "+12125552006"},
    {"id": "P-GRAND", "portfolio_id": "PF-NYC", "name": "Grand Concourse Apartments",
     "address": "1340 Grand Concourse", "city": "Bronx", "timezone": "America/New_York"},
    {"id": "X-1", "type": "vendor", "name": "Court Street Elevator", "email": "x@y.com"},
])
def test_name_is_kept_in_a_vendor_or_property_record(record: dict) -> None:
    out = redact(record)
    assert out["name"] == record["name"]
    for key in ("email", "phone", "address"):
        if key in record:
            assert out[key] == "[redacted]"


def test_name_is_kept_under_a_vendor_key_and_without_person_fields() -> None:
    out = redact({"vendor": {"id": "V-1", "name": "Five Boroughs Handyman", "phone": "212"},
                  "property": {"name": "Astoria Gardens", "unit_id": "U-1"},
                  "tool": {"name": "dispatch_vendor", "args": {"wo_id": "WO-1001"}}})
    assert out["vendor"]["name"] == "Five Boroughs Handyman"
    assert out["property"]["name"] == "Astoria Gardens"
    assert out["tool"]["name"] == "dispatch_vendor"


def test_reviewer_is_kept() -> None:
    out = redact({"reviewer": "ops-manager@pm.example", "decision": "approve",
                  "unit_id": "U-4B", "name": "Maria Lopez"})
    assert out["reviewer"] == "ops-manager@pm.example"
    assert out["name"] == "[redacted]"


def test_nested_lists_and_dicts_and_non_strings() -> None:
    payload = {
        "run": {"text": "Hi, this is Maria Lopez, call 917-555-0143", "attempt": 2,
                "amount": 1250.4, "urgent": True, "vendor_id": None},
        "messages": [
            {"channel": "sms", "to": "+19175550143", "body": "Hi Maria, tech at 10"},
            ["maria@example.com", 42, None, {"recipients": ["a@b.com", "c@d.com"]}],
        ],
        "estimate": 450.0,
        "ids": [1001, 1002],
        "blank": {"email": "", "phone": None},
    }
    out = redact(payload)
    assert out["run"] == {"text": "Hi, this is [name], call [phone]", "attempt": 2,
                          "amount": 1250.4, "urgent": True, "vendor_id": None}
    assert out["messages"][0] == {"channel": "sms", "to": "[phone]",
                                  "body": "Hi [name], tech at 10"}
    assert out["messages"][1] == ["[email]", 42, None, {"recipients": "[redacted]"}]
    assert out["estimate"] == 450.0 and out["ids"] == [1001, 1002]
    assert out["blank"] == {"email": "", "phone": None}
    assert "Maria" not in json.dumps(out) and "0143" not in json.dumps(out)
    assert payload["run"]["text"].startswith("Hi, this is Maria")  # input left untouched


@pytest.mark.parametrize("value", [None, 0, 17, 3.5, True, False, [], {}])
def test_scalars_and_empties_pass_through(value: object) -> None:
    assert redact(value) == value
