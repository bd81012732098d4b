"""A hub that pays grants into a bank (tests/integration/grant_bank.py), and helpers."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from onecard.grants.v1 import grant_service_pb2 as pb
from onecard_client import ClientConfig, GrantsClient
from onecard_hub.domain.clock import ManualClock
from onecard_hub.domain.model import BankStatus, CardStatus, Enrollment
from onecard_hub.grants.batches import current_card
from onecard_hub.server import RunningHub, running_hub
from tests.conftest import hub_config

ADMIN = "province-admin"
YEAR = "2026-2027-1"


@asynccontextmanager
async def hub_with_bank(campus_dir: Path, clock: ManualClock, bank_target: str) -> AsyncIterator[RunningHub]:
    """A hub serving `--bank bank_target`: its gateway pays the grants."""
    async with running_hub(hub_config(campus_dir, bank=bank_target), clock) as hub:
        yield hub


def students_with_cards(hub: RunningHub, school_id: str, count: int) -> list[tuple[str, str]]:
    """(student_id, card_no) of enrolled students of the school with a usable card whose bank
    function is active."""
    found = []
    for student in hub.hub.campus.students.values():
        if student.school_id != school_id or student.enrollment != Enrollment.ENROLLED:
            continue
        card = current_card(hub.hub, student)
        if (
            card
            and card.status == CardStatus.ACTIVE
            and card.bank_status == BankStatus.ACTIVE
            and card.bank_code
        ):
            found.append((student.student_id, card.card_no))
    return sorted(found)[:count]


def set_bank_status(campus_dir: Path, card_nos: list[str], status: str) -> None:
    """Before the hub starts: the cards' bank function as the provincial feed reported it."""
    with sqlite3.connect(campus_dir / "hub.db") as db:
        db.executemany("UPDATE cards SET bank_status = ? WHERE card_no = ?", [(status, c) for c in card_nos])


async def until_done(
    client: GrantsClient, school_id: str, batch_id: str, limit_s: float = 60.0
) -> pb.GrantBatch:
    """Polls the batch report until the batch is DONE (every item final)."""
    for _ in range(int(limit_s / 0.05)):
        batch = (await client.get_grant_batch(school_id, batch_id)).batch
        if batch.status == pb.BATCH_STATUS_DONE:
            return batch
        await asyncio.sleep(0.05)
    raise AssertionError(f"batch {batch_id} not done: {batch}")


def grants_client(hub: RunningHub, operator_id: str = ADMIN) -> GrantsClient:
    return GrantsClient(operator_id, ClientConfig(target=hub.target))
