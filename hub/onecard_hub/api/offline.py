"""Proto ↔ domain for UploadOfflineBatch, with its input validation.

Every check names the offending field (`transactions[3].amount_fen`); one bad record fails the
whole call before anything is booked, so a terminal fixes its batch and sends it again.
"""

from __future__ import annotations

from onecard.auth.v1 import authorization_service_pb2 as pb
from onecard_client.credentials import MalformedToken, parse_qr_token
from onecard_hub.api import convert
from onecard_hub.domain.campus import CLOCK_SKEW_MS, ChipCredential, Credential, QrCredential
from onecard_hub.domain.errors import InvalidArgument, PermissionDenied
from onecard_hub.domain.model import SCENES_BY_KIND, Scene, Terminal
from onecard_hub.domain.offline import OfflineOutcome, OfflineResult, OfflineTransaction

MAX_TRANSACTIONS = 500
MAX_SERIAL = (1 << 63) - 1  # the store keeps serials as signed 64-bit integers
_SCENES = {int(s): s for s in Scene}


def _credential(tx: pb.OfflineTransaction, at: str) -> Credential:
    which = tx.WhichOneof("credential")
    if which == "chip":
        chip = tx.chip
        if not 1 <= chip.atc <= convert.MAX_ATC:
            raise InvalidArgument(f"{at}.chip.atc", "must be positive")
        if len(chip.cryptogram) != 8:
            raise InvalidArgument(f"{at}.chip.cryptogram", "must be 8 bytes")
        return ChipCredential(convert.card_no(chip.card_no, f"{at}.chip.card_no"), chip.atc, chip.cryptogram)
    if which == "qr":
        token = tx.qr.token
        if not token:
            raise InvalidArgument(f"{at}.qr.token", "required")
        if len(token) > convert.MAX_QR_CHARS:
            raise InvalidArgument(f"{at}.qr.token", f"at most {convert.MAX_QR_CHARS} characters")
        try:
            return QrCredential(parse_qr_token(token))
        except MalformedToken:
            raise InvalidArgument(f"{at}.qr.token", "not an e-card QR code") from None
    raise InvalidArgument(f"{at}.credential", "one of chip or qr is required")


def _transaction(tx: pb.OfflineTransaction, at: str, terminal: Terminal, now_ms: int) -> OfflineTransaction:
    if not 1 <= tx.serial <= MAX_SERIAL:
        raise InvalidArgument(f"{at}.serial", f"must be within [1, {MAX_SERIAL}]")
    scene = _SCENES.get(tx.scene)
    if scene is None:
        raise InvalidArgument(f"{at}.scene", "unknown scene")
    if scene in convert.SCENE_SERVICES:
        raise InvalidArgument(f"{at}.scene", "library and exam taps are online only")
    if scene not in SCENES_BY_KIND[terminal.kind]:
        raise PermissionDenied(
            f"{at}.scene: a {terminal.kind.name.lower()} terminal cannot serve {scene.name.lower()}",
            reason="SCENE_NOT_ALLOWED",
            field=f"{at}.scene",
        )
    if scene is Scene.CANTEEN_PURCHASE:
        amount = convert.amount(tx.amount_fen, f"{at}.amount_fen")
    elif tx.amount_fen != 0:
        raise InvalidArgument(f"{at}.amount_fen", "must be 0 at a gate")
    else:
        amount = 0
    credential = _credential(tx, at)
    occurred_ms = convert.required_instant_ms(tx, "occurred_at", f"{at}.occurred_at")
    if occurred_ms > now_ms + CLOCK_SKEW_MS:
        raise InvalidArgument(f"{at}.occurred_at", "in the future by the hub's clock")
    return OfflineTransaction(tx.serial, scene, credential, amount, occurred_ms)


def offline_batch(
    request: pb.UploadOfflineBatchRequest, terminal: Terminal, now_ms: int
) -> tuple[str, list[OfflineTransaction]]:
    """The request_id and the validated records, or the error naming the first bad field."""
    request_id = convert.request_id(request.request_id)
    convert.same_terminal(request.terminal_id, terminal)
    count = len(request.transactions)
    if not 1 <= count <= MAX_TRANSACTIONS:
        raise InvalidArgument("transactions", f"1 to {MAX_TRANSACTIONS} records")
    seen: set[int] = set()
    transactions = []
    for index, tx in enumerate(request.transactions):
        at = f"transactions[{index}]"
        record = _transaction(tx, at, terminal, now_ms)
        if record.serial in seen:
            raise InvalidArgument(f"{at}.serial", "appears twice in this batch")
        seen.add(record.serial)
        transactions.append(record)
    return request_id, transactions


def upload_response(results: list[OfflineResult]) -> pb.UploadOfflineBatchResponse:
    response = pb.UploadOfflineBatchResponse(
        results=[
            pb.OfflineResult(
                serial=r.serial,
                outcome=int(r.outcome),  # type: ignore[arg-type]
                reason=int(r.reason),  # type: ignore[arg-type]
                debt_fen=r.debt_fen,
            )
            for r in results
        ]
    )
    outcomes = [r.outcome for r in results]
    response.booked = outcomes.count(OfflineOutcome.BOOKED)
    response.duplicates = outcomes.count(OfflineOutcome.DUPLICATE)
    response.rejected = outcomes.count(OfflineOutcome.REJECTED)
    return response
