"""`BankGateway`: the ONE way the hub calls a co-branded bank (`onecard.bank.v1.BankService`).

Every call has a deadline (`deadline_s`, 2 s by default, or the call's own `deadline_s`), and every
answer is a plain result of `onecard_hub.domain.bank` — never a `grpc.RpcError`:

- a money call (`debit`, `credit`, `reverse`) that gets no definite answer — UNAVAILABLE (an
  outage, an injected error, a dropped reply), DEADLINE_EXCEEDED, or any other transport error —
  is `BankOutcome.UNCERTAIN`: the bank may have applied it. The caller settles it with
  `get_transfer` (inquiry) or `reverse` (冲正) under the SAME `transfer_id`, and must have recorded
  that id durably BEFORE calling (DESIGN §6);
- INVALID_ARGUMENT on `debit`/`credit` is definite: REJECTED with `RejectReason.INVALID_REQUEST`
  (the bank checks a request before applying it);
- a read (`get_transfer`, `get_account`, `statement`) without an answer is UNCERTAIN too: ask again.

Account numbers and card numbers are masked in the log. One channel for the gateway's life
(`close()` on the hub's stop); it reconnects on its own after an outage (backoff capped at 1 s).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import grpc

from onecard.bank.v1 import bank_service_pb2 as pb
from onecard.bank.v1 import bank_service_pb2_grpc as pb_grpc
from onecard_hub.domain.bank import (
    AccountResult,
    AccountState,
    BankAccount,
    BankOutcome,
    RejectReason,
    ReversalResult,
    StatementResult,
    TransferResult,
    mask_account_no,
)
from onecard_hub.domain.pii import mask_card_no

log = logging.getLogger(__name__)

DEFAULT_DEADLINE_S = 2.0
CHANNEL_OPTIONS = [
    ("grpc.use_local_subchannel_pool", 1),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1_000),
]

_STATUS = {
    pb.TRANSFER_STATUS_POSTED: BankOutcome.POSTED,
    pb.TRANSFER_STATUS_REJECTED: BankOutcome.REJECTED,
    pb.TRANSFER_STATUS_REVERSED: BankOutcome.REVERSED,
    pb.TRANSFER_STATUS_NOT_FOUND: BankOutcome.NOT_FOUND,
    pb.TRANSFER_STATUS_RETURNED: BankOutcome.RETURNED,
}
_REJECT = {
    pb.REJECT_REASON_UNSPECIFIED: RejectReason.NONE,
    pb.REJECT_REASON_ACCOUNT_NOT_FOUND: RejectReason.ACCOUNT_NOT_FOUND,
    pb.REJECT_REASON_NOT_ACTIVATED: RejectReason.NOT_ACTIVATED,
    pb.REJECT_REASON_ACCOUNT_FROZEN: RejectReason.ACCOUNT_FROZEN,
    pb.REJECT_REASON_ACCOUNT_CLOSED: RejectReason.ACCOUNT_CLOSED,
    pb.REJECT_REASON_INSUFFICIENT_FUNDS: RejectReason.INSUFFICIENT_FUNDS,
    pb.REJECT_REASON_REVERSED_BEFORE: RejectReason.REVERSED_BEFORE,
    pb.REJECT_REASON_LIMIT_EXCEEDED: RejectReason.LIMIT_EXCEEDED,
}
_STATE = {
    pb.ACCOUNT_STATE_NOT_ACTIVATED: AccountState.NOT_ACTIVATED,
    pb.ACCOUNT_STATE_ACTIVE: AccountState.ACTIVE,
    pb.ACCOUNT_STATE_FROZEN: AccountState.FROZEN,
    pb.ACCOUNT_STATE_CLOSED: AccountState.CLOSED,
}


def outcome_of(status: int) -> BankOutcome:
    return _STATUS.get(status, BankOutcome.UNCERTAIN)  # type: ignore[call-overload]


def reject_reason_of(reason: int) -> RejectReason:
    return _REJECT.get(reason, RejectReason.OTHER)  # type: ignore[call-overload]


def account_of(answer: pb.GetAccountResponse) -> BankAccount:
    return BankAccount(
        bank_code=answer.bank_code,
        account_no=answer.account_no,
        card_no=answer.card_no,
        state=_STATE.get(answer.state, AccountState.UNKNOWN),
        balance_fen=answer.balance_fen,
    )


def party(card_no: str = "", account_no: str = "") -> pb.Party:
    if bool(card_no) == bool(account_no):
        raise ValueError("a party is a card_no or an account_no (exactly one)")
    return pb.Party(card_no=card_no) if card_no else pb.Party(account_no=account_no)


def _who(card_no: str, account_no: str) -> str:
    return f"card {mask_card_no(card_no)}" if card_no else f"account {mask_account_no(account_no)}"


def _error(exc: grpc.RpcError) -> str:
    code = exc.code() if isinstance(exc, grpc.aio.AioRpcError | grpc.Call) else None
    name = code.name if code is not None else type(exc).__name__
    details = exc.details() if isinstance(exc, grpc.aio.AioRpcError | grpc.Call) else ""
    return f"{name}: {details}" if details else name


def _code(exc: grpc.RpcError) -> grpc.StatusCode | None:
    return exc.code() if isinstance(exc, grpc.aio.AioRpcError | grpc.Call) else None


class BankGateway:
    """BankService at `target` (HOST:PORT, plain text: the simulator), every call with a deadline."""

    def __init__(self, target: str, deadline_s: float = DEFAULT_DEADLINE_S) -> None:
        if deadline_s <= 0:
            raise ValueError("deadline_s must be positive")
        self.target = target
        self.deadline_s = deadline_s
        self._channel = grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS)
        self._stub: Any = pb_grpc.BankServiceStub(self._channel)

    def observe(self, wrap: Callable[[Any], Any]) -> None:
        """Hands the BankService stub to telemetry (telemetry/bank.py), which wraps it: every call
        counted, timed and traced, this class unchanged."""
        self._stub = wrap(self._stub)

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> BankGateway:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    def _timeout(self, deadline_s: float | None) -> float:
        return self.deadline_s if deadline_s is None else deadline_s

    # -- money calls ---------------------------------------------------------------------------

    async def debit(
        self,
        transfer_id: str,
        bank_code: str,
        amount_fen: int,
        business_date: str,
        *,
        card_no: str = "",
        account_no: str = "",
        memo: str = "",
        deadline_s: float | None = None,
    ) -> TransferResult:
        """Takes `amount_fen` from the holder's account (top-up 圈存). `transfer_id` recorded first."""
        request = pb.DebitRequest(
            transfer_id=transfer_id,
            bank_code=bank_code,
            payer=party(card_no, account_no),
            amount_fen=amount_fen,
            business_date=business_date,
            memo=memo,
        )
        return await self._money("Debit", request, _who(card_no, account_no), deadline_s)

    async def credit(
        self,
        transfer_id: str,
        bank_code: str,
        amount_fen: int,
        business_date: str,
        *,
        card_no: str = "",
        account_no: str = "",
        memo: str = "",
        deadline_s: float | None = None,
    ) -> TransferResult:
        """Pays `amount_fen` into an account (grant, refund, settlement). `transfer_id` recorded first."""
        request = pb.CreditRequest(
            transfer_id=transfer_id,
            bank_code=bank_code,
            payee=party(card_no, account_no),
            amount_fen=amount_fen,
            business_date=business_date,
            memo=memo,
        )
        return await self._money("Credit", request, _who(card_no, account_no), deadline_s)

    async def _money(self, method: str, request: Any, who: str, deadline_s: float | None) -> TransferResult:
        tid = request.transfer_id
        try:
            answer = await getattr(self._stub, method)(request, timeout=self._timeout(deadline_s))
        except grpc.RpcError as exc:
            if _code(exc) == grpc.StatusCode.INVALID_ARGUMENT:
                log.warning(
                    "bank %s %s %s refused as malformed: %s", request.bank_code, method, tid, _error(exc)
                )
                return TransferResult(
                    tid, BankOutcome.REJECTED, RejectReason.INVALID_REQUEST, error=_error(exc)
                )
            log.warning(
                "bank %s %s %s (%s, %d fen): UNCERTAIN (%s)",
                request.bank_code,
                method,
                tid,
                who,
                request.amount_fen,
                _error(exc),
            )
            return TransferResult(tid, BankOutcome.UNCERTAIN, error=_error(exc))
        result = TransferResult(
            tid,
            outcome_of(answer.status),
            reject_reason_of(answer.reject_reason),
            amount_fen=request.amount_fen,
            bank_reference=answer.bank_reference,
            posted_ms=answer.posted_at.ToMilliseconds() if answer.HasField("posted_at") else 0,
        )
        log.debug(
            "bank %s %s %s (%s): %s %s",
            request.bank_code,
            method,
            tid,
            who,
            result.outcome,
            result.reject_reason,
        )
        return result

    async def reverse(
        self,
        reversal_id: str,
        bank_code: str,
        transfer_id: str,
        business_date: str,
        *,
        deadline_s: float | None = None,
    ) -> ReversalResult:
        """冲正: undoes `transfer_id` (idempotent; remembered if the bank has not seen it yet)."""
        request = pb.ReverseRequest(
            reversal_id=reversal_id, bank_code=bank_code, transfer_id=transfer_id, business_date=business_date
        )
        try:
            answer = await self._stub.Reverse(request, timeout=self._timeout(deadline_s))
        except grpc.RpcError as exc:
            log.warning(
                "bank %s Reverse %s of %s: UNCERTAIN (%s)", bank_code, reversal_id, transfer_id, _error(exc)
            )
            return ReversalResult(reversal_id, transfer_id, BankOutcome.UNCERTAIN, error=_error(exc))
        return ReversalResult(reversal_id, transfer_id, outcome_of(answer.status), answer.reversed_fen)

    # -- reads and accounts --------------------------------------------------------------------

    async def get_transfer(
        self, bank_code: str, transfer_id: str, *, deadline_s: float | None = None
    ) -> TransferResult:
        """Inquiry: what became of `transfer_id` (NOT_FOUND: the bank never applied it)."""
        request = pb.GetTransferRequest(bank_code=bank_code, transfer_id=transfer_id)
        try:
            answer = await self._stub.GetTransfer(request, timeout=self._timeout(deadline_s))
        except grpc.RpcError as exc:
            log.info("bank %s GetTransfer %s: no answer (%s)", bank_code, transfer_id, _error(exc))
            return TransferResult(transfer_id, BankOutcome.UNCERTAIN, error=_error(exc))
        return TransferResult(
            transfer_id,
            outcome_of(answer.status),
            reject_reason_of(answer.reject_reason),
            amount_fen=answer.amount_fen,
            bank_reference=answer.bank_reference,
        )

    async def get_account(
        self, bank_code: str, *, card_no: str = "", account_no: str = "", deadline_s: float | None = None
    ) -> AccountResult:
        request = pb.GetAccountRequest(bank_code=bank_code, account=party(card_no, account_no))
        return await self._account("GetAccount", request, _who(card_no, account_no), deadline_s)

    async def open_account(
        self,
        request_id: str,
        bank_code: str,
        card_no: str,
        *,
        activated: bool = True,
        holder_name_masked: str = "",
        deadline_s: float | None = None,
    ) -> AccountResult:
        """Opens (or answers the already open) account linked to `card_no` at `bank_code`."""
        request = pb.OpenAccountRequest(
            request_id=request_id,
            bank_code=bank_code,
            card_no=card_no,
            holder_name_masked=holder_name_masked,
            activated=activated,
        )
        return await self._account("OpenAccount", request, _who(card_no, ""), deadline_s)

    async def close_account(
        self,
        request_id: str,
        bank_code: str,
        *,
        card_no: str = "",
        account_no: str = "",
        deadline_s: float | None = None,
    ) -> AccountResult:
        """Closes the account; `paid_out_fen` is what the holder was paid at the branch."""
        request = pb.CloseAccountRequest(
            request_id=request_id, bank_code=bank_code, account=party(card_no, account_no)
        )
        return await self._account("CloseAccount", request, _who(card_no, account_no), deadline_s)

    async def _account(self, method: str, request: Any, who: str, deadline_s: float | None) -> AccountResult:
        try:
            answer = await getattr(self._stub, method)(request, timeout=self._timeout(deadline_s))
        except grpc.RpcError as exc:
            code = _code(exc)
            if code == grpc.StatusCode.NOT_FOUND:
                return AccountResult(BankOutcome.NOT_FOUND, error=_error(exc))
            if code == grpc.StatusCode.INVALID_ARGUMENT:
                return AccountResult(BankOutcome.REJECTED, error=_error(exc))
            log.info("bank %s %s (%s): no answer (%s)", request.bank_code, method, who, _error(exc))
            return AccountResult(BankOutcome.UNCERTAIN, error=_error(exc))
        if method == "GetAccount":
            return AccountResult(BankOutcome.OK, account_of(answer))
        if method == "OpenAccount":
            account = BankAccount(
                request.bank_code,
                answer.account_no,
                request.card_no,
                _STATE.get(answer.state, AccountState.UNKNOWN),
                0,
            )
            log.info(
                "bank %s: account %s open for %s", request.bank_code, mask_account_no(answer.account_no), who
            )
            return AccountResult(BankOutcome.OK, account)
        account = BankAccount(
            request.bank_code,
            request.account.account_no,
            request.account.card_no,
            _STATE.get(answer.state, AccountState.UNKNOWN),
            0,
        )
        return AccountResult(BankOutcome.OK, account, paid_out_fen=answer.paid_out_fen)

    async def statement(
        self, bank_code: str, business_date: str, *, deadline_s: float | None = None
    ) -> StatementResult:
        """The bank's statement (对账单) for one business date: CSV, header then one line per transfer."""
        request = pb.GetStatementRequest(bank_code=bank_code, business_date=business_date)
        try:
            answer = await self._stub.GetStatement(request, timeout=self._timeout(deadline_s))
        except grpc.RpcError as exc:
            outcome = (
                BankOutcome.REJECTED
                if _code(exc) == grpc.StatusCode.INVALID_ARGUMENT
                else BankOutcome.UNCERTAIN
            )
            return StatementResult(outcome, bank_code, business_date, error=_error(exc))
        return StatementResult(BankOutcome.OK, bank_code, business_date, answer.csv, answer.lines)
