"""The co-branded banks simulator (`onecard-sim bank`), served for real over a SQLite file in
tmp_path with accounts opened from the seeded campus: idempotency by transfer_id, refusals,
reversal (冲正) before the original, a restart keeps everything, the statement CSV, each fault."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from onecard.bank.v1 import bank_service_pb2 as pb
from onecard_client.campus import CampusCredentials, CardCredential
from onecard_sim.bank import BankSimClient, FaultPlan, RunningBank, running_bank
from onecard_sim.cli import main as sim_main

DATE = "2026-11-24"
OPENING = 200_000


@pytest.fixture
async def bank(campus_dir: Path) -> AsyncIterator[RunningBank]:
    async with running_bank(campus_dir / "bank.db", campus_dir / "hub.keys") as running:
        yield running


def active_card(creds: CampusCredentials, skip: int = 0) -> CardCredential:
    return [c for c in creds.cards if c.bank_status == "active"][skip]


def debit(card: CardCredential, transfer_id: str, amount_fen: int, **extra: Any) -> pb.DebitRequest:
    return pb.DebitRequest(
        transfer_id=transfer_id,
        bank_code=card.bank_code,
        payer=pb.Party(card_no=card.card_no),
        amount_fen=amount_fen,
        business_date=DATE,
        **extra,
    )


def credit(card: CardCredential, transfer_id: str, amount_fen: int) -> pb.CreditRequest:
    return pb.CreditRequest(
        transfer_id=transfer_id,
        bank_code=card.bank_code,
        payee=pb.Party(card_no=card.card_no),
        amount_fen=amount_fen,
        business_date=DATE,
    )


async def test_seeding_opens_an_account_per_card_and_merchant_once(
    campus_dir: Path, creds: CampusCredentials
) -> None:
    assert creds.merchants and all(m.bank_code and m.account_no for m in creds.merchants)
    not_activated = [c for c in creds.cards if c.bank_status == "not_activated"]
    assert not_activated, "the seed leaves some bank functions not activated"
    for _ in range(2):  # a restart opens nothing again
        async with running_bank(campus_dir / "bank.db", campus_dir / "hub.keys") as running:
            sim = running.control
            card = active_card(creds)
            account = await sim.get_account(card.bank_code, card_no=card.card_no)
            assert (account.state, account.balance_fen) == (pb.ACCOUNT_STATE_ACTIVE, OPENING)
            idle = await sim.get_account(not_activated[0].bank_code, card_no=not_activated[0].card_no)
            assert idle.state == pb.ACCOUNT_STATE_NOT_ACTIVATED
            merchant = creds.merchants[0]
            held = await sim.get_account(merchant.bank_code, account_no=merchant.account_no)
            assert held.balance_fen == 0
            total = await running.store.total_fen()
            assert total == OPENING * sum(1 for c in creds.cards if c.bank_code)


async def test_a_transfer_id_moves_money_once(bank: RunningBank, creds: CampusCredentials) -> None:
    sim, card = bank.control, active_card(creds)
    first = await sim.bank.Debit(debit(card, "t-1", 5_000), timeout=5)
    again = await sim.bank.Debit(debit(card, "t-1", 5_000), timeout=5)
    assert first.status == again.status == pb.TRANSFER_STATUS_POSTED
    assert first.bank_reference and again.bank_reference == first.bank_reference
    assert await sim.balance_fen(card.bank_code, card_no=card.card_no) == OPENING - 5_000
    paid = await sim.bank.Credit(credit(card, "t-2", 1_200), timeout=5)
    assert paid.status == pb.TRANSFER_STATUS_POSTED
    assert await sim.balance_fen(card.bank_code, card_no=card.card_no) == OPENING - 3_800
    seen = await sim.get_transfer(card.bank_code, "t-1")
    assert (seen.status, seen.amount_fen) == (pb.TRANSFER_STATUS_POSTED, 5_000)
    assert (await sim.get_transfer(card.bank_code, "never")).status == pb.TRANSFER_STATUS_NOT_FOUND


async def test_refusals_move_nothing(bank: RunningBank, creds: CampusCredentials) -> None:
    sim = bank.control
    card, other = active_card(creds, 0), active_card(creds, 1)
    idle = next(c for c in creds.cards if c.bank_status == "not_activated")
    too_much = await sim.bank.Debit(debit(card, "r-1", OPENING + 1), timeout=5)
    assert (too_much.status, too_much.reject_reason) == (
        pb.TRANSFER_STATUS_REJECTED,
        pb.REJECT_REASON_INSUFFICIENT_FUNDS,
    )
    assert (await sim.bank.Credit(credit(idle, "r-2", 100), timeout=5)).reject_reason == (
        pb.REJECT_REASON_NOT_ACTIVATED
    )
    await sim.adjust_account(other.bank_code, card_no=other.card_no, state="frozen")
    assert (
        await sim.bank.Debit(debit(other, "r-3", 100), timeout=5)
    ).reject_reason == pb.REJECT_REASON_ACCOUNT_FROZEN
    await sim.adjust_account(other.bank_code, card_no=other.card_no, state="closed")
    assert (
        await sim.bank.Credit(credit(other, "r-4", 100), timeout=5)
    ).reject_reason == pb.REJECT_REASON_ACCOUNT_CLOSED
    nobody = pb.CreditRequest(
        transfer_id="r-5", bank_code="ICBC", payee=pb.Party(card_no="000"), amount_fen=1, business_date=DATE
    )
    assert (await sim.bank.Credit(nobody, timeout=5)).reject_reason == pb.REJECT_REASON_ACCOUNT_NOT_FOUND
    assert await sim.balance_fen(card.bank_code, card_no=card.card_no) == OPENING
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await sim.bank.Debit(debit(card, "r-6", 0), timeout=5)
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_reversal_undoes_once_and_a_reversal_before_the_original_refuses_it(
    bank: RunningBank, creds: CampusCredentials
) -> None:
    sim, card = bank.control, active_card(creds)
    await sim.bank.Debit(debit(card, "v-1", 3_000), timeout=5)
    reverse = pb.ReverseRequest(
        reversal_id="rv-1", bank_code=card.bank_code, transfer_id="v-1", business_date=DATE
    )
    first = await sim.bank.Reverse(reverse, timeout=5)
    again = await sim.bank.Reverse(reverse, timeout=5)
    assert (first.status, first.reversed_fen) == (pb.TRANSFER_STATUS_REVERSED, 3_000)
    assert again.status == pb.TRANSFER_STATUS_REVERSED
    assert await sim.balance_fen(card.bank_code, card_no=card.card_no) == OPENING
    early = pb.ReverseRequest(
        reversal_id="rv-2", bank_code=card.bank_code, transfer_id="v-2", business_date=DATE
    )
    assert (await sim.bank.Reverse(early, timeout=5)).status == pb.TRANSFER_STATUS_REVERSED
    late = await sim.bank.Debit(debit(card, "v-2", 3_000), timeout=5)
    assert (late.status, late.reject_reason) == (
        pb.TRANSFER_STATUS_REJECTED,
        pb.REJECT_REASON_REVERSED_BEFORE,
    )
    assert await sim.balance_fen(card.bank_code, card_no=card.card_no) == OPENING
    await sim.bank.Debit(debit(card, "v-3", 10**9), timeout=5)  # refused: nothing to undo
    refused = pb.ReverseRequest(
        reversal_id="rv-3", bank_code=card.bank_code, transfer_id="v-3", business_date=DATE
    )
    assert (await sim.bank.Reverse(refused, timeout=5)).status == pb.TRANSFER_STATUS_REJECTED


async def test_a_restart_keeps_accounts_transfers_and_reversals(
    campus_dir: Path, creds: CampusCredentials
) -> None:
    card = active_card(creds)
    db, keys = campus_dir / "bank.db", campus_dir / "hub.keys"
    async with running_bank(db, keys) as running:
        await running.control.bank.Debit(debit(card, "k-1", 700), timeout=5)
        early = pb.ReverseRequest(
            reversal_id="kr", bank_code=card.bank_code, transfer_id="k-2", business_date=DATE
        )
        await running.control.bank.Reverse(early, timeout=5)
    async with running_bank(db, keys) as running:
        sim = running.control
        assert await sim.balance_fen(card.bank_code, card_no=card.card_no) == OPENING - 700
        assert (await sim.bank.Debit(debit(card, "k-1", 700), timeout=5)).status == pb.TRANSFER_STATUS_POSTED
        assert (await sim.bank.Debit(debit(card, "k-2", 700), timeout=5)).reject_reason == (
            pb.REJECT_REASON_REVERSED_BEFORE
        )
        assert await sim.balance_fen(card.bank_code, card_no=card.card_no) == OPENING - 700


async def test_statement_lists_what_moved_money_on_the_date(
    bank: RunningBank, creds: CampusCredentials, tmp_path: Path
) -> None:
    sim, card = bank.control, active_card(creds)
    await sim.bank.Debit(debit(card, "s-1", 1_000), timeout=5)
    await sim.bank.Credit(credit(card, "s-2", 400), timeout=5)
    await sim.bank.Debit(debit(card, "s-3", 10**9), timeout=5)  # refused: not on the statement
    await sim.bank.Reverse(
        pb.ReverseRequest(reversal_id="sr", bank_code=card.bank_code, transfer_id="s-2", business_date=DATE),
        timeout=5,
    )
    answer = await sim.statement(card.bank_code, DATE)
    lines = answer.csv.splitlines()
    assert lines[0] == "bank_reference,transfer_id,kind,account_no,card_no,amount_fen,status,posted_at"
    assert answer.lines == 2 == len(lines) - 1
    assert [line.split(",")[1:3] + line.split(",")[5:7] for line in lines[1:]] == [
        ["s-1", "debit", "1000", "POSTED"],
        ["s-2", "credit", "400", "REVERSED"],
    ]
    assert (await sim.statement(card.bank_code, "2026-11-25")).lines == 0


async def test_faults_error_timeout_drop_and_outage(bank: RunningBank, creds: CampusCredentials) -> None:
    sim, card = bank.control, active_card(creds)

    async def call(tid: str) -> grpc.StatusCode:
        try:
            await sim.bank.Debit(debit(card, tid, 100), timeout=0.5)
        except grpc.aio.AioRpcError as exc:
            return exc.code()
        return grpc.StatusCode.OK

    await sim.set_faults(error_rate=1.0)
    assert await call("f-err") == grpc.StatusCode.UNAVAILABLE
    await sim.set_faults(timeout_rate=1.0)
    assert await call("f-timeout") == grpc.StatusCode.DEADLINE_EXCEEDED
    await sim.set_faults(drop_reply_rate=1.0)
    assert await call("f-drop") == grpc.StatusCode.UNAVAILABLE
    faults = await sim.set_faults(outage_s=600)
    assert faults.outage_left_s > 0
    assert await call("f-out") == grpc.StatusCode.UNAVAILABLE
    await sim.set_faults(outage_s=0)  # the outage ends, faults cleared
    assert (await sim.get_transfer(card.bank_code, "f-err")).status == pb.TRANSFER_STATUS_NOT_FOUND
    assert (await sim.get_transfer(card.bank_code, "f-timeout")).status == pb.TRANSFER_STATUS_NOT_FOUND
    assert (await sim.get_transfer(card.bank_code, "f-out")).status == pb.TRANSFER_STATUS_NOT_FOUND
    assert (await sim.get_transfer(card.bank_code, "f-drop")).status == pb.TRANSFER_STATUS_POSTED  # applied
    assert await sim.balance_fen(card.bank_code, card_no=card.card_no) == OPENING - 100
    counts = (await sim.get_faults()).counts
    assert (
        counts["errors"] == counts["timeouts"] == counts["dropped_replies"] == counts["outage_refusals"] == 1
    )
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await sim.set_faults(error_rate=1.5)
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_faults_from_flags_and_seeded_draws_repeat(campus_dir: Path, creds: CampusCredentials) -> None:
    card = active_card(creds)
    fates: list[list[bool]] = []
    for run in range(2):
        plan = FaultPlan(error_rate=0.5)
        async with running_bank(
            campus_dir / f"bank-{run}.db", campus_dir / "hub.keys", faults=plan, seed=5
        ) as b:
            outcomes = []
            for i in range(12):
                try:
                    await b.control.bank.Debit(debit(card, f"d-{i}", 1), timeout=5)
                    outcomes.append(True)
                except grpc.aio.AioRpcError:
                    outcomes.append(False)
            fates.append(outcomes)
    assert fates[0] == fates[1] and True in fates[0] and False in fates[0]


async def test_bank_sim_client_adjusts_accounts(bank: RunningBank, creds: CampusCredentials) -> None:
    card = active_card(creds)
    async with BankSimClient(bank.target) as sim:
        account = await sim.adjust_account(card.bank_code, card_no=card.card_no, add_fen=500)
        assert account.balance_fen == OPENING + 500
        with pytest.raises(grpc.aio.AioRpcError) as below:
            await sim.adjust_account(card.bank_code, card_no=card.card_no, add_fen=-(OPENING + 501))
        assert below.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await sim.get_account("ICBC", card_no="nobody")
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_credit_to_a_frozen_account_can_be_sent_back(
    campus_dir: Path, creds: CampusCredentials
) -> None:
    card = active_card(creds)
    async with running_bank(
        campus_dir / "bank.db", campus_dir / "hub.keys", return_frozen_after_s=0.1
    ) as bank:
        sim = bank.control
        await sim.adjust_account(card.bank_code, card_no=card.card_no, state="frozen")
        paid = await sim.bank.Credit(credit(card, "ret-1", 800), timeout=5)
        assert paid.status == pb.TRANSFER_STATUS_POSTED
        for _ in range(200):  # the bank sends it back on its own, shortly
            if (await sim.get_transfer(card.bank_code, "ret-1")).status == pb.TRANSFER_STATUS_RETURNED:
                break
            await asyncio.sleep(0.05)
        assert (await sim.get_transfer(card.bank_code, "ret-1")).status == pb.TRANSFER_STATUS_RETURNED
        assert await sim.balance_fen(card.bank_code, card_no=card.card_no) == OPENING
        lines = (await sim.statement(card.bank_code, DATE)).csv.splitlines()
        assert lines[1].split(",")[1] == "ret-1" and lines[1].split(",")[6] == "RETURNED"


async def test_bank_statement_command_writes_the_file(
    bank: RunningBank, creds: CampusCredentials, tmp_path: Path
) -> None:
    card = active_card(creds)
    await bank.control.bank.Debit(debit(card, "cli-1", 300), timeout=5)
    out = tmp_path / "statement.csv"
    db = bank.store.path
    code = await asyncio.to_thread(
        sim_main,
        ["bank-statement", "--db", str(db), "--bank", card.bank_code, "--date", DATE, "--out", str(out)],
    )
    assert code == 0
    text = out.read_text(encoding="utf-8").splitlines()
    assert text[0].startswith("bank_reference,") and text[1].split(",")[1] == "cli-1"
