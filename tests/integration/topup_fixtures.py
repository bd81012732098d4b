"""A hub with the bank simulator (`running_bank`), for the top-up (圈存) tests, and helpers."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from onecard.admin.v1 import admin_service_pb2 as admin_pb
from onecard.funds.v1 import funds_service_pb2 as pb
from onecard_client import AdminClient, ClientConfig, FundsClient
from onecard_client.campus import CampusCredentials, CardCredential
from onecard_hub.domain.clock import ManualClock
from onecard_hub.server import RunningHub, running_hub
from onecard_sim.bank import RunningBank, running_bank
from tests.conftest import hub_config

ADMIN = "province-admin"
_ids = itertools.count(1)


def rid() -> str:
    return f"k2-{next(_ids)}"


@dataclass
class World:
    hub: RunningHub
    bank: RunningBank
    client: FundsClient


@asynccontextmanager
async def world(
    campus_dir: Path, clock: ManualClock, tmp_path: Path, *, fast: bool = True
) -> AsyncIterator[World]:
    """The bank simulator with an account per card, a hub serving --bank, an operator's FundsClient.
    `fast`: short bank deadlines and backoff, so that faults settle within a test."""
    async with (
        running_bank(tmp_path / "bank.db", campus_dir / "hub.keys") as bank,
        running_hub(hub_config(campus_dir, bank=bank.target), clock) as hub,
        FundsClient(ADMIN, ClientConfig(target=hub.target)) as client,
    ):
        if fast:
            speed_up(hub)
        yield World(hub, bank, client)


def speed_up(hub: RunningHub, max_reversals: int = 8) -> None:
    assert hub.hub.bank is not None and hub.funds is not None
    hub.hub.bank.deadline_s = 0.3
    topups = hub.funds.topups
    topups.backoff_base_s, topups.backoff_cap_s, topups.max_reversals = 0.02, 0.2, max_reversals


def cards(creds: CampusCredentials, count: int, school: int = 0) -> list[CardCredential]:
    """Active, enrolled cards with an active bank function."""
    found = [
        c
        for c in creds.cards_of(creds.schools[school])
        if c.usable and c.bank_status == "active" and c.bank_code
    ]
    return found[:count]


async def until_final(client: FundsClient, topup_id: str, limit_s: float = 30.0) -> pb.TopUp:
    for _ in range(int(limit_s / 0.05)):
        topup = (await client.get_top_up(topup_id)).topup
        if topup.state != pb.TOP_UP_STATE_PENDING:
            return topup
        await asyncio.sleep(0.05)
    raise AssertionError(f"top-up {topup_id} still pending")


async def add_kiosk(hub: RunningHub, school_id: str, terminal_id: str = "KIOSK-1") -> str:
    async with AdminClient(ADMIN, ClientConfig(target=hub.target)) as admin:
        await admin.register_terminal(
            rid(),
            admin_pb.Terminal(
                terminal_id=terminal_id,
                school_id=school_id,
                kind=admin_pb.TERMINAL_KIND_KIOSK,
                location="自助圈存机",
                enabled=True,
            ),
        )
    return terminal_id


async def bank_balance(bank: RunningBank, card: CardCredential) -> int:
    return await bank.control.balance_fen(card.bank_code, card_no=card.card_no)
