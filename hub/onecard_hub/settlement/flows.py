"""Other bank-side flows reconciliation covers, as `BankFlow`s (settlement/reconcile.py).

Grants (grants/): every item's current attempt, on the business date it was last booked. The grant
payer settles its own uncertain items by inquiry and reversal, so reconciliation settles none of
them: an open grant item at reconciliation time is reported, not touched.
Top-ups (圈存) register their own flow when they land (`Settlement.add_flow`).
"""

from __future__ import annotations

from collections.abc import Iterable

from onecard_hub.domain import clock
from onecard_hub.domain.grants import ItemStatus
from onecard_hub.domain.reconciliation import Action, HubState, HubTransfer
from onecard_hub.grants.book import GrantBook

GRANT_STATES = {
    ItemStatus.PENDING: HubState.VOIDED,  # with a transfer id: the last attempt was void
    ItemStatus.UNCERTAIN: HubState.UNCERTAIN,
    ItemStatus.PAID: HubState.POSTED,
    ItemStatus.FAILED: HubState.VOIDED,
    ItemStatus.RETURNED: HubState.RETURNED,
}


class GrantFlow:
    def __init__(self, book: GrantBook) -> None:
        self._book = book

    def records(self, bank_code: str, business_date: str) -> Iterable[HubTransfer]:
        for batch in self._book.batches.values():
            for item in batch.items.values():
                if (
                    item.transfer_id
                    and item.bank_code == bank_code
                    and clock.business_date(item.updated_ms) == business_date
                ):
                    yield HubTransfer(
                        item.transfer_id, bank_code, "grant", item.amount_fen, GRANT_STATES[item.status]
                    )

    async def settle(self, transfer_id: str, action: Action) -> bool:
        return False  # the grant payer settles its own items
