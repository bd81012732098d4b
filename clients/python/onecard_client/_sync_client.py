"""The sync clients (grpc, blocking): the async clients' twins, for scripts, GUIs and gevent.

The same methods, requests, retry rules and typed errors as `onecard_client.client`."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import grpc

from onecard.admin.v1 import admin_service_pb2 as admin_pb
from onecard.admin.v1 import admin_service_pb2_grpc as admin_grpc
from onecard.auth.v1 import authorization_service_pb2 as auth_pb
from onecard.auth.v1 import authorization_service_pb2_grpc as auth_grpc
from onecard.ecard.v1 import ecard_service_pb2 as ecard_pb
from onecard.ecard.v1 import ecard_service_pb2_grpc as ecard_grpc
from onecard.exam.v1 import exam_service_pb2 as exam_pb
from onecard.exam.v1 import exam_service_pb2_grpc as exam_grpc
from onecard.library.v1 import library_service_pb2 as library_pb
from onecard.library.v1 import library_service_pb2_grpc as library_grpc
from onecard.records.v1 import student_records_service_pb2 as records_pb
from onecard.records.v1 import student_records_service_pb2_grpc as records_grpc
from onecard.terminal.v1 import terminal_service_pb2 as term_pb
from onecard.terminal.v1 import terminal_service_pb2_grpc as term_grpc
from onecard_client import _requests as build
from onecard_client._channel import (
    OPERATOR_HEADER,
    TERMINAL_HEADER,
    Metadata,
    identity_metadata,
    open_sync_channel,
)
from onecard_client._config import ClientConfig
from onecard_client._retry import CallAttempts
from onecard_client.errors import from_rpc_error
from onecard_client.hub_time import HubTime
from onecard_client.tracing import with_trace_context

R = TypeVar("R")
Self = TypeVar("Self", bound="_SyncClient")


class _SyncClient:
    """One channel, opened once; every call goes through `_call` (deadline, retries, errors)."""

    def __init__(self, config: ClientConfig, header: str, identity: str) -> None:
        self.config = config
        self._metadata: Metadata = identity_metadata(config, header, identity)
        self._channel = open_sync_channel(config)

    def close(self) -> None:
        with contextlib.suppress(grpc.RpcError):
            self._channel.close()

    def __enter__(self: Self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: Callable[..., R], request: Any, deadline_s: float | None) -> R:
        timeout = deadline_s if deadline_s is not None else self.config.deadline_s
        attempts = CallAttempts(self.config, type(request).__name__.removesuffix("Request"))
        while True:
            try:
                return method(request, timeout=timeout, metadata=with_trace_context(self._metadata))
            except grpc.RpcError as exc:
                delay = attempts.failed(exc)  # raises the typed error when it is final
            time.sleep(delay)


class TerminalClient(_SyncClient):
    """A terminal's connection: taps, refunds, reversals, balances, clock, configuration,
    heartbeats and offline uploads. Every method takes an optional `deadline_s`."""

    def __init__(self, terminal_id: str, config: ClientConfig | None = None) -> None:
        super().__init__(config or ClientConfig(), TERMINAL_HEADER, terminal_id)
        self.terminal_id = terminal_id
        self._auth = auth_grpc.AuthorizationServiceStub(self._channel)
        self._terminal = term_grpc.TerminalServiceStub(self._channel)
        self._library = library_grpc.LibraryServiceStub(self._channel)
        self._exam = exam_grpc.ExamServiceStub(self._channel)

    def authorize(
        self, request: auth_pb.AuthorizeRequest, *, deadline_s: float | None = None
    ) -> auth_pb.AuthorizeResponse:
        return self._call(self._auth.Authorize, request, deadline_s)

    def refund(
        self, request_id: str, original_request_id: str, amount_fen: int, *, deadline_s: float | None = None
    ) -> auth_pb.RefundResponse:
        request = build.refund(self.terminal_id, request_id, original_request_id, amount_fen)
        return self._call(self._auth.Refund, request, deadline_s)

    def reverse(
        self, request_id: str, original_request_id: str, *, deadline_s: float | None = None
    ) -> auth_pb.ReverseResponse:
        request = build.reverse(self.terminal_id, request_id, original_request_id)
        return self._call(self._auth.Reverse, request, deadline_s)

    def wallet_balance(
        self, card_no: str, *, deadline_s: float | None = None
    ) -> auth_pb.GetWalletBalanceResponse:
        request = build.wallet_balance(self.terminal_id, card_no)
        return self._call(self._auth.GetWalletBalance, request, deadline_s)

    def upload_offline_batch(
        self,
        request_id: str,
        transactions: Iterable[auth_pb.OfflineTransaction],
        *,
        deadline_s: float | None = None,
    ) -> auth_pb.UploadOfflineBatchResponse:
        request = build.upload_offline_batch(self.terminal_id, request_id, transactions)
        return self._call(self._auth.UploadOfflineBatch, request, deadline_s)

    def clock(self, *, deadline_s: float | None = None) -> term_pb.GetClockResponse:
        return self._call(self._terminal.GetClock, build.clock(self.terminal_id), deadline_s)

    def hub_time(self, *, deadline_s: float | None = None) -> HubTime:
        response = self.clock(deadline_s=deadline_s)
        return HubTime.from_clock(response.now.ToMilliseconds(), response.speed or 1.0)

    def get_config(self, *, deadline_s: float | None = None) -> term_pb.GetConfigResponse:
        return self._call(self._terminal.GetConfig, build.get_config(self.terminal_id), deadline_s)

    def heartbeat(
        self, software_version: str, offline_pending: int = 0, *, deadline_s: float | None = None
    ) -> term_pb.HeartbeatResponse:
        request = build.heartbeat(self.terminal_id, software_version, offline_pending)
        return self._call(self._terminal.Heartbeat, request, deadline_s)

    def watch_blocklist(self, since_version: int = 0) -> Iterator[term_pb.WatchBlocklistResponse]:
        """The school's blocklist, live; see the async client's `watch_blocklist`."""
        call = self._terminal.WatchBlocklist(
            build.watch_blocklist(self.terminal_id, since_version),
            metadata=with_trace_context(self._metadata),
        )
        try:
            yield from call
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None
        finally:
            call.cancel()

    def borrow(
        self, request: library_pb.BorrowRequest, *, deadline_s: float | None = None
    ) -> library_pb.BorrowResponse:
        """A library desk lends a book (LibraryService.Borrow); a refusal is an answer."""
        return self._call(self._library.Borrow, request, deadline_s)

    def return_book(
        self, request: library_pb.ReturnRequest, *, deadline_s: float | None = None
    ) -> library_pb.ReturnResponse:
        """A library desk takes a book back (LibraryService.Return)."""
        return self._call(self._library.Return, request, deadline_s)

    def check_in(
        self, request: exam_pb.CheckInRequest, *, deadline_s: float | None = None
    ) -> exam_pb.CheckInResponse:
        """An exam tablet checks a student in (ExamService.CheckIn); a refusal is an answer."""
        return self._call(self._exam.CheckIn, request, deadline_s)


class AdminClient(_SyncClient):
    """An operator's connection to the AdminService."""

    def __init__(self, operator_id: str, config: ClientConfig | None = None) -> None:
        super().__init__(config or ClientConfig(), OPERATOR_HEADER, operator_id)
        self.operator_id = operator_id
        self._admin = admin_grpc.AdminServiceStub(self._channel)

    def register_terminal(
        self, request_id: str, terminal: admin_pb.Terminal, *, deadline_s: float | None = None
    ) -> admin_pb.RegisterTerminalResponse:
        request = build.register_terminal(request_id, terminal)
        return self._call(self._admin.RegisterTerminal, request, deadline_s)

    def get_terminal(
        self, terminal_id: str, *, deadline_s: float | None = None
    ) -> admin_pb.GetTerminalResponse:
        return self._call(self._admin.GetTerminal, build.get_terminal(terminal_id), deadline_s)

    def list_terminals(
        self, school_id: str, *, deadline_s: float | None = None
    ) -> admin_pb.ListTerminalsResponse:
        return self._call(self._admin.ListTerminals, build.list_terminals(school_id), deadline_s)

    def set_terminal_enabled(
        self, request_id: str, terminal_id: str, enabled: bool, *, deadline_s: float | None = None
    ) -> admin_pb.SetTerminalEnabledResponse:
        request = build.set_terminal_enabled(request_id, terminal_id, enabled)
        return self._call(self._admin.SetTerminalEnabled, request, deadline_s)

    def list_wallet_debts(
        self, school_id: str, *, deadline_s: float | None = None
    ) -> admin_pb.ListWalletDebtsResponse:
        return self._call(self._admin.ListWalletDebts, build.list_wallet_debts(school_id), deadline_s)

    def ledger_summary(self, *, deadline_s: float | None = None) -> admin_pb.GetLedgerSummaryResponse:
        return self._call(self._admin.GetLedgerSummary, build.ledger_summary(), deadline_s)

    def list_misuse_signals(
        self, school_id: str, *, since_ms: int = 0, limit: int = 0, deadline_s: float | None = None
    ) -> admin_pb.ListMisuseSignalsResponse:
        """Cards used at two places too close in time, newest first (`since_ms`: hub clock)."""
        request = build.list_misuse_signals(school_id, since_ms, limit)
        return self._call(self._admin.ListMisuseSignals, request, deadline_s)

    def set_live_scenes(
        self, request_id: str, school_id: str, scenes: Iterable[int], *, deadline_s: float | None = None
    ) -> admin_pb.SetLiveScenesResponse:
        """Pilot roll-out (province administrators): the scenes live at a school from now on."""
        request = build.set_live_scenes(request_id, school_id, scenes)
        return self._call(self._admin.SetLiveScenes, request, deadline_s)

    def get_school(self, school_id: str, *, deadline_s: float | None = None) -> admin_pb.GetSchoolResponse:
        return self._call(self._admin.GetSchool, build.get_school(school_id), deadline_s)

    def usage_report(
        self, school_id: str = "", *, deadline_s: float | None = None
    ) -> admin_pb.GetUsageReportResponse:
        """Usage statistics: a clerk's school, or (province administrators) one school or all."""
        return self._call(self._admin.GetUsageReport, build.usage_report(school_id), deadline_s)


