"""What the hub answered survives a restart: balances, counters, used QR codes, idempotency."""

from __future__ import annotations

from pathlib import Path

from onecard.auth.v1 import authorization_service_pb2 as pb
from onecard_client.campus import CampusCredentials
from onecard_client.client import AdminClient, ClientConfig
from onecard_hub.domain.clock import ManualClock
from onecard_hub.server import running_hub
from tests.conftest import hub_config
from tests.helpers import Campus, name

BUY, ENTRY = pb.SCENE_CANTEEN_PURCHASE, pb.SCENE_GATE_ENTRY


async def test_state_survives_a_restart(campus_dir: Path, clock: ManualClock) -> None:
    creds = CampusCredentials.load(campus_dir / "hub.keys")
    async with running_hub(hub_config(campus_dir), clock) as running:
        c = Campus(creds, clock, running.target)
        card, pos, gate = c.card(), c.pos(), c.gate()
        purchase = c.chip(card, pos, BUY, amount_fen=1_100, atc=5)
        paid = await c.send(purchase)
        qr = c.qr(card, gate, ENTRY)
        assert (await c.send(qr)).decision == pb.DECISION_APPROVED
        await c.close()
    async with running_hub(hub_config(campus_dir), clock) as running:
        c = Campus(creds, clock, running.target)
        assert await c.send(purchase) == paid  # idempotent across the restart
        balance = await c.client(pos).wallet_balance(card.card_no)
        assert (balance.balance_fen, balance.spent_today_fen) == (paid.balance_fen, 1_100)
        replay = c.chip(card, pos, BUY, amount_fen=100, atc=5)
        assert name((await c.send(replay)).decline_reason) == "COUNTER_REPLAYED"
        reused = pb.AuthorizeRequest()
        reused.CopyFrom(qr)
        reused.request_id = "reuse-after-restart"
        assert name((await c.send(reused)).decline_reason) == "QR_REPLAYED"
        assert name((await c.send(c.chip(card, gate, ENTRY, atc=6))).decline_reason) == "ANTI_PASSBACK"
        refund = await c.client(pos).refund("rf-restart", purchase.request_id, 100)
        assert refund.remaining_refundable_fen == 1_000
        async with AdminClient("province-admin", ClientConfig(target=running.target)) as admin:
            assert (await admin.ledger_summary()).sum_fen == 0
        await c.close()
