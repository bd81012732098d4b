"""Offline store-and-forward: what terminals did without the hub is booked once, and only once."""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path

import pytest

from onecard.auth.v1 import authorization_service_pb2 as pb
from onecard_client.campus import CampusCredentials, CardCredential
from onecard_client.client import AdminClient, ClientConfig, TerminalClient
from onecard_client.credentials import chip_cryptogram, mint_qr_token
from onecard_client.errors import InvalidArgumentError, PermissionDeniedError
from onecard_hub.domain.clock import ManualClock
from onecard_hub.server import RunningHub, running_hub
from tests.conftest import db_count, hub_config
from tests.helpers import Campus, name

BUY, ENTRY, EXIT = pb.SCENE_CANTEEN_PURCHASE, pb.SCENE_GATE_ENTRY, pb.SCENE_GATE_EXIT
BOOKED, DUPLICATE, REJECTED = (
    pb.OFFLINE_OUTCOME_BOOKED,
    pb.OFFLINE_OUTCOME_DUPLICATE,
    pb.OFFLINE_OUTCOME_REJECTED,
)
MINUTE = 60_000


def chip_record(
    card: CardCredential,
    terminal_id: str,
    serial: int,
    scene: int,
    atc: int,
    occurred_ms: int,
    amount_fen: int = 0,
    *,
    forged: bool = False,
) -> pb.OfflineTransaction:
    cryptogram = chip_cryptogram(
        card.card_key,
        card_no=card.card_no,
        atc=atc,
        terminal_id=terminal_id,
        scene=scene,
        amount_fen=amount_fen,
        tap_time_ms=occurred_ms,
    )
    if forged:
        cryptogram = bytes(b ^ 0xFF for b in cryptogram)
    tx = pb.OfflineTransaction(
        serial=serial,
        scene=scene,  # type: ignore[arg-type]
        amount_fen=amount_fen,
        chip=pb.ChipTap(card_no=card.card_no, atc=atc, cryptogram=cryptogram),
    )
    tx.occurred_at.FromMilliseconds(occurred_ms)
    return tx


def qr_record(
    creds: CampusCredentials,
    card: CardCredential,
    serial: int,
    scene: int,
    issued_ms: int,
    occurred_ms: int,
    amount_fen: int = 0,
    *,
    token: str = "",
) -> pb.OfflineTransaction:
    token = token or mint_qr_token(
        card_no=card.card_no,
        ecard_key=card.ecard_key,
        signing_key=creds.signing_key,
        issued_ms=issued_ms,
        nonce=secrets.token_bytes(8),
    )
    tx = pb.OfflineTransaction(
        serial=serial,
        scene=scene,  # type: ignore[arg-type]
        amount_fen=amount_fen,
        qr=pb.QrScan(token=token),
    )
    tx.occurred_at.FromMilliseconds(occurred_ms)
    return tx


def outcomes(response: pb.UploadOfflineBatchResponse) -> list[tuple[int, str, str]]:
    return [
        (r.serial, pb.OfflineOutcome.Name(r.outcome).removeprefix("OFFLINE_OUTCOME_"), name(r.reason))
        for r in response.results
    ]


async def ledger_sum(target: str) -> int:
    async with AdminClient("province-admin", ClientConfig(target=target)) as admin:
        return (await admin.ledger_summary()).sum_fen


