"""Top-up (圈存) rules, pure: the two-phase steps after a debit and after each reversal, the
bound before manual review, backoff with jitter, limits, resolutions checked against the bank, ids
without digit runs, and the purchase path's low-balance hook."""

from __future__ import annotations

import pytest

from onecard_hub.domain.bank import BankOutcome, RejectReason
from onecard_hub.domain.errors import FailedPrecondition, InvalidArgument
from onecard_hub.domain.topup import (
    MAX_DAILY_FEN,
    MAX_TOPUP_FEN,
    LowBalanceWatch,
    Step,
    TopUpState,
    after_debit,
    after_reversal,
    backoff_s,
    check_amount,
    check_auto,
    check_note,
    check_resolution,
    topup_id,
)


def test_after_the_debit() -> None:
    assert after_debit(BankOutcome.POSTED, RejectReason.NONE) == (Step.POST, "")
    assert after_debit(BankOutcome.REJECTED, RejectReason.ACCOUNT_FROZEN) == (Step.VOID, "account_frozen")
    assert after_debit(BankOutcome.REJECTED, RejectReason.NOT_ACTIVATED) == (Step.VOID, "not_activated")
    assert after_debit(BankOutcome.REVERSED, RejectReason.REVERSED_BEFORE)[0] is Step.VOID
    assert after_debit(BankOutcome.UNCERTAIN, RejectReason.NONE) == (Step.REVERSE, "")


def test_reversals_until_definite_then_review() -> None:
    assert after_reversal(BankOutcome.REVERSED, 1) == (Step.VOID, "reversed")
    assert after_reversal(BankOutcome.REJECTED, 3) == (Step.VOID, "rejected")
    assert after_reversal(BankOutcome.UNCERTAIN, 7, 8)[0] is Step.REVERSE
    assert after_reversal(BankOutcome.NOT_FOUND, 2, 8)[0] is Step.REVERSE
    step, reason = after_reversal(BankOutcome.UNCERTAIN, 8, 8)
    assert step is Step.REVIEW and "8" in reason


def test_backoff_grows_is_capped_and_jittered() -> None:
    assert backoff_s(1, 0.2, 10, 0.0) == pytest.approx(0.1)
    assert backoff_s(3, 0.2, 10, 1.0) == pytest.approx(0.8)
    assert backoff_s(30, 0.2, 10, 0.99) <= 10
    assert backoff_s(4, 0.2, 10, 0.0) < backoff_s(4, 0.2, 10, 0.9)


def test_limits() -> None:
    check_amount(MAX_TOPUP_FEN, MAX_DAILY_FEN - MAX_TOPUP_FEN)
    for bad in (0, -1, MAX_TOPUP_FEN + 1):
        with pytest.raises(InvalidArgument) as named:
            check_amount(bad, 0)
        assert named.value.field == "amount_fen"
    with pytest.raises(FailedPrecondition) as over:
        check_amount(2, MAX_DAILY_FEN - 1)
    assert over.value.reason == "LIMIT_EXCEEDED" and over.value.metadata["left_fen"] == "1"
    check_auto(0, 0, False)
    with pytest.raises(InvalidArgument) as auto:
        check_auto(0, 100, True)
    assert auto.value.field == "threshold_fen"


def test_a_resolution_must_agree_with_the_bank() -> None:
    check_resolution(TopUpState.POSTED, BankOutcome.POSTED)
    check_resolution(TopUpState.VOIDED, BankOutcome.REVERSED)
    check_resolution(TopUpState.POSTED, BankOutcome.UNCERTAIN)  # unreachable: the operator's word
    with pytest.raises(FailedPrecondition) as no:
        check_resolution(TopUpState.VOIDED, BankOutcome.POSTED)
    assert no.value.reason == "BANK_DISAGREES" and no.value.metadata["bank_status"] == "posted"
    with pytest.raises(InvalidArgument):
        check_note("ID 360102200801011234")
    assert check_note("  checked the bank's statement ") == "checked the bank's statement"


def test_ids_are_unique_sortable_and_digit_free() -> None:
    a, b = topup_id(1_795_000_000_000, 1), topup_id(1_795_000_000_001, 0)
    assert a < b and len(a) <= 64 and not any(ch.isdigit() for ch in a)


def test_the_low_balance_hook_queues_once_and_is_bounded() -> None:
    woke: list[int] = []
    watch = LowBalanceWatch(capacity=2, wake=lambda: woke.append(1))
    watch.purchased("S1", 100)  # no auto top-up: nothing
    watch.thresholds.update({"S1": 1_000, "S2": 1_000, "S3": 1_000})
    watch.purchased("S1", 5_000)  # above the threshold
    watch.purchased("S1", 500)
    watch.purchased("S1", 400)  # already queued
    watch.purchased("S2", 400)
    watch.purchased("S3", 400)  # the queue is full
    assert list(watch.waiting) == ["S1", "S2"] and watch.dropped == 1 and len(woke) == 2
    assert watch.take() == "S1"
    watch.purchased("S1", 300)  # in flight: not again
    assert list(watch.waiting) == ["S2"]
    watch.done("S1")
    watch.purchased("S1", 300)
    assert list(watch.waiting) == ["S2", "S1"]
