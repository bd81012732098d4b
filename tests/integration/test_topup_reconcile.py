"""Reconciliation (对账) covers top-ups: a posted one and one reversed (冲正) after a dropped reply
match the bank's statement; a top-up left in manual review is settled from the statement."""

from __future__ import annotations

import asyncio
from pathlib import Path

from onecard.funds.v1 import funds_service_pb2 as pb
from onecard.settlement.v1 import settlement_service_pb2 as settle_pb
from onecard_client import ClientConfig, SettlementClient
from onecard_client.campus import CampusCredentials
from onecard_hub.domain.clock import ManualClock
from tests.integration.topup_fixtures import ADMIN, cards, rid, speed_up, until_final, world


async def test_top_ups_reconcile_with_nothing_unexplained(
    campus_dir: Path, clock: ManualClock, creds: CampusCredentials, tmp_path: Path
) -> None:
    async with world(campus_dir, clock, tmp_path) as w:
        assert w.hub.funds is not None
        a, b, c = cards(creds, 3)
        posted = (await w.client.top_up(rid(), 1_200, card_no=a.card_no)).topup
        assert posted.state == pb.TOP_UP_STATE_POSTED
        speed_up(w.hub, max_reversals=100)
        await w.bank.control.set_faults(drop_reply_rate=1.0, bank_code=b.bank_code)
        call = asyncio.create_task(w.client.top_up(rid(), 800, card_no=b.card_no))
        book = w.hub.funds.book
        for _ in range(500):
            if any(t.card_no == b.card_no and t.reversals >= 1 for t in book.topups.values()):
                break
            await asyncio.sleep(0.02)
        await w.bank.control.set_faults(bank_code=b.bank_code)
        voided = await until_final(w.client, (await call).topup.topup_id)
        assert voided.state == pb.TOP_UP_STATE_VOIDED
        # a debit that posted while every reversal went unanswered: manual review
        speed_up(w.hub, max_reversals=2)
        await w.bank.control.set_faults(drop_reply_rate=1.0, bank_code=c.bank_code)
        first = (await w.client.top_up(rid(), 900, card_no=c.card_no)).topup
        review = await until_final(w.client, first.topup_id)
        await w.bank.control.set_faults(bank_code=c.bank_code)
        assert review.state == pb.TOP_UP_STATE_MANUAL_REVIEW
        day = w.hub.funds.topups.business_date()
        async with SettlementClient(ADMIN, ClientConfig(target=w.hub.target)) as settle:
            result = await settle.reconcile(rid(), day)
        assert result.unexplained == 0, result
        lines = {line.transfer_id: line for r in result.reports for line in r.lines}
        assert lines[posted.transfer_id].finding == settle_pb.FINDING_MATCHED
        assert lines[voided.transfer_id].finding == settle_pb.FINDING_MATCHED
        final = (await w.client.get_top_up(review.topup_id)).topup
        assert final.state in (pb.TOP_UP_STATE_POSTED, pb.TOP_UP_STATE_VOIDED)
        assert w.hub.hub.campus.ledger.total_fen() == 0
