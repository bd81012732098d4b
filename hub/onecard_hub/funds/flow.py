"""Top-ups as a reconciliation (对账) flow (settlement/reconcile.py BankFlow): each top-up's debit
under its transfer id, by bank and business date; an open one is settled as the statement decides —
POST when the bank posted it, VOID only after a reversal the bank answered."""

from __future__ import annotations

from collections.abc import Iterable

from onecard_hub.domain.bank import BankOutcome
from onecard_hub.domain.reconciliation import Action, HubState, HubTransfer
from onecard_hub.domain.topup import TopUpState
from onecard_hub.funds.topups import TopUps

STATES = {
    TopUpState.PENDING: HubState.PENDING,
    TopUpState.MANUAL_REVIEW: HubState.UNCERTAIN,
    TopUpState.POSTED: HubState.POSTED,
    TopUpState.VOIDED: HubState.VOIDED,
}


class TopUpFlow:
    def __init__(self, topups: TopUps) -> None:
        self._topups = topups

    def records(self, bank_code: str, business_date: str) -> Iterable[HubTransfer]:
        for t in self._topups.book.topups.values():
            if t.bank_code == bank_code and t.business_date == business_date:
                yield HubTransfer(t.transfer_id, bank_code, "top_up", t.amount_fen, STATES[t.state])

    async def settle(self, transfer_id: str, action: Action) -> bool:
        topup = self._topups.book.topups.get(transfer_id)
        if topup is None or topup.state.final:
            return False
        if topup.state is TopUpState.PENDING and transfer_id in self._topups.running:
            return False  # being driven right now: its own answer settles it
        if action is Action.POST:
            await self._topups.post(topup, "posted by reconciliation")
            return True
        answer = await self._topups.reverse(topup)
        if answer.outcome in (BankOutcome.REVERSED, BankOutcome.REJECTED):
            await self._topups.finish(topup, TopUpState.VOIDED, "voided by reconciliation")
            return True
        return False
