"""Opening channels the same way for the async and the sync clients: TLS or plain text,
keepalive, and who the caller says it is."""

from __future__ import annotations

import grpc

from onecard_client._config import ClientConfig

TERMINAL_HEADER = "onecard-terminal-id"
OPERATOR_HEADER = "onecard-operator-id"

Metadata = tuple[tuple[str, str], ...]


def channel_options(config: ClientConfig) -> list[tuple[str, str | int]]:
    options: list[tuple[str, str | int]] = [
        ("grpc.keepalive_time_ms", config.keepalive_ms),
        ("grpc.keepalive_timeout_ms", config.keepalive_timeout_ms),
        # Ping only while calls are in flight: the hub refuses idle pings (too_many_pings).
        ("grpc.keepalive_permit_without_calls", 0),
    ]
    if config.tls is not None:
        options.append(("grpc.ssl_target_name_override", config.tls.server_name))
    return options


def channel_credentials(config: ClientConfig) -> grpc.ChannelCredentials | None:
    """The TLS credentials (files read now, so a missing one fails at construction), or None."""
    if config.tls is None:
        return None
    ca, key, cert = config.tls.read()
    return grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)


def identity_metadata(config: ClientConfig, header: str, value: str) -> Metadata:
    """Plain text: the caller names itself in a header. TLS: the certificate names it."""
    if config.tls is not None or not header:
        return ()
    return ((header, value),)


def open_aio_channel(config: ClientConfig) -> grpc.aio.Channel:
    credentials = channel_credentials(config)
    options = channel_options(config)
    if credentials is None:
        return grpc.aio.insecure_channel(config.target, options=options)
    return grpc.aio.secure_channel(config.target, credentials, options=options)


def open_sync_channel(config: ClientConfig) -> grpc.Channel:
    credentials = channel_credentials(config)
    options = channel_options(config)
    if credentials is None:
        return grpc.insecure_channel(config.target, options=options)
    return grpc.secure_channel(config.target, credentials, options=options)
