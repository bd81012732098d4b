"""The hub's own small PKI: a CA, the server certificate, and one certificate per device or person.

Layout of the PKI folder (default `<keys dir>/pki`, e.g. `hub.keys/pki`):

    ca.crt, ca.key                      the hub's CA (EC P-256, 10 years)
    server.crt, server.key              the hub's server certificate: DNS localhost, IP 127.0.0.1, extra hosts
    terminals/<terminal_id>.crt|.key    a gate, POS, … (SAN URI onecard:terminal:<id>)
    operators/<operator_id>.crt|.key    a card-office clerk or province admin (onecard:operator:<id>)
    apps/<name>.crt|.key                an application such as the e-card app (onecard:app:<name>)

The subject CN of a client certificate is its id; the SAN URI `onecard:<kind>:<id>` is what the hub
reads to name the caller (`api/identity.py`). Private keys are written owner-only (0600).
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from onecard_client.campus import CREDENTIALS_FILE
from onecard_hub.security.files import write_private

__all__ = [
    "CA_CERT",
    "CA_KEY",
    "ECARD_APP",
    "KINDS",
    "SERVER_CERT",
    "SERVER_KEY",
    "IssuedCert",
    "PkiError",
    "ServerTls",
    "init_pki",
    "issue",
    "issue_all",
    "load_server_tls",
    "parse_identity_uri",
]

CA_CERT, CA_KEY = "ca.crt", "ca.key"
SERVER_CERT, SERVER_KEY = "server.crt", "server.key"
KINDS = ("terminal", "operator", "app")
FOLDER_OF = {"terminal": "terminals", "operator": "operators", "app": "apps"}
ECARD_APP = "ecard-app"
URI_SCHEME = "onecard"
CA_DAYS = 3650
LEAF_DAYS = 825
CLOCK_SKEW = datetime.timedelta(hours=1)
_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_HOST = re.compile(r"[A-Za-z0-9.\-]{1,253}")


class PkiError(Exception):
    """A PKI operation that cannot be done; the message says why, for a person to read."""


@dataclass(frozen=True, slots=True)
class IssuedCert:
    kind: str  # "server" or one of KINDS
    name: str
    cert: Path
    key: Path


@dataclass(frozen=True, slots=True)
class ServerTls:
    """What the hub needs to serve mutual TLS, as PEM bytes."""

    ca_cert: bytes
    cert: bytes
    key: bytes


def parse_identity_uri(uri: str) -> tuple[str, str] | None:
    """`onecard:terminal:T-1` → ("terminal", "T-1"); None when the text is not such a URI."""
    scheme, _, rest = uri.partition(":")
    kind, _, name = rest.partition(":")
    if scheme != URI_SCHEME or kind not in KINDS or _NAME.fullmatch(name) is None:
        return None
    return kind, name


def init_pki(folder: Path, hosts: Iterable[str] = (), *, force: bool = False) -> IssuedCert:
    """Creates the CA and the server certificate; refuses to replace an existing CA unless `force`."""
    folder = Path(folder)
    extra = [_check_host(h) for h in hosts]
    if (folder / CA_CERT).exists() and not force:
        raise PkiError(
            f"{folder / CA_CERT} exists already: every certificate it issued would stop working;"
            " pass --force to replace it"
        )
    ca_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "OneCard Hub CA")])
    now = _now()
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_ca_key_usage(), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write_pair(folder / CA_CERT, folder / CA_KEY, ca_cert, ca_key)
    return _issue_server(folder, ca_cert, ca_key, extra)


def issue(folder: Path, kind: str, name: str) -> IssuedCert:
    """Issues (or re-issues) the client certificate of a terminal, an operator or an app."""
    if kind not in KINDS:
        raise PkiError(f"unknown kind {kind!r}: one of {', '.join(KINDS)}")
    if _NAME.fullmatch(name) is None:
        raise PkiError(f"{kind} {name!r}: 1 to 64 letters, digits, '-', '_' or '.'")
    folder = Path(folder)
    ca_cert, ca_key = _load_ca(folder)
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    cert = (
        _leaf_builder(ca_cert, key, name, now)
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(f"{URI_SCHEME}:{kind}:{name}")]),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = leaf_paths(folder, kind, name)
    _write_pair(cert_path, key_path, cert, key)
    return IssuedCert(kind, name, cert_path, key_path)


def issue_all(folder: Path, credentials_path: Path) -> list[IssuedCert]:
    """A certificate for every terminal and operator of a credentials export, plus app `ecard-app`.

    `credentials_path` is the export (`credentials.json`) or the keys folder holding it. A
    certificate that exists already and was issued by this CA is kept, so running this again
    after a seed only fills the gaps.
    """
    path = Path(credentials_path)
    if path.is_dir():
        path = path / CREDENTIALS_FILE
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        wanted = [("terminal", str(t["terminal_id"])) for t in doc["terminals"]]
        wanted += [("operator", str(o)) for o in doc["operators"]]
    except FileNotFoundError:
        raise PkiError(f"{path} not found: seed a campus first (onecard-hub seed)") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise PkiError(f"{path} is not a credentials export ({type(exc).__name__})") from None
    wanted.append(("app", ECARD_APP))
    ca_cert, _ = _load_ca(Path(folder))
    issued = []
    for kind, name in wanted:
        cert_path, key_path = leaf_paths(Path(folder), kind, name)
        if _issued_by(cert_path, ca_cert) and key_path.exists():
            issued.append(IssuedCert(kind, name, cert_path, key_path))
        else:
            issued.append(issue(folder, kind, name))
    return issued


def leaf_paths(folder: Path, kind: str, name: str) -> tuple[Path, Path]:
    base = Path(folder) / FOLDER_OF[kind]
    return base / f"{name}.crt", base / f"{name}.key"


def load_server_tls(folder: Path) -> ServerTls:
    """Reads the CA and the server's certificate and key; a missing file is a PkiError naming it."""
    folder = Path(folder)
    parts = []
    for file in (CA_CERT, SERVER_CERT, SERVER_KEY):
        try:
            parts.append((folder / file).read_bytes())
        except OSError:
            raise PkiError(
                f"{folder / file} not found: create the PKI with `onecard-hub pki init --dir {folder}`"
            ) from None
    return ServerTls(*parts)


