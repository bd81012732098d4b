"""What a terminal needs to work, online and offline (TerminalService.GetConfig).

The configuration is made from what the campus holds in memory: the terminal's registration,
its school's policy, the school's blocklist and the e-card issuer's public key. Its
`config_version` is a short fingerprint of everything but the clock and the blocklist (the
blocklist has a version of its own), so a terminal that sees another version in a heartbeat
answer knows to fetch the configuration again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from onecard_hub.domain.blocklist import Blocklist
from onecard_hub.domain.model import AntiPassback, GateGroup, SchoolPolicy, Terminal, TerminalKind

# How often the hub expects a heartbeat from each terminal.
HEARTBEAT_INTERVAL_S = 30
CONFIG_VERSION_CHARS = 16


@dataclass(frozen=True, slots=True)
class TerminalConfig:
    terminal: Terminal
    policy: SchoolPolicy
    gate_group: GateGroup | None  # gates only
    blocklist_version: int
    blocked_card_nos: list[str]
    ecard_public_key: bytes  # raw 32 bytes
    heartbeat_interval_s: int
    config_version: str

    @property
    def anti_passback(self) -> AntiPassback | None:
        return self.gate_group.anti_passback if self.gate_group is not None else None


def _gate_group(terminal: Terminal, policy: SchoolPolicy) -> GateGroup | None:
    if terminal.kind is not TerminalKind.GATE:
        return None
    return policy.gate_groups.get(terminal.gate_group)


def config_version(
    terminal: Terminal, policy: SchoolPolicy, ecard_public_key: bytes, heartbeat_interval_s: int
) -> str:
    """A short, stable fingerprint of the configuration without its clock and blocklist."""
    group = _gate_group(terminal, policy)
    doc: dict[str, Any] = {
        "terminal": [
            terminal.terminal_id,
            terminal.school_id,
            int(terminal.kind),
            terminal.location,
            terminal.gate_group,
            terminal.merchant_id,
        ],
        "limits": [policy.pin_free_limit_fen, policy.daily_limit_fen, policy.pin_max_failures],
        "meals": [
            [m.name, m.window.start_min, m.window.end_min, m.max_payments] for m in policy.meal_windows
        ],
        "gate": None
        if group is None
        else [
            group.anti_passback.value,
            sorted(
                [student_group.value, [[w.start_min, w.end_min] for w in windows]]
                for student_group, windows in group.windows.items()
            ),
        ],
        "offline": [
            policy.offline_per_payment_fen,
            policy.offline_per_card_day_fen,
            policy.offline_max_stored,
        ],
        "ecard_public_key": ecard_public_key.hex(),
        "heartbeat_interval_s": heartbeat_interval_s,
    }
    text = json.dumps(doc, separators=(",", ":"), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:CONFIG_VERSION_CHARS]


def terminal_config(
    terminal: Terminal,
    policy: SchoolPolicy,
    blocklist: Blocklist,
    ecard_public_key: bytes,
    heartbeat_interval_s: int = HEARTBEAT_INTERVAL_S,
) -> TerminalConfig:
    snapshot = blocklist.snapshot()  # as of the last durable change, as WatchBlocklist sends it
    return TerminalConfig(
        terminal=terminal,
        policy=policy,
        gate_group=_gate_group(terminal, policy),
        blocklist_version=snapshot.version,
        blocked_card_nos=snapshot.card_nos,
        ecard_public_key=ecard_public_key,
        heartbeat_interval_s=heartbeat_interval_s,
        config_version=config_version(terminal, policy, ecard_public_key, heartbeat_interval_s),
    )
