"""Merchant settlement: each canteen window's takings of a business date paid to its operator's
bank account, once per (merchant, date). See payments.py for the two-phase steps."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from onecard_hub.domain.errors import InvalidArgument, Unavailable
from onecard_hub.domain.settlement import (
    PaymentStatus,
    day_bounds_ms,
    parse_business_date,
    settlement_transfer_id,
    takings,
)
from onecard_hub.hub import Hub
from onecard_hub.settlement.book import MERCHANT_SETTLEMENT, Payment, SettlementBook
from onecard_hub.settlement.payments import Payer
from onecard_hub.store.records import Batch
from onecard_hub.store.settlement_rows import merchant_transfers
from onecard_hub.store.sqlite import SqliteStore

CONCURRENCY = 8  # merchants paid at once


def merchant_schools(hub: Hub) -> dict[str, str]:
    """merchant_id → school_id, from the canteen terminals that sell for it."""
    schools: dict[str, str] = {}
    for terminal in hub.campus.terminals.values():
        if terminal.merchant_id:
            schools.setdefault(terminal.merchant_id, terminal.school_id)
    return schools


async def settle_merchants(
    hub: Hub,
    book: SettlementBook,
    payer: Payer,
    merchant_banks: Mapping[str, tuple[str, str]],
    business_date: str,
    school_ids: set[str] | None,
) -> list[Payment]:
    """Pays every merchant (of `school_ids`, or all) its takings of `business_date`; PAID stays as it was."""
    try:
        day = parse_business_date(business_date)
    except ValueError as error:
        raise InvalidArgument("business_date", str(error)) from None
    if day.isoformat() >= payer.today():
        raise InvalidArgument("business_date", f"business_date {day.isoformat()} is not over yet")
    store = hub.store
    if not isinstance(store, SqliteStore):
        raise Unavailable("no journal to read the takings from")
    start_ms, end_ms = day_bounds_ms(day)
    transfers = await merchant_transfers(store.db, start_ms, end_ms)
    fresh: list[Payment] = []
    for merchant_id, school_id in sorted(merchant_schools(hub).items()):
        if school_ids is not None and school_id not in school_ids:
            continue
        key = settlement_transfer_id(merchant_id, day)
        if key in book.payments:
            continue
        day_takings = takings(transfers, hub.merchant_accounts.get(merchant_id, -1))
        bank_code, account_no = merchant_banks.get(merchant_id, ("", ""))
        payment = Payment(
            key,
            MERCHANT_SETTLEMENT,
            merchant_id,
            school_id,
            day.isoformat(),
            bank_code,
            account_no,
            max(day_takings.net_fen, 0),
            day_takings.sales_fen,
            day_takings.sales_count,
            day_takings.given_back_fen,
            day_takings.given_back_count,
            updated_ms=hub.clock.now_ms(),
        )
        if payment.amount_fen == 0:
            payment.status = PaymentStatus.NOTHING_TO_PAY
        book.keep(payment)
        fresh.append(payment)
    if fresh:
        await hub.writer.submit(Batch(payments=[p.row() for p in fresh]))
    payments = book.merchants_of(day.isoformat(), school_ids)
    limit = asyncio.Semaphore(CONCURRENCY)

    async def pay(payment: Payment) -> Payment:
        async with limit:
            return await payer.pay(payment)

    return list(await asyncio.gather(*(pay(p) for p in payments)))
