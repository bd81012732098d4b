"""The hub's bank gateway against the real bank simulator: answers mapped to plain outcomes,
UNCERTAIN (never a grpc error) on errors, timeouts, dropped replies and outages, the deadline
honoured, and the gateway built by `running_hub` from `--bank`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from onecard_client.campus import CampusCredentials, CardCredential
from onecard_hub.bank import BankGateway
from onecard_hub.domain.bank import AccountState, BankOutcome, RejectReason
from onecard_hub.domain.clock import ManualClock
from onecard_hub.server import running_hub
from onecard_sim.bank import RunningBank, running_bank
from tests.conftest import hub_config

DATE = "2026-11-24"
OPENING = 200_000


@pytest.fixture
async def bank(campus_dir: Path) -> AsyncIterator[RunningBank]:
    async with running_bank(campus_dir / "bank.db", campus_dir / "hub.keys") as running:
        yield running


@pytest.fixture
async def gateway(bank: RunningBank) -> AsyncIterator[BankGateway]:
    async with BankGateway(bank.target, deadline_s=0.5) as gw:
        yield gw


def active_card(creds: CampusCredentials, skip: int = 0) -> CardCredential:
    return [c for c in creds.cards if c.bank_status == "active"][skip]


async def test_outcomes_are_mapped(gateway: BankGateway, creds: CampusCredentials) -> None:
    card = active_card(creds)
    code = card.bank_code
    posted = await gateway.debit("g-1", code, 2_500, DATE, card_no=card.card_no)
    assert posted.outcome is BankOutcome.POSTED and posted.bank_reference and posted.posted_ms > 0
    refused = await gateway.debit("g-2", code, OPENING, DATE, card_no=card.card_no)
    assert (refused.outcome, refused.reject_reason) == (BankOutcome.REJECTED, RejectReason.INSUFFICIENT_FUNDS)
    malformed = await gateway.credit("g-3", code, -1, DATE, card_no=card.card_no)
    assert (malformed.outcome, malformed.reject_reason) == (
        BankOutcome.REJECTED,
        RejectReason.INVALID_REQUEST,
    )
    inquiry = await gateway.get_transfer(code, "g-1")
    assert (inquiry.outcome, inquiry.amount_fen) == (BankOutcome.POSTED, 2_500)
    assert (await gateway.get_transfer(code, "nope")).outcome is BankOutcome.NOT_FOUND
    undone = await gateway.reverse("gr-1", code, "g-1", DATE)
    assert (undone.outcome, undone.reversed_fen) == (BankOutcome.REVERSED, 2_500)
    account = await gateway.get_account(code, card_no=card.card_no)
    assert account.outcome is BankOutcome.OK and account.account is not None
    assert (account.account.state, account.account.balance_fen) == (AccountState.ACTIVE, OPENING)
    assert (await gateway.get_account(code, card_no="nobody")).outcome is BankOutcome.NOT_FOUND
    statement = await gateway.statement(code, DATE)
    assert statement.outcome is BankOutcome.OK and statement.lines == 1 and "g-1" in statement.csv


async def test_accounts_open_and_close(gateway: BankGateway, creds: CampusCredentials) -> None:
    card = active_card(creds)
    other = "CCB" if card.bank_code != "CCB" else "ICBC"
    opened = await gateway.open_account("o-1", other, card.card_no, activated=False)
    assert opened.outcome is BankOutcome.OK and opened.account is not None
    assert opened.account.state is AccountState.NOT_ACTIVATED
    again = await gateway.open_account("o-2", other, card.card_no)
    assert again.account is not None and again.account.account_no == opened.account.account_no
    closed = await gateway.close_account("c-1", card.bank_code, card_no=card.card_no)
    assert closed.outcome is BankOutcome.OK and closed.paid_out_fen == OPENING
    assert closed.account is not None and closed.account.state is AccountState.CLOSED
    late = await gateway.credit("g-9", card.bank_code, 100, DATE, card_no=card.card_no)
    assert late.reject_reason is RejectReason.ACCOUNT_CLOSED


@pytest.mark.parametrize("fault", ["error_rate", "timeout_rate", "drop_reply_rate", "outage_s"])
async def test_no_definite_answer_is_uncertain(
    bank: RunningBank, gateway: BankGateway, creds: CampusCredentials, fault: str
) -> None:
    card = active_card(creds)
    await bank.control.set_faults(**{fault: 600.0 if fault == "outage_s" else 1.0})
    result = await gateway.credit("u-1", card.bank_code, 300, DATE, card_no=card.card_no)
    assert result.outcome is BankOutcome.UNCERTAIN and result.error
    reversal = await gateway.reverse("ur-1", card.bank_code, "u-0", DATE)
    assert reversal.outcome is BankOutcome.UNCERTAIN
    await bank.control.set_faults(outage_s=0)
    settled = await gateway.get_transfer(card.bank_code, "u-1")
    applied = fault == "drop_reply_rate"  # a dropped reply was applied; the others were not
    assert settled.outcome is (BankOutcome.POSTED if applied else BankOutcome.NOT_FOUND)


async def test_the_deadline_is_honoured(bank: RunningBank, creds: CampusCredentials) -> None:
    card = active_card(creds)
    await bank.control.set_faults(latency_min_ms=3_000, latency_max_ms=3_000)
    async with BankGateway(bank.target, deadline_s=0.2) as gateway:
        result = await gateway.debit("d-1", card.bank_code, 100, DATE, card_no=card.card_no)
    assert result.outcome is BankOutcome.UNCERTAIN and "DEADLINE_EXCEEDED" in result.error


async def test_no_bank_running_is_uncertain(creds: CampusCredentials) -> None:
    async with BankGateway("127.0.0.1:1", deadline_s=0.5) as gateway:
        result = await gateway.debit("n-1", "ICBC", 100, DATE, card_no=active_card(creds).card_no)
        inquiry = await gateway.get_transfer("ICBC", "n-1")
    assert result.outcome is inquiry.outcome is BankOutcome.UNCERTAIN


async def test_running_hub_builds_the_gateway_from_bank(
    campus_dir: Path, clock: ManualClock, bank: RunningBank, creds: CampusCredentials
) -> None:
    async with running_hub(hub_config(campus_dir), clock) as plain:
        assert plain.hub.bank is None
    async with running_hub(hub_config(campus_dir, bank=bank.target), clock) as running:
        gateway = running.hub.bank
        assert gateway is not None and gateway.target == bank.target
        card = active_card(creds)
        assert (await gateway.get_account(card.bank_code, card_no=card.card_no)).outcome is BankOutcome.OK
