"""The card office's pure rules: the one transition table, PINs, banks, guardians, the audit text."""

from __future__ import annotations

from datetime import date

import pytest

from onecard_hub.domain import audit
from onecard_hub.domain.card_lifecycle import (
    DEAD,
    IDENTITY_TRANSITIONS,
    REPLACEMENT_STATUS,
    CardAction,
    CardBook,
    ECardStatus,
    check_bank,
    check_pin,
    check_pin_action,
    ecard_status,
    next_ecard_status,
    next_status,
)
from onecard_hub.domain.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from onecard_hub.domain.guardian import (
    Guardian,
    Relation,
    check_candidate,
    check_identity,
    is_minor,
    require_guardian,
)
from onecard_hub.domain.ledger import Account, AccountKind
from onecard_hub.domain.model import Card, CardStatus, Enrollment, Student, StudentGroup, Wallet
from onecard_hub.domain.pii import id_check_digit

TODAY = date(2026, 11, 24)
S = CardStatus


def _id(born: date, area: str = "360702", seq: int = 123) -> str:
    first17 = f"{area}{born:%Y%m%d}{seq:03d}"
    return first17 + id_check_digit(first17)


def _student(born: str = "2004-05-06", index: bytes = b"holder") -> Student:
    wallet = Wallet(Account(1, AccountKind.WALLET, "s-1"))
    return Student("s-1", "sc", "张*三", StudentGroup.DAY, Enrollment.ENROLLED, wallet, born, index)


def _card(status: CardStatus = S.ACTIVE, **kw: object) -> Card:
    return Card("A00000001", _student(), status, b"k", b"e", b"p", **kw)  # type: ignore[arg-type]


# Every (action, from) pair: the table's answer, or None where the action is illegal.
EXPECTED = {
    CardAction.ENABLE: {S.NOT_ENABLED: S.ACTIVE},
    CardAction.REPORT_LOSS: {S.ACTIVE: S.LOST},
    CardAction.UNLOCK: {S.LOST: S.ACTIVE},
    CardAction.FREEZE: {S.ACTIVE: S.FROZEN},
    CardAction.UNFREEZE: {S.FROZEN: S.ACTIVE},
    CardAction.REPLACE: {
        S.ACTIVE: S.REPLACED,
        S.LOST: S.REPLACED,
        S.FROZEN: S.REPLACED,
        S.NOT_ENABLED: S.REPLACED,
    },
}


@pytest.mark.parametrize("action", list(EXPECTED))
@pytest.mark.parametrize("status", list(CardStatus))
def test_every_identity_transition_is_in_the_one_table(action: CardAction, status: CardStatus) -> None:
    expected = EXPECTED[action].get(status)
    card = _card(status)
    if expected is None:
        with pytest.raises(FailedPrecondition) as refused:
            next_status(action, card)
        assert refused.value.reason == "ILLEGAL_TRANSITION"
        assert refused.value.metadata == {"state": status.value}
    else:
        assert next_status(action, card) is expected
    assert IDENTITY_TRANSITIONS[action].get(status) is expected


def test_nothing_leaves_a_dead_state_and_a_replacement_keeps_a_freeze() -> None:
    for action, table in IDENTITY_TRANSITIONS.items():
        assert not DEAD & set(table), action
    assert REPLACEMENT_STATUS[S.LOST] is S.ACTIVE
    assert REPLACEMENT_STATUS[S.FROZEN] is S.FROZEN
    assert REPLACEMENT_STATUS[S.NOT_ENABLED] is S.NOT_ENABLED
    assert set(REPLACEMENT_STATUS) == set(IDENTITY_TRANSITIONS[CardAction.REPLACE])


def test_the_ecard_has_its_own_status() -> None:
    card = _card()
    assert ecard_status(card) is ECardStatus.ACTIVE
    assert next_ecard_status(CardAction.SUSPEND_ECARD, card) is ECardStatus.SUSPENDED
    with pytest.raises(FailedPrecondition) as resumed:
        next_ecard_status(CardAction.RESUME_ECARD, card)
    assert resumed.value.metadata == {"state": "ecard_active"}
    with pytest.raises(FailedPrecondition) as none:
        next_ecard_status(CardAction.SUSPEND_ECARD, _card(ecard_issued=False))
    assert none.value.metadata == {"state": "ecard_not_issued"}
    with pytest.raises(FailedPrecondition) as dead:
        next_ecard_status(CardAction.SUSPEND_ECARD, _card(S.REPLACED))
    assert dead.value.metadata == {"state": "replaced"}
    assert next_ecard_status(CardAction.SUSPEND_ECARD, _card(S.LOST)) is ECardStatus.SUSPENDED


