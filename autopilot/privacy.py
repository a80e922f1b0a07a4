"""PII redaction for everything we keep or send on: ledger payloads, decision records, logs,
and anything handed to a model (seed 002: audit payloads PII-redacted; seed 001 section 8).

Free text keeps its words (work-order text, keyword screening and replays need them) but
loses e-mail addresses, phone numbers (US and international), street addresses, card numbers
(Luhn-checked), IBANs (mod-97-checked), social security numbers, labelled account numbers and
dates of birth, long digit runs, and personal names where the text marks them: after a
greeting ("Hi Maria,", "Dear Mr. Okafor"), a self-introduction ("this is Maria Lopez"), a
sign-off ("Thanks, Maria") or a courtesy title ("Mrs. Chen"). Titles stay, the name goes:
"Dear Mr. [name]". Unmarked names ("Tech Luis replaced ...") are not detected.

Keys that hold personal data are masked outright; `name` is masked where the record is a
person's (it carries contact or lease fields, or sits under a `resident`/`tenant` key), and
kept where it is a vendor's or a property's, so those stay readable. `reviewer` (who decided
an approval), and the other staff identities in `AUDIT_KEYS`, are kept verbatim: they are the
audit trail, not a resident's data.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

PII_KEYS = frozenset({
    "email", "emails", "email_address", "phone", "phones", "phone_number", "mobile", "cell",
    "recipient", "recipients", "resident_name", "tenant_name", "first_name", "last_name",
    "full_name", "contact_name", "address", "street", "home_address", "ssn", "date_of_birth",
    "dob", "card_number", "iban", "account_number", "routing_number",
})
# Keys ending so are personal too (`resident_email`, `emergency_contact_phone`, ...).
PII_KEY_SUFFIXES = ("_email", "_phone", "_mobile", "_address", "_ssn", "_iban", "_dob")
# A record with one of these is a person's: its `name` is masked ...
PERSON_MARKERS = frozenset({"email", "phone", "resident_id", "unit_id", "lease_id",
                            "date_of_birth", "tenant_name", "preferred_channel"})
# ... unless it is plainly a vendor's or a property's (a resident_id still wins).
NON_PERSON_MARKERS = frozenset({"vendor_id", "categories", "hourly_rate", "callout_fee",
                                "emergency_service", "portfolio_id", "timezone"})
PERSON_PARENTS = frozenset({"resident", "residents", "tenant", "tenants", "occupant",
                            "occupants", "contact", "contacts", "applicant", "guarantor"})
NON_PERSON_PARENTS = frozenset({"vendor", "vendors", "property", "properties", "portfolio"})
NON_PERSON_KINDS = frozenset({"vendor", "property", "portfolio", "company"})
# Who approved or rejected is the audit trail itself (a staff login, not a resident's data):
# kept verbatim, even when it is an e-mail address.
AUDIT_KEYS = frozenset({"reviewer", "decided_by", "by", "changed_by", "author", "principal"})

_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,3})?\b")
_CARD = re.compile(r"(?<![\w-])(?:\d[ -]?){12,18}\d(?![\w-])")
_ACCOUNT = re.compile(r"(?i:\b(?:account|acct|a/c|routing|aba)\b\.?"
                      r"(?:\s*(?:number|num|no\.?|#))?\s*[:#]?\s*)(\d{2,}(?:[ -]\d{2,})*)")
_DOB = re.compile(r"(?i:\b(?:dob|d\.o\.b\.|date\s+of\s+birth|born(?:\s+on)?|birthday)\b"
                  r"\s*(?:is\s*)?[:\-]?\s*)"
                  r"(\d{1,4}[/.-]\d{1,2}[/.-]\d{1,4}|(?:[A-Z][a-z]{2,8}\.?\s+\d{1,2},?\s+\d{4}))")
_SSN = re.compile(r"(?<![\w-])\d{3}([ -])\d{2}\1\d{4}(?![\w-])")
_PHONE_US = re.compile(r"(?<![\d+])(?:\+?1[\s.-]?)?(?:\(\d{3}\)\s?|\d{3}[\s.-]?)"
                       r"\d{3}[\s.-]?\d{4}(?!\d)")
_PHONE_INTL = re.compile(r"(?<![\w+])(?:\+|00)\d{1,3}(?:[\s.-]?\(?\d{1,5}\)?){1,6}(?!\d)")
_PHONE_NATIONAL = re.compile(r"(?<![\w+-])0\d{2,4}[ -]\d{3,4}[ -]?\d{3,4}(?![\w-])")
_PHONE_LOCAL = re.compile(r"(?i:\b(?:call|text|phone|cell|mobile|tel|ph|reach\s+me|number)\b"
                          r"[^\d\n]{0,12})(?<![\w.,/:$-])(\d{3}-\d{4})(?![\w.-]?\d)")
_DIGITS = re.compile(r"\b\d{9,}\b")

_STREET_TYPES = (r"Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|"
                 r"Place|Pl|Terrace|Ter|Way|Parkway|Pkwy|Highway|Hwy|Square|Sq|Concourse|"
                 r"Plaza|Turnpike|Tpke|Expressway|Circle|Cir|Crescent|Alley|Walk|Loop")
_STREET_WORD = r"(?:[A-Z][A-Za-z'.]*|\d+(?:st|nd|rd|th))"
_ADDRESS = re.compile(
    r"\b\d{1,6}[A-Z]?(?:-\d{1,4})?\s+(?:[NSEW]\.?\s+)?"
    rf"(?:(?:{_STREET_WORD}\s+){{1,3}}(?:{_STREET_TYPES})\b\.?|Broadway\b|Bowery\b)"
    r"(?:,?\s*(?i:apt|apartment|unit|suite|ste|fl|floor|#)\.?\s*#?\w+(?:-\w+)?\b)?"
    r"(?:,\s*[A-Z][a-z]+(?:\s[A-Z][a-z]+)?,?\s+[A-Z]{2}\b(?:\s+\d{5}(?:-\d{4})?)?)?")
_PO_BOX = re.compile(r"(?i:\bP\.?\s?O\.?\s*Box\s+\d+)")

# Names: "Maria", "O'Brien", "McDonald", "Garcia-Lopez"; all-caps words are not names.
_NAME = r"[A-Z][a-z]*(?:['’-]?[A-Z][a-z]+)*(?!\w)"
_TITLES = r"Mr|Mrs|Ms|Miss|Mx|Dr|Prof"
_NOT_NAMES = frozenset("""
    a all an and any anyone are at back both building calling can could customer dear due
    everyone floor folks friend friends from good guys happy hello here hey hi home how i if
    in is it just landlord leasing madam maintenance management manager neighbor neighbors
    no not office ok okay on our owner please property really resident residents sir so sorry
    still super superintendent team tenant tenants texting thank thanks that the there they
    this today tomorrow unit urgent very we what when writing yes you your emergency again
    monday tuesday wednesday thursday friday saturday sunday january february march april may
    june july august september october november december tonight morning afternoon evening
    locked available out following