async def test_purchases_and_gate_passes_are_booked(
    campus: Campus, hub: RunningHub, clock: ManualClock
) -> None:
    pos, gate = campus.pos(), campus.gate()
    buyer, walker = campus.card(), campus.card(skip=1)
    before = (await campus.client(pos).wallet_balance(buyer.card_no)).balance_fen
    earlier = clock.now_ms() - 10 * MINUTE
    purchases = [
        chip_record(buyer, pos.terminal_id, 1, BUY, 7, earlier, 1_200),
        qr_record(campus.creds, buyer, 2, BUY, earlier + MINUTE, earlier + MINUTE + 5_000, 800),
    ]
    paid = await campus.client(pos).upload_offline_batch("up-1", purchases)
    assert outcomes(paid) == [(1, "BOOKED", "UNSPECIFIED"), (2, "BOOKED", "UNSPECIFIED")]
    assert (paid.booked, paid.duplicates, paid.rejected) == (2, 0, 0)
    balance = await campus.client(pos).wallet_balance(buyer.card_no)
    assert (balance.balance_fen, balance.spent_today_fen) == (before - 2_000, 2_000)

    passes = [chip_record(walker, gate.terminal_id, 1, ENTRY, 3, earlier)]
    assert outcomes(await campus.client(gate).upload_offline_batch("up-1", passes)) == [
        (1, "BOOKED", "UNSPECIFIED")
    ]
    # The offline entry put the card inside: at the hard main gate a second entry is refused.
    again = await campus.send(campus.chip(walker, gate, ENTRY, atc=4))
    assert name(again.decline_reason) == "ANTI_PASSBACK"
    # The chip's counter moved up to the offline ATC: an online tap with an ATC at or below it is a replay.
    replay = await campus.send(campus.chip(buyer, pos, BUY, amount_fen=100, atc=7))
    assert name(replay.decline_reason) == "COUNTER_REPLAYED"
    assert await ledger_sum(hub.target) == 0


async def test_an_older_offline_pass_does_not_undo_a_later_online_one(
    campus: Campus, clock: ManualClock
) -> None:
    gate, card = campus.gate(), campus.card()
    assert (await campus.send(campus.chip(card, gate, EXIT, atc=10))).decision == pb.DECISION_APPROVED
    stale = chip_record(card, gate.terminal_id, 1, ENTRY, 2, clock.now_ms() - 30 * MINUTE)
    assert outcomes(await campus.client(gate).upload_offline_batch("up-old", [stale]))[0][1] == "BOOKED"
    clock.advance(seconds=5)
    # Still outside (the online exit came later), so an entry is fine and a second exit is not.
    assert (await campus.send(campus.chip(card, gate, ENTRY, atc=11))).decision == pb.DECISION_APPROVED


async def test_a_batch_uploaded_again_books_nothing_twice(
    campus: Campus, hub: RunningHub, campus_dir: Path, clock: ManualClock
) -> None:
    pos, card = campus.pos(), campus.card()
    client = campus.client(pos)
    before = (await client.wallet_balance(card.card_no)).balance_fen
    earlier = clock.now_ms() - 5 * MINUTE
    batch = [
        chip_record(card, pos.terminal_id, 10 + i, BUY, 20 + i, earlier + i * 1_000, 500) for i in range(3)
    ]
    first = await client.upload_offline_batch("batch-a", batch)
    assert first.booked == 3
    assert await client.upload_offline_batch("batch-a", batch) == first  # same id, same answer
    again = await client.upload_offline_batch("batch-a-resent", batch)
    assert [o for _, o, _ in outcomes(again)] == ["DUPLICATE"] * 3
    assert (again.booked, again.duplicates, again.rejected) == (0, 3, 0)
    assert (await client.wallet_balance(card.card_no)).balance_fen == before - 1_500
    assert db_count(campus_dir, "offline_transactions") == 3
    assert await ledger_sum(hub.target) == 0


