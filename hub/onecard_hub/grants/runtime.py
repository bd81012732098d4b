"""The grants part of a running hub: the book read at start, and the payer when a bank is known."""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from onecard_hub.grants.bank_port import GrantBank, StubBank
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
    channel: grpc.aio.Channel | None = None

    def wake(self) -> None:
        if self.payer is not None:
            self.payer.wake()

    async def stop(self) -> None:
        if self.payer is not None:
            await self.payer.stop()
        if self.channel is not None:
            await self.channel.close()


async def start_grants(hub: Hub, bank_target: str = "", bank: GrantBank | None = None) -> Grants:
    """Reads every batch back; with a bank (`bank`, or BankService at `bank_target`) starts paying,
    first settling what a restart left uncertain."""
    snap = Snapshot()
    if isinstance(hub.store, SqliteStore):
        await load_grants(hub.store.db, snap)
    grants = Grants(GrantBook.from_snapshot(snap))
    if bank is None and bank_target:
        grants.channel = grpc.aio.insecure_channel(bank_target)
        bank = StubBank(grants.channel)
    if bank is not None:
        grants.payer = GrantPayer(hub, grants.book, bank)
        grants.payer.start()
    return grants
