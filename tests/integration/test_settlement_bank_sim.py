"""Settlement and reconciliation against the real bank simulator (`running_bank`, onecard-sim bank):
canteen windows paid into their accounts from the campus export, once; a graduate's wallet refunded
to their card's account; the statement matches; a dropped reply left uncertain is settled from it."""

from __future__ import annotations

from pathlib import Path

from onecard.grants.v1 import grant_service_pb2 as grant_pb
from onecard.settlement.v1 import settlement_service_pb2 as pb
from onecard_client import ClientConfig, SettlementClient, StudentRecordsClient
from onecard_client.campus import CampusCredentials
from onecard_hub.bank.gateway import BankGateway
from onecard_hub.domain.bank import BankOutcome, TransferResult
from onecard_hub.domain.clock import ManualClock
from onecard_hub.server import running_hub
from onecard_hub.settlement.payments import Payer
from onecard_sim.bank import running_bank
from tests.conftest import hub_config
from tests.helpers import Campus
from tests.integration.grant_fixtures import YEAR, grants_client, students_with_cards, until_done
from tests.integration.test_settlement import DAY, buy, rid

BOOKED = "2026-11-25"
GRANT = grant_pb.GRANT_TYPE_NATIONAL_GRANT


class NoInquiries:
    """The hub's gateway, but every inquiry goes unanswered (as in a long outage of inquiries)."""

    def __init__(self, gateway: BankGateway) -> None:
        self._gateway = gateway
        self.credit = gateway.credit
        self.reverse = gateway.reverse
        self.statement = gateway.statement

    async def get_transfer(
        self, bank_code: str, transfer_id: str, *, deadline_s: float | None = None
    ) -> TransferResult:
        return TransferResult(transfer_id, BankOutcome.UNCERTAIN, error="UNAVAILABLE")


ADMIN = "province-admin"


async def test_against_the_bank_simulator(
    campus_dir: Path, clock: ManualClock, creds: CampusCredentials, tmp_path: Path
) -> None:
    keys = campus_dir / "hub.keys"
    async with (
        running_bank(tmp_path / "bank.db", keys, on_inquiries=True) as bank,
        running_hub(hub_config(campus_dir, bank=bank.target), clock) as hub,
        SettlementClient(ADMIN, ClientConfig(target=hub.target)) as client,
    ):
        campus = Campus(creds, clock, hub.target)
        pos0, pos1 = campus.pos(index=0), campus.pos(index=1)
        accounts = {m.merchant_id: m for m in creds.merchants}
        m0, m1 = accounts[pos0.merchant_id], accounts[pos1.merchant_id]
        await buy(campus, 0, 1_500)
        await buy(campus, 1, 600, skip=1)
        await campus.close()
        clock.advance(minutes=24 * 60)
        before0 = await bank.control.balance_fen(m0.bank_code, account_no=m0.account_no)
        before1 = await bank.control.balance_fen(m1.bank_code, account_no=m1.account_no)

        first = await client.run_merchant_settlement(rid(), DAY, school_id=campus.school())
        paid = {s.merchant_id: s for s in first.settlements}
        assert paid[m0.merchant_id].status == paid[m1.merchant_id].status == pb.PAYMENT_STATUS_PAID
        assert await bank.control.balance_fen(m0.bank_code, account_no=m0.account_no) == before0 + 1_500
        assert await bank.control.balance_fen(m1.bank_code, account_no=m1.account_no) == before1 + 600
        again = await client.run_merchant_settlement(rid(), DAY, school_id=campus.school())
        assert [(s.merchant_id, s.status) for s in again.settlements] == [
            (s.merchant_id, s.status) for s in first.settlements
        ]
        assert await bank.control.balance_fen(m0.bank_code, account_no=m0.account_no) == before0 + 1_500

        # a graduate's wallet to their card's account: the credit applied, its reply and every
        # inquiry lost → UNCERTAIN; reconciliation posts it from the statement
        card = next(
            c for c in creds.cards_of(campus.school()) if c.status == "active" and c.bank_status == "active"
        )
        student = hub.hub.campus.cards[card.card_no].student
        wallet = student.wallet.balance_fen
        bank_before = await bank.control.balance_fen(card.bank_code, card_no=card.card_no)
        async with StudentRecordsClient(ADMIN, ClientConfig(target=hub.target)) as records:
            await records.graduate_student(rid(), student.student_id)
        settlement = hub.settlement
        assert settlement is not None and settlement.payer is not None and hub.hub.bank is not None
        payer = settlement.payer
        settlement.payer = Payer(hub.hub, settlement.book, NoInquiries(hub.hub.bank), backoff_s=0.001)
        await bank.control.set_faults(drop_reply_rate=1.0, bank_code=card.bank_code)
        refund = (await client.refund_wallet(rid(), student.student_id)).refund
        assert refund.status == pb.PAYMENT_STATUS_UNCERTAIN
        await bank.control.clear_faults()
        settlement.payer = payer
        assert await bank.control.balance_fen(card.bank_code, card_no=card.card_no) == bank_before + wallet

        result = await client.reconcile(rid(), BOOKED)
        assert result.unexplained == 0, result
        lines = [line for r in result.reports for line in r.lines]
        settled = [line for line in lines if line.transfer_id == refund.transfer_id]
        assert [line.action for line in settled] == [pb.SETTLE_ACTION_POSTED]
        assert sum(1 for line in lines if line.finding == pb.FINDING_MATCHED) >= 2
        assert student.wallet.balance_fen == 0
        after = (await client.refund_wallet(rid(), student.student_id)).refund
        assert (after.status, after.amount_fen) == (pb.PAYMENT_STATUS_PAID, wallet)
        assert await bank.control.balance_fen(card.bank_code, card_no=card.card_no) == bank_before + wallet
        assert hub.hub.campus.ledger.total_fen() == 0


async def test_reconciliation_covers_the_grants(campus_dir: Path, clock: ManualClock, tmp_path: Path) -> None:
    async with (
        running_bank(tmp_path / "bank.db", campus_dir / "hub.keys") as bank,
        running_hub(hub_config(campus_dir, bank=bank.target), clock) as hub,
        SettlementClient(ADMIN, ClientConfig(target=hub.target)) as client,
        grants_client(hub) as grants,
    ):
        school = sorted(hub.hub.campus.schools)[0]
        people = students_with_cards(hub, school, 3)
        items = [(s, 100_000) for s, _ in people]
        assert (await grants.submit_grant_batch(rid(), school, "B1", GRANT, YEAR, items)).accepted
        await grants.approve_grant_batch(rid(), school, "B1")
        batch = await until_done(grants, school, "B1")
        paid = {i.transfer_id for i in batch.items if i.status == grant_pb.ITEM_STATUS_PAID}
        assert paid
        result = await client.reconcile(rid(), DAY)
        lines = {line.transfer_id: line for r in result.reports for line in r.lines}
        assert all(lines[t].finding == pb.FINDING_MATCHED and lines[t].flow == "grant" for t in paid)
        assert result.unexplained == 0
