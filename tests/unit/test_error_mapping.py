"""Unexpected exceptions reach a client as INTERNAL with a correlation id and nothing else."""

from __future__ import annotations

import logging

import pytest
from google.rpc import code_pb2, error_details_pb2, status_pb2

from onecard_hub.api.errors import status_of
from onecard_hub.domain.errors import FailedPrecondition, InvalidArgument


def _info(status: object) -> tuple[int, str, error_details_pb2.ErrorInfo]:
    raw = dict(status.trailing_metadata)["grpc-status-details-bin"]  # type: ignore[attr-defined]
    proto = status_pb2.Status.FromString(raw)
    info = error_details_pb2.ErrorInfo()
    proto.details[0].Unpack(info)
    return proto.code, proto.message, info


def test_internal_errors_hide_their_text(caplog: pytest.LogCaptureFixture) -> None:
    secret = "ZeroDivision at /srv/hub.py line 3 for 360702200801011234"
    with caplog.at_level(logging.ERROR):
        code, message, info = _info(status_of(RuntimeError(secret)))
    assert code == code_pb2.INTERNAL
    assert secret not in message and "ZeroDivision" not in message
    assert info.reason == "INTERNAL"
    correlation = info.metadata["correlation_id"]
    assert correlation in message
    assert correlation in caplog.text  # the operator finds the traceback by the id


def test_hub_errors_keep_reason_and_field() -> None:
    code, message, info = _info(status_of(InvalidArgument("amount_fen", "must be positive")))
    assert (code, info.reason, info.metadata["field"]) == (
        code_pb2.INVALID_ARGUMENT,
        "FIELD_INVALID",
        "amount_fen",
    )
    assert message == "amount_fen: must be positive"
    code, _, info = _info(status_of(FailedPrecondition("x", reason="IDEMPOTENCY_KEY_REUSED")))
    assert (code, info.reason) == (code_pb2.FAILED_PRECONDITION, "IDEMPOTENCY_KEY_REUSED")
