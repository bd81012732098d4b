"""Misuse signals over a real server: a card used at two canteen windows, two gates or two schools
too close in time is flagged with both taps as evidence (the taps themselves are not declined for
it), listed for the card office within its scope, and kept across a restart."""

from __future__ import annotations

from pathlib import Path

import pytest

from onecard.admin.v1 import admin_service_pb2 as admin_pb
from onecard.auth.v1 import authorization_service_pb2 as auth_pb
from onecard_client import AdminClient, ClientConfig
from onecard_client.campus import CampusCredentials
from onecard_client.errors import InvalidArgumentError, NotFoundError, PermissionDeniedError
from onecard_hub.domain.clock import ManualClock
from onecard_hub.server import RunningHub, running_hub
from tests.conftest import db_count, hub_config
from tests.helpers import Campus, name

BUY, ENTRY, EXIT = auth_pb.SCENE_CANTEEN_PURCHASE, auth_pb.SCENE_GATE_ENTRY, auth_pb.SCENE_GATE_EXIT
ADMIN = "province-admin"


def admin(hub: RunningHub, operator_id: str = ADMIN) -> AdminClient:
    return AdminClient(operator_id, ClientConfig(target=hub.target))


async def signals(hub: RunningHub, school_id: str, **kw: int) -> list[admin_pb.MisuseSignal]:
    async with admin(hub) as client:
        return list((await client.list_misuse_signals(school_id, **kw)).signals)


async def test_two_canteen_windows_within_two_minutes(campus: Campus, hub: RunningHub) -> None:
    card = campus.card()
    first_pos, second_pos = campus.pos(index=0), campus.pos(index=1)
    assert first_pos.merchant_id != second_pos.merchant_id
    first = await campus.send(campus.chip(card, first_pos, BUY, amount_fen=800))
    first_ms = campus.clock.now_ms()
    campus.clock.advance(seconds=60)
    second = await campus.send(campus.chip(card, second_pos, BUY, amount_fen=700))
    assert (name(first.decline_reason), name(second.decline_reason)) == ("UNSPECIFIED", "UNSPECIFIED")
    found = await signals(hub, campus.school())
    assert len(found) == 1
    signal = found[0]
    assert (signal.kind, signal.card_no, signal.school_id) == (
        admin_pb.MISUSE_KIND_TWO_CANTEEN_WINDOWS,
        card.card_no,
        campus.school(),
    )
    assert signal.student_id == card.student_id and "*" in signal.holder_name_masked
    assert (signal.first.terminal_id, signal.first.place, signal.first.at.ToMilliseconds()) == (
        first_pos.terminal_id,
        first_pos.merchant_id,
        first_ms,
    )
    assert (signal.second.terminal_id, signal.second.scene, signal.gap_ms) == (
        second_pos.terminal_id,
        BUY,
        60_000,
    )

    campus.clock.advance(seconds=30)  # the same window again: not a second place
    await campus.send(campus.chip(card, second_pos, BUY, amount_fen=300))
    campus.clock.advance(minutes=3)  # another window, but well apart
    await campus.send(campus.chip(card, first_pos, BUY, amount_fen=300))
    assert len(await signals(hub, campus.school())) == 1


async def test_two_gates_and_two_schools(campus: Campus, hub: RunningHub) -> None:
    card = campus.card(group="boarder")
    main, side = campus.gate(group="main"), campus.gate(group="side")
    entered = await campus.send(campus.chip(card, main, ENTRY))
    campus.clock.advance(seconds=30)
    left = await campus.send(campus.chip(card, side, EXIT))
    assert (name(entered.decline_reason), name(left.decline_reason)) == ("UNSPECIFIED", "UNSPECIFIED")
    campus.clock.advance(minutes=5)
    foreign = await campus.send(campus.chip(card, campus.pos(school=1), BUY, amount_fen=500))
    assert name(foreign.decline_reason) == "CARD_OTHER_SCHOOL"  # declined as ever, and flagged
    found = await signals(hub, campus.school())
    assert [s.kind for s in found] == [admin_pb.MISUSE_KIND_TWO_SCHOOLS, admin_pb.MISUSE_KIND_TWO_GATES]
    schools, gates = found
    assert (gates.first.place, gates.second.place) == ("main", "side")
    assert (schools.first.school_id, schools.second.school_id) == (campus.school(0), campus.school(1))
    assert schools.gap_ms == 5 * 60_000
    assert await signals(hub, campus.school(1)) == []  # listed for the card's own school
    since = await signals(hub, campus.school(), since_ms=schools.second.at.ToMilliseconds())
    assert [s.signal_id for s in since] == [schools.signal_id]
    assert [s.signal_id for s in await signals(hub, "", limit=1)] == [schools.signal_id]


async def test_scope_and_bad_input(campus: Campus, hub: RunningHub) -> None:
    own, other = campus.school(0), campus.school(1)
    async with admin(hub, f"{own}-clerk") as clerk:
        assert list((await clerk.list_misuse_signals(own)).signals) == []
        with pytest.raises(PermissionDeniedError):
            await clerk.list_misuse_signals(other)
        with pytest.raises(InvalidArgumentError) as missing:
            await clerk.list_misuse_signals("")
        assert missing.value.field == "school_id"
    async with admin(hub) as province:
        with pytest.raises(NotFoundError):
            await province.list_misuse_signals("no-such-school")
        with pytest.raises(InvalidArgumentError) as limit:
            await province.list_misuse_signals(own, limit=5_000)
        assert limit.value.field == "limit"


async def test_signals_are_journaled_with_the_tap_and_kept(
    campus_dir: Path, clock: ManualClock, creds: CampusCredentials
) -> None:
    config = hub_config(campus_dir)
    async with running_hub(config, clock) as running:
        campus = Campus(creds, clock, running.target)
        card = campus.card()
        await campus.send(campus.chip(card, campus.pos(index=0), BUY, amount_fen=500))
        clock.advance(seconds=10)
        await campus.send(campus.chip(card, campus.pos(index=1), BUY, amount_fen=500))
        await campus.close()
        before = await signals(running, campus.school())
    assert db_count(campus_dir, "misuse_signals") == 1
    async with running_hub(config, clock) as running:
        assert await signals(running, campus.school()) == before


async def test_the_windows_are_configurable(
    campus_dir: Path, clock: ManualClock, creds: CampusCredentials
) -> None:
    async with running_hub(hub_config(campus_dir, misuse_windows_s=(120.0, 30.0, 600.0)), clock) as running:
        campus = Campus(creds, clock, running.target)
        card = campus.card()
        await campus.send(campus.chip(card, campus.pos(index=0), BUY, amount_fen=500))
        clock.advance(seconds=60)  # two windows 60 s apart: outside a 30 s window
        await campus.send(campus.chip(card, campus.pos(index=1), BUY, amount_fen=500))
        clock.advance(seconds=20)
        await campus.send(campus.chip(card, campus.pos(index=0), BUY, amount_fen=500))
        await campus.close()
        found = await signals(running, campus.school())
    assert [(s.kind, s.gap_ms) for s in found] == [(admin_pb.MISUSE_KIND_TWO_CANTEEN_WINDOWS, 20_000)]