""".split())
# A "name" with one of these words is a business ("this is Five Boroughs Handyman").
_BUSINESS_WORDS = frozenset("""
    handyman plumbing plumbers electric electrical heating cooling hvac roofing services
    service contractors contracting construction inc llc co corp company group realty
    properties management maintenance repairs restoration supply elevator boiler pest
""".split())
_GREETINGS = frozenset({"hi", "hello", "hey", "dear", "good"})
_NAME_LEAD = re.compile(
    r"(?i:\b(hi|hello|hey|dear|good\s+(?:morning|afternoon|evening)|this\s+is|"
    r"my\s+name\s+is|i['’]m|i\s+am)\b)"
    r"(,?[ \t]+|,?[ \t]*\n\s*)"
    rf"(?:(?i:({_TITLES}))\.?\s+)?"
    rf"({_NAME}(?:[ \t]+{_NAME}){{0,2}}|[a-z][a-z'’-]+(?=[ \t]*(?:[,!.:;\n]|$)))")
_SIGN_OFF = re.compile(
    r"(?i:\b(many\s+thanks|thanks|thank\s+you|best\s+regards|kind\s+regards|warm\s+regards|"
    r"regards|sincerely|cheers|best|respectfully))"
    r"([,!.]?[ \t]*\n\s*(?:-\s*)?|,[ \t]*(?:-\s*)?|[ \t]*-[ \t]*|[ \t]+)"
    rf"(?:(?i:({_TITLES}))\.?\s+)?"
    rf"({_NAME}(?:[ \t]+{_NAME}){{0,2}})(?=[ \t]*(?:[,.!;:)\n]|$))")
_TITLED = re.compile(rf"\b(Mr|Mrs|Ms|Miss|Mx)(\.?\s+)({_NAME}(?:[ \t]+{_NAME})?)")


def _luhn(digits: str) -> bool:
    total, parity = 0, len(digits) % 2
    for i, ch in enumerate(digits):
        d = int(ch)
        if i % 2 == parity:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return "[card]" if 13 <= len(digits) <= 19 and _luhn(digits) else match.group(0)


def _iban_valid(compact: str) -> bool:
    if not 15 <= len(compact) <= 34:
        return False
    moved = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in moved)) % 97 == 1


def _iban(match: re.Match[str]) -> str:
    """The longest prefix of the match that passes mod 97 (a trailing all-caps word such as
    "UNIT" can be swallowed by the pattern); anything else is left alone."""
    raw = match.group(0)
    ends = [i + 1 for i, ch in enumerate(raw) if ch != " "]
    compact = raw.replace(" ", "")
    for n in range(len(compact), 14, -1):
        if _iban_valid(compact[:n]):
            return "[iban]" + raw[ends[n - 1]:]
    return raw


def _intl_phone(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return "[phone]" if len(digits) >= 8 else match.group(0)


def _keep_label(placeholder: str) -> Callable[[re.Match[str]], str]:
    """Replace group 1 only, so the label ("acct #", "DOB:") stays readable."""
    def sub(match: re.Match[str]) -> str:
        return match.group(0)[:match.start(1) - match.start(0)] + placeholder
    return sub


def _account(match: re.Match[str]) -> str:
    if len(re.sub(r"\D", "", match.group(1))) < 6:
        return match.group(0)
    return _keep_label("[account]")(match)


def _mask_name(match: re.Match[str], group: int, lower_ok: bool = False) -> str:
    """Mask the leading name words of `group`, up to the first common word."""
    names = match.group(group)
    if any(word.lower() in _BUSINESS_WORDS for word in names.split()):
        return match.group(0)
    keep = 0
    for word in names.split():
        if word.lower().strip("'’") in _NOT_NAMES:
            break
        keep += 1
    if keep == 0 or (names[:1].islower() and not lower_ok):
        return match.group(0)
    end = [m.end() for m in re.finditer(r"\S+", names)][keep - 1]
    head = match.group(0)[:match.start(group) - match.start(0)]
    return f"{head}[name]{names[end:]}"


def _greeting(match: re.Match[str]) -> str:
    greeting = match.group(1).lower().split()[0] in _GREETINGS
    if greeting and not match.group(3) and match.group(2).strip(" \t"):
        # "Hi, Maria!" but not "Hi, Leak under the sink": after "Hi," a capital word is
        # usually the next sentence, so it must stand alone as the whole address.
        after = match.string[match.end():].lstrip(" \t")
        if after and after[0] not in ",!.:;\n" and not re.match(r"here\b", after):
            return match.group(0)
    # A lower-case name only straight after a greeting ("hi maria,"), not "this is urgent."
    return _mask_name(match, 4, lower_ok=greeting)


def _sign_off(match: re.Match[str]) -> str:
    lead, sep = match.group(1).lower(), match.group(2)
    if sep.strip(" \t") == "" and not lead.startswith(("thank", "many")):
        return match.group(0)  # "the best Plumber." is not a sign-off
    return _mask_name(match, 4)


def redact_text(text: str) -> str:
    text = _EMAIL.sub("[email]", text)
    text = _IBAN.sub(_iban, text)
    text = _CARD.sub(_card, text)
    text = _ACCOUNT.sub(_account, text)
    text = _DOB.sub(_keep_label("[dob]"), text)
    text = _SSN.sub("[ssn]", text)
    text = _PHONE_INTL.sub(_intl_phone, text)
    text = _PHONE_US.sub("[phone]", text)
    text = _PHONE_NATIONAL.sub("[phone]", text)
    text = _PHONE_LOCAL.sub(_keep_label("[phone]"), text)
    text = _DIGITS.sub("[number]", text)
    text = _ADDRESS.sub("[address]", text)
    text = _PO_BOX.sub("[address]", text)
    text = _NAME_LEAD.sub(_greeting, text)
    text = _SIGN_OFF.sub(_sign_off, text)
    return _TITLED.sub(lambda m: _mask_name(m, 3), text)


def _pii_key(key: str) -> bool:
    return key in PII_KEYS or key.endswith(PII_KEY_SUFFIXES)


def _is_person(record: dict[Any, Any], parent: str | None) -> bool:
    keys = {k.lower() for k in record if isinstance(k, str)}
    if "resident_id" in keys:
        return True
    kind = next((str(record[k]).lower() for k in record if k in ("type", "kind", "role")), "")
    if keys & NON_PERSON_MARKERS or parent in NON_PERSON_PARENTS or kind in NON_PERSON_KINDS:
        return False
    return bool(keys & PERSON_MARKERS) or parent in PERSON_PARENTS


IDENTIFIER_KEYS = frozenset({"id", "graph", "tool", "event_type", "stage", "outcome"})


def _identifier(key: str | None) -> bool:
    """Our own identifiers (tenant, property, run, action ids ...) are not personal data, and
    scrubbing them would break what is keyed on them (e.g. simulation's scope lookup)."""
    return key is not None and (key in IDENTIFIER_KEYS or key.endswith("_id"))


def redact(value: Any, _parent: str | None = None) -> Any:
    """A copy of `value` (JSON-like) with PII keys masked and free text scrubbed."""
    if isinstance(value, dict):
        person = _is_person(value, _parent)
        out: dict[Any, Any] = {}
        for k, v in value.items():
            key = k.lower() if isinstance(k, str) else None
            masked = key is not None and (_pii_key(key) or (person and key == "name"))
            if masked and v not in (None, "", [], {}):
                out[k] = "[redacted]"
            elif isinstance(v, str) and (key in AUDIT_KEYS or _identifier(key)):
                out[k] = v
            else:
                out[k] = redact(v, key)
        return out
    if isinstance(value, list):
        return [redact(v, _parent) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value
