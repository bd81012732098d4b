"""The audit log of card-office actions: what a line says, and how it is paged.

Every card-office action writes one entry, in the same journal batch as the change it records:
who (the operator, or the terminal or feed that acted), what (the action), when (the hub's clock),
on whom (student, card) and details. Details hold only masked personal data: `details()` refuses a
value with a run of 6 or more digits that is not a card number (a clear ID number, a PIN, a bank
account) so a mistake fails loudly in tests instead of leaking into the log.
"""

from __future__ import annotations

import re

from onecard_hub.domain.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
_DIGIT_RUN = re.compile(r"[0-9]{6,}")
_TOKEN = re.compile(r"[1-9][0-9]{0,18}")
MAX_AUDIT_ID = 2**63 - 1  # audit ids are SQLite rowids: a larger token would not fit the query


def details(**values: object) -> str:
    """`key=value` pairs in the given order, for the audit entry's `details`.

    Keys ending in `card_no` may hold card numbers; no other value may hold six digits in a row.
    """
    parts = []
    for key, value in values.items():
        if value is None or value == "":
            continue
        text = str(value)
        if not key.endswith("card_no") and _DIGIT_RUN.search(text):
            raise ValueError(f"audit detail {key!r} looks like unmasked personal data")
        parts.append(f"{key}={text}")
    return "; ".join(parts)


def page_size(requested: int) -> int:
    if requested < 0:
        raise InvalidArgument("page_size", "must not be negative")
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def after_id(page_token: str) -> int:
    """The page token is the id of the last entry of the previous page (entries run newest first)."""
    if not page_token:
        return 0
    if _TOKEN.fullmatch(page_token) is None or int(page_token) > MAX_AUDIT_ID:
        raise InvalidArgument("page_token", "not a token this hub gave out")
    return int(page_token)


def next_token(ids: list[int], size: int) -> str:
    """A token for the next page when this one was full; "" at the end."""
    return str(ids[-1]) if len(ids) == size and ids else ""