async def test_records_that_do_not_check_out_are_rejected(
    campus: Campus, hub: RunningHub, clock: ManualClock
) -> None:
    pos, card = campus.pos(), campus.card()
    client = campus.client(pos)
    stranger = campus.card(school=1)
    before = (await client.wallet_balance(card.card_no)).balance_fen
    t = clock.now_ms() - 20 * MINUTE
    token = mint_qr_token(
        card_no=card.card_no,
        ecard_key=card.ecard_key,
        signing_key=campus.creds.signing_key,
        issued_ms=t,
        nonce=secrets.token_bytes(8),
    )
    unknown = chip_record(card, pos.terminal_id, 3, BUY, 5, t, 100)
    unknown.chip.card_no = "ZZ0000000000"
    batch = [
        chip_record(card, pos.terminal_id, 1, BUY, 5, t, 100, forged=True),
        chip_record(stranger, pos.terminal_id, 2, BUY, 5, t, 100),
        unknown,
        qr_record(campus.creds, card, 4, BUY, t, t + 61_000, 100),  # scanned after it expired
        qr_record(campus.creds, card, 5, BUY, t, t + 1_000, 100, token=token),
        qr_record(campus.creds, card, 6, BUY, t, t + 2_000, 100, token=token),  # the same code again
        chip_record(card, pos.terminal_id, 7, BUY, 9, t + 3_000, 100),
        chip_record(card, pos.terminal_id, 8, BUY, 9, t + 4_000, 200),  # the same ATC again
        chip_record(card, pos.terminal_id, 9, BUY, 1, t + 5_000, 100),  # an old ATC is fine offline
    ]
    response = await client.upload_offline_batch("mixed", batch)
    assert outcomes(response) == [
        (1, "REJECTED", "CREDENTIAL_INVALID"),
        (2, "REJECTED", "CARD_OTHER_SCHOOL"),
        (3, "REJECTED", "CARD_UNKNOWN"),
        (4, "REJECTED", "QR_EXPIRED"),
        (5, "BOOKED", "UNSPECIFIED"),
        (6, "REJECTED", "QR_REPLAYED"),
        (7, "BOOKED", "UNSPECIFIED"),
        (8, "REJECTED", "COUNTER_REPLAYED"),
        (9, "BOOKED", "UNSPECIFIED"),
    ]
    assert (response.booked, response.duplicates, response.rejected) == (3, 0, 6)
    assert (await client.wallet_balance(card.card_no)).balance_fen == before - 300
    # A rejected serial is checked again when it comes back; a booked one is a duplicate.
    fixed = chip_record(card, pos.terminal_id, 1, BUY, 30, t + 6_000, 100)
    again = await client.upload_offline_batch("mixed-2", [fixed, batch[4]])
    assert outcomes(again) == [(1, "BOOKED", "UNSPECIFIED"), (5, "DUPLICATE", "UNSPECIFIED")]
    assert await ledger_sum(hub.target) == 0


async def test_a_blocked_card_is_booked_and_flagged(campus: Campus, clock: ManualClock) -> None:
    pos, lost = campus.pos(), campus.card(status="lost")
    record = chip_record(lost, pos.terminal_id, 1, BUY, 4, clock.now_ms() - MINUTE, 600)
    response = await campus.client(pos).upload_offline_batch("lost-1", [record])
    assert outcomes(response) == [(1, "BOOKED", "CARD_REPORTED_LOST")]


async def test_overspending_leaves_a_debt_listed_for_the_card_office(
    campus: Campus, hub: RunningHub, clock: ManualClock
) -> None:
    pos, card = campus.pos(), campus.card()
    client = campus.client(pos)
    balance = (await client.wallet_balance(card.card_no)).balance_fen
    t = clock.now_ms() - 30 * MINUTE
    batch = [
        chip_record(card, pos.terminal_id, 41, BUY, 50, t, balance - 1_000),
        chip_record(card, pos.terminal_id, 42, BUY, 51, t + 1_000, 3_000),
        chip_record(card, pos.terminal_id, 43, BUY, 52, t + 2_000, 500),
    ]
    response = await client.upload_offline_batch("debt-1", batch)
    assert [(r.outcome, r.debt_fen) for r in response.results] == [
        (BOOKED, 0),
        (BOOKED, 2_000),
        (BOOKED, 2_500),
    ]
    assert (await client.wallet_balance(card.card_no)).balance_fen == -2_500
    school = campus.school()
    async with AdminClient(f"{school}-clerk", ClientConfig(target=hub.target)) as clerk:
        debts = await clerk.list_wallet_debts(school)
        [debt] = [d for d in debts.debts if d.card_no == card.card_no]
        assert debt.debt_fen == 2_500
        assert list(debt.offline_refs) == [f"{pos.terminal_id}#42", f"{pos.terminal_id}#43"]
        assert "*" in debt.holder_name_masked
        assert debts.total_debt_fen == sum(d.debt_fen for d in debts.debts)
        with pytest.raises(PermissionDeniedError):
            await clerk.list_wallet_debts(campus.school(1))
        with pytest.raises(InvalidArgumentError) as missing:
            await clerk.list_wallet_debts("")
        assert missing.value.field == "school_id"
    async with AdminClient("province-admin", ClientConfig(target=hub.target)) as admin:
        everywhere = await admin.list_wallet_debts("")
        assert card.card_no in {d.card_no for d in everywhere.debts}
        assert (await admin.ledger_summary()).sum_fen == 0


