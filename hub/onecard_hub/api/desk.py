"""Proto → domain for taps at a library desk or an exam tablet, and the fields every answer
to a tap shares (decision, reason, screen text, masked name, time), with input validation.

The credential is the one of Authorize (`onecard.auth.v1.ChipTap` or `QrScan`); the chip's
cryptogram covers the scene number and amount 0. Every check names the offending field.
"""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp

from onecard.auth.v1 import authorization_service_pb2 as auth_pb
from onecard.exam.v1 import exam_service_pb2 as exam_pb
from onecard.library.v1 import library_service_pb2 as library_pb
from onecard_client.credentials import MalformedToken, parse_qr_token
from onecard_hub.api import convert
from onecard_hub.domain.campus import ChipCredential, Credential, QrCredential, Tap, TapResult
from onecard_hub.domain.decisions import DISPLAY_TEXT
from onecard_hub.domain.errors import InvalidArgument
from onecard_hub.domain.model import Scene, Terminal

DeskRequest = library_pb.BorrowRequest | library_pb.ReturnRequest | exam_pb.CheckInRequest
DeskAnswer = library_pb.BorrowResponse | library_pb.ReturnResponse | exam_pb.CheckInResponse


def desk_tap(request: DeskRequest, terminal: Terminal, scene: Scene) -> Tap:
    rid = convert.request_id(request.request_id)
    convert.same_terminal(request.terminal_id, terminal)
    credential = _credential(request)
    return Tap(rid, terminal, scene, credential, 0, "", convert.required_instant_ms(request, "tap_time"))


def _credential(request: DeskRequest) -> Credential:
    which = request.WhichOneof("credential")
    if which == "chip":
        chip = request.chip
        if not 1 <= chip.atc <= convert.MAX_ATC:
            raise InvalidArgument("chip.atc", "must be positive")
        if len(chip.cryptogram) != 8:
            raise InvalidArgument("chip.cryptogram", "must be 8 bytes")
        return ChipCredential(convert.card_no(chip.card_no, "chip.card_no"), chip.atc, chip.cryptogram)
    if which == "qr":
        token = request.qr.token
        if not token:
            raise InvalidArgument("qr.token", "required")
        if len(token) > convert.MAX_QR_CHARS:
            raise InvalidArgument("qr.token", f"at most {convert.MAX_QR_CHARS} characters")
        try:
            return QrCredential(parse_qr_token(token))
        except MalformedToken:
            raise InvalidArgument("qr.token", "not an e-card QR code") from None
    raise InvalidArgument("credential", "one of chip or qr is required")


def identifier(value: str, field: str) -> str:
    """A book, session or room id: 1 to 64 letters, digits, '.', '_', ':' and '-'."""
    return convert.request_id(value, field)


def fill(answer: DeskAnswer, tap: Tap, result: TapResult, now_ms: int) -> None:
    """Sets the fields every answer to a tap carries."""
    reason = result.reason
    answer.request_id = tap.request_id
    answer.decision = auth_pb.DECISION_APPROVED if result.approved else auth_pb.DECISION_DECLINED
    answer.decline_reason = int(reason)  # type: ignore[assignment]
    answer.display_text = DISPLAY_TEXT[reason]
    answer.holder_name_masked = result.card.student.name_masked if result.card is not None else ""
    answer.decided_at.FromMilliseconds(now_ms)


def timestamp(target: Timestamp, ms: int) -> None:
    """Sets `target` to `ms`, leaving it unset for 0."""
    if ms:
        target.FromMilliseconds(ms)
