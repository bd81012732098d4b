"""Personal data rules: masking and checking Chinese resident ID numbers (GB 11643)."""

from __future__ import annotations

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"


def id_check_digit(first17: str) -> str:
    return _CHECK[sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True)) % 11]


def is_valid_id_number(text: str) -> bool:
    return (
        len(text) == 18
        and text[:17].isdigit()
        and text[:17].isascii()
        and id_check_digit(text[:17]) == text[17].upper()
    )


def mask_id_number(text: str) -> str:
    """3601**********1234: the first four and last four characters stay."""
    if len(text) <= 8:
        return "*" * len(text)
    return text[:4] + "*" * (len(text) - 8) + text[-4:]


def mask_name(name: str) -> str:
    """张*三 for three characters, 李* for two, 欧**峰 for four."""
    if len(name) <= 1:
        return name
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


def mask_card_no(card_no: str) -> str:
    if len(card_no) <= 6:
        return "*" * len(card_no)
    return card_no[:2] + "*" * (len(card_no) - 6) + card_no[-4:]
