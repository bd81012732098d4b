"""Every terminal-fleet RPC through the SDK, with mutual TLS, against a real hub:
configuration, heartbeat, offline upload, terminal list and enable, wallet debts, e-card QR codes."""

from __future__ import annotations

import asyncio

from onecard.auth.v1 import authorization_service_pb2 as auth_pb
from onecard_client import AdminClient, ECardClient, PermissionDeniedError, TerminalClient
from onecard_client import sync as sync_client
from onecard_client.campus import CardCredential
from onecard_client.credentials import chip_cryptogram
from onecard_client.testing import HubForTests, hub_for_tests

BUY = auth_pb.SCENE_CANTEEN_PURCHASE


def _cards(hub: HubForTests) -> list[CardCredential]:
    return [c for c in hub.credentials.cards_of(hub.school_id) if c.usable]


def _offline_purchase(
    card: CardCredential, terminal_id: str, serial: int, atc: int, amount_fen: int, at_ms: int
) -> auth_pb.OfflineTransaction:
    transaction = auth_pb.OfflineTransaction(
        serial=serial,
        scene=BUY,
        amount_fen=amount_fen,
        chip=auth_pb.ChipTap(
            card_no=card.card_no,
            atc=atc,
            cryptogram=chip_cryptogram(
                card.card_key,
                card_no=card.card_no,
                atc=atc,
                terminal_id=terminal_id,
                scene=BUY,
                amount_fen=amount_fen,
                tap_time_ms=at_ms,
            ),
        ),
    )
    transaction.occurred_at.FromMilliseconds(at_ms)
    return transaction


async def test_config_heartbeat_and_terminal_list() -> None:
    async with hub_for_tests(tls=True) as hub:
        pos = hub.credentials.terminals_of(hub.school_id, "canteen_pos")[0].terminal_id
        clerk = hub.credentials.operators[-1]
        async with TerminalClient(pos, hub.terminal_config(pos)) as terminal:
            config = await terminal.get_config()
            beat = await terminal.heartbeat("pos-fw 2.1", offline_pending=3)
        assert (config.terminal_id, config.school_id) == (pos, hub.school_id)
        assert len(config.ecard_public_key) == 32 and config.config_version
        assert beat.config_version == config.config_version
        async with AdminClient(clerk, hub.operator_config(clerk)) as admin:
            listed = {t.terminal_id: t for t in (await admin.list_terminals(hub.school_id)).terminals}
        assert (listed[pos].software_version, listed[pos].offline_pending) == ("pos-fw 2.1", 3)


async def test_a_disabled_terminal_is_refused() -> None:
    async with hub_for_tests(tls=True) as hub:
        gate = hub.credentials.terminals_of(hub.school_id, "gate")[0].terminal_id
        clerk = hub.credentials.operators[-1]
        async with AdminClient(clerk, hub.operator_config(clerk)) as admin:
            off = await admin.set_terminal_enabled("disable-1", gate, False)
            assert off.terminal.enabled is False

        def run() -> str:
            with sync_client.TerminalClient(gate, hub.terminal_config(gate)) as terminal:
                try:
                    terminal.clock()
                except PermissionDeniedError as exc:
                    return exc.reason
            return "answered"

        assert await asyncio.to_thread(run) != "answered"


async def test_offline_upload_is_booked_once_and_debts_are_listed() -> None:
    async with hub_for_tests(tls=True) as hub:
        pos = hub.credentials.terminals_of(hub.school_id, "canteen_pos")[0].terminal_id
        card = _cards(hub)[0]
        now = hub.clock.now_ms()
        async with TerminalClient(pos, hub.terminal_config(pos)) as terminal:
            balance = (await terminal.wallet_balance(card.card_no)).balance_fen
            batch = [
                _offline_purchase(card, pos, 1, card.atc + 1, 900, now - 60_000),
                _offline_purchase(card, pos, 2, card.atc + 2, balance, now - 30_000),  # overspends by 900
            ]
            first = await terminal.upload_offline_batch("batch-1", batch)
            repeated = await terminal.upload_offline_batch("batch-1", batch)
            again = await terminal.upload_offline_batch("batch-1-again", batch)
        assert (first.booked, first.duplicates, first.rejected) == (2, 0, 0)
        assert repeated == first  # the same request_id: the original answer
        assert (again.booked, again.duplicates) == (0, 2)
        clerk = hub.credentials.operators[-1]
        async with AdminClient(clerk, hub.operator_config(clerk)) as admin:
            debts = await admin.list_wallet_debts(hub.school_id)
        assert [(d.card_no, d.debt_fen) for d in debts.debts] == [(card.card_no, 900)]
        assert debts.total_debt_fen == 900


async def test_the_ecard_app_mints_a_code_a_pos_accepts() -> None:
    async with hub_for_tests(tls=True) as hub:
        pos = hub.credentials.terminals_of(hub.school_id, "canteen_pos")[0].terminal_id
        card = _cards(hub)[1]
        async with ECardClient(hub.app_config()) as app:
            minted = await app.mint_qr_code(card.card_no, card.ecard_key, hub.clock.now_ms())
        request = auth_pb.AuthorizeRequest(
            request_id="qr-1",
            terminal_id=pos,
            scene=BUY,
            amount_fen=700,
            qr=auth_pb.QrScan(token=minted.token),
        )
        request.tap_time.FromMilliseconds(hub.clock.now_ms())
        async with TerminalClient(pos, hub.terminal_config(pos)) as terminal:
            response = await terminal.authorize(request)
        assert response.decision == auth_pb.DECISION_APPROVED, response.display_text