class ECardClient(_SyncClient):
    """The e-card app's connection: QR codes for a card holder. With TLS it presents an app
    certificate (`TLSConfig.for_app(pki_dir, "ecard-app")`); in plain text it sends no header."""

    def __init__(self, config: ClientConfig | None = None) -> None:
        super().__init__(config or ClientConfig(), "", "")
        self._ecard = ecard_grpc.ECardServiceStub(self._channel)

    def mint_qr_code(
        self, card_no: str, ecard_key: bytes, hub_ms: int, *, deadline_s: float | None = None
    ) -> ecard_pb.MintQrCodeResponse:
        """A fresh QR token for `card_no`; `hub_ms` is the hub's time as the app knows it."""
        request = build.mint_qr_code(card_no, ecard_key, hub_ms)
        return self._call(self._ecard.MintQrCode, request, deadline_s)


class StudentRecordsClient(_SyncClient):
    """An operator's connection to the StudentRecordsService (学籍). Mutating calls take the
    caller's `request_id`: the same id and body answer the original response."""

    def __init__(self, operator_id: str, config: ClientConfig | None = None) -> None:
        super().__init__(config or ClientConfig(), OPERATOR_HEADER, operator_id)
        self.operator_id = operator_id
        self._records = records_grpc.StudentRecordsServiceStub(self._channel)

    def enroll_student(
        self,
        request_id: str,
        school_id: str,
        student_id: str,
        name: str,
        id_number: str,
        birth_date: str,
        group: str | int,
        *,
        deadline_s: float | None = None,
    ) -> records_pb.EnrollStudentResponse:
        """`group`: "boarder", "day" or a `StudentGroup` number; `birth_date` YYYY-MM-DD."""
        request = build.enroll_student(request_id, school_id, student_id, name, id_number, birth_date, group)
        return self._call(self._records.EnrollStudent, request, deadline_s)

    def suspend_student(
        self, request_id: str, student_id: str, *, deadline_s: float | None = None
    ) -> records_pb.SuspendStudentResponse:
        request = build.suspend_student(request_id, student_id)
        return self._call(self._records.SuspendStudent, request, deadline_s)

    def resume_student(
        self, request_id: str, student_id: str, *, deadline_s: float | None = None
    ) -> records_pb.ResumeStudentResponse:
        request = build.resume_student(request_id, student_id)
        return self._call(self._records.ResumeStudent, request, deadline_s)

    def graduate_student(
        self, request_id: str, student_id: str, *, deadline_s: float | None = None
    ) -> records_pb.GraduateStudentResponse:
        request = build.graduate_student(request_id, student_id)
        return self._call(self._records.GraduateStudent, request, deadline_s)

    def withdraw_student(
        self, request_id: str, student_id: str, *, deadline_s: float | None = None
    ) -> records_pb.WithdrawStudentResponse:
        request = build.withdraw_student(request_id, student_id)
        return self._call(self._records.WithdrawStudent, request, deadline_s)

    def transfer_student(
        self, request_id: str, student_id: str, to_school_id: str, *, deadline_s: float | None = None
    ) -> records_pb.TransferStudentResponse:
        request = build.transfer_student(request_id, student_id, to_school_id)
        return self._call(self._records.TransferStudent, request, deadline_s)

    def get_student(
        self, student_id: str, *, deadline_s: float | None = None
    ) -> records_pb.GetStudentResponse:
        return self._call(self._records.GetStudent, build.get_student(student_id), deadline_s)

    def import_roster(
        self, request_id: str, school_id: str, roster: str | bytes, *, deadline_s: float | None = None
    ) -> records_pb.ImportRosterResponse:
        """The roster CSV as text or UTF-8 bytes; the answer reports every row."""
        request = build.import_roster(request_id, school_id, roster)
        return self._call(self._records.ImportRoster, request, deadline_s)
