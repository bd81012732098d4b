"""The grants part of a running hub: the book read at start, and the payer when the hub has a
bank (`hub.bank`, the gateway made from --bank)."""

from __future__ import annotations

from dataclasses import dataclass

from onecard_hub.grants.book import GrantBook
from onecard_hub.grants.payer import GrantPayer
from onecard_hub.hub import Hub
from onecard_hub.store.grant_rows import load_grants
from onecard_hub.store.records import Snapshot
from onecard_hub.store.sqlite import SqliteStore


@dataclass
class Grants:
    book: GrantBook
    payer: GrantPayer | None = None

    def wake(self) -> None:
        if self.payer is not None:
            self.payer.wake()

    async def stop(self) -> None:
        if self.payer is not None:
            await self.payer.stop()


async def start_grants(hub: Hub) -> Grants:
    """Reads every batch back; with a bank starts paying, first settling what a restart left
    uncertain. Without one, approved batches wait (their items stay PENDING)."""
    snap = Snapshot()
    if isinstance(hub.store, SqliteStore):
        await load_grants(hub.store.db, snap)
    grants = Grants(GrantBook.from_snapshot(snap))
    if hub.bank is not None:
        grants.payer = GrantPayer(hub, grants.book, hub.bank)
        grants.payer.start()
    return grants