# -- internals ---------------------------------------------------------------------------


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _check_host(host: str) -> str:
    if _HOST.fullmatch(host) is None and not _is_ip(host):
        raise PkiError(f"--host {host!r}: not a host name or IP address")
    return host


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _ca_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=False,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def _leaf_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=True,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def _leaf_builder(
    ca_cert: x509.Certificate, key: ec.EllipticCurvePrivateKey, common_name: str, now: datetime.datetime
) -> x509.CertificateBuilder:
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + datetime.timedelta(days=LEAF_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_leaf_key_usage(), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
    )


def _issue_server(
    folder: Path, ca_cert: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, hosts: list[str]
) -> IssuedCert:
    names: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    ]
    for host in hosts:
        name = x509.IPAddress(ipaddress.ip_address(host)) if _is_ip(host) else x509.DNSName(host)
        if name not in names:
            names.append(name)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        _leaf_builder(ca_cert, key, "onecard-hub", _now())
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write_pair(folder / SERVER_CERT, folder / SERVER_KEY, cert, key)
    return IssuedCert("server", "onecard-hub", folder / SERVER_CERT, folder / SERVER_KEY)


def _load_ca(folder: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    try:
        cert = x509.load_pem_x509_certificate((folder / CA_CERT).read_bytes())
        key = load_pem_private_key((folder / CA_KEY).read_bytes(), password=None)
    except FileNotFoundError:
        raise PkiError(f"no CA in {folder}: run `onecard-hub pki init --dir {folder}` first") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise PkiError(f"{folder / CA_KEY} is not an EC key")
    return cert, key


def _issued_by(cert_path: Path, ca_cert: x509.Certificate) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        cert.verify_directly_issued_by(ca_cert)
    except (OSError, ValueError, TypeError, InvalidSignature):
        return False
    return cert.not_valid_after_utc > _now()


def _write_pair(
    cert_path: Path, key_path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> None:
    # The key first: a certificate on disk always has its key beside it.
    write_private(key_path, key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(Encoding.PEM))
