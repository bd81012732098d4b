"""The parts that answer bad requests, without a server: where an encoding goes wrong (api/wire.py), the
tolerant deserializer and its rate-limited log line (api/decoding.py), the one check of a Timestamp
(api/convert.instant_ms), and the bounds on what an error echoes (domain/errors.quoted, api/errors)."""

from __future__ import annotations

import logging

import pytest
from google.protobuf.message import DecodeError
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import code_pb2, error_details_pb2, status_pb2

from onecard.auth.v1 import authorization_service_pb2 as pb
from onecard_hub.api import convert
from onecard_hub.api.decoding import MalformedLog, tolerant
from onecard_hub.api.errors import MAX_METADATA_CHARS, MAX_STATUS_MESSAGE_CHARS, Undecodable, status_of
from onecard_hub.api.wire import undecodable_field
from onecard_hub.domain.errors import MAX_QUOTED_CHARS, HubError, InvalidArgument, quoted

PLACEHOLDER = "PLACEHOLDER"
NOT_UTF8 = b"\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8\xf7\xf6\xf5"  # as long as PLACEHOLDER


def _with_bad_utf8(message: pb.AuthorizeRequest | pb.UploadOfflineBatchRequest) -> bytes:
    """The encoding of `message` with its one PLACEHOLDER string replaced by bytes that are not UTF-8."""
    encoded = message.SerializeToString()
    assert encoded.count(PLACEHOLDER.encode()) == 1
    return encoded.replace(PLACEHOLDER.encode(), NOT_UTF8)


def _offline_batch(bad_index: int) -> pb.UploadOfflineBatchRequest:
    request = pb.UploadOfflineBatchRequest(request_id="r-1", terminal_id="t-1")
    for i in range(3):
        tx = request.transactions.add(serial=i + 1)
        tx.qr.token = PLACEHOLDER if i == bad_index else f"OC1.token{i}"
    return request


AUTHORIZE, BATCH = pb.AuthorizeRequest, pb.UploadOfflineBatchRequest
CUT_IN_A_STRING = AUTHORIZE(request_id="r-123456").SerializeToString()[:-3]
CUT_IN_A_VARINT = AUTHORIZE(amount_fen=2**40).SerializeToString()[:-1]


@pytest.mark.parametrize(
    ("cls", "data", "field"),
    [
        (AUTHORIZE, _with_bad_utf8(AUTHORIZE(request_id=PLACEHOLDER)), "request_id"),
        (AUTHORIZE, _with_bad_utf8(AUTHORIZE(chip=pb.ChipTap(card_no=PLACEHOLDER))), "chip.card_no"),
        (BATCH, _with_bad_utf8(_offline_batch(1)), "transactions[1].qr.token"),
        (AUTHORIZE, CUT_IN_A_STRING, "request_id"),
        (AUTHORIZE, CUT_IN_A_VARINT, "amount_fen"),
        (AUTHORIZE, b"\xff\xff\xff", None),  # a tag that never ends
        (AUTHORIZE, b"\x00\x01", None),  # field number 0
        (AUTHORIZE, b"\xff\x3e", None),  # field 1007 (not declared), wire type 7 (none such)
    ],
)
def test_the_field_where_decoding_fails_is_found(
    cls: type[pb.AuthorizeRequest | pb.UploadOfflineBatchRequest], data: bytes, field: str | None
) -> None:
    with pytest.raises(DecodeError):
        cls.FromString(data)
    assert undecodable_field(cls.DESCRIPTOR, data) == field


def test_a_tolerant_deserializer_answers_an_undecodable_and_logs_once_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [100.0]
    log = MalformedLog(every_s=10.0, clock=lambda: now[0])
    deserialize = tolerant(
        pb.AuthorizeRequest.FromString, "/x/Authorize", pb.AuthorizeRequest.DESCRIPTOR, log
    )
    good = pb.AuthorizeRequest(request_id="r-1")
    with caplog.at_level(logging.WARNING, logger="onecard_hub.api.decoding"):
        assert deserialize(good.SerializeToString()) == good
        bad = _with_bad_utf8(pb.AuthorizeRequest(request_id=PLACEHOLDER))
        assert deserialize(bad) == Undecodable("onecard.auth.v1.AuthorizeRequest", "request_id")
        for _ in range(3):
            deserialize(b"\xff\xff\xff")
        now[0] += 9.9
        deserialize(b"\xff")
        now[0] += 0.1
        deserialize(b"\xff\xff")
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        f"undecodable request to /x/Authorize ({len(bad)} bytes, at request_id)",
        "undecodable request to /x/Authorize (2 bytes); 4 more since the last such line",
    ]
    assert all(r.exc_info is None for r in caplog.records)


