"""The offline booking rules, the blocklist and the configuration version, without a server."""

from __future__ import annotations

import dataclasses

from onecard_client.credentials import chip_cryptogram
from onecard_hub.domain.blocklist import Blocklist, BlocklistChange
from onecard_hub.domain.campus import Campus, ChipCredential
from onecard_hub.domain.decisions import DeclineReason
from onecard_hub.domain.ledger import Account, AccountKind, Ledger
from onecard_hub.domain.model import (
    Card,
    CardStatus,
    Enrollment,
    Scene,
    School,
    Student,
    StudentGroup,
    Terminal,
    TerminalKind,
    Wallet,
)
from onecard_hub.domain.offline import (
    Booking,
    OfflineBook,
    OfflineOutcome,
    OfflineTransaction,
    book_batch,
)
from onecard_hub.domain.policy import default_policy
from onecard_hub.domain.terminal_config import config_version, terminal_config

NOW = 1_795_492_800_000
KEY = b"k" * 32


def small_campus(balance_fen: int = 1_000) -> tuple[Campus, Terminal, Card]:
    ledger = Ledger()
    wallet = ledger.add(Account(1, AccountKind.WALLET, "s-1", balance_fen))
    ledger.add(Account(2, AccountKind.MERCHANT, "m-1"))
    ledger.add(Account(3, AccountKind.BANK_CLEARING, "bank", -balance_fen))
    campus = Campus(ledger, lambda card_no, pin: b"")
    campus.schools["sc"] = School("sc", "School", default_policy())
    student = Student("s-1", "sc", "张*三", StudentGroup.BOARDER, Enrollment.ENROLLED, Wallet(wallet))
    campus.students["s-1"] = student
    card = Card("C0000001", student, CardStatus.ACTIVE, KEY, KEY, b"")
    campus.cards[card.card_no] = card
    pos = Terminal("T-1", "sc", TerminalKind.CANTEEN_POS, merchant_id="m-1", merchant_account_id=2)
    campus.terminals[pos.terminal_id] = pos
    campus.build_blocklists()
    return campus, pos, card


def purchase(serial: int, atc: int, amount_fen: int, *, terminal: str = "T-1") -> OfflineTransaction:
    occurred = NOW - 60_000 + serial
    cryptogram = chip_cryptogram(
        KEY,
        card_no="C0000001",
        atc=atc,
        terminal_id=terminal,
        scene=int(Scene.CANTEEN_PURCHASE),
        amount_fen=amount_fen,
        tap_time_ms=occurred,
    )
    return OfflineTransaction(
        serial, Scene.CANTEEN_PURCHASE, ChipCredential("C0000001", atc, cryptogram), amount_fen, occurred
    )


def book(campus: Campus, offline: OfflineBook, pos: Terminal, txs: list[OfflineTransaction]) -> Booking:
    return book_batch(campus, offline, pos, "rq", txs, [True] * len(txs), NOW)


def test_debt_is_what_the_wallet_could_not_cover_and_the_ledger_balances() -> None:
    campus, pos, card = small_campus(balance_fen=1_000)
    offline = OfflineBook()
    booking = book(campus, offline, pos, [purchase(1, 5, 700), purchase(2, 6, 500), purchase(3, 7, 300)])
    assert [(r.outcome, r.debt_fen) for r in booking.results] == [
        (OfflineOutcome.BOOKED, 0),
        (OfflineOutcome.BOOKED, 200),
        (OfflineOutcome.BOOKED, 500),
    ]
    assert card.student.wallet.balance_fen == -500
    assert campus.ledger.total_fen() == 0
    assert card.atc == 7
    [debt] = offline.debts_of("sc")
    assert (debt.debt_fen, debt.refs) == (500, ["T-1#2", "T-1#3"])


def test_a_new_debt_starts_when_the_wallet_was_paid_back() -> None:
    campus, pos, card = small_campus(balance_fen=100)
    offline = OfflineBook()
    book(campus, offline, pos, [purchase(1, 5, 300)])
    card.student.wallet.account.balance_fen += 1_000  # a top-up settles the debt (and some more)
    assert offline.debts_of("sc") == []
    book(campus, offline, pos, [purchase(2, 6, 900), purchase(3, 7, 100)])
    [debt] = offline.debts_of(None)
    assert (debt.debt_fen, debt.refs) == (200, ["T-1#2", "T-1#3"])  # T-1#1 was paid back


def test_the_store_records_rebuild_the_same_book() -> None:
    campus, pos, _ = small_campus(balance_fen=100)
    offline = OfflineBook()
    booking = book(campus, offline, pos, [purchase(1, 5, 300), purchase(2, 6, 50)])
    rebuilt = OfflineBook()
    for record in booking.records:
        rebuilt.remember(record, campus)
    assert rebuilt.serials == offline.serials == {"T-1": {1, 2}}
    assert rebuilt.chip_counters == offline.chip_counters
    assert [d.refs for d in rebuilt.debts_of("sc")] == [["T-1#1", "T-1#2"]]


def test_duplicates_and_replays_change_nothing() -> None:
    campus, pos, card = small_campus()
    offline = OfflineBook()
    book(campus, offline, pos, [purchase(1, 5, 100)])
    balance = card.student.wallet.balance_fen
    again = book(campus, offline, pos, [purchase(1, 5, 100), purchase(2, 5, 100)])
    assert [(r.outcome, r.reason) for r in again.results] == [
        (OfflineOutcome.DUPLICATE, DeclineReason.NONE),
        (OfflineOutcome.REJECTED, DeclineReason.COUNTER_REPLAYED),
    ]
    assert again.transfers == [] and card.student.wallet.balance_fen == balance
    assert [r.outcome for r in again.records] == [int(OfflineOutcome.REJECTED)]


def test_a_record_for_another_terminal_does_not_verify() -> None:
    campus, pos, _ = small_campus()
    result = book(campus, OfflineBook(), pos, [purchase(1, 5, 100, terminal="T-2")]).results[0]
    assert (result.outcome, result.reason) == (OfflineOutcome.REJECTED, DeclineReason.CREDENTIAL_INVALID)


def test_every_blocklist_change_takes_the_next_version() -> None:
    blocklist = Blocklist("sc")
    assert blocklist.update("C1", CardStatus.LOST, 5) == BlocklistChange("sc", 1, "C1", True, 5)
    assert blocklist.update("C1", CardStatus.FROZEN) is None  # still blocked: no change
    removed = blocklist.update("C1", CardStatus.ACTIVE, 6)
    assert removed is not None and (removed.version, removed.added) == (2, False)
    assert blocklist.version == 2  # back to the same content, yet a new version


def test_config_version_changes_with_what_the_terminal_must_know() -> None:
    campus, pos, card = small_campus()
    policy = campus.schools["sc"].policy
    base = config_version(pos, policy, b"p" * 32, 30)
    assert base == config_version(dataclasses.replace(pos, software_version="v2"), policy, b"p" * 32, 30)
    assert base != config_version(pos, dataclasses.replace(policy, offline_max_stored=10), b"p" * 32, 30)
    assert base != config_version(pos, policy, b"q" * 32, 30)
    assert base != config_version(dataclasses.replace(pos, location="东门"), policy, b"p" * 32, 30)
    for change in campus.set_card_status(card.card_no, CardStatus.LOST):
        campus.blocklist("sc").mark_durable(change.version)  # terminals see only durable changes
    config = terminal_config(pos, policy, campus.blocklist("sc"), b"p" * 32, 30)
    assert (config.config_version, config.blocked_card_nos) == (base, [card.card_no])
