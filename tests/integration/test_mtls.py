"""Mutual TLS: a real hub serving `--tls`, real certificates from the hub's PKI, real secure channels.

The certificate names the caller; a handshake without a certificate of the hub's CA fails
(UNAVAILABLE at the client); a known caller outside its scope gets PERMISSION_DENIED.
"""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from cryptography.x509.oid import NameOID
from google.rpc import error_details_pb2, status_pb2

from onecard.admin.v1 import admin_service_pb2 as admin_pb
from onecard.admin.v1 import admin_service_pb2_grpc as admin_grpc
from onecard.auth.v1 import authorization_service_pb2 as pb
from onecard.auth.v1 import authorization_service_pb2_grpc as pb_grpc
from onecard.terminal.v1 import terminal_service_pb2 as term_pb
from onecard.terminal.v1 import terminal_service_pb2_grpc as term_grpc
from onecard_client.campus import CampusCredentials
from onecard_hub.domain.clock import ManualClock
from onecard_hub.security.pki import init_pki, issue, issue_all, leaf_paths
from onecard_hub.server import RunningHub, running_hub
from tests.conftest import db_count, hub_config
from tests.helpers import Campus, name, new_request_id

BUY, ENTRY = pb.SCENE_CANTEEN_PURCHASE, pb.SCENE_GATE_ENTRY
CLERK_OF = "{}-clerk"
DEADLINE_S = 10.0


@pytest.fixture
def pki_dir(campus_dir: Path) -> Path:
    folder = campus_dir / "hub.keys" / "pki"
    init_pki(folder)
    issue_all(folder, campus_dir / "hub.keys")
    return folder


@pytest.fixture
async def tls_hub(campus_dir: Path, pki_dir: Path, clock: ManualClock) -> AsyncIterator[RunningHub]:
    async with running_hub(hub_config(campus_dir, tls_dir=pki_dir), clock) as running:
        assert running.tls
        yield running


@pytest.fixture
def taps(creds: CampusCredentials, clock: ManualClock, tls_hub: RunningHub) -> Campus:
    return Campus(creds, clock, tls_hub.target)  # builds requests; sends go through secure channels below


def _channel(
    hub: RunningHub, pki: Path, cert: bytes | None = None, key: bytes | None = None
) -> grpc.aio.Channel:
    credentials = grpc.ssl_channel_credentials((pki / "ca.crt").read_bytes(), key, cert)
    return grpc.aio.secure_channel(hub.target, credentials)  # 127.0.0.1 is in the server's SAN


def _as(hub: RunningHub, pki: Path, kind: str, holder: str) -> grpc.aio.Channel:
    cert, key = leaf_paths(pki, kind, holder)
    return _channel(hub, pki, cert.read_bytes(), key.read_bytes())


def _reason(error: grpc.aio.AioRpcError) -> str:
    raw = dict(error.trailing_metadata() or ())["grpc-status-details-bin"]
    info = error_details_pb2.ErrorInfo()
    assert status_pb2.Status.FromString(raw).details[0].Unpack(info)
    return info.reason


async def _authorize(
    channel: grpc.aio.Channel, request: pb.AuthorizeRequest, metadata: tuple[tuple[str, str], ...] = ()
) -> pb.AuthorizeResponse:
    stub = pb_grpc.AuthorizationServiceStub(channel)
    return await stub.Authorize(request, timeout=DEADLINE_S, metadata=metadata)


async def _refused(
    channel: grpc.aio.Channel, request: pb.AuthorizeRequest, code: grpc.StatusCode
) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _authorize(channel, request)
    assert caught.value.code() == code, caught.value.details()
    return caught.value


def _self_signed(common_name: str) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(f"onecard:terminal:{common_name}")]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(Encoding.PEM), key.private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
    )


async def test_a_good_tap_over_mutual_tls_is_approved(
    tls_hub: RunningHub, pki_dir: Path, taps: Campus
) -> None:
    pos = taps.pos()
    async with _as(tls_hub, pki_dir, "terminal", pos.terminal_id) as channel:
        answer = await _authorize(channel, taps.chip(taps.card(), pos, BUY, amount_fen=800))
    assert answer.decision == pb.DECISION_APPROVED, name(answer.decline_reason)


async def test_without_a_certificate_of_the_hubs_ca_the_handshake_fails(
    tls_hub: RunningHub, pki_dir: Path, taps: Campus, campus_dir: Path, tmp_path: Path
) -> None:
    pos = taps.pos()
    request = taps.chip(taps.card(), pos, BUY, amount_fen=800)
    rows = db_count(campus_dir, "requests")
    async with _channel(tls_hub, pki_dir) as channel:  # no client certificate at all
        await _refused(channel, request, grpc.StatusCode.UNAVAILABLE)
    async with _channel(tls_hub, pki_dir, *_self_signed(pos.terminal_id)) as channel:
        await _refused(channel, request, grpc.StatusCode.UNAVAILABLE)
    stranger = tmp_path / "another-pki"  # a real CA, but not the hub's
    init_pki(stranger)
    forged = issue(stranger, "terminal", pos.terminal_id)
    async with _channel(tls_hub, pki_dir, forged.cert.read_bytes(), forged.key.read_bytes()) as channel:
        await _refused(channel, request, grpc.StatusCode.UNAVAILABLE)
    async with grpc.aio.insecure_channel(tls_hub.target) as channel:  # plain text to a TLS port
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await _authorize(channel, request, (("onecard-terminal-id", pos.terminal_id),))
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert db_count(campus_dir, "requests") == rows


