"""The local rules of a terminal that cannot reach the hub, and its store of offline transactions."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from onecard.auth.v1 import authorization_service_pb2 as auth_pb
from onecard_client.credentials import mint_qr_token
from onecard_sim.offline import OfflineBook, OfflineRules, Refusal, business_day

NOW = 1_795_492_800_000  # 2026-11-24T12:00:00+08:00
ISSUER = Ed25519PrivateKey.generate()


def book(**changes: object) -> OfflineBook:
    rules = {
        "blocked": frozenset({"LOST0001"}),
        "blocklist_version": 3,
        "public_key": ISSUER.public_key(),
        "per_payment_fen": 2_000,
        "per_card_day_fen": 3_000,
        "max_stored": 3,
    }
    rules.update(changes)
    b = OfflineBook()
    b.rules = OfflineRules(**rules)  # type: ignore[arg-type]
    return b


def code(
    card_no: str, issued_ms: int = NOW, signer: Ed25519PrivateKey = ISSUER, nonce: bytes = b"12345678"
) -> str:
    return mint_qr_token(
        card_no=card_no, ecard_key=b"k" * 32, signing_key=signer, issued_ms=issued_ms, nonce=nonce
    )


def chip(card_no: str) -> auth_pb.ChipTap:
    return auth_pb.ChipTap(card_no=card_no, atc=7, cryptogram=b"\x01" * 8)


def store(b: OfflineBook, card_no: str, amount: int, qr: str | None = None) -> auth_pb.OfflineTransaction:
    assert b.check(card_no, amount, NOW, qr) is None
    return b.record(
        scene=auth_pb.SCENE_CANTEEN_PURCHASE,
        card_no=card_no,
        amount_fen=amount,
        occurred_ms=NOW,
        chip=None if qr else chip(card_no),
        qr_text=qr,
    )


def test_no_configuration_means_no_offline_approval() -> None:
    assert OfflineBook().check("CARD0001", 100, NOW) is Refusal.NO_CONFIG


def test_serials_increase_and_occurred_at_is_kept() -> None:
    b = book(max_stored=10)
    first = store(b, "CARD0001", 500)
    second = store(b, "CARD0002", 600, code("CARD0002"))
    assert (first.serial, second.serial) == (1, 2)
    assert first.occurred_at.ToMilliseconds() == NOW
    assert first.HasField("chip") and second.HasField("qr")


def test_blocklisted_card_refused_by_chip_and_by_qr() -> None:
    b = book()
    assert b.check("LOST0001", 100, NOW) is Refusal.BLOCKLISTED
    assert b.check("", 100, NOW, code("LOST0001")) is Refusal.BLOCKLISTED
    assert b.refusals["BLOCKLISTED"] == 2


def test_qr_signature_expiry_and_reuse_checked_offline() -> None:
    b = book()
    assert (
        b.check("", 100, NOW, code("CARD0001", signer=Ed25519PrivateKey.generate())) is Refusal.QR_SIGNATURE
    )
    assert b.check("", 100, NOW, code("CARD0001", issued_ms=NOW - 120_000)) is Refusal.QR_EXPIRED
    assert b.check("", 100, NOW, "not a code") is Refusal.QR_MALFORMED
    shown = code("CARD0001")
    store(b, "CARD0001", 100, shown)
    assert b.check("", 100, NOW, shown) is Refusal.QR_REUSED


def test_caps_per_payment_per_card_day_and_store_size() -> None:
    b = book()
    assert b.check("CARD0001", 2_001, NOW) is Refusal.OVER_PAYMENT_CAP
    store(b, "CARD0001", 2_000)
    assert b.check("CARD0001", 1_001, NOW) is Refusal.OVER_DAY_CAP
    assert b.check("CARD0001", 1_001, NOW + 86_400_000) is None  # the next business day
    store(b, "CARD0002", 100)
    store(b, "CARD0003", 100)
    assert b.check("CARD0004", 100, NOW) is Refusal.STORE_FULL


def test_batches_of_at_most_the_limit_and_uploaded_batches_kept() -> None:
    b = book(max_stored=1_200, per_card_day_fen=10**9)
    for _ in range(1_100):
        store(b, "CARD0001", 1)
    batches = b.pending_batches()
    assert [len(x) for x in batches] == [500, 500, 100]
    b.mark_uploaded(batches[0])
    assert len(b.stored) == 600 and b.stored[0].serial == 501
    assert [len(x) for x in b.uploaded] == [500]


def test_business_day_rolls_over_at_local_midnight() -> None:
    midnight = 1_795_449_600_000  # 2026-11-24T00:00:00+08:00
    assert business_day(midnight - 1) + 1 == business_day(midnight) == business_day(NOW)
