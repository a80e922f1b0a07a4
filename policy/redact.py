"""PII redaction for what we store about decisions (seed 002: audit payloads PII-redacted).

Keys that hold personal data are replaced outright; free text keeps its words (keyword
screening and replays need them) but loses e-mail addresses, phone numbers and long digit
runs such as card or account numbers.
"""

from __future__ import annotations

import re
from typing import Any

PII_KEYS = frozenset({
    "email", "phone", "phone_number", "mobile", "recipient", "recipients", "resident_name",
    "first_name", "last_name", "full_name", "address", "street", "ssn", "date_of_birth",
    "dob", "card_number", "iban", "account_number",
})
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?\(?\d{3}\)?[\s.-]?\d{3}[\s.-]?\d{4}(?!\w)")
_DIGITS = re.compile(r"\b\d{9,}\b")


def redact_text(text: str) -> str:
    text = _EMAIL.sub("[email]", text)
    text = _PHONE.sub("[phone]", text)
    return _DIGITS.sub("[number]", text)


def redact(value: Any) -> Any:
    """A copy of `value` (JSON-like) with PII keys masked and free text scrubbed."""
    if isinstance(value, dict):
        return {k: ("[redacted]" if k.lower() in PII_KEYS and v not in (None, "", [])
                    else redact(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value
