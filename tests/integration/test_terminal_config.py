"""A terminal's configuration download and its heartbeat."""

from __future__ import annotations

import json
import secrets
import sqlite3
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from onecard.terminal.v1 import terminal_service_pb2 as pb
from onecard_client.campus import CampusCredentials
from onecard_client.client import AdminClient, ClientConfig, TerminalClient
from onecard_client.credentials import mint_qr_token, parse_qr_token, verify_qr_signature
from onecard_client.errors import InvalidArgumentError
from onecard_hub.domain.clock import ManualClock, hhmm
from onecard_hub.domain.model import CardStatus
from onecard_hub.server import RunningHub, running_hub
from onecard_hub.store.records import Batch
from tests.conftest import hub_config, set_policy
from tests.helpers import Campus


async def test_a_gate_gets_its_windows_limits_blocklist_and_key(
    campus: Campus, hub: RunningHub, clock: ManualClock
) -> None:
    gate = campus.gate()
    config = await campus.client(gate).get_config()
    assert (config.terminal_id, config.school_id, config.kind, config.gate_group) == (
        gate.terminal_id,
        gate.school_id,
        1,
        "main",
    )
    assert config.clock.now.ToMilliseconds() == clock.now_ms()
    assert config.clock.time_zone == "Asia/Shanghai"
    assert (config.pin_free_limit_fen, config.daily_limit_fen, config.pin_max_failures) == (5_000, 30_000, 3)
    assert config.anti_passback == pb.ANTI_PASSBACK_MODE_HARD
    windows = {
        g.student_group: [(w.start_minute, w.end_minute) for w in g.windows] for g in config.gate_windows
    }
    assert windows == {"boarder": [(hhmm("06:00"), hhmm("23:00"))], "day": [(hhmm("06:00"), hhmm("22:00"))]}
    assert [m.name for m in config.meal_windows] == ["breakfast", "lunch", "dinner"]
    assert (config.offline.per_payment_fen, config.offline.per_card_day_fen, config.offline.max_stored) == (
        2_000,
        5_000,
        5_000,
    )
    assert config.heartbeat_interval_s > 0
    assert len(config.config_version) == 16

    lost = {c.card_no for c in campus.creds.cards_of(gate.school_id) if c.status != "active"}
    assert lost and set(config.blocked_card_nos) == lost
    assert config.blocklist_version > 0

    public_key = Ed25519PublicKey.from_public_bytes(config.ecard_public_key)
    card = campus.card()
    token = mint_qr_token(
        card_no=card.card_no,
        ecard_key=card.ecard_key,
        signing_key=campus.creds.signing_key,
        issued_ms=clock.now_ms(),
        nonce=secrets.token_bytes(8),
    )
    assert verify_qr_signature(public_key, parse_qr_token(token))
    assert await campus.client(gate).get_config() == config  # stable while nothing changes


async def test_a_pos_gets_its_merchant_and_no_gate_windows(campus: Campus) -> None:
    pos, other = campus.pos(), campus.pos(index=1)
    config = await campus.client(pos).get_config()
    assert (config.kind, config.merchant_id) == (2, pos.merchant_id)
    assert config.anti_passback == pb.ANTI_PASSBACK_MODE_UNSPECIFIED
    assert not config.gate_windows
    assert [(m.name, m.max_payments) for m in config.meal_windows][1] == ("lunch", 3)
    other_config = await campus.client(other).get_config()
    assert other_config.config_version != config.config_version
    assert other_config.blocklist_version == config.blocklist_version  # one blocklist per school
    foreign = await campus.client(campus.pos(school=1)).get_config()
    assert not set(foreign.blocked_card_nos) & set(config.blocked_card_nos)


