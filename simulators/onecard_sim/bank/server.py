"""`BankService` and `BankControlService` served by the simulator (`onecard-sim bank`).

Errors carry one google.rpc.ErrorInfo with domain "onecard.bank" (AIP-193). A refused transfer
is an answer (status REJECTED + reason), not an error. Every change is durable before it is
answered (store.py). Faults (faults.py) decide each call's fate before it is applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import grpc
from google.protobuf import any_pb2, timestamp_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from onecard.bank.v1 import bank_service_pb2 as pb
from onecard.bank.v1 import bank_service_pb2_grpc as pb_grpc
from onecard_sim.bank.client import BankSimClient
from onecard_sim.bank.faults import BankFaults, Fate, FaultPlan, PlanError
from onecard_sim.bank.statement import statement_csv
from onecard_sim.bank.store import CREDIT, DEBIT, Account, BankStore, Party, ReversalIdReused, Transfer

log = logging.getLogger(__name__)

ERROR_DOMAIN = "onecard.bank"
DEFAULT_LISTEN = "127.0.0.1:50081"
BANK_CODES = ("ICBC", "CCB", "ABC", "BOC", "JXB")  # onecard_hub.domain.model.CO_BRANDED_BANKS
MAX_TIMEOUT_SLEEP_S = 30.0


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


def _ts(ms: int) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromMilliseconds(ms)
    return ts


def mask(account_no: str) -> str:
    return "****" + account_no[-4:] if len(account_no) > 4 else "****"


async def _abort(
    context: grpc.aio.ServicerContext, code: int, message: str, reason: str, **meta: str
) -> NoReturn:
    info = error_details_pb2.ErrorInfo(reason=reason, domain=ERROR_DOMAIN, metadata=meta)
    detail = any_pb2.Any()
    detail.Pack(info)
    status = rpc_status.to_status(status_pb2.Status(code=code, message=message, details=[detail]))
    await context.abort_with_status(status)
    raise AssertionError("unreachable")


async def _invalid(context: grpc.aio.ServicerContext, field: str, message: str) -> NoReturn:
    await _abort(context, code_pb2.INVALID_ARGUMENT, f"{field}: {message}", "FIELD_INVALID", field=field)


async def _unavailable(context: grpc.aio.ServicerContext, why: str) -> NoReturn:
    await _abort(
        context, code_pb2.UNAVAILABLE, f"the bank is unavailable ({why}); retry later", "UNAVAILABLE"
    )


async def _check_bank(context: grpc.aio.ServicerContext, bank_code: str, field: str = "bank_code") -> None:
    if bank_code not in BANK_CODES:
        await _invalid(context, field, f"one of {', '.join(BANK_CODES)}")


async def _check_id(context: grpc.aio.ServicerContext, value: str, field: str) -> None:
    if not 1 <= len(value) <= 64:
        await _invalid(context, field, "1 to 64 characters")


async def _check_date(context: grpc.aio.ServicerContext, value: str, field: str = "business_date") -> None:
    try:
        if len(value) != 10:
            raise ValueError
        dt.date.fromisoformat(value)
    except ValueError:
        await _invalid(context, field, "a date YYYY-MM-DD")


async def _party(context: grpc.aio.ServicerContext, party: pb.Party, field: str) -> Party:
    which = party.WhichOneof("party")
    if which == "card_no" and party.card_no:
        return Party(card_no=party.card_no)
    if which == "account_no" and party.account_no:
        return Party(account_no=party.account_no)
    await _invalid(context, field, "a card_no or an account_no")


def account_message(account: Account) -> pb.GetAccountResponse:
    return pb.GetAccountResponse(
        bank_code=account.bank_code,
        account_no=account.account_no,
        card_no=account.card_no,
        state=account.state,  # type: ignore[arg-type]
        balance_fen=account.balance_fen,
    )


class BankServicer(pb_grpc.BankServiceServicer):
    def __init__(self, store: BankStore, faults: BankFaults) -> None:
        self.store = store
        self.faults = faults

    async def _fate(self, context: grpc.aio.ServicerContext, bank_code: str, *, money: bool) -> Fate:
        """Latency, then the call's fate; ERROR, TIMEOUT and OUTAGE end the call here (nothing applied)."""
        fate = self.faults.draw(bank_code, money=money)
        if fate is Fate.OUTAGE:
            await _unavailable(context, "outage")
        delay = self.faults.latency_s(bank_code)
        if delay:
            await asyncio.sleep(delay)
        if fate is Fate.ERROR:
            await _unavailable(context, "injected error")
        if fate is Fate.TIMEOUT:
            left = context.time_remaining()
            await asyncio.sleep(min(MAX_TIMEOUT_SLEEP_S, (left if left is not None else 5.0) + 0.2))
            await _unavailable(context, "injected timeout")
        return fate

    async def _money(self, kind: str, request: Any, party_pb: pb.Party, field: str, context: Any) -> Transfer:
        await _check_id(context, request.transfer_id, "transfer_id")
        await _check_bank(context, request.bank_code)
        party = await _party(context, party_pb, field)
        if request.amount_fen <= 0:
            await _invalid(context, "amount_fen", "more than 0 fen")
        await _check_date(context, request.business_date)
        fate = await self._fate(context, request.bank_code, money=True)
        row = await self.store.apply(
            kind,
            request.bank_code,
            request.transfer_id,
            party,
            request.amount_fen,
            request.business_date,
            request.memo[:200],
            _wall_ms(),
        )
        log.info(
            "%s %s %s %s %d fen: %s",
            request.bank_code,
            kind,
            request.transfer_id,
            mask(row.account_no),
            request.amount_fen,
            pb.TransferStatus.Name(row.status),  # type: ignore[arg-type]
        )
        if fate is Fate.DROP:
            await _unavailable(context, "reply lost")
        return row

    async def Debit(self, request: pb.DebitRequest, context: grpc.aio.ServicerContext) -> pb.DebitResponse:
        row = await self._money(DEBIT, request, request.payer, "payer", context)
        return pb.DebitResponse(**_answer(row))

    async def Credit(self, request: pb.CreditRequest, context: grpc.aio.ServicerContext) -> pb.CreditResponse:
        row = await self._money(CREDIT, request, request.payee, "payee", context)
        return pb.CreditResponse(**_answer(row))

    async def Reverse(
        self, request: pb.ReverseRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReverseResponse:
        await _check_id(context, request.reversal_id, "reversal_id")
        await _check_bank(context, request.bank_code)
        await _check_id(context, request.transfer_id, "transfer_id")
        if request.business_date:
            await _check_date(context, request.business_date)
        fate = await self._fate(context, request.bank_code, money=True)
        try:
            result = await self.store.reverse(
                request.bank_code, request.reversal_id, request.transfer_id, request.business_date
            )
        except ReversalIdReused:
            await _invalid(context, "reversal_id", "used before for another transfer")
        log.info(
            "%s reversal %s of %s: %d fen",
            request.bank_code,
            request.reversal_id,
            request.transfer_id,
            result.reversed_fen,
        )
        if fate is Fate.DROP:
            await _unavailable(context, "reply lost")
        return pb.ReverseResponse(
            reversal_id=request.reversal_id,
            status=result.status,  # type: ignore[arg-type]
            reversed_fen=result.reversed_fen,
        )

    async def GetTransfer(
        self, request: pb.GetTransferRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetTransferResponse:
        await _check_bank(context, request.bank_code)
        await _check_id(context, request.transfer_id, "transfer_id")
        await self._fate(context, request.bank_code, money=False)
        row = await self.store.transfer(request.bank_code, request.transfer_id)
        if row is None:
            return pb.GetTransferResponse(
                transfer_id=request.transfer_id, status=pb.TRANSFER_STATUS_NOT_FOUND
            )
        return pb.GetTransferResponse(
            transfer_id=row.transfer_id,
            status=row.status,  # type: ignore[arg-type]
            reject_reason=row.reject_reason,  # type: ignore[arg-type]
            amount_fen=row.amount_fen,
            bank_reference=row.bank_reference,
        )

    async def _account(self, context: Any, bank_code: str, party_pb: pb.Party) -> Account:
        await _check_bank(context, bank_code)
        party = await _party(context, party_pb, "account")
        account = await self.store.account(bank_code, party)
        if account is None:
            await _abort(context, code_pb2.NOT_FOUND, "account: no such account at this bank", "NOT_FOUND")
        return account

    async def GetAccount(
        self, request: pb.GetAccountRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetAccountResponse:
        await self._fate(context, request.bank_code, money=False)
        return account_message(await self._account(context, request.bank_code, request.account))

    async def OpenAccount(
        self, request: pb.OpenAccountRequest, context: grpc.aio.ServicerContext
    ) -> pb.OpenAccountResponse:
        await _check_bank(context, request.bank_code)
        if not request.card_no:
            await _invalid(context, "card_no", "required")
        await self._fate(context, request.bank_code, money=False)
        state = pb.ACCOUNT_STATE_ACTIVE if request.activated else pb.ACCOUNT_STATE_NOT_ACTIVATED
        account, new = await self.store.open_account(
            request.bank_code, request.card_no, "card", state, 0, _wall_ms()
        )
        if new:
            log.info("%s opened account %s", request.bank_code, mask(account.account_no))
        return pb.OpenAccountResponse(account_no=account.account_no, state=account.state)  # type: ignore[arg-type]

    async def CloseAccount(
        self, request: pb.CloseAccountRequest, context: grpc.aio.ServicerContext
    ) -> pb.CloseAccountResponse:
        await self._fate(context, request.bank_code, money=False)
        account = await self._account(context, request.bank_code, request.account)
        paid = await self.store.close_account(account)
        return pb.CloseAccountResponse(state=pb.ACCOUNT_STATE_CLOSED, paid_out_fen=paid)

    async def GetStatement(
        self, request: pb.GetStatementRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetStatementResponse:
        await _check_bank(context, request.bank_code)
        await _check_date(context, request.business_date)
        await self._fate(context, request.bank_code, money=False)
        rows = await self.store.statement(request.bank_code, request.business_date)
        return pb.GetStatementResponse(
            bank_code=request.bank_code,
            business_date=request.business_date,
            csv=statement_csv(rows),
            lines=len(rows),
        )


def _answer(row: Transfer) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "transfer_id": row.transfer_id,
        "status": row.status,
        "reject_reason": row.reject_reason,
        "bank_reference": row.bank_reference,
    }
    if row.posted_ms:
        answer["posted_at"] = _ts(row.posted_ms)
    return answer


class BankControlServicer(pb_grpc.BankControlServiceServicer):
    def __init__(self, store: BankStore, faults: BankFaults) -> None:
        self.store = store
        self.faults = faults

    def _faults(self, bank_code: str = "") -> pb.GetFaultsResponse:
        plan = self.faults.plan(bank_code)
        return pb.GetFaultsResponse(
            latency_min_ms=plan.latency_min_ms,
            latency_max_ms=plan.latency_max_ms,
            error_rate=plan.error_rate,
            timeout_rate=plan.timeout_rate,
            drop_reply_rate=plan.drop_reply_rate,
            outage_left_s=self.faults.outage_left_s(bank_code),
            counts=dict(self.faults.counts),
        )

    async def SetFaults(
        self, request: pb.SetFaultsRequest, context: grpc.aio.ServicerContext
    ) -> pb.SetFaultsResponse:
        if request.bank_code:
            await _check_bank(context, request.bank_code)
        if request.outage_s < 0:
            await _invalid(context, "outage_s", "not negative")
        plan = FaultPlan(
            request.latency_min_ms,
            request.latency_max_ms,
            request.error_rate,
            request.timeout_rate,
            request.drop_reply_rate,
        )
        try:
            self.faults.set_plan(request.bank_code, plan, outage_s=request.outage_s, seed=request.seed)
        except PlanError as exc:
            await _invalid(context, exc.field, str(exc).split(": ", 1)[1])
        log.info(
            "faults for %s: %s, outage %.0f s", request.bank_code or "every bank", plan, request.outage_s
        )
        return pb.SetFaultsResponse(faults=self._faults(request.bank_code))

    async def GetFaults(
        self, request: pb.GetFaultsRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetFaultsResponse:
        return self._faults()

    async def AdjustAccount(
        self, request: pb.AdjustAccountRequest, context: grpc.aio.ServicerContext
    ) -> pb.AdjustAccountResponse:
        await _check_bank(context, request.bank_code)
        party = await _party(context, request.account, "account")
        account = await self.store.account(request.bank_code, party)
        if account is None:
            await _abort(context, code_pb2.NOT_FOUND, "account: no such account at this bank", "NOT_FOUND")
        try:
            account = await self.store.adjust(account, int(request.state), request.add_fen)
        except ValueError as exc:
            await _invalid(context, "add_fen", str(exc).split(": ", 1)[1])
        return pb.AdjustAccountResponse(account=account_message(account))


async def _send_back(store: BankStore, after_s: float) -> None:
    if after_s <= 0:
        return
    while True:
        await asyncio.sleep(min(1.0, after_s / 2))
        returned = await store.send_back_due(_wall_ms())
        if returned:
            log.info("%d credits to frozen accounts sent back (RETURNED)", returned)


@dataclass
class RunningBank:
    server: grpc.aio.Server
    store: BankStore
    faults: BankFaults
    port: int
    control: BankSimClient

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


@asynccontextmanager
async def running_bank(
    db: str | Path,
    keys_dir: str | Path | None = None,
    listen: str = "127.0.0.1:0",
    *,
    faults: FaultPlan | None = None,
    seed: int = 0,
    on_inquiries: bool = False,
    opening_balance_fen: int = 200_000,
    outage_at_s: float = 0.0,
    outage_for_s: float = 0.0,
    return_frozen_after_s: float = 0.0,
) -> AsyncIterator[RunningBank]:
    """Serves the banks on `listen` (port 0 picks one) over the store at `db`; with `keys_dir` (a
    seeded campus's keys folder) opens an account per card and per canteen merchant first (once).
    `return_frozen_after_s` > 0: a credit to a frozen account is posted, then sent back (RETURNED)."""
    from onecard_sim.bank.seeding import open_campus_accounts

    store = BankStore(db, return_after_ms=int(return_frozen_after_s * 1000))
    await store.open()
    if keys_dir is not None:
        await open_campus_accounts(store, keys_dir, opening_balance_fen)
    bank_faults = BankFaults(faults, seed=seed, on_inquiries=on_inquiries)
    if outage_for_s > 0:
        bank_faults.outage("", outage_at_s, outage_for_s)
    server = grpc.aio.server()
    pb_grpc.add_BankServiceServicer_to_server(BankServicer(store, bank_faults), server)
    pb_grpc.add_BankControlServiceServicer_to_server(BankControlServicer(store, bank_faults), server)
    try:
        port = server.add_insecure_port(listen)
    except RuntimeError:
        await store.close()
        raise SystemExit(f"error: cannot listen on {listen}") from None
    await server.start()
    control = BankSimClient(f"127.0.0.1:{port}")
    returns = asyncio.get_running_loop().create_task(
        _send_back(store, return_frozen_after_s), name="bank-returns"
    )
    try:
        yield RunningBank(server, store, bank_faults, port, control)
    finally:
        returns.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await returns
        await control.close()
        await server.stop(0.5)
        await store.close()
