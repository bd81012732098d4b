"""The hub serves from its database and keys alone: the credential export that `onecard-hub seed`
writes beside the keys (every card's keys and PINs, for simulators and load tests) is never read by
`serve`. The merchants' settlement accounts come from the database, including one seeded before the
merchant_accounts table existed (the migration gives it the accounts its seed exported)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from onecard.auth.v1 import authorization_service_pb2 as pb
from onecard_client.campus import CREDENTIALS_FILE, CampusCredentials
from onecard_hub.domain.clock import ManualClock
from onecard_hub.server import running_hub
from onecard_hub.store.schema import MIGRATIONS
from onecard_hub.store.sqlite import SqliteStore, _statements
from tests.conftest import hub_config
from tests.helpers import Campus, name


def _exported_banks(creds: CampusCredentials) -> dict[str, tuple[str, str]]:
    return {m.merchant_id: (m.bank_code, m.account_no) for m in creds.merchants}


async def test_the_hub_serves_and_settles_without_the_credential_export(
    campus_dir: Path, clock: ManualClock, creds: CampusCredentials
) -> None:
    export = campus_dir / "hub.keys" / CREDENTIALS_FILE
    export.unlink()  # the keys of `creds` were read before: a terminal keeps its own
    async with running_hub(hub_config(campus_dir), clock) as running:
        assert not export.exists()
        campus = Campus(creds, clock, running.target)
        try:
            card = campus.card()
            entry = await campus.send(campus.chip(card, campus.gate(), pb.SCENE_GATE_ENTRY))
            assert entry.decision == pb.DECISION_APPROVED, name(entry.decline_reason)
            lunch = await campus.send(
                campus.qr(card, campus.pos(), pb.SCENE_CANTEEN_PURCHASE, amount_fen=800)
            )
            assert lunch.decision == pb.DECISION_APPROVED, name(lunch.decline_reason)
        finally:
            await campus.close()
        assert running.settlement is not None
        assert creds.merchants and dict(running.settlement.merchant_banks) == _exported_banks(creds)


async def test_a_database_seeded_before_merchant_accounts_gets_those_of_its_export(
    campus_dir: Path, creds: CampusCredentials
) -> None:
    db = campus_dir / "hub.db"
    migration = next(m for m in MIGRATIONS if "CREATE TABLE merchant_accounts" in m)
    with sqlite3.connect(db) as conn:  # the database as it was before that migration
        conn.execute("DROP TABLE merchant_accounts")
        conn.execute("INSERT INTO merchants VALUES ('canteen-x', ?, '小卖部', 1)", (creds.schools[0],))
        for statement in _statements(migration):
            conn.execute(statement)
    store = SqliteStore(db)
    await store.open()
    try:
        assert await store.merchant_banks() == _exported_banks(creds)  # canteen-x: not the seed's, none
    finally:
        await store.close()
