"""The client's configuration: where the hub is, how to reach it, how long to wait, how to retry.

Frozen dataclasses, built once by the caller and passed explicitly to every client.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from onecard_client.errors import TLSConfigurationError

# PKI folder layout (`onecard-hub pki`): one subfolder per kind of certificate holder.
_CA_FILE = "ca.crt"
_KIND_FOLDERS = {"terminal": "terminals", "operator": "operators", "app": "apps"}


@dataclass(frozen=True)
class TLSConfig:
    """Mutual TLS: the hub's CA, and this client's certificate and key (PEM files).

    With TLS the hub learns who calls from the certificate, so no identity header is sent.
    `server_name` is the name the hub's certificate must carry (the hub's PKI puts
    `localhost` and 127.0.0.1 in it, so any address of a local hub verifies).
    """

    ca_cert: Path
    cert: Path
    key: Path
    server_name: str = "localhost"

    @classmethod
    def for_terminal(
        cls, pki_dir: str | Path, terminal_id: str, *, server_name: str = "localhost"
    ) -> TLSConfig:
        return cls._issued(pki_dir, "terminal", terminal_id, server_name)

    @classmethod
    def for_operator(
        cls, pki_dir: str | Path, operator_id: str, *, server_name: str = "localhost"
    ) -> TLSConfig:
        return cls._issued(pki_dir, "operator", operator_id, server_name)

    @classmethod
    def for_app(cls, pki_dir: str | Path, name: str, *, server_name: str = "localhost") -> TLSConfig:
        return cls._issued(pki_dir, "app", name, server_name)

    @classmethod
    def _issued(cls, pki_dir: str | Path, kind: str, name: str, server_name: str) -> TLSConfig:
        folder = Path(pki_dir)
        holder = folder / _KIND_FOLDERS[kind]
        return cls(
            ca_cert=folder / _CA_FILE,
            cert=holder / f"{name}.crt",
            key=holder / f"{name}.key",
            server_name=server_name,
        )

    def read(self) -> tuple[bytes, bytes, bytes]:
        """The PEM bytes (CA, key, certificate); a missing or unreadable file is a TLSConfigurationError."""
        try:
            return self.ca_cert.read_bytes(), self.key.read_bytes(), self.cert.read_bytes()
        except OSError as exc:
            raise TLSConfigurationError(f"cannot read a TLS file: {exc.filename}: {exc.strerror}") from None


@dataclass(frozen=True)
class RetryConfig:
    """Retries of UNAVAILABLE only (every other failure is raised at once).

    Each retry resends the very same request message, so a mutating call keeps its
    `request_id` and the hub answers a retry of something it already did with the
    original response. Delays grow from `initial_backoff_s` by `multiplier` up to
    `max_backoff_s`, each multiplied by a random factor in [0.5, 1.5).
    """

    attempts: int = 4  # the first try included; 1 = never retry
    initial_backoff_s: float = 0.05
    max_backoff_s: float = 1.0
    multiplier: float = 2.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("RetryConfig.attempts must be at least 1")
        if self.initial_backoff_s < 0 or self.max_backoff_s < self.initial_backoff_s:
            raise ValueError("RetryConfig needs 0 <= initial_backoff_s <= max_backoff_s")
        if self.multiplier < 1:
            raise ValueError("RetryConfig.multiplier must be at least 1")


@dataclass(frozen=True)
class ClientConfig:
    """How a client reaches the hub.

    `deadline_s` is each attempt's deadline unless a call passes its own `deadline_s`.
    `tls=None` is plain text: the client then names itself in metadata headers, which the
    hub accepts only when it serves plain text (local demos and tests).
    """

    target: str = "127.0.0.1:50051"
    deadline_s: float = 2.0
    retry: RetryConfig = field(default_factory=RetryConfig)
    keepalive_ms: int = 30_000
    keepalive_timeout_ms: int = 10_000
    tls: TLSConfig | None = None

    def __post_init__(self) -> None:
        if self.deadline_s <= 0:
            raise ValueError("ClientConfig.deadline_s must be positive")
