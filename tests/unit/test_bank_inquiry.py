"""bank/inquiry.settle_by_inquiry, the loop the grant and settlement payers share, against a scripted
bank: a NOT_FOUND is reversed before it is asked about again; a bound leaves the last answer open."""

from __future__ import annotations

from dataclasses import dataclass, field

from onecard_hub.bank.inquiry import settle_by_inquiry
from onecard_hub.domain.bank import BankOutcome, ReversalResult, TransferResult, reversal_id_of

TID = "G-S1-B1-2026-1"


@dataclass
class ScriptedBank:
    """Answers inquiries in the order given; records every call."""

    answers: list[BankOutcome]
    calls: list[tuple[str, str]] = field(default_factory=list)

    async def get_transfer(
        self, bank_code: str, transfer_id: str, *, deadline_s: float | None = None
    ) -> TransferResult:
        self.calls.append(("inquiry", transfer_id))
        return TransferResult(transfer_id, self.answers.pop(0))

    async def reverse(
        self,
        reversal_id: str,
        bank_code: str,
        transfer_id: str,
        business_date: str,
        *,
        deadline_s: float | None = None,
    ) -> ReversalResult:
        self.calls.append(("reverse", reversal_id))
        return ReversalResult(reversal_id, transfer_id, BankOutcome.REVERSED)


async def settle(bank: ScriptedBank, first: BankOutcome, inquiries: int | None = None) -> TransferResult:
    return await settle_by_inquiry(
        bank,
        TransferResult(TID, first),
        "ICBC",
        TID,
        "2026-11-25",
        backoff_s=0.0,
        max_backoff_s=0.0,
        inquiries=inquiries,
    )


async def test_a_definite_answer_is_taken_without_asking() -> None:
    bank = ScriptedBank([])
    assert (await settle(bank, BankOutcome.POSTED)).outcome is BankOutcome.POSTED
    assert bank.calls == []


async def test_uncertain_is_asked_about_until_definite() -> None:
    bank = ScriptedBank([BankOutcome.UNCERTAIN, BankOutcome.UNCERTAIN, BankOutcome.RETURNED])
    assert (await settle(bank, BankOutcome.UNCERTAIN)).outcome is BankOutcome.RETURNED
    assert bank.calls == [("inquiry", TID)] * 3


async def test_not_found_is_reversed_before_the_next_inquiry() -> None:
    bank = ScriptedBank([BankOutcome.NOT_FOUND, BankOutcome.REVERSED])
    assert (await settle(bank, BankOutcome.UNCERTAIN)).outcome is BankOutcome.REVERSED
    assert bank.calls == [("inquiry", TID), ("reverse", reversal_id_of(TID)), ("inquiry", TID)]


async def test_a_bound_leaves_the_last_answer_open() -> None:
    bank = ScriptedBank([BankOutcome.UNCERTAIN] * 2)
    assert (await settle(bank, BankOutcome.UNCERTAIN, inquiries=2)).outcome is BankOutcome.UNCERTAIN
    assert bank.calls == [("inquiry", TID)] * 2


async def test_the_last_inquiry_within_the_bound_is_acted_on() -> None:
    bank = ScriptedBank([BankOutcome.UNCERTAIN, BankOutcome.POSTED])
    assert (await settle(bank, BankOutcome.UNCERTAIN, inquiries=2)).outcome is BankOutcome.POSTED