async def test_a_terminal_cannot_name_another_terminal_or_leave_its_kind(
    tls_hub: RunningHub, pki_dir: Path, taps: Campus
) -> None:
    pos, gate = taps.pos(), taps.gate()
    async with _as(tls_hub, pki_dir, "terminal", pos.terminal_id) as channel:
        for_the_gate = taps.chip(taps.card(), gate, ENTRY)  # a real tap, but at the gate
        error = await _refused(channel, for_the_gate, grpc.StatusCode.PERMISSION_DENIED)
        assert _reason(error) == "TERMINAL_MISMATCH"
        pos_at_gate = taps.chip(taps.card(), pos, ENTRY)
        error = await _refused(channel, pos_at_gate, grpc.StatusCode.PERMISSION_DENIED)
        assert _reason(error) == "SCENE_NOT_ALLOWED"


async def test_the_certificate_wins_over_a_header(tls_hub: RunningHub, pki_dir: Path, taps: Campus) -> None:
    pos, gate = taps.pos(), taps.gate()
    header_says_gate = (("onecard-terminal-id", gate.terminal_id),)
    async with _as(tls_hub, pki_dir, "terminal", pos.terminal_id) as channel:
        own = await _authorize(channel, taps.chip(taps.card(), pos, BUY, amount_fen=500), header_says_gate)
        assert own.decision == pb.DECISION_APPROVED
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await _authorize(channel, taps.chip(taps.card(), gate, ENTRY), header_says_gate)
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert _reason(caught.value) == "TERMINAL_MISMATCH"


async def test_a_valid_certificate_of_an_unknown_caller_is_unauthenticated(
    tls_hub: RunningHub, pki_dir: Path, taps: Campus
) -> None:
    issue(pki_dir, "terminal", "ghost-pos-9")
    request = taps.chip(taps.card(), taps.pos(), BUY, amount_fen=800)
    request.terminal_id = "ghost-pos-9"
    async with _as(tls_hub, pki_dir, "terminal", "ghost-pos-9") as channel:
        error = await _refused(channel, request, grpc.StatusCode.UNAUTHENTICATED)
    assert _reason(error) == "CALLER_UNKNOWN"
    issue(pki_dir, "operator", "ghost-clerk")
    async with _as(tls_hub, pki_dir, "operator", "ghost-clerk") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await admin_grpc.AdminServiceStub(channel).ListTerminals(
                admin_pb.ListTerminalsRequest(school_id=taps.school()), timeout=DEADLINE_S
            )
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_each_service_admits_its_own_kind_of_caller(
    tls_hub: RunningHub, pki_dir: Path, taps: Campus
) -> None:
    pos, school = taps.pos(), taps.school()
    async with _as(tls_hub, pki_dir, "terminal", pos.terminal_id) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await admin_grpc.AdminServiceStub(channel).ListTerminals(
                admin_pb.ListTerminalsRequest(school_id=school), timeout=DEADLINE_S
            )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert _reason(caught.value) == "CALLER_KIND_NOT_ALLOWED"
    async with _as(tls_hub, pki_dir, "operator", CLERK_OF.format(school)) as channel:
        error = await _refused(
            channel, taps.chip(taps.card(), pos, BUY, amount_fen=800), grpc.StatusCode.PERMISSION_DENIED
        )
        assert _reason(error) == "CALLER_KIND_NOT_ALLOWED"
        listed = await admin_grpc.AdminServiceStub(channel).ListTerminals(
            admin_pb.ListTerminalsRequest(school_id=school), timeout=DEADLINE_S
        )
        assert pos.terminal_id in {t.terminal_id for t in listed.terminals}
    async with _as(tls_hub, pki_dir, "app", "ecard-app") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await term_grpc.TerminalServiceStub(channel).GetClock(
                term_pb.GetClockRequest(terminal_id=pos.terminal_id), timeout=DEADLINE_S
            )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert _reason(caught.value) == "CALLER_KIND_NOT_ALLOWED"


async def test_a_disabled_terminal_is_refused_until_enabled_again(
    tls_hub: RunningHub, pki_dir: Path, taps: Campus
) -> None:
    gate, school = taps.gate(), taps.school()
    card = taps.card()

    async def set_enabled(enabled: bool) -> None:
        async with _as(tls_hub, pki_dir, "operator", CLERK_OF.format(school)) as admin:
            answer = await admin_grpc.AdminServiceStub(admin).SetTerminalEnabled(
                admin_pb.SetTerminalEnabledRequest(
                    request_id=new_request_id(), terminal_id=gate.terminal_id, enabled=enabled
                ),
                timeout=DEADLINE_S,
            )
        assert answer.terminal.enabled is enabled

    await set_enabled(False)
    async with _as(tls_hub, pki_dir, "terminal", gate.terminal_id) as channel:
        error = await _refused(channel, taps.chip(card, gate, ENTRY), grpc.StatusCode.PERMISSION_DENIED)
        assert _reason(error) == "TERMINAL_DISABLED"
        with pytest.raises(grpc.aio.AioRpcError) as caught:  # every call, not only taps
            await term_grpc.TerminalServiceStub(channel).GetClock(
                term_pb.GetClockRequest(terminal_id=gate.terminal_id), timeout=DEADLINE_S
            )
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert _reason(caught.value) == "TERMINAL_DISABLED"
        await set_enabled(True)
        answer = await _authorize(channel, taps.chip(card, gate, ENTRY))
        assert answer.decision == pb.DECISION_APPROVED, name(answer.decline_reason)
