"""Auto top-up: a purchase that leaves the wallet under the holder's threshold queues a top-up off
the purchase's path — the purchase is answered while the top-up is still at the bank; at most one
auto top-up in flight per wallet; a failed one is recorded and suspends auto top-up (no loop)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from onecard.auth.v1 import authorization_service_pb2 as auth_pb
from onecard.funds.v1 import funds_service_pb2 as pb
from onecard_client.campus import CampusCredentials
from onecard_client.errors import InvalidArgumentError
from onecard_hub.domain.clock import ManualClock
from onecard_hub.domain.topup import Origin, TopUp, TopUpState
from tests.helpers import Campus, until
from tests.integration.topup_fixtures import World, bank_balance, cards, rid, world

BUY = auth_pb.SCENE_CANTEEN_PURCHASE


def autos_of(w: World, student_id: str) -> list[TopUp]:
    assert w.hub.funds is not None
    return [t for t in w.hub.funds.book.by_student.get(student_id, []) if t.origin is Origin.AUTO]


async def test_a_purchase_under_the_threshold_tops_up_without_waiting(
    campus_dir: Path, clock: ManualClock, creds: CampusCredentials, tmp_path: Path
) -> None:
    async with world(campus_dir, clock, tmp_path) as w:
        campus = Campus(creds, clock, w.hub.target)
        card = cards(creds, 1)[0]
        student = w.hub.hub.campus.cards[card.card_no].student
        at_bank = await bank_balance(w.bank, card)
        with pytest.raises(InvalidArgumentError) as bad:
            await w.client.set_auto_top_up(rid(), 0, 5_000, True, student_id=card.student_id)
        assert bad.value.field == "threshold_fen"
        threshold = student.wallet.balance_fen + 1  # the next purchase leaves the wallet under it
        auto = await w.client.set_auto_top_up(rid(), threshold, 5_000, True, student_id=card.student_id)
        assert auto.auto_topup.enabled and auto.auto_topup.threshold_fen == threshold
        # the bank answers slowly: the purchase must not wait for it
        await w.bank.control.set_faults(latency_min_ms=150, latency_max_ms=150)
        answer = await campus.send(campus.chip(campus.card(), campus.pos(), BUY, amount_fen=500))
        assert answer.decision == auth_pb.DECISION_APPROVED
        assert campus.card().card_no == card.card_no
        await until(lambda: len(autos_of(w, student.student_id)) == 1)
        assert not autos_of(w, student.student_id)[0].state.final  # still at the bank
        second = await campus.send(campus.chip(campus.card(), campus.pos(), BUY, amount_fen=300))
        assert second.decision == auth_pb.DECISION_APPROVED
        await until(lambda: autos_of(w, student.student_id)[0].state.final)
        assert len(autos_of(w, student.student_id)) == 1  # one in flight per wallet, no second
        assert autos_of(w, student.student_id)[0].state is TopUpState.POSTED
        assert await bank_balance(w.bank, card) == at_bank - 5_000
        shown = await w.client.get_bank_function(card.student_id)
        assert shown.auto_topup.last_topup_id == autos_of(w, student.student_id)[0].topup_id
        assert shown.bank_code == card.bank_code and shown.account_no_masked.startswith("****")
        assert w.hub.hub.campus.ledger.total_fen() == 0
        await campus.close()


async def test_a_failed_auto_top_up_is_recorded_and_not_retried(
    campus_dir: Path, clock: ManualClock, creds: CampusCredentials, tmp_path: Path
) -> None:
    async with world(campus_dir, clock, tmp_path) as w:
        campus = Campus(creds, clock, w.hub.target)
        card = cards(creds, 1)[0]
        assert campus.card().card_no == card.card_no
        student = w.hub.hub.campus.cards[card.card_no].student
        await w.bank.control.adjust_account(card.bank_code, card_no=card.card_no, state="frozen")
        threshold = student.wallet.balance_fen + 10_000
        await w.client.set_auto_top_up(rid(), threshold, 5_000, True, student_id=card.student_id)
        assert (
            await campus.send(campus.chip(campus.card(), campus.pos(), BUY, amount_fen=200))
        ).decision == auth_pb.DECISION_APPROVED
        await until(
            lambda: bool(autos_of(w, student.student_id)) and autos_of(w, student.student_id)[0].state.final
        )
        failed = autos_of(w, student.student_id)[0]
        assert failed.state is TopUpState.VOIDED and failed.reason == "account_frozen"
        shown = await w.client.get_bank_function(card.student_id)
        await until(lambda: not w.hub.hub.low_balance.thresholds)
        shown = await w.client.get_bank_function(card.student_id)
        assert not shown.auto_topup.enabled and "account_frozen" in shown.auto_topup.last_failure
        assert (
            await campus.send(campus.chip(campus.card(), campus.pos(), BUY, amount_fen=200))
        ).decision == auth_pb.DECISION_APPROVED
        await asyncio.sleep(0.2)
        assert len(autos_of(w, student.student_id)) == 1  # suspended: no second try
        assert shown.status == pb.BANK_FUNCTION_STATUS_ACTIVE
        await campus.close()
