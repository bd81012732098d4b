"""Top-up (圈存) against the bank simulator: posted (the wallet credited, the bank account debited,
once per request_id), refused by the bank (not activated, frozen, insufficient funds) → VOIDED with
nothing moved, from a kiosk with the holder's card, the limits, and bad input named with nothing
written."""

from __future__ import annotations

from pathlib import Path

import pytest

from onecard.funds.v1 import funds_service_pb2 as pb
from onecard_client import ClientConfig, FundsClient
from onecard_client.campus import CampusCredentials
from onecard_client.errors import (
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
)
from onecard_hub.domain.clock import ManualClock
from tests.integration.topup_fixtures import add_kiosk, bank_balance, cards, rid, world


async def test_a_top_up_posts_once(
    campus_dir: Path, clock: ManualClock, creds: CampusCredentials, tmp_path: Path
) -> None:
    async with world(campus_dir, clock, tmp_path) as w:
        card = cards(creds, 1)[0]
        student = w.hub.hub.campus.cards[card.card_no].student
        wallet, at_bank = student.wallet.balance_fen, await bank_balance(w.bank, card)
        request_id = rid()
        first = (await w.client.top_up(request_id, 5_000, student_id=card.student_id)).topup
        assert first.state == pb.TOP_UP_STATE_POSTED, first
        assert first.origin == pb.TOP_UP_ORIGIN_OPERATOR and first.transfer_id == first.topup_id
        again = (await w.client.top_up(request_id, 5_000, student_id=card.student_id)).topup
        assert again.topup_id == first.topup_id and again.state == pb.TOP_UP_STATE_POSTED
        assert student.wallet.balance_fen == wallet + 5_000
        assert await bank_balance(w.bank, card) == at_bank - 5_000
        assert w.hub.hub.campus.ledger.total_fen() == 0
        bank_side = await w.bank.control.get_transfer(card.bank_code, first.transfer_id)
        assert bank_side.amount_fen == 5_000


@pytest.mark.parametrize(
    ("state", "add_fen", "reason"),
    [
        ("not_activated", 0, "not_activated"),
        ("frozen", 0, "account_frozen"),
        ("", -199_000, "insufficient_funds"),
    ],
)
async def test_a_refusal_voids_and_moves_nothing(
    campus_dir: Path,
    clock: ManualClock,
    creds: CampusCredentials,
    tmp_path: Path,
    state: str,
    add_fen: int,
    reason: str,
) -> None:
    async with world(campus_dir, clock, tmp_path) as w:
        card = cards(creds, 1)[0]
        await w.bank.control.adjust_account(
            card.bank_code, card_no=card.card_no, state=state, add_fen=add_fen
        )
        student = w.hub.hub.campus.cards[card.card_no].student
        wallet, at_bank = student.wallet.balance_fen, await bank_balance(w.bank, card)
        topup = (await w.client.top_up(rid(), 5_000, card_no=card.card_no)).topup
        assert topup.state == pb.TOP_UP_STATE_VOIDED and topup.reason == reason, topup
        assert student.wallet.balance_fen == wallet
        assert await bank_balance(w.bank, card) == at_bank
        assert w.hub.hub.campus.ledger.total_fen() == 0


async def test_a_kiosk_tops_up_the_card_it_read(
    campus_dir: Path, clock: ManualClock, creds: CampusCredentials, tmp_path: Path
) -> None:
    async with world(campus_dir, clock, tmp_path) as w:
        card = cards(creds, 1)[0]
        kiosk = await add_kiosk(w.hub, creds.schools[0])
        async with FundsClient(kiosk, ClientConfig(target=w.hub.target), kiosk=True) as at_kiosk:
            topup = (await at_kiosk.top_up(rid(), 2_000, card_no=card.card_no)).topup
            assert topup.state == pb.TOP_UP_STATE_POSTED and topup.origin == pb.TOP_UP_ORIGIN_KIOSK
            assert (await at_kiosk.get_top_up(topup.topup_id)).topup.amount_fen == 2_000
            with pytest.raises(InvalidArgumentError) as named:
                await at_kiosk.top_up(rid(), 2_000, student_id=card.student_id)
            assert named.value.field == "card_no"
            other = cards(creds, 1, school=1)[0]
            with pytest.raises(PermissionDeniedError):
                await at_kiosk.top_up(rid(), 2_000, card_no=other.card_no)
        pos = creds.terminals_of(creds.schools[0], "canteen_pos")[0].terminal_id
        async with FundsClient(pos, ClientConfig(target=w.hub.target), kiosk=True) as not_a_kiosk:
            with pytest.raises(PermissionDeniedError) as refused:
                await not_a_kiosk.top_up(rid(), 2_000, card_no=card.card_no)
            assert refused.value.reason == "CALLER_KIND_NOT_ALLOWED"


async def test_limits_and_bad_input_write_nothing(
    campus_dir: Path, clock: ManualClock, creds: CampusCredentials, tmp_path: Path
) -> None:
    async with world(campus_dir, clock, tmp_path) as w:
        card = cards(creds, 1)[0]
        assert w.hub.funds is not None
        book = w.hub.funds.book
        for amount, field in ((0, "amount_fen"), (-5, "amount_fen"), (100_001, "amount_fen")):
            with pytest.raises(InvalidArgumentError) as bad:
                await w.client.top_up(rid(), amount, student_id=card.student_id)
            assert bad.value.field == field
        with pytest.raises(InvalidArgumentError) as both:
            await w.client.top_up(rid(), 100, student_id=card.student_id, card_no=card.card_no)
        assert both.value.field == "card_no"
        with pytest.raises(NotFoundError):
            await w.client.top_up(rid(), 100, student_id="NO-SUCH-STUDENT")
        with pytest.raises(InvalidArgumentError) as no_id:
            await w.client.top_up("", 100, student_id=card.student_id)
        assert no_id.value.field == "request_id"
        assert book.topups == {}
        await w.bank.control.adjust_account(card.bank_code, card_no=card.card_no, add_fen=500_000)
        for _ in range(2):
            done = (await w.client.top_up(rid(), 100_000, student_id=card.student_id)).topup
            assert done.state == pb.TOP_UP_STATE_POSTED
        with pytest.raises(FailedPreconditionError) as over:
            await w.client.top_up(rid(), 1, student_id=card.student_id)
        assert over.value.reason == "LIMIT_EXCEEDED" and over.value.metadata["left_fen"] == "0"
        assert len(book.topups) == 2
        clerk_of_other_school = next(
            o.operator_id for o in w.hub.hub.campus.operators.values() if o.school_id == creds.schools[1]
        )
        async with FundsClient(clerk_of_other_school, ClientConfig(target=w.hub.target)) as clerk:
            with pytest.raises(PermissionDeniedError):
                await clerk.top_up(rid(), 100, student_id=card.student_id)
