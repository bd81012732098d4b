"""Use cases of the terminal fleet: a terminal's configuration and its heartbeat.

Both read only what the hub holds in memory (no SQL on the call path). A heartbeat updates the
terminal in memory and is journaled through the writer like every other row, durable before the
answer, so the card office sees last-seen and software version after a restart too.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from onecard_hub.domain.model import Terminal
from onecard_hub.domain.terminal_config import (
    HEARTBEAT_INTERVAL_S,
    TerminalConfig,
    config_version,
    terminal_config,
)
from onecard_hub.hub import Hub
from onecard_hub.store.records import Batch, TerminalStatusRow


@dataclass(frozen=True, slots=True)
class HeartbeatAnswer:
    now_ms: int
    config_version: str
    blocklist_version: int


def ecard_public_key_raw(hub: Hub) -> bytes:
    return hub.keys.ecard_public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def config_of(hub: Hub, terminal: Terminal) -> TerminalConfig:
    policy = hub.campus.schools[terminal.school_id].policy
    return terminal_config(
        terminal, policy, hub.campus.blocklist(terminal.school_id), ecard_public_key_raw(hub)
    )


async def heartbeat(
    hub: Hub, terminal: Terminal, software_version: str, offline_pending: int
) -> HeartbeatAnswer:
    hub.check_healthy()
    hub.writer.check_accepting()
    now = hub.clock.now_ms()
    terminal.last_seen_ms = now
    terminal.software_version = software_version
    terminal.offline_pending = offline_pending
    row = TerminalStatusRow(terminal.terminal_id, now, software_version, offline_pending)
    await hub.writer.submit(Batch(terminal_status=[row]))
    policy = hub.campus.schools[terminal.school_id].policy
    return HeartbeatAnswer(
        now,
        config_version(terminal, policy, ecard_public_key_raw(hub), HEARTBEAT_INTERVAL_S),
        hub.campus.blocklist(terminal.school_id).durable_version,
    )
