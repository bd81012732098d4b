"""Use case: book what a terminal did offline (AuthorizationService.UploadOfflineBatch).

The rules are in `domain/offline.py`. Here: idempotency by (terminal, request_id) like every
mutating call (same id and body → the original answer), the Ed25519 checks made in small chunks
so the event loop keeps serving taps, one atomic booking step, and one journal batch — the
request, the transfers, the cards' new counters and presence, and the offline records — that is
durable before the terminal hears the answer. Duplicates are caught by (terminal, serial) whatever
the request_id, so a batch sent again under a new id books nothing twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from google.protobuf.message import Message

from onecard_hub.domain.clock import business_day
from onecard_hub.domain.model import Card, Operator, Terminal
from onecard_hub.domain.offline import (
    BOOKED,
    Debt,
    OfflineResult,
    OfflineTransaction,
    book_batch,
    signature_valid,
)
from onecard_hub.domain.scope import listed_school
from onecard_hub.hub import Hub
from onecard_hub.idempotency import Entry
from onecard_hub.store.records import Batch, CardStateRow, RequestRow

M = TypeVar("M", bound=Message)
UPLOAD_OFFLINE_BATCH = "UploadOfflineBatch"
# Ed25519 checks between two yields to the event loop (≈0.1 ms each).
SIGNATURES_PER_SLICE = 32


async def upload_offline_batch(
    hub: Hub,
    terminal: Terminal,
    request_id: str,
    transactions: list[OfflineTransaction],
    fingerprint: bytes,
    render: Callable[[list[OfflineResult]], M],
    parse: Callable[[bytes], M],
) -> M:
    key = (terminal.terminal_id, request_id)
    if (answer := await hub.answered(key, UPLOAD_OFFLINE_BATCH, fingerprint, parse)) is not None:
        return answer
    signatures = await _check_signatures(hub, transactions)
    # the loop served other calls meanwhile: a copy may have been booked
    if (answer := await hub.answered(key, UPLOAD_OFFLINE_BATCH, fingerprint, parse)) is not None:
        return answer
    now = hub.clock.now_ms()
    booking = book_batch(hub.campus, hub.offline_book, terminal, request_id, transactions, signatures, now)
    for record in booking.records:  # usage statistics: a booked record is a use of the card
        if record.outcome == BOOKED:
            day = business_day(record.occurred_ms)
            hub.usage.record_past(terminal.school_id, record.card_no, record.scene, day, 1, 0)
    response = render(booking.results)
    body = response.SerializeToString()
    rows = Batch(
        requests=[
            RequestRow(
                terminal.terminal_id,
                request_id,
                UPLOAD_OFFLINE_BATCH,
                fingerprint,
                body,
                now,
                amount_fen=sum(t.amount_fen for t in booking.transfers),
                business_day=business_day(now),
            )
        ],
        transfers=booking.transfers,
        card_states=[_card_state(card) for card in booking.cards.values()],
        offline=booking.records,
    )
    await hub.commit(key, Entry(UPLOAD_OFFLINE_BATCH, fingerprint, now, body), rows)
    if hub.metrics is not None:
        hub.metrics.offline_uploaded(terminal.school_id, booking.results)
    return response


async def _check_signatures(hub: Hub, transactions: list[OfflineTransaction]) -> list[bool]:
    public_key = hub.keys.ecard_public_key
    valid = []
    for index, tx in enumerate(transactions, 1):
        valid.append(signature_valid(public_key, tx))
        if index % SIGNATURES_PER_SLICE == 0:
            await asyncio.sleep(0)
    return valid


def _card_state(card: Card) -> CardStateRow:
    return CardStateRow(card.card_no, card.atc, card.pin_failures, int(card.presence))


def wallet_debts(hub: Hub, operator: Operator, school_id: str) -> list[Debt]:
    """Wallets below zero now, with the offline records that took them there. A clerk names their
    own school; a province administrator may leave `school_id` empty for all schools."""
    return hub.offline_book.debts_of(listed_school(operator, school_id, hub.campus.schools))
