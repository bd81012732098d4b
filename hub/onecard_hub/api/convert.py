"""Proto ↔ domain for the authorization contract, with input validation.

Every check names the offending field; nothing is written when one fails.
"""

from __future__ import annotations

import re

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from onecard.auth.v1 import authorization_service_pb2 as pb
from onecard_client.credentials import MalformedToken, parse_qr_token
from onecard_hub.domain.campus import ChipCredential, Credential, Purchase, QrCredential, Tap, TapResult
from onecard_hub.domain.decisions import DISPLAY_TEXT
from onecard_hub.domain.errors import InvalidArgument, PermissionDenied
from onecard_hub.domain.ledger import Transfer
from onecard_hub.domain.model import Scene, Terminal
from onecard_hub.hub import ReverseOutcome

MAX_AMOUNT_FEN = 1_000_000  # ¥10,000: no canteen payment comes near it
MAX_QR_CHARS = 512
MAX_ATC = 0xFFFF_FFFF
# google.protobuf.Timestamp's range: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z.
MIN_TIMESTAMP_S, MAX_TIMESTAMP_S = -62_135_596_800, 253_402_300_799
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}")
_CARD_NO = re.compile(r"[A-Za-z0-9]{6,32}")
_PIN = re.compile(r"[0-9]{4,6}")
_SCENES = {int(s): s for s in Scene}
# Scenes that need more than a tap (a book, an exam session): their own services decide them.
SCENE_SERVICES = {
    Scene.LIBRARY_BORROW: "onecard.library.v1.LibraryService.Borrow",
    Scene.LIBRARY_RETURN: "onecard.library.v1.LibraryService.Return",
    Scene.EXAM_CHECK_IN: "onecard.exam.v1.ExamService.CheckIn",
}


def request_id(value: str, field: str = "request_id") -> str:
    if not value:
        raise InvalidArgument(field, "required")
    if _ID.fullmatch(value) is None:
        raise InvalidArgument(field, "1 to 64 characters: letters, digits, '.', '_', ':' and '-'")
    return value


def instant_ms(value: Timestamp, field: str, *, after_epoch: bool = True) -> int:
    """A request's Timestamp as Unix milliseconds, or INVALID_ARGUMENT naming `field`.

    The one check of every Timestamp a request carries: protobuf's own conversions raise
    ValueError outside the range above, which would be an INTERNAL answer. With `after_epoch`
    (an instant something happened or was asked for) 1970 and before are refused too.
    """
    seconds, nanos = value.seconds, value.nanos
    if not (0 <= nanos < 1_000_000_000 and MIN_TIMESTAMP_S <= seconds <= MAX_TIMESTAMP_S):
        raise InvalidArgument(
            field, "not a valid Timestamp (seconds from year 1 to 9999, nanos 0 to 999999999)"
        )
    if after_epoch and seconds <= 0:
        raise InvalidArgument(field, "not a valid instant: before 1970")
    return seconds * 1000 + nanos // 1_000_000


def required_instant_ms(message: Message, name: str, field: str | None = None) -> int:
    """`instant_ms` of the Timestamp field `name` of `message`, which must be set."""
    field = field or name
    if not message.HasField(name):
        raise InvalidArgument(field, "required")
    value = getattr(message, name)
    assert isinstance(value, Timestamp)
    return instant_ms(value, field)


def card_no(value: str, field: str = "card_no") -> str:
    if _CARD_NO.fullmatch(value) is None:
        raise InvalidArgument(field, "6 to 32 letters and digits")
    return value


def same_terminal(terminal_id: str, caller: Terminal, field: str = "terminal_id") -> None:
    if not terminal_id:
        raise InvalidArgument(field, "required")
    if terminal_id != caller.terminal_id:
        raise PermissionDenied(f"{field}: names another terminal than the caller", reason="TERMINAL_MISMATCH")


def amount(value: int, field: str = "amount_fen") -> int:
    if value <= 0:
        raise InvalidArgument(field, "must be positive")
    if value > MAX_AMOUNT_FEN:
        raise InvalidArgument(field, f"at most {MAX_AMOUNT_FEN}")
    return value


def _credential(request: pb.AuthorizeRequest) -> Credential:
    which = request.WhichOneof("credential")
    if which == "chip":
        chip = request.chip
        if not 1 <= chip.atc <= MAX_ATC:
            raise InvalidArgument("chip.atc", "must be positive")
        if len(chip.cryptogram) != 8:
            raise InvalidArgument("chip.cryptogram", "must be 8 bytes")
        return ChipCredential(card_no(chip.card_no, "chip.card_no"), chip.atc, chip.cryptogram)
    if which == "qr":
        token = request.qr.token
        if not token:
            raise InvalidArgument("qr.token", "required")
        if len(token) > MAX_QR_CHARS:
            raise InvalidArgument("qr.token", f"at most {MAX_QR_CHARS} characters")
        try:
            return QrCredential(parse_qr_token(token))
        except MalformedToken:
            raise InvalidArgument("qr.token", "not an e-card QR code") from None
    raise InvalidArgument("credential", "one of chip or qr is required")


def tap(request: pb.AuthorizeRequest, terminal: Terminal) -> Tap:
    rid = request_id(request.request_id)
    same_terminal(request.terminal_id, terminal)
    scene = _SCENES.get(request.scene)
    if scene is None:
        raise InvalidArgument("scene", "unknown scene")
    if scene in SCENE_SERVICES:
        raise InvalidArgument("scene", f"{scene.name.lower()} goes through {SCENE_SERVICES[scene]}")
    credential = _credential(request)
    if scene is Scene.CANTEEN_PURCHASE:
        value = amount(request.amount_fen)
    elif request.amount_fen != 0:
        raise InvalidArgument("amount_fen", "must be 0 at a gate")
    else:
        value = 0
    pin = request.pin
    if pin and _PIN.fullmatch(pin) is None:
        raise InvalidArgument("pin", "4 to 6 digits")
    return Tap(rid, terminal, scene, credential, value, pin, required_instant_ms(request, "tap_time"))


def authorize_response(tap: Tap, result: TapResult, now_ms: int, seq: int) -> pb.AuthorizeResponse:
    reason = result.reason
    card = result.card
    response = pb.AuthorizeResponse(
        request_id=tap.request_id,
        decision=pb.DECISION_APPROVED if result.approved else pb.DECISION_DECLINED,
        decline_reason=int(reason),  # type: ignore[arg-type]
        display_text=DISPLAY_TEXT[reason],
        holder_name_masked=card.student.name_masked if card is not None else "",
        balance_fen=card.student.wallet.balance_fen
        if card is not None and tap.scene is Scene.CANTEEN_PURCHASE
        else 0,
        authorization_id=f"AZ{seq:012d}",
    )
    response.decided_at.FromMilliseconds(now_ms)
    return response


def refund_response(
    request_id: str, seq_id: str, transfer: Transfer, purchase: Purchase
) -> pb.RefundResponse:
    return pb.RefundResponse(
        request_id=request_id,
        refund_id=seq_id,
        refunded_fen=transfer.amount_fen,
        remaining_refundable_fen=purchase.remaining_fen,
        balance_fen=purchase.wallet.balance_fen,
    )


def reverse_response(request_id: str, outcome: ReverseOutcome) -> pb.ReverseResponse:
    return pb.ReverseResponse(
        request_id=request_id,
        outcome=outcome.outcome,  # type: ignore[arg-type]
        reversed_fen=outcome.reversed_fen,
        balance_fen=outcome.balance_fen,
    )
