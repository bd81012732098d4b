"""The SDK against a real hub started by its own testing helper: async and sync, plain text and mTLS."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from pathlib import Path

import pytest

from onecard.auth.v1 import authorization_service_pb2 as auth_pb
from onecard_client import (
    AdminClient,
    InvalidArgumentError,
    RetryConfig,
    TerminalClient,
    TLSConfig,
    TLSConfigurationError,
)
from onecard_client import sync as sync_client
from onecard_client.campus import CardCredential
from onecard_client.taps import chip_tap
from onecard_client.testing import HubForTests, hub_for_tests
from onecard_hub.security.pki import init_pki, issue

BUY = auth_pb.SCENE_CANTEEN_PURCHASE
FAST_RETRY = RetryConfig(attempts=3, initial_backoff_s=0.001, max_backoff_s=0.005)
RETRY_LOG = "sending the same request again"


def _usable_card(hub: HubForTests, skip: int = 0) -> CardCredential:
    return [c for c in hub.credentials.cards_of(hub.school_id) if c.usable][skip]


def _pos_id(hub: HubForTests) -> str:
    return hub.credentials.terminals_of(hub.school_id, "canteen_pos")[0].terminal_id


def _purchase(
    hub: HubForTests, card: CardCredential, request_id: str, amount_fen: int = 850
) -> auth_pb.AuthorizeRequest:
    return chip_tap(
        card,
        request_id=request_id,
        terminal_id=_pos_id(hub),
        scene=BUY,
        atc=card.atc + 1,
        tap_time_ms=hub.clock.now_ms(),
        amount_fen=amount_fen,
    )


async def test_the_testing_hub_serves_a_seeded_campus() -> None:
    async with hub_for_tests() as hub:
        assert hub.pki_dir is None and len(hub.credentials.schools) == 1
        card = _usable_card(hub)
        pos = _pos_id(hub)
        async with TerminalClient(pos, hub.terminal_config(pos)) as terminal:
            before = (await terminal.wallet_balance(card.card_no)).balance_fen
            response = await terminal.authorize(_purchase(hub, card, "sdk-1"))
            assert response.decision == auth_pb.DECISION_APPROVED, response.display_text
            assert response.balance_fen == before - 850
        operator = hub.credentials.operators[0]
        async with AdminClient(operator, hub.operator_config(operator)) as admin:
            assert (await admin.ledger_summary()).sum_fen == 0
        keys = hub.keys_dir
    assert not keys.exists()  # the temporary campus is gone


async def test_the_sync_clients_work_against_the_testing_hub() -> None:
    async with hub_for_tests() as hub:
        card, pos = _usable_card(hub), _pos_id(hub)
        request = _purchase(hub, card, "sync-1")

        def run() -> tuple[auth_pb.AuthorizeResponse, auth_pb.AuthorizeResponse, InvalidArgumentError, int]:
            with sync_client.TerminalClient(pos, hub.terminal_config(pos)) as terminal:
                first = terminal.authorize(request)
                again = terminal.authorize(request)  # same request_id: the original answer
                bad = _purchase(hub, card, "sync-2", amount_fen=-5)
                try:
                    terminal.authorize(bad)
                except InvalidArgumentError as exc:
                    error = exc
            operator = hub.credentials.operators[0]
            with sync_client.AdminClient(operator, hub.operator_config(operator)) as admin:
                count = len(admin.list_terminals(hub.school_id).terminals)
            return first, again, error, count

        first, again, error, terminals = await asyncio.to_thread(run)
    assert first.decision == auth_pb.DECISION_APPROVED
    assert again.authorization_id == first.authorization_id
    assert error.field == "amount_fen"
    assert terminals == len(hub.credentials.terminals)


async def test_mutual_tls_with_the_testing_hub() -> None:
    async with hub_for_tests(tls=True) as hub:
        assert hub.pki_dir is not None
        card, pos = _usable_card(hub), _pos_id(hub)
        config = hub.terminal_config(pos)
        assert config.tls == TLSConfig.for_terminal(hub.pki_dir, pos)
        async with TerminalClient(pos, config) as terminal:
            response = await terminal.authorize(_purchase(hub, card, "tls-1"))
        assert response.decision == auth_pb.DECISION_APPROVED

        operator = hub.credentials.operators[0]

        def run() -> int:
            with sync_client.AdminClient(operator, hub.operator_config(operator)) as admin:
                return len(admin.list_terminals(hub.school_id).terminals)

        assert await asyncio.to_thread(run) == len(hub.credentials.terminals)


async def test_a_wrong_ca_is_a_configuration_error_at_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    await asyncio.to_thread(init_pki, tmp_path / "other")
    async with hub_for_tests(tls=True) as hub:
        pos = _pos_id(hub)
        assert hub.pki_dir is not None
        right = TLSConfig.for_terminal(hub.pki_dir, pos)
        wrong_ca = dataclasses.replace(right, ca_cert=tmp_path / "other" / "ca.crt")
        config = dataclasses.replace(hub.terminal_config(pos), tls=wrong_ca, retry=FAST_RETRY)
        with caplog.at_level(logging.INFO, logger="onecard_client"):
            async with TerminalClient(pos, config) as terminal:
                with pytest.raises(TLSConfigurationError) as raised:
                    await terminal.clock()

            def run() -> None:
                with sync_client.TerminalClient(pos, config) as terminal:
                    terminal.clock()

            with pytest.raises(TLSConfigurationError):
                await asyncio.to_thread(run)
    assert "handshake" in str(raised.value)
    assert not [r for r in caplog.records if RETRY_LOG in r.getMessage()]


async def test_a_certificate_the_hub_did_not_issue_ends_as_a_configuration_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    other = tmp_path / "other"
    async with hub_for_tests(tls=True) as hub:
        pos = _pos_id(hub)
        assert hub.pki_dir is not None
        await asyncio.to_thread(init_pki, other)
        await asyncio.to_thread(issue, other, "terminal", pos)
        foreign = dataclasses.replace(
            TLSConfig.for_terminal(other, pos), ca_cert=hub.pki_dir / "ca.crt"
        )  # trusts the hub, but its own certificate comes from another CA
        config = dataclasses.replace(hub.terminal_config(pos), tls=foreign, retry=FAST_RETRY)
        with caplog.at_level(logging.INFO, logger="onecard_client"):
            async with TerminalClient(pos, config) as terminal:
                with pytest.raises(TLSConfigurationError) as raised:
                    await terminal.clock()
    assert "certificate" in str(raised.value)
    # The hub only closes the connection, as a restarting hub might: retried up to the limit.
    assert len([r for r in caplog.records if RETRY_LOG in r.getMessage()]) == FAST_RETRY.attempts - 1
