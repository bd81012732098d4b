"""Pilot first, then everyone: the province sets a school's live scenes at run time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from onecard.auth.v1 import authorization_service_pb2 as auth_pb
from onecard_client import (
    AdminClient,
    ClientConfig,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
)
from onecard_client.campus import CampusCredentials
from onecard_hub.domain.clock import ManualClock
from onecard_hub.server import RunningHub, running_hub
from tests.conftest import hub_config
from tests.helpers import Campus, name

BUY, ENTRY, EXIT = auth_pb.SCENE_CANTEEN_PURCHASE, auth_pb.SCENE_GATE_ENTRY, auth_pb.SCENE_GATE_EXIT
GATES = [ENTRY, EXIT]


@pytest.fixture
async def province(hub: RunningHub) -> AsyncIterator[AdminClient]:
    async with AdminClient("province-admin", ClientConfig(target=hub.target)) as client:
        yield client


async def _buy(campus: Campus, school: int = 0, skip: int = 0) -> str:
    card = campus.card(school, skip=skip)
    answer = await campus.send(campus.chip(card, campus.pos(school), BUY, amount_fen=300))
    return "APPROVED" if answer.decision == auth_pb.DECISION_APPROVED else name(answer.decline_reason)


async def test_a_scene_not_live_is_declined_until_the_province_turns_it_on(
    province: AdminClient, campus: Campus
) -> None:
    school = campus.school()
    shown = (await province.get_school(school)).school
    assert set(shown.live_scenes) >= {ENTRY, EXIT, BUY}  # never restricted: every scene
    assert await _buy(campus) == "APPROVED"

    gates_only = await province.set_live_scenes("pilot-1", school, [EXIT, ENTRY, ENTRY])
    assert list(gates_only.school.live_scenes) == GATES
    assert await _buy(campus) == "SCENE_NOT_LIVE"
    qr = await campus.send(campus.qr(campus.card(), campus.pos(), BUY, amount_fen=300))
    assert name(qr.decline_reason) == "SCENE_NOT_LIVE"
    entry = await campus.send(campus.chip(campus.card(skip=1), campus.gate(), ENTRY))
    assert entry.decision == auth_pb.DECISION_APPROVED  # gates are live
    assert await _buy(campus, school=1) == "APPROVED"  # another school is not touched

    assert await province.set_live_scenes("pilot-1", school, [EXIT, ENTRY, ENTRY]) == gates_only  # replay
    with pytest.raises(FailedPreconditionError) as reused:
        await province.set_live_scenes("pilot-1", school, [BUY])
    assert reused.value.reason == "IDEMPOTENCY_KEY_REUSED"

    everything = await province.set_live_scenes("pilot-2", school, [ENTRY, EXIT, BUY])
    assert list(everything.school.live_scenes) == [ENTRY, EXIT, BUY]
    assert await _buy(campus) == "APPROVED"

    nothing = await province.set_live_scenes("pilot-3", school, [])
    assert list(nothing.school.live_scenes) == []
    exit_ = await campus.send(campus.chip(campus.card(skip=1), campus.gate(), EXIT))
    assert name(exit_.decline_reason) == "SCENE_NOT_LIVE"


async def test_only_the_province_sets_live_scenes(
    hub: RunningHub, province: AdminClient, campus: Campus
) -> None:
    school = campus.school()
    async with AdminClient(f"{school}-clerk", ClientConfig(target=hub.target)) as clerk:
        with pytest.raises(PermissionDeniedError) as refused:
            await clerk.set_live_scenes("pilot-clerk", school, [ENTRY])
        assert refused.value.reason == "ROLE_NOT_ALLOWED"
        mine = (await clerk.get_school(school)).school  # a clerk may look at their own school
        assert mine.school_id == school and mine.students_enrolled > 0
        with pytest.raises(PermissionDeniedError):
            await clerk.get_school(campus.school(1))
    assert await _buy(campus) == "APPROVED"
    with pytest.raises(InvalidArgumentError) as unknown:
        await province.set_live_scenes("pilot-4", school, [ENTRY, 99])
    assert unknown.value.field == "scenes[1]"
    with pytest.raises(InvalidArgumentError) as unspecified:
        await province.set_live_scenes("pilot-5", school, [0])
    assert unspecified.value.field == "scenes[0]"
    with pytest.raises(NotFoundError):
        await province.set_live_scenes("pilot-6", "no-such-school", [ENTRY])
    with pytest.raises(NotFoundError):
        await province.get_school("no-such-school")
    with pytest.raises(InvalidArgumentError) as no_school:
        await province.get_school("")
    assert no_school.value.field == "school_id"


async def test_get_school_summarises_policy_and_students(province: AdminClient, campus: Campus) -> None:
    school = (await province.get_school(campus.school())).school
    assert school.name
    assert school.policy.pin_free_limit_fen == 5_000
    assert [m.split()[0] for m in school.policy.meal_windows] == ["breakfast", "lunch", "dinner"]
    assert any(g.startswith("main (") for g in school.policy.gate_groups)
    assert school.students_suspended > 0  # the seed suspends a few
    assert school.students_graduated == school.students_withdrawn == 0


async def test_live_scenes_survive_a_restart(campus_dir: Path, clock: ManualClock) -> None:
    creds = CampusCredentials.load(campus_dir / "hub.keys")
    school = creds.schools[0]
    async with running_hub(hub_config(campus_dir), clock) as running:
        province = AdminClient("province-admin", ClientConfig(target=running.target))
        await province.set_live_scenes("pilot-r", school, [ENTRY, EXIT])
        await province.close()
    async with running_hub(hub_config(campus_dir), clock) as running:
        c = Campus(creds, clock, running.target)
        assert await _buy(c) == "SCENE_NOT_LIVE"
        assert await _buy(c, school=1) == "APPROVED"
        async with AdminClient("province-admin", ClientConfig(target=running.target)) as province:
            assert list((await province.get_school(school)).school.live_scenes) == GATES
            replay = await province.set_live_scenes(
                "pilot-r", school, [ENTRY, EXIT]
            )  # idempotent after restart
            assert list(replay.school.live_scenes) == GATES
        await c.close()