async def test_a_restart_keeps_balances_debts_and_duplicates(campus_dir: Path, clock: ManualClock) -> None:
    creds = CampusCredentials.load(campus_dir / "hub.keys")
    c = Campus(creds, clock, "")
    card, pos, gate = c.card(), c.pos(), c.gate()
    t = clock.now_ms() - 15 * MINUTE
    buys = [
        chip_record(card, pos.terminal_id, 1, BUY, 8, t, 40_000),
        chip_record(card, pos.terminal_id, 2, BUY, 9, t + 1_000, 15_000),
    ]
    entry = [chip_record(card, gate.terminal_id, 1, ENTRY, 10, t + 2_000)]
    async with running_hub(hub_config(campus_dir), clock) as running:
        async with TerminalClient(pos.terminal_id, ClientConfig(target=running.target)) as client:
            first = await client.upload_offline_batch("r-1", buys)
            balance = (await client.wallet_balance(card.card_no)).balance_fen
        async with TerminalClient(gate.terminal_id, ClientConfig(target=running.target)) as client:
            await client.upload_offline_batch("r-1", entry)
    assert balance < 0
    async with running_hub(hub_config(campus_dir), clock) as running:
        async with TerminalClient(pos.terminal_id, ClientConfig(target=running.target)) as client:
            assert await client.upload_offline_batch("r-1", buys) == first
            again = await client.upload_offline_batch("r-2", buys)
            assert [r.outcome for r in again.results] == [DUPLICATE, DUPLICATE]
            after = await client.wallet_balance(card.card_no)
            assert (after.balance_fen, after.spent_today_fen) == (balance, 55_000)
        async with AdminClient("province-admin", ClientConfig(target=running.target)) as admin:
            [debt] = [d for d in (await admin.list_wallet_debts("")).debts if d.card_no == card.card_no]
            assert debt.debt_fen == -balance
            assert list(debt.offline_refs) == [f"{pos.terminal_id}#2"]
            assert (await admin.ledger_summary()).sum_fen == 0
        c = Campus(creds, clock, running.target)
        # Presence and the counter survived too: inside at the hard gate, ATC 10 is used.
        assert name((await c.send(c.chip(card, gate, ENTRY, atc=11))).decline_reason) == "ANTI_PASSBACK"
        assert name((await c.send(c.chip(card, gate, EXIT, atc=10))).decline_reason) == "COUNTER_REPLAYED"
        await c.close()


def _bad_batches(
    creds: CampusCredentials, card: CardCredential, pos_id: str, now: int
) -> list[tuple[str, list[pb.OfflineTransaction]]]:
    ok = chip_record(card, pos_id, 1, BUY, 5, now - MINUTE, 100)

    def edited(**changes: object) -> pb.OfflineTransaction:
        tx = pb.OfflineTransaction()
        tx.CopyFrom(ok)
        for key, value in changes.items():
            setattr(tx, key, value)
        return tx

    no_credential = edited()
    no_credential.ClearField("chip")
    no_time = edited()
    no_time.ClearField("occurred_at")
    future = edited()
    future.occurred_at.FromMilliseconds(now + 10 * MINUTE)
    bad_qr = edited()
    bad_qr.qr.token = "OC1.not-a-token"
    return [
        ("transactions", []),
        ("transactions", [edited(serial=n + 1) for n in range(501)]),
        ("transactions[1].serial", [ok, edited(serial=0)]),
        ("transactions[1].serial", [ok, edited()]),
        ("transactions[0].scene", [edited(scene=9)]),
        ("transactions[0].amount_fen", [edited(amount_fen=0)]),
        ("transactions[1].amount_fen", [ok, edited(serial=2, amount_fen=-5)]),
        ("transactions[0].credential", [no_credential]),
        ("transactions[0].occurred_at", [no_time]),
        ("transactions[0].occurred_at", [future]),
        ("transactions[0].qr.token", [bad_qr]),
    ]