async def test_the_blocklist_follows_card_status(campus: Campus, hub: RunningHub) -> None:
    gate = campus.gate()
    client = campus.client(gate)
    before = await client.get_config()
    card = campus.card()
    changes = hub.hub.campus.set_card_status(card.card_no, CardStatus.LOST, at_ms=1)
    assert (await client.get_config()).blocklist_version == before.blocklist_version  # not durable yet
    await hub.hub.writer.submit(Batch(blocklist=changes))  # as a loss report journals it
    after = await client.get_config()
    assert card.card_no in after.blocked_card_nos
    assert after.blocklist_version == before.blocklist_version + 1
    assert after.config_version == before.config_version
    beat = await client.heartbeat("gate-fw 1.0", 0)
    assert beat.blocklist_version == after.blocklist_version
    changes = hub.hub.campus.set_card_status(card.card_no, CardStatus.ACTIVE, at_ms=2)
    await hub.hub.writer.submit(Batch(blocklist=changes))
    restored = await client.get_config()
    assert card.card_no not in restored.blocked_card_nos
    assert restored.blocklist_version == before.blocklist_version + 2  # versions only grow


async def test_offline_limits_come_from_the_school_policy(campus_dir: Path, clock: ManualClock) -> None:
    set_policy(
        campus_dir, offline_per_payment_fen=1_500, offline_per_card_day_fen=4_000, offline_max_stored=900
    )
    creds = CampusCredentials.load(campus_dir / "hub.keys")
    pos = Campus(creds, clock, "").pos()
    async with (
        running_hub(hub_config(campus_dir), clock) as running,
        TerminalClient(pos.terminal_id, ClientConfig(target=running.target)) as client,
    ):
        limits = (await client.get_config()).offline
        changed = (await client.get_config()).config_version
    assert (limits.per_payment_fen, limits.per_card_day_fen, limits.max_stored) == (1_500, 4_000, 900)
    # A policy written before the offline limits existed reads with the defaults.
    with sqlite3.connect(campus_dir / "hub.db") as db:
        for school_id, text in db.execute("SELECT school_id, policy_json FROM schools").fetchall():
            doc = {k: v for k, v in json.loads(text).items() if not k.startswith("offline_")}
            db.execute("UPDATE schools SET policy_json = ? WHERE school_id = ?", (json.dumps(doc), school_id))
    async with (
        running_hub(hub_config(campus_dir), clock) as running,
        TerminalClient(pos.terminal_id, ClientConfig(target=running.target)) as client,
    ):
        config = await client.get_config()
    assert (config.offline.per_payment_fen, config.offline.per_card_day_fen, config.offline.max_stored) == (
        2_000,
        5_000,
        5_000,
    )
    assert config.config_version != changed


async def test_heartbeats_are_recorded_and_survive_a_restart(campus_dir: Path, clock: ManualClock) -> None:
    creds = CampusCredentials.load(campus_dir / "hub.keys")
    pos = Campus(creds, clock, "").pos()
    async with (
        running_hub(hub_config(campus_dir), clock) as running,
        TerminalClient(pos.terminal_id, ClientConfig(target=running.target)) as client,
    ):
        config = await client.get_config()
        await client.heartbeat("pos-fw 2.3.1", 0)
        clock.advance(seconds=30)
        beat = await client.heartbeat("pos-fw 2.3.1", 17)
        assert beat.now.ToMilliseconds() == clock.now_ms()
        assert (beat.config_version, beat.blocklist_version) == (
            config.config_version,
            config.blocklist_version,
        )
        with pytest.raises(InvalidArgumentError) as caught:
            await client.heartbeat("x" * 65, 0)
        assert caught.value.field == "software_version"
        with pytest.raises(InvalidArgumentError):
            await client.heartbeat("ok", -1)
    async with (
        running_hub(hub_config(campus_dir), clock) as running,
        AdminClient(f"{pos.school_id}-clerk", ClientConfig(target=running.target)) as clerk,
    ):
        terminal = (await clerk.get_terminal(pos.terminal_id)).terminal
    assert (terminal.software_version, terminal.offline_pending) == ("pos-fw 2.3.1", 17)
    assert terminal.last_seen.ToMilliseconds() == clock.now_ms()
