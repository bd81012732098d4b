"""Top-ups when the bank misbehaves (the bank simulator's faults): a dropped reply settled by
reversal (冲正) → VOIDED with the bank balance restored; a bank kept down → MANUAL_REVIEW after the
bounded number of reversals, resolved by an operator (checked against the bank); a restart resumes
every pending top-up; with 10% errors, 10% timeouts and 10% dropped replies every top-up ends final
and money is conserved."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from onecard.funds.v1 import funds_service_pb2 as pb
from onecard_client import ClientConfig, FundsClient
from onecard_client.campus import CampusCredentials
from onecard_client.errors import FailedPreconditionError, InvalidArgumentError
from onecard_hub.domain.clock import ManualClock
from onecard_hub.domain.ledger import AccountKind
from onecard_hub.domain.topup import TopUpState
from onecard_hub.server import RunningHub, running_hub
from onecard_sim.bank import running_bank
from tests.conftest import hub_config
from tests.helpers import until
from tests.integration.topup_fixtures import (
    ADMIN,
    bank_balance,
    cards,
    rid,
    speed_up,
    until_final,
    world,
)


def _clearing_fen(hub: RunningHub) -> int:
    return sum(
        a.balance_fen for a in hub.hub.campus.ledger.accounts.values() if a.kind is AccountKind.BANK_CLEARING
    )


async def test_a_dropped_reply_is_reversed_and_voided(
    campus_dir: Path, clock: ManualClock, creds: CampusCredentials, tmp_path: Path
) -> None:
    async with world(campus_dir, clock, tmp_path) as w:
        assert w.hub.funds is not None
        speed_up(w.hub, max_reversals=100)
        card = cards(creds, 1)[0]
        student = w.hub.hub.campus.cards[card.card_no].student
        wallet, at_bank = student.wallet.balance_fen, await bank_balance(w.bank, card)
        await w.bank.control.set_faults(drop_reply_rate=1.0, bank_code=card.bank_code)
        call = asyncio.create_task(w.client.top_up(rid(), 3_000, card_no=card.card_no))
        book = w.hub.funds.book
        await until(lambda: any(t.reversals >= 2 for t in book.topups.values()))
        await w.bank.control.set_faults(bank_code=card.bank_code)  # answered again
        first = (await call).topup
        topup = await until_final(w.client, first.topup_id)
        assert topup.state == pb.TOP_UP_STATE_VOIDED and topup.reason == "reversed", topup
        assert topup.reversal_attempts >= 2
        assert student.wallet.balance_fen == wallet
        assert await bank_balance(w.bank, card) == at_bank
        assert w.hub.hub.campus.ledger.total_fen() == 0


async def test_a_bank_kept_down_sends_the_top_up_to_manual_review(
    campus_dir: Path, clock: ManualClock, creds: CampusCredentials, tmp_path: Path
) -> None:
    async with world(campus_dir, clock, tmp_path) as w:
        speed_up(w.hub, max_reversals=3)
        card = cards(creds, 1)[0]
        student = w.hub.hub.campus.cards[card.card_no].student
        wallet, at_bank = student.wallet.balance_fen, await bank_balance(w.bank, card)
        await w.bank.control.set_faults(outage_s=60)
        first = (await w.client.top_up(rid(), 4_000, student_id=card.student_id)).topup
        topup = await until_final(w.client, first.topup_id)
        assert topup.state == pb.TOP_UP_STATE_MANUAL_REVIEW and topup.reversal_attempts == 3, topup
        queue = (await w.client.list_manual_review()).topups
        assert [t.topup_id for t in queue] == [topup.topup_id]
        await w.bank.control.set_faults(outage_s=0)
        with pytest.raises(InvalidArgumentError) as no_note:
            await w.client.resolve_manual_review(rid(), topup.topup_id, pb.RESOLUTION_VOIDED, "")
        assert no_note.value.field == "note"
        with pytest.raises(FailedPreconditionError) as disagrees:
            await w.client.resolve_manual_review(rid(), topup.topup_id, pb.RESOLUTION_POSTED, "bank says so")
        assert disagrees.value.reason == "BANK_DISAGREES"
        assert disagrees.value.metadata["bank_status"] == "not_found"
        resolved = await w.client.resolve_manual_review(
            rid(), topup.topup_id, pb.RESOLUTION_VOIDED, "checked with the bank: never debited"
        )
        assert resolved.topup.state == pb.TOP_UP_STATE_VOIDED and resolved.bank_status == "not_found"
        assert (await w.client.list_manual_review()).topups == []
        assert student.wallet.balance_fen == wallet and await bank_balance(w.bank, card) == at_bank
        with pytest.raises(FailedPreconditionError) as twice:
            await w.client.resolve_manual_review(rid(), topup.topup_id, pb.RESOLUTION_VOIDED, "again")
        assert twice.value.reason == "ILLEGAL_TRANSITION"


async def test_a_restart_resumes_pending_top_ups(
    campus_dir: Path, clock: ManualClock, creds: CampusCredentials, tmp_path: Path
) -> None:
    card = cards(creds, 1)[0]
    async with running_bank(tmp_path / "bank.db", campus_dir / "hub.keys") as bank:
        at_bank = await bank_balance(bank, card)
        async with running_hub(hub_config(campus_dir, bank=bank.target), clock) as hub:
            assert hub.funds is not None
            speed_up(hub, max_reversals=1_000)
            wallet = hub.hub.campus.cards[card.card_no].student.wallet.balance_fen
            await bank.control.set_faults(drop_reply_rate=1.0)
            async with FundsClient(ADMIN, ClientConfig(target=hub.target)) as client:
                call = asyncio.create_task(client.top_up(rid(), 6_000, card_no=card.card_no))
                book = hub.funds.book
                await until(lambda: any(t.reversals >= 1 for t in book.topups.values()))
                await bank.control.set_faults(outage_s=60)  # the reversals go unanswered now
                first = (await call).topup
            assert first.state == pb.TOP_UP_STATE_PENDING
        # the debit applied at the bank (its reply dropped); the hub stopped with the top-up PENDING
        await bank.control.set_faults(outage_s=0)
        async with running_hub(hub_config(campus_dir, bank=bank.target), clock) as hub:
            async with FundsClient(ADMIN, ClientConfig(target=hub.target)) as client:
                topup = await until_final(client, first.topup_id)
            assert topup.state == pb.TOP_UP_STATE_VOIDED, topup
            assert hub.hub.campus.cards[card.card_no].student.wallet.balance_fen == wallet
            assert await bank_balance(bank, card) == at_bank
            assert hub.hub.campus.ledger.total_fen() == 0


async def test_with_faults_every_top_up_ends_final_and_money_is_conserved(
    campus_dir: Path, clock: ManualClock, creds: CampusCredentials, tmp_path: Path
) -> None:
    async with world(campus_dir, clock, tmp_path) as w:
        assert w.hub.funds is not None
        speed_up(w.hub, max_reversals=30)
        chosen = cards(creds, 12)
        before = {c.card_no: await bank_balance(w.bank, c) for c in chosen}
        clearing = _clearing_fen(w.hub)
        await w.bank.control.set_faults(error_rate=0.1, timeout_rate=0.1, drop_reply_rate=0.1, seed=5)
        answers = await asyncio.gather(
            *(w.client.top_up(rid(), 1_000 + 10 * i, card_no=c.card_no) for i, c in enumerate(chosen * 3))
        )
        finals = [await until_final(w.client, a.topup.topup_id, limit_s=60) for a in answers]
        await w.bank.control.clear_faults()
        states = {t.state for t in finals}
        assert states <= {pb.TOP_UP_STATE_POSTED, pb.TOP_UP_STATE_VOIDED}, states
        posted = sum(t.amount_fen for t in finals if t.state == pb.TOP_UP_STATE_POSTED)
        after = {c.card_no: await bank_balance(w.bank, c) for c in chosen}
        assert sum(before.values()) - sum(after.values()) == posted
        assert clearing - _clearing_fen(w.hub) == posted
        assert w.hub.hub.campus.ledger.total_fen() == 0
        for t in finals:
            if t.state == pb.TOP_UP_STATE_POSTED:
                assert (
                    await w.bank.control.get_transfer(t.bank_code, t.transfer_id)
                ).amount_fen == t.amount_fen
        assert all(
            t.state.final for t in w.hub.funds.book.topups.values() if t.state is not TopUpState.MANUAL_REVIEW
        )
