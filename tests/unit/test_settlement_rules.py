"""Merchant settlement and wallet refund: the pure rules of hub/onecard_hub/domain/settlement.py."""

from __future__ import annotations

from datetime import date

import pytest

from onecard_hub.domain.ledger import Transfer, TransferKind
from onecard_hub.domain.settlement import (
    BusinessDateError,
    PaymentStatus,
    day_bounds_ms,
    parse_business_date,
    settlement_transfer_id,
    takings,
    wallet_refund_transfer_id,
)

MERCHANT = 7
OTHER = 8
WALLET = 1


def transfer(kind: TransferKind, amount: int, *, source: int = WALLET, target: int = MERCHANT) -> Transfer:
    return Transfer(source, target, amount, kind, "t", "r", "", 0)


def test_takings_are_sales_less_refunds_and_reversals() -> None:
    day = [
        transfer(TransferKind.PURCHASE, 1200),
        transfer(TransferKind.OFFLINE_PURCHASE, 800),
        transfer(TransferKind.PURCHASE, 500, target=OTHER),
        transfer(TransferKind.REFUND, 300, source=MERCHANT, target=WALLET),
        transfer(TransferKind.REVERSAL, 200, source=MERCHANT, target=WALLET),
        transfer(TransferKind.REFUND, 100, source=OTHER, target=WALLET),
        transfer(TransferKind.TOP_UP, 9999, source=99, target=WALLET),
    ]
    result = takings(day, MERCHANT)
    assert (result.sales_fen, result.sales_count, result.given_back_fen, result.given_back_count) == (
        2000,
        2,
        500,
        2,
    )
    assert result.net_fen == 1500
    assert result.count == 4


@pytest.mark.parametrize("text", ["2026-02-30", "20261124", "2026/11/24", "", "yesterday", "2026-1-01"])
def test_a_bad_business_date_is_named(text: str) -> None:
    with pytest.raises(BusinessDateError, match="not a date as YYYY-MM-DD"):
        parse_business_date(text)


def test_business_date_runs_midnight_to_midnight_in_china() -> None:
    start, end = day_bounds_ms(parse_business_date("2026-11-24"))
    assert end - start == 86_400_000
    assert start == 1_795_449_600_000  # 2026-11-23T16:00:00Z


def test_one_transfer_id_per_purpose() -> None:
    assert settlement_transfer_id("m-1", date(2026, 11, 24)) == "stl-2026-11-24-m-1"
    assert settlement_transfer_id("m-1", date(2026, 11, 24)) != settlement_transfer_id(
        "m-1", date(2026, 11, 25)
    )
    assert wallet_refund_transfer_id("s-1") == "wrf-s-1"
    assert len(settlement_transfer_id("m" * 100, date(2026, 11, 24))) == 64


def test_payment_status_finality() -> None:
    assert PaymentStatus.PAID.final and PaymentStatus.NOTHING_TO_PAY.final
    assert not PaymentStatus.FAILED.final and not PaymentStatus.FAILED.open
    assert PaymentStatus.UNCERTAIN.open and PaymentStatus.PENDING.open