async def test_bad_input_names_the_field_and_writes_nothing(
    campus: Campus, campus_dir: Path, clock: ManualClock
) -> None:
    pos, gate, card = campus.pos(), campus.gate(), campus.card()
    client = campus.client(pos)
    rows = (db_count(campus_dir, "offline_transactions"), db_count(campus_dir, "transfers"))
    for field, batch in _bad_batches(campus.creds, card, pos.terminal_id, clock.now_ms()):
        with pytest.raises(InvalidArgumentError) as caught:
            await client.upload_offline_batch("bad-1", batch)
        assert caught.value.field == field, field
    gate_record = chip_record(card, gate.terminal_id, 1, ENTRY, 5, clock.now_ms())
    with pytest.raises(InvalidArgumentError) as caught:  # a gate record carries no amount
        gate_record.amount_fen = 100
        await campus.client(gate).upload_offline_batch("bad-2", [gate_record])
    assert caught.value.field == "transactions[0].amount_fen"
    with pytest.raises(PermissionDeniedError) as denied:  # a POS cannot have opened a gate
        await client.upload_offline_batch(
            "bad-3", [chip_record(card, pos.terminal_id, 1, ENTRY, 5, clock.now_ms())]
        )
    assert denied.value.reason == "SCENE_NOT_ALLOWED"
    assert (db_count(campus_dir, "offline_transactions"), db_count(campus_dir, "transfers")) == rows
    # Nothing was booked, so the first good upload of serial 1 books it.
    good = await client.upload_offline_batch(
        "good", [chip_record(card, pos.terminal_id, 1, BUY, 5, clock.now_ms(), 100)]
    )
    assert good.booked == 1


async def test_a_crash_after_the_answer_loses_nothing(
    campus_dir: Path, tmp_path: Path, clock: ManualClock
) -> None:
    """The files as a kill -9 leaves them (committed WAL, no checkpoint, no clean stop) rebuild it all."""
    creds = CampusCredentials.load(campus_dir / "hub.keys")
    c = Campus(creds, clock, "")
    card, pos = c.card(), c.pos()
    batch = [chip_record(card, pos.terminal_id, 1, BUY, 8, clock.now_ms() - MINUTE, 60_000)]
    crashed = tmp_path / "crashed"
    async with running_hub(hub_config(campus_dir), clock) as running:
        async with TerminalClient(pos.terminal_id, ClientConfig(target=running.target)) as client:
            first = await client.upload_offline_batch("crash-1", batch)
            balance = (await client.wallet_balance(card.card_no)).balance_fen
        crashed.mkdir()
        shutil.copytree(campus_dir / "hub.keys", crashed / "hub.keys")
        for suffix in ("", "-wal"):
            shutil.copy(campus_dir / f"hub.db{suffix}", crashed / f"hub.db{suffix}")
    assert first.results[0].debt_fen == 10_000
    async with (
        running_hub(hub_config(crashed), clock) as running,
        TerminalClient(pos.terminal_id, ClientConfig(target=running.target)) as client,
    ):
        assert (await client.wallet_balance(card.card_no)).balance_fen == balance == -10_000
        assert (await client.upload_offline_batch("crash-2", batch)).duplicates == 1
        assert await ledger_sum(running.target) == 0
