"""Every bad request gets a clear answer: INVALID_ARGUMENT (or NOT_FOUND) with one ErrorInfo naming the
field, never UNKNOWN or INTERNAL, nothing written, a short message. Bytes that do not decode (gRPC decodes
before any servicer code runs), Timestamps outside protobuf's range, and huge values that error messages
used to echo whole (the client then saw RESOURCE_EXHAUSTED: the trailing metadata outgrew its limit)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2, status_pb2

from onecard.admin.v1 import admin_service_pb2 as admin_pb
from onecard.auth.v1 import authorization_service_pb2 as auth_pb
from onecard.cardoffice.v1 import card_office_service_pb2 as card_office_pb
from onecard.ecard.v1 import ecard_service_pb2 as ecard_pb
from onecard.exam.v1 import exam_service_pb2 as exam_pb
from onecard.funds.v1 import funds_service_pb2 as funds_pb
from onecard.settlement.v1 import settlement_service_pb2 as settlement_pb
from onecard.terminal.v1 import terminal_service_pb2 as terminal_pb
from onecard_client.campus import CampusCredentials
from onecard_client.credentials import mint_proof
from onecard_client.errors import InvalidArgumentError
from onecard_hub.api.identity import OPERATOR_HEADER, TERMINAL_HEADER
from onecard_hub.domain.clock import ManualClock
from onecard_hub.server import RunningHub
from tests.conftest import db_count
from tests.helpers import Campus, new_request_id
from tests.integration.scene_taps import borrow, check_in, tablets
from tests.integration.settlement_bank import StatementBank
from tests.integration.test_exam import session
from tests.integration.test_offline_upload import chip_record
from tests.integration.test_settlement import DAY, rid, settling_hub
from tests.integration.topup_fixtures import world

ADMIN = "province-admin"
BUY = auth_pb.SCENE_CANTEEN_PURCHASE
AUTHORIZE = "/onecard.auth.v1.AuthorizationService/Authorize"
UPLOAD = "/onecard.auth.v1.AuthorizationService/UploadOfflineBatch"
WATCH = "/onecard.terminal.v1.TerminalService/WatchBlocklist"
GET_SCHOOL = "/onecard.admin.v1.AdminService/GetSchool"
HUGE = 100_000
YEAR_10000_S = 253_402_300_800  # 10000-01-01T00:00:00Z, one second past protobuf's Timestamp range
NOT_UTF8 = b"\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8\xf7\xf6\xf5"
PLACEHOLDER = b"PLACEHOLDER"  # as long as NOT_UTF8
INTERNALS = ("Error", "Exception", "Traceback", "class", ".py")
Headers = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Refusal:
    code: grpc.StatusCode
    message: str
    info: error_details_pb2.ErrorInfo

    @property
    def field(self) -> str:
        return self.info.metadata.get("field", "")


async def refused(
    target: str, path: str, body: bytes, metadata: Headers = (), *, stream: bool = False
) -> Refusal:
    """Sends `body` as it is and returns the refusal, which carries exactly one ErrorInfo."""
    async with grpc.aio.insecure_channel(target) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            if stream:
                watch: grpc.aio.UnaryStreamMultiCallable[bytes, bytes] = channel.unary_stream(path)
                async for _ in watch(body, metadata=metadata, timeout=10):
                    pass
            else:
                call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(path)
                await call(body, metadata=metadata, timeout=10)
    error = caught.value
    raw = dict(error.trailing_metadata() or ())["grpc-status-details-bin"]
    status = status_pb2.Status.FromString(raw)
    info = error_details_pb2.ErrorInfo()
    assert len(status.details) == 1 and status.details[0].Unpack(info)
    assert info.domain == "onecard.hub"
    return Refusal(error.code(), error.details() or "", info)


def _not_utf8(message: Message) -> bytes:
    encoded = message.SerializeToString()
    assert encoded.count(PLACEHOLDER) == 1
    return encoded.replace(PLACEHOLDER, NOT_UTF8)


# -- bytes that do not decode ----------------------------------------------------------------------


def _undecodable_cases(campus: Campus) -> list[tuple[str, bytes, str, bool]]:
    """(method, body, field named, server streaming)."""
    pos = campus.pos()
    tap = campus.chip(campus.card(), pos, BUY, amount_fen=800)
    tap.chip.card_no = PLACEHOLDER.decode()
    batch = auth_pb.UploadOfflineBatchRequest(request_id="r-1", terminal_id=pos.terminal_id)
    batch.transactions.add(serial=1).qr.token = "OC1.x"
    batch.transactions.add(serial=2).qr.token = PLACEHOLDER.decode()
    encoded = campus.chip(campus.card(), pos, BUY, amount_fen=800).SerializeToString()
    watch = terminal_pb.WatchBlocklistRequest(terminal_id=PLACEHOLDER.decode())
    return [
        (AUTHORIZE, b"\xff\xff\xff\xff", "", False),
        (AUTHORIZE, _not_utf8(tap), "chip.card_no", False),
        (AUTHORIZE, encoded[:-1], "tap_time", False),  # cut short inside the last field
        (UPLOAD, _not_utf8(batch), "transactions[1].qr.token", False),
        (GET_SCHOOL, b"\x0a\x80", "school_id", False),  # a length that never ends
        (WATCH, b"\xff\xff\xff\xff", "", True),
        (WATCH, _not_utf8(watch), "terminal_id", True),
    ]


async def test_bytes_that_do_not_decode_are_invalid_argument_naming_the_field(
    hub: RunningHub, campus: Campus, campus_dir: Path
) -> None:
    headers = ((TERMINAL_HEADER, campus.pos().terminal_id), (OPERATOR_HEADER, ADMIN))
    requests = db_count(campus_dir, "requests")
    for path, body, field, stream in _undecodable_cases(campus):
        answer = await refused(hub.target, path, body, headers, stream=stream)
        assert (answer.code, answer.info.reason, answer.field) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "FIELD_INVALID",
            field,
        ), path
        assert "not a valid encoding of onecard." in answer.message
        assert not any(word in answer.message for word in INTERNALS), answer.message
    assert db_count(campus_dir, "requests") == requests


async def test_an_undecodable_request_is_one_short_log_line_without_a_traceback(
    hub: RunningHub, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        for _ in range(3):
            await refused(hub.target, AUTHORIZE, b"\xff\xff\xff\xff")
    ours = [r for r in caplog.records if r.name == "onecard_hub.api.decoding"]
    assert 1 <= len(ours) <= 3  # at most one line per 10 s: test_bad_request_parts checks the count
    assert ours[0].getMessage() == f"undecodable request to {AUTHORIZE} (4 bytes)"
    assert all(r.exc_info is None and len(r.getMessage()) < 200 for r in caplog.records)
    assert "Traceback" not in caplog.text and "DecodeError" not in caplog.text


# -- Timestamps out of range -------------------------------------------------------------------------

Built = tuple[str, Message, Headers, str, Timestamp]  # method, request, headers, field, its Timestamp


def _misuse(campus: Campus) -> Built:
    request = admin_pb.ListMisuseSignalsRequest()
    return (
        "/onecard.admin.v1.AdminService/ListMisuseSignals",
        request,
        ((OPERATOR_HEADER, ADMIN),),
        "since",
        request.since,
    )


def _mint(campus: Campus) -> Built:
    card = campus.card()
    now = campus.clock.now_ms()
    request = ecard_pb.MintQrCodeRequest(
        card_no=card.card_no, proof=mint_proof(card.ecard_key, card.card_no, now)
    )
    return "/onecard.ecard.v1.ECardService/MintQrCode", request, (), "requested_at", request.requested_at


def _exam_session(campus: Campus) -> Built:
    request = exam_pb.CreateExamSessionRequest(request_id=new_request_id(), session=session(campus))
    path = "/onecard.exam.v1.ExamAdminService/CreateExamSession"
    return path, request, ((OPERATOR_HEADER, ADMIN),), "session.start", request.session.start


def _authorize(campus: Campus) -> Built:
    pos = campus.pos()
    request = campus.chip(campus.card(), pos, BUY, amount_fen=800)
    return AUTHORIZE, request, ((TERMINAL_HEADER, pos.terminal_id),), "tap_time", request.tap_time


def _offline(campus: Campus) -> Built:
    pos, card = campus.pos(), campus.card()
    record = chip_record(card, pos.terminal_id, 1, BUY, card.atc + 1, campus.clock.now_ms(), 800)
    request = auth_pb.UploadOfflineBatchRequest(
        request_id=new_request_id(), terminal_id=pos.terminal_id, transactions=[record]
    )
    headers = ((TERMINAL_HEADER, pos.terminal_id),)
    return UPLOAD, request, headers, "transactions[0].occurred_at", request.transactions[0].occurred_at


def _borrow(campus: Campus) -> Built:
    request = borrow(campus, campus.card(), "B-1")
    path = "/onecard.library.v1.LibraryService/Borrow"
    return path, request, ((TERMINAL_HEADER, request.terminal_id),), "tap_time", request.tap_time


def _check_in(campus: Campus) -> Built:
    tablet = tablets(campus)[0]
    request = check_in(campus, campus.card(), "S-1", tablet)
    path = "/onecard.exam.v1.ExamService/CheckIn"
    return path, request, ((TERMINAL_HEADER, tablet.terminal_id),), "tap_time", request.tap_time


@pytest.mark.parametrize("case", [_misuse, _mint, _exam_session, _authorize, _offline, _borrow, _check_in])
@pytest.mark.parametrize(
    ("seconds", "nanos"),
    [(YEAR_10000_S, 0), (2**63 - 1, 0), (1_700_000_000, -1), (1_700_000_000, 1_000_000_000)],
    ids=["year-10000", "int64-max", "nanos-negative", "nanos-a-second"],
)
async def test_a_timestamp_out_of_range_is_invalid_argument_naming_it(
    hub: RunningHub,
    campus: Campus,
    campus_dir: Path,
    case: Callable[[Campus], Built],
    seconds: int,
    nanos: int,
) -> None:
    path, request, headers, field, timestamp = case(campus)
    timestamp.seconds, timestamp.nanos = seconds, nanos
    requests = db_count(campus_dir, "requests")
    answer = await refused(hub.target, path, request.SerializeToString(), headers)
    assert (answer.code, answer.field) == (grpc.StatusCode.INVALID_ARGUMENT, field), answer.message
    assert db_count(campus_dir, "requests") == requests
    assert hub.hub.writer.failed is None


# -- huge values are not echoed, nor numbers past 64 bits used ---------------------------------------------


def _short(answer: Refusal) -> None:
    assert len(answer.message) < 150 and "…" in answer.message, answer.message


@pytest.mark.parametrize(
    ("path", "request_", "field"),
    [
        (
            "/onecard.settlement.v1.SettlementService/GetReconciliationReport",
            settlement_pb.GetReconciliationReportRequest(business_date="9" * HUGE),
            "business_date",
        ),
        (
            "/onecard.settlement.v1.SettlementService/GetReconciliationReport",
            settlement_pb.GetReconciliationReportRequest(business_date=DAY, bank_code="X" * HUGE),
            "bank_code",
        ),
        (
            "/onecard.settlement.v1.SettlementService/Reconcile",
            settlement_pb.ReconcileRequest(request_id="r-1", business_date=DAY, bank_code="界" * (HUGE // 4)),
            "bank_code",
        ),
    ],
)
async def test_a_huge_value_is_quoted_short(
    hub: RunningHub, path: str, request_: Message, field: str
) -> None:
    answer = await refused(hub.target, path, request_.SerializeToString(), ((OPERATOR_HEADER, ADMIN),))
    assert (answer.code, answer.field) == (grpc.StatusCode.INVALID_ARGUMENT, field)
    _short(answer)


@pytest.mark.parametrize("token", ["9223372036854775808", "9999999999999999999"])
async def test_a_page_token_past_the_largest_audit_id_is_invalid_argument(
    hub: RunningHub, token: str
) -> None:
    request = card_office_pb.QueryAuditLogRequest(operator_id=ADMIN, page_token=token)
    path = "/onecard.cardoffice.v1.CardOfficeService/QueryAuditLog"
    answer = await refused(hub.target, path, request.SerializeToString(), ((OPERATOR_HEADER, ADMIN),))
    assert (answer.code, answer.field) == (grpc.StatusCode.INVALID_ARGUMENT, "page_token")


async def test_an_unknown_huge_top_up_id_is_not_found_quoted_short(hub: RunningHub) -> None:
    request = funds_pb.GetTopUpRequest(topup_id="T" * HUGE)
    path = "/onecard.funds.v1.FundsService/GetTopUp"
    answer = await refused(hub.target, path, request.SerializeToString(), ((OPERATOR_HEADER, ADMIN),))
    assert (answer.code, answer.field) == (grpc.StatusCode.NOT_FOUND, "topup_id")
    _short(answer)


async def test_a_padded_date_that_is_not_over_is_not_echoed(campus_dir: Path, clock: ManualClock) -> None:
    async with settling_hub(campus_dir, clock, StatementBank()) as (_, client):
        with pytest.raises(InvalidArgumentError) as caught:
            await client.run_merchant_settlement(rid(), DAY + " " * HUGE)
    assert caught.value.field == "business_date"
    assert caught.value.message == f"business_date: business_date {DAY} is not over yet"


async def test_a_huge_bank_code_is_quoted_short(
    campus_dir: Path, clock: ManualClock, creds: CampusCredentials, tmp_path: Path
) -> None:
    card = creds.cards[0]
    async with world(campus_dir, clock, tmp_path) as w:
        with pytest.raises(InvalidArgumentError) as caught:
            await w.client.change_bank(rid(), card.student_id, "B" * HUGE, "")
    assert caught.value.field == "new_bank_code"
    assert len(caught.value.message) < 150 and "…" in caught.value.message