def _details(status: object) -> tuple[status_pb2.Status, error_details_pb2.ErrorInfo]:
    raw = dict(status.trailing_metadata)["grpc-status-details-bin"]  # type: ignore[attr-defined]
    proto = status_pb2.Status.FromString(raw)
    info = error_details_pb2.ErrorInfo()
    assert len(proto.details) == 1 and proto.details[0].Unpack(info)
    return proto, info


def test_an_undecodable_becomes_invalid_argument_naming_the_field_when_known() -> None:
    proto, info = _details(Undecodable("onecard.auth.v1.AuthorizeRequest", "chip.card_no").status())
    assert (proto.code, info.reason, dict(info.metadata)) == (
        code_pb2.INVALID_ARGUMENT,
        "FIELD_INVALID",
        {"field": "chip.card_no"},
    )
    assert proto.message.startswith("chip.card_no: ") and "Error" not in proto.message
    proto, info = _details(Undecodable("onecard.auth.v1.AuthorizeRequest", None).status())
    assert (proto.code, info.reason, dict(info.metadata)) == (code_pb2.INVALID_ARGUMENT, "FIELD_INVALID", {})


def _timestamp(seconds: int, nanos: int = 0) -> Timestamp:
    return Timestamp(seconds=seconds, nanos=nanos)


@pytest.mark.parametrize(
    "value",
    [
        _timestamp(convert.MAX_TIMESTAMP_S + 1),  # year 10000
        _timestamp(2**63 - 1),
        _timestamp(convert.MIN_TIMESTAMP_S - 1),
        _timestamp(-(2**63)),
        _timestamp(1_800_000_000, -1),
        _timestamp(1_800_000_000, 1_000_000_000),
    ],
)
def test_a_timestamp_out_of_protobufs_range_is_invalid_argument(value: Timestamp) -> None:
    with pytest.raises(InvalidArgument) as caught:
        convert.instant_ms(value, "since", after_epoch=False)
    assert caught.value.field == "since"


def test_a_timestamp_in_range_is_milliseconds() -> None:
    assert convert.instant_ms(_timestamp(convert.MAX_TIMESTAMP_S, 999_999_999), "t") == (
        convert.MAX_TIMESTAMP_S * 1000 + 999
    )
    assert convert.instant_ms(_timestamp(convert.MIN_TIMESTAMP_S), "t", after_epoch=False) == (
        convert.MIN_TIMESTAMP_S * 1000
    )
    with pytest.raises(InvalidArgument):
        convert.instant_ms(_timestamp(0), "t")  # an instant something happened: after 1970
    request = pb.AuthorizeRequest()
    with pytest.raises(InvalidArgument) as caught:
        convert.required_instant_ms(request, "tap_time")
    assert (caught.value.field, caught.value.message) == ("tap_time", "tap_time: required")


def test_quoted_input_is_cut_to_a_few_dozen_characters() -> None:
    assert quoted("ICBX") == "'ICBX'"
    long = quoted("9" * 100_000)
    assert long == repr("9" * MAX_QUOTED_CHARS) + "…"
    assert len(quoted("\x00" * 100_000)) < 5 * MAX_QUOTED_CHARS


def test_an_error_message_and_its_metadata_are_bounded_whatever_they_hold() -> None:
    error = HubError("x" * 100_000, reason="NOT_FOUND", metadata={"state": "y" * 100_000})
    proto, info = _details(status_of(error))
    assert len(proto.message) == MAX_STATUS_MESSAGE_CHARS and proto.message.endswith("…")
    assert len(info.metadata["state"]) == MAX_METADATA_CHARS
