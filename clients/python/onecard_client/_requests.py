"""The request messages each client method sends, built once for the async and the sync clients.

Pure functions: the retry loop resends the very message built here, so a mutating call keeps
its `request_id` on every try.
"""

from __future__ import annotations

from collections.abc import Iterable

from onecard.admin.v1 import admin_service_pb2 as admin_pb
from onecard.auth.v1 import authorization_service_pb2 as auth_pb
from onecard.ecard.v1 import ecard_service_pb2 as ecard_pb
from onecard.records.v1 import student_records_service_pb2 as records_pb
from onecard.terminal.v1 import terminal_service_pb2 as term_pb
from onecard_client.credentials import mint_proof


def refund(
    terminal_id: str, request_id: str, original_request_id: str, amount_fen: int
) -> auth_pb.RefundRequest:
    return auth_pb.RefundRequest(
        request_id=request_id,
        terminal_id=terminal_id,
        original_request_id=original_request_id,
        amount_fen=amount_fen,
    )


def reverse(terminal_id: str, request_id: str, original_request_id: str) -> auth_pb.ReverseRequest:
    return auth_pb.ReverseRequest(
        request_id=request_id, terminal_id=terminal_id, original_request_id=original_request_id
    )


def wallet_balance(terminal_id: str, card_no: str) -> auth_pb.GetWalletBalanceRequest:
    return auth_pb.GetWalletBalanceRequest(terminal_id=terminal_id, card_no=card_no)


def upload_offline_batch(
    terminal_id: str, request_id: str, transactions: Iterable[auth_pb.OfflineTransaction]
) -> auth_pb.UploadOfflineBatchRequest:
    return auth_pb.UploadOfflineBatchRequest(
        request_id=request_id, terminal_id=terminal_id, transactions=list(transactions)
    )


def clock(terminal_id: str) -> term_pb.GetClockRequest:
    return term_pb.GetClockRequest(terminal_id=terminal_id)


def get_config(terminal_id: str) -> term_pb.GetConfigRequest:
    return term_pb.GetConfigRequest(terminal_id=terminal_id)


def heartbeat(terminal_id: str, software_version: str, offline_pending: int) -> term_pb.HeartbeatRequest:
    return term_pb.HeartbeatRequest(
        terminal_id=terminal_id, software_version=software_version, offline_pending=offline_pending
    )


def watch_blocklist(terminal_id: str, since_version: int) -> term_pb.WatchBlocklistRequest:
    return term_pb.WatchBlocklistRequest(terminal_id=terminal_id, since_version=since_version)


def list_misuse_signals(school_id: str, since_ms: int, limit: int) -> admin_pb.ListMisuseSignalsRequest:
    request = admin_pb.ListMisuseSignalsRequest(school_id=school_id, limit=limit)
    if since_ms:
        request.since.FromMilliseconds(since_ms)
    return request


def register_terminal(request_id: str, terminal: admin_pb.Terminal) -> admin_pb.RegisterTerminalRequest:
    return admin_pb.RegisterTerminalRequest(request_id=request_id, terminal=terminal)


def get_terminal(terminal_id: str) -> admin_pb.GetTerminalRequest:
    return admin_pb.GetTerminalRequest(terminal_id=terminal_id)


def list_terminals(school_id: str) -> admin_pb.ListTerminalsRequest:
    return admin_pb.ListTerminalsRequest(school_id=school_id)


def set_terminal_enabled(
    request_id: str, terminal_id: str, enabled: bool
) -> admin_pb.SetTerminalEnabledRequest:
    return admin_pb.SetTerminalEnabledRequest(request_id=request_id, terminal_id=terminal_id, enabled=enabled)


def list_wallet_debts(school_id: str) -> admin_pb.ListWalletDebtsRequest:
    return admin_pb.ListWalletDebtsRequest(school_id=school_id)


def ledger_summary() -> admin_pb.GetLedgerSummaryRequest:
    return admin_pb.GetLedgerSummaryRequest()


def mint_qr_code(card_no: str, ecard_key: bytes, hub_ms: int) -> ecard_pb.MintQrCodeRequest:
    """The app's request: the proof shows it holds the card's e-card key (DESIGN §4)."""
    request = ecard_pb.MintQrCodeRequest(card_no=card_no, proof=mint_proof(ecard_key, card_no, hub_ms))
    request.requested_at.FromMilliseconds(hub_ms)
    return request


# -- pilot roll-out (AdminService) and student records (学籍) --------------------------

_GROUPS = {"boarder": records_pb.STUDENT_GROUP_BOARDER, "day": records_pb.STUDENT_GROUP_DAY}


def set_live_scenes(request_id: str, school_id: str, scenes: Iterable[int]) -> admin_pb.SetLiveScenesRequest:
    return admin_pb.SetLiveScenesRequest(
        request_id=request_id,
        school_id=school_id,
        scenes=list(scenes),  # type: ignore[arg-type]  # Scene numbers
    )


def get_school(school_id: str) -> admin_pb.GetSchoolRequest:
    return admin_pb.GetSchoolRequest(school_id=school_id)


def usage_report(school_id: str) -> admin_pb.GetUsageReportRequest:
    return admin_pb.GetUsageReportRequest(school_id=school_id)


def student_group(group: str | int) -> int:
    """ "boarder" / "day" or a `StudentGroup` number; anything else goes as 0 (the hub names the field)."""
    return _GROUPS.get(group, 0) if isinstance(group, str) else group


def enroll_student(
    request_id: str,
    school_id: str,
    student_id: str,
    name: str,
    id_number: str,
    birth_date: str,
    group: str | int,
) -> records_pb.EnrollStudentRequest:
    return records_pb.EnrollStudentRequest(
        request_id=request_id,
        school_id=school_id,
        student_id=student_id,
        name=name,
        id_number=id_number,
        birth_date=birth_date,
        group=student_group(group),  # type: ignore[arg-type]
    )


def suspend_student(request_id: str, student_id: str) -> records_pb.SuspendStudentRequest:
    return records_pb.SuspendStudentRequest(request_id=request_id, student_id=student_id)


def resume_student(request_id: str, student_id: str) -> records_pb.ResumeStudentRequest:
    return records_pb.ResumeStudentRequest(request_id=request_id, student_id=student_id)


def graduate_student(request_id: str, student_id: str) -> records_pb.GraduateStudentRequest:
    return records_pb.GraduateStudentRequest(request_id=request_id, student_id=student_id)


def withdraw_student(request_id: str, student_id: str) -> records_pb.WithdrawStudentRequest:
    return records_pb.WithdrawStudentRequest(request_id=request_id, student_id=student_id)


def transfer_student(
    request_id: str, student_id: str, to_school_id: str
) -> records_pb.TransferStudentRequest:
    return records_pb.TransferStudentRequest(
        request_id=request_id, student_id=student_id, to_school_id=to_school_id
    )


def get_student(student_id: str) -> records_pb.GetStudentRequest:
    return records_pb.GetStudentRequest(student_id=student_id)


def import_roster(request_id: str, school_id: str, roster: str | bytes) -> records_pb.ImportRosterRequest:
    """The roster as text, or as bytes (UTF-8, e.g. a file read in binary)."""
    if isinstance(roster, bytes):
        return records_pb.ImportRosterRequest(request_id=request_id, school_id=school_id, csv_bytes=roster)
    return records_pb.ImportRosterRequest(request_id=request_id, school_id=school_id, csv_text=roster)
