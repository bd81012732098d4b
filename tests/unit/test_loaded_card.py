"""Cards read back at start derive their keys on first use and keep them; wallets that were never
rolled to a day share one empty, unwritable set of meal counts."""

from __future__ import annotations

from dataclasses import fields

import pytest

from onecard_client.credentials import derive_card_key, derive_ecard_key
from onecard_hub.domain.ledger import Account, AccountKind
from onecard_hub.domain.model import (
    BankStatus,
    Card,
    CardKeys,
    CardStatus,
    Enrollment,
    LoadedCard,
    Presence,
    Student,
    StudentGroup,
    Wallet,
)

ISSUER, ECARD = bytes(range(32)), bytes(range(32, 64))


def _student() -> Student:
    wallet = Wallet(Account(1, AccountKind.WALLET, "s-1"))
    return Student("s-1", "sc", "张*三", StudentGroup.BOARDER, Enrollment.ENROLLED, wallet)


def _loaded(card_no: str = "A00000001") -> LoadedCard:
    return LoadedCard(
        CardKeys(ISSUER, ECARD), card_no, _student(), CardStatus.ACTIVE, b"pin", 4, 0,
        Presence.UNKNOWN, False, True, 3, "ICBC", BankStatus.ACTIVE, 0, "",
    )  # fmt: skip


def test_keys_are_the_derived_ones_made_once() -> None:
    card = _loaded()
    assert card.card_key == derive_card_key(ISSUER, "A00000001")
    assert card.ecard_key == derive_ecard_key(ECARD, "A00000001")
    assert card.card_key is card.card_key and card.ecard_key is card.ecard_key  # kept, not derived again
    assert card.card_key != _loaded("A00000002").card_key


def test_a_loaded_card_is_a_card_like_any_other() -> None:
    student = _student()
    card = _loaded()
    card.student = student
    eager = Card(
        "A00000001", student, CardStatus.ACTIVE, derive_card_key(ISSUER, "A00000001"),
        derive_ecard_key(ECARD, "A00000001"), b"pin", atc=4, bank_code="ICBC",
    )  # fmt: skip
    assert isinstance(card, Card)
    assert [getattr(card, f.name) for f in fields(Card)] == [getattr(eager, f.name) for f in fields(Card)]
    card.status = CardStatus.LOST
    assert card.status is CardStatus.LOST and card.presence_ms == 0
    with pytest.raises(AttributeError, match="no_such_field"):
        card.no_such_field  # noqa: B018


def test_an_unrolled_wallet_cannot_count_meals_until_rolled() -> None:
    first, second = _student().wallet, _student().wallet
    assert first.meal_counts == {} and first.meal_counts.get("lunch", 0) == 0
    with pytest.raises(TypeError):
        first.meal_counts["lunch"] = 1
    first.roll_to(20_000)
    first.meal_counts["lunch"] = 1
    assert first.meal_counts == {"lunch": 1} and second.meal_counts == {}
