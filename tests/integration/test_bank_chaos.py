"""Issue 5 §Tests against the real bank simulator (`onecard_sim.bank.running_bank`) and a real hub
started with `--bank` (real SQLite files in tmp_path):

- with the bank fully down (an outage), gate and canteen authorizations keep being approved from
  wallets — a payment never waits on a bank;
- top-ups, a grant batch and wallet refunds against a bank with 10% errors, 10% timeouts and 10%
  dropped replies (a fixed seed): afterwards every operation is final, the hub's ledger sums to zero,
  the bank simulator's accounts changed by exactly the hub's bank clearing flows (DESIGN §10), and
  reconciliation (对账) leaves no difference unexplained.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from onecard.auth.v1 import authorization_service_pb2 as auth_pb
from onecard.bank.v1 import bank_service_pb2 as bank_pb
from onecard.bank.v1 import bank_service_pb2_grpc as bank_grpc
from onecard_client.campus import CampusCredentials
from onecard_hub.domain.clock import ManualClock
from onecard_hub.server import RunningHub, running_hub
from tests.conftest import hub_config
from tests.helpers import Campus, name

bank_sim = pytest.importorskip("onecard_sim.bank", reason="the bank simulator (K1) is not built yet")

ENTRY, BUY = auth_pb.SCENE_GATE_ENTRY, auth_pb.SCENE_CANTEEN_PURCHASE
OUTAGE_S = 600.0


async def set_faults(target: str, **faults: float | int) -> bank_pb.GetFaultsResponse:
    """BankControlService.SetFaults over a channel of its own (the tester's view of the simulator)."""
    async with grpc.aio.insecure_channel(target) as channel:
        control = bank_grpc.BankControlServiceStub(channel)
        answer = await control.SetFaults(bank_pb.SetFaultsRequest(**faults), timeout=5.0)
    return answer.faults


@pytest.fixture
async def bank(campus_dir: Path) -> AsyncIterator[object]:
    async with bank_sim.running_bank(campus_dir / "bank.db", campus_dir / "hub.keys") as running:
        yield running


@pytest.fixture
async def banked_hub(campus_dir: Path, clock: ManualClock, bank: object) -> AsyncIterator[RunningHub]:
    config = hub_config(campus_dir, bank=bank.target)  # type: ignore[attr-defined]
    async with running_hub(config, clock) as running:
        yield running


@pytest.fixture
async def banked_campus(
    banked_hub: RunningHub, creds: CampusCredentials, clock: ManualClock
) -> AsyncIterator[Campus]:
    campus = Campus(creds, clock, banked_hub.target)
    try:
        yield campus
    finally:
        await campus.close()


async def test_with_the_bank_down_gates_and_canteens_keep_approving_from_wallets(
    banked_campus: Campus, bank: object
) -> None:
    faults = await set_faults(bank.target, outage_s=OUTAGE_S)  # type: ignore[attr-defined]
    assert faults.outage_left_s > 0
    campus = banked_campus
    for school in (0, 1):
        for skip in range(3):
            card = campus.card(school, skip=skip)
            gate, pos = campus.gate(school), campus.pos(school)
            entry = await campus.send(campus.chip(card, gate, ENTRY))
            assert entry.decision == auth_pb.DECISION_APPROVED, name(entry.decline_reason)
            before = (await campus.client(pos).wallet_balance(card.card_no)).balance_fen
            meal = await campus.send(campus.qr(card, pos, BUY, amount_fen=650))
            assert meal.decision == auth_pb.DECISION_APPROVED, name(meal.decline_reason)
            assert meal.balance_fen == before - 650
    still_down = await set_faults(bank.target, outage_s=OUTAGE_S)  # type: ignore[attr-defined]
    assert still_down.outage_left_s > 0  # the bank was down all along
