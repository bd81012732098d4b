"""The settlement part of a running hub: the book read at start, the payer and the reconciliation
flows when a bank is known (`hub.bank`, the gateway)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from onecard_hub.domain.errors import Unavailable
from onecard_hub.hub import Hub
from onecard_hub.settlement.bank_port import SettlementBank
from onecard_hub.settlement.book import SettlementBook
from onecard_hub.settlement.payments import Payer
from onecard_hub.settlement.reconcile import BankFlow, PaymentFlow
from onecard_hub.store.records import Snapshot
from onecard_hub.store.settlement_rows import load_settlement
from onecard_hub.store.sqlite import SqliteStore


@dataclass
class Settlement:
    hub: Hub
    book: SettlementBook
    bank: SettlementBank | None = None
    payer: Payer | None = None
    # merchant_id → (bank code, account number) of the canteen operator's account
    merchant_banks: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    # every bank-side flow reconciliation covers; top-ups and grants register theirs (`add_flow`)
    flows: list[BankFlow] = field(default_factory=list)

    def add_flow(self, flow: BankFlow) -> None:
        self.flows.append(flow)

    def ready(self) -> tuple[Payer, SettlementBank]:
        if self.payer is None or self.bank is None:
            raise Unavailable("the hub runs without a bank (serve --bank HOST:PORT)")
        return self.payer, self.bank


async def start_settlement(
    hub: Hub, bank: SettlementBank | None, merchant_banks: Mapping[str, tuple[str, str]] | None = None
) -> Settlement:
    """The book read back from the store; the merchants' settlement accounts are the store's
    (the seed writes them) unless `merchant_banks` is given."""
    snap = Snapshot()
    if isinstance(hub.store, SqliteStore):
        await load_settlement(hub.store.db, snap)
        if merchant_banks is None:
            merchant_banks = await hub.store.merchant_banks()
    book = SettlementBook.from_snapshot(snap)
    settlement = Settlement(hub, book, bank, merchant_banks=merchant_banks or {})
    if bank is not None:
        settlement.payer = Payer(hub, settlement.book, bank)
        settlement.add_flow(PaymentFlow(settlement.book, settlement.payer, bank))
    return settlement
