"""`onecard_hub.security.pki` and `onecard-hub pki`: the CA, the server certificate, client certificates."""

from __future__ import annotations

import ipaddress
import json
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from onecard_hub.cli import main
from onecard_hub.security.pki import (
    ECARD_APP,
    PkiError,
    init_pki,
    issue,
    issue_all,
    load_server_tls,
    parse_identity_uri,
)


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _export(folder: Path, terminals: list[str], operators: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    doc = {
        "schools": [{"school_id": "s1", "name": "x"}],
        "terminals": [
            {"terminal_id": t, "school_id": "s1", "kind": "gate", "gate_group": "main", "merchant_id": ""}
            for t in terminals
        ],
        "operators": operators,
        "cards": [],
    }
    (folder / "credentials.json").write_text(json.dumps(doc), encoding="utf-8")
    return folder


def test_init_makes_a_ca_and_a_server_certificate(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    server = init_pki(pki, ["hub.example.cn", "10.0.0.7"])
    ca = _cert(pki / "ca.crt")
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and not usage.digital_signature
    ca_key = load_pem_private_key((pki / "ca.key").read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey) and ca_key.curve.name == "secp256r1"

    cert = _cert(server.cert)
    cert.verify_directly_issued_by(ca)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost", "hub.example.cn"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("10.0.0.7"),
    ]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert _mode(pki / "ca.key") == 0o600 and _mode(server.key) == 0o600
    tls = load_server_tls(pki)
    assert tls.ca_cert == (pki / "ca.crt").read_bytes() and tls.key == server.key.read_bytes()


def test_an_existing_ca_is_replaced_only_when_forced(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    init_pki(pki)
    before = (pki / "ca.crt").read_bytes()
    with pytest.raises(PkiError, match="--force"):
        init_pki(pki)
    assert (pki / "ca.crt").read_bytes() == before
    init_pki(pki, force=True)
    assert (pki / "ca.crt").read_bytes() != before


@pytest.mark.parametrize("kind", ["terminal", "operator", "app"])
def test_a_client_certificate_names_its_holder(tmp_path: Path, kind: str) -> None:
    pki = tmp_path / "pki"
    init_pki(pki)
    issued = issue(pki, kind, "jx-ts-01-pos-03")
    folder = {"terminal": "terminals", "operator": "operators", "app": "apps"}[kind]
    assert issued.cert == pki / folder / "jx-ts-01-pos-03.crt"
    cert = _cert(issued.cert)
    cert.verify_directly_issued_by(_cert(pki / "ca.crt"))
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "jx-ts-01-pos-03"
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [f"onecard:{kind}:jx-ts-01-pos-03"]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert _mode(issued.key) == 0o600
    key = load_pem_private_key(issued.key.read_bytes(), password=None)
    assert key.public_key() == cert.public_key()


@pytest.mark.parametrize(
    ("kind", "name"), [("terminal", "../escape"), ("terminal", ""), ("terminal", "x" * 65), ("robot", "r1")]
)
def test_bad_names_and_kinds_are_refused(tmp_path: Path, kind: str, name: str) -> None:
    init_pki(tmp_path / "pki")
    with pytest.raises(PkiError):
        issue(tmp_path / "pki", kind, name)
    assert not (tmp_path / "escape.crt").exists()


def test_issuing_needs_a_ca(tmp_path: Path) -> None:
    with pytest.raises(PkiError, match="pki init"):
        issue(tmp_path / "pki", "terminal", "t1")
    with pytest.raises(PkiError, match="pki init"):
        load_server_tls(tmp_path / "pki")


def test_issue_all_covers_the_export_and_fills_only_gaps(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    keys = _export(tmp_path / "hub.keys", ["g-1", "p-1"], ["province-admin", "s1-clerk"])
    init_pki(pki)
    first = issue_all(pki, keys)
    assert {(c.kind, c.name) for c in first} == {
        ("terminal", "g-1"),
        ("terminal", "p-1"),
        ("operator", "province-admin"),
        ("operator", "s1-clerk"),
        ("app", ECARD_APP),
    }
    serials = {c.name: _cert(c.cert).serial_number for c in first}
    again = issue_all(pki, keys / "credentials.json")
    assert {c.name: _cert(c.cert).serial_number for c in again} == serials

    init_pki(pki, force=True)  # a new CA: the old certificates are worthless and are replaced
    ca = _cert(pki / "ca.crt")
    for c in issue_all(pki, keys):
        _cert(c.cert).verify_directly_issued_by(ca)
        assert _cert(c.cert).serial_number != serials[c.name]


def test_issue_all_needs_an_export(tmp_path: Path) -> None:
    init_pki(tmp_path / "pki")
    with pytest.raises(PkiError, match="seed"):
        issue_all(tmp_path / "pki", tmp_path / "nowhere")
    (tmp_path / "broken.json").write_text("{}", encoding="utf-8")
    with pytest.raises(PkiError, match="not a credentials export"):
        issue_all(tmp_path / "pki", tmp_path / "broken.json")


def test_identity_uris() -> None:
    assert parse_identity_uri("onecard:terminal:T-1") == ("terminal", "T-1")
    assert parse_identity_uri("onecard:app:ecard-app") == ("app", "ecard-app")
    for text in ("onecard:robot:x", "onecard:terminal:", "spiffe://x/y", "localhost", "onecard:terminal:a:b"):
        assert parse_identity_uri(text) is None


def test_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "hub.db"
    _export(tmp_path / "hub.keys", ["g-1"], ["province-admin"])
    pki = tmp_path / "hub.keys" / "pki"
    assert main(["pki", "init", "--db", str(db), "--host", "hub.local"]) == 0
    assert (pki / "ca.crt").exists()
    assert main(["pki", "init", "--db", str(db)]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["pki", "issue", "--dir", str(pki), "--terminal", "g-2"]) == 0
    assert (pki / "terminals" / "g-2.crt").exists()
    assert main(["pki", "issue", "--dir", str(pki), "--app", "bad/name"]) == 2
    assert main(["pki", "issue-all", "--keys", str(tmp_path / "hub.keys")]) == 0
    assert (pki / "operators" / "province-admin.crt").exists()
    assert (pki / "apps" / f"{ECARD_APP}.crt").exists()
    assert main(["pki", "issue-all", "--dir", str(pki)]) == 2  # no export named
    assert main(["pki", "issue", "--terminal", "g-3"]) == 2  # no folder named
    with pytest.raises(SystemExit):
        main(["pki", "issue", "--dir", str(pki)])  # who? argparse refuses