def test_pins_banks_and_the_pin_lock() -> None:
    assert check_pin("480913", "new_pin") == "480913"
    for weak in ("123456", "654321", "000000", "12345", "1234567", "12a456", ""):
        with pytest.raises(InvalidArgument) as bad:
            check_pin(weak, "new_pin")
        assert bad.value.field == "new_pin"
    assert check_bank("JXB") == "JXB"
    with pytest.raises(InvalidArgument):
        check_bank("jxb")
    check_pin_action(CardAction.CHANGE_PIN, _card(pin_failures=2), 3)
    with pytest.raises(FailedPrecondition) as locked:
        check_pin_action(CardAction.CHANGE_PIN, _card(pin_failures=3), 3)
    assert locked.value.metadata == {"state": "pin_locked"}
    check_pin_action(CardAction.RESET_PIN, _card(pin_failures=3), 3)
    with pytest.raises(FailedPrecondition):
        check_pin_action(CardAction.RESET_PIN, _card(S.REPLACED), 3)


def test_guardians_are_adults_with_valid_id_numbers() -> None:
    good = _id(date(1980, 3, 14))
    candidate = check_candidate(" 王建国 ", good, Relation.PARENT, TODAY, "guardian")
    assert candidate.name == "王建国"
    cases = {
        ("", good, Relation.PARENT): "guardian.name",
        ("王建国", good[:-1] + ("0" if good[-1] != "0" else "1"), Relation.PARENT): "guardian.id_number",
        ("王建国", _id(date(2010, 1, 1)), Relation.PARENT): "guardian.id_number",  # a child
        ("王建国", _id(date(2030, 1, 1)), Relation.PARENT): "guardian.id_number",  # not born yet
        ("王建国", good, None): "guardian.relation",
    }
    for (name, number, relation), field in cases.items():
        with pytest.raises(InvalidArgument) as bad:
            check_candidate(name, number, relation, TODAY, "guardian")
        assert bad.value.field == field


def test_a_minor_needs_a_guardian_and_the_identity_check_matches_indexes() -> None:
    minor, adult = _student("2010-11-25"), _student("2008-11-24")
    assert is_minor(minor, TODAY) and not is_minor(adult, TODAY)  # 18 on the birthday
    assert is_minor(_student(""), TODAY)  # unknown birth date: ask for a guardian
    with pytest.raises(FailedPrecondition) as required:
        require_guardian(minor, [], TODAY, offered=False)
    assert required.value.reason == "GUARDIAN_REQUIRED"
    require_guardian(minor, [], TODAY, offered=True)
    require_guardian(adult, [], TODAY, offered=False)

    guardian = Guardian("王*国", b"parent", "3607**********1234", Relation.PARENT, 0)
    check_identity(adult, [], TODAY, b"holder", None)
    with pytest.raises(PermissionDenied) as wrong:
        check_identity(adult, [], TODAY, b"someone", None)
    assert wrong.value.reason == "IDENTITY_CHECK_FAILED"
    with pytest.raises(FailedPrecondition):
        check_identity(minor, [guardian], TODAY, b"holder", None)
    with pytest.raises(PermissionDenied):
        check_identity(minor, [guardian], TODAY, b"holder", b"stranger")
    check_identity(minor, [guardian], TODAY, b"holder", b"parent")


def test_the_card_book_follows_the_current_card() -> None:
    book = CardBook()
    old, new = _card(), Card("B00000002", _student(), S.NOT_ENABLED, b"k", b"e", b"p")
    book.note_card(old)
    assert book.current == {"s-1": old.card_no}
    old.status = S.REPLACED
    book.note_card(old)
    assert book.current == {}
    book.note_card(new)
    assert book.current == {"s-1": new.card_no}


def test_audit_details_refuse_unmasked_numbers_and_pages_run_newest_first() -> None:
    text = audit.details(new_card_no="A12345678", guardian="3607**********1234", failures=2, none=None)
    assert text == "new_card_no=A12345678; guardian=3607**********1234; failures=2"
    for leak in ("360702198003141234", "480913"):
        with pytest.raises(ValueError):
            audit.details(guardian=leak)
    assert audit.page_size(0) == audit.DEFAULT_PAGE_SIZE and audit.page_size(10_000) == audit.MAX_PAGE_SIZE
    assert audit.after_id("") == 0 and audit.after_id("42") == 42
    for bad in ("0", "-1", "x", "1" * 30):
        with pytest.raises(InvalidArgument):
            audit.after_id(bad)
    assert audit.next_token([9, 8, 7], 3) == "7" and audit.next_token([9, 8], 3) == ""
