"""The funds part of a running hub: the book read at start, the top-up driver (which resumes every
top-up left PENDING), auto top-up's consumer and the closer of old bank accounts — the last three
only when a bank is known (`hub.bank`, the gateway)."""

from __future__ import annotations

from dataclasses import dataclass

from onecard_hub.bank.gateway import BankGateway
from onecard_hub.domain.errors import Unavailable
from onecard_hub.funds.auto_topup import AutoTopUps
from onecard_hub.funds.bank_change import Closer
from onecard_hub.funds.book import FundsBook
from onecard_hub.funds.flow import TopUpFlow
from onecard_hub.funds.topups import TopUps
from onecard_hub.hub import Hub
from onecard_hub.store.records import Snapshot
from onecard_hub.store.sqlite import SqliteStore
from onecard_hub.store.topup_rows import load_funds


@dataclass
class Funds:
    hub: Hub
    book: FundsBook
    topups: TopUps
    autos: AutoTopUps
    closer: Closer | None = None
    flow: TopUpFlow | None = None

    def bank(self) -> BankGateway:
        if self.hub.bank is None:
            raise Unavailable("the hub runs without a bank (serve --bank HOST:PORT)")
        return self.hub.bank

    async def stop(self) -> None:
        await self.autos.stop()
        if self.closer is not None:
            await self.closer.stop()
        await self.topups.stop()


async def start_funds(hub: Hub) -> Funds:
    snap = Snapshot()
    if isinstance(hub.store, SqliteStore):
        await load_funds(hub.store.db, snap)
    book = FundsBook.from_snapshot(snap)
    topups = TopUps(hub, book, hub.bank)
    funds = Funds(hub, book, topups, AutoTopUps(topups, book))
    if hub.bank is not None:
        funds.closer = Closer(hub, book, hub.bank)
        topups.on_final.append(funds.closer.poke)
        funds.flow = TopUpFlow(topups)
        funds.autos.start()
        funds.closer.start()
        topups.resume()
    return funds
