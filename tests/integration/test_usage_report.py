"""AdminService.GetUsageReport: counts per school from memory, taps of the last 7 days by scene,
scope, and the same report after a restart (rebuilt from the journal)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from onecard.admin.v1 import admin_service_pb2 as pb
from onecard.auth.v1 import authorization_service_pb2 as auth_pb
from onecard_client import AdminClient, ClientConfig, NotFoundError, PermissionDeniedError
from onecard_client.campus import CampusCredentials
from onecard_hub.domain.clock import ManualClock
from onecard_hub.server import RunningHub, running_hub
from tests.conftest import hub_config
from tests.helpers import Campus
from tests.integration.scene_taps import borrow

ADMIN = "province-admin"
ENTRY = auth_pb.SCENE_GATE_ENTRY
BUY = auth_pb.SCENE_CANTEEN_PURCHASE


def _expected(campus_dir: Path, school_id: str) -> dict[str, int]:
    """What the report must say before any tap, counted from the database."""
    with sqlite3.connect(campus_dir / "hub.db") as db:
        enrolled = {
            r[0]
            for r in db.execute(
                "SELECT student_id FROM students WHERE school_id = ? AND enrollment = 'enrolled'",
                (school_id,),
            )
        }
        current: dict[str, tuple[int, str]] = {}
        for student_id, status, ecard, bank in db.execute(
            "SELECT student_id, status, ecard_issued, bank_status FROM cards ORDER BY rowid"
        ):
            if student_id in enrolled and status not in ("replaced", "cancelled"):
                current[student_id] = (ecard, bank)
    return {
        "students": len(enrolled),
        "cards_issued": len(current),
        "ecards_issued": sum(1 for e, _ in current.values() if e),
        "bank_function_activated": sum(1 for _, b in current.values() if b != "not_activated"),
    }


def _taps(school: pb.SchoolUsage) -> dict[str, tuple[int, int]]:
    return {auth_pb.Scene.Name(t.scene).removeprefix("SCENE_"): (t.approved, t.declined) for t in school.taps}


async def _report(target: str, operator_id: str = ADMIN, school_id: str = "") -> pb.GetUsageReportResponse:
    async with AdminClient(operator_id, ClientConfig(target=target)) as admin:
        return await admin.usage_report(school_id)


async def test_counts_come_from_the_campus_and_taps_show_up_by_scene(
    hub: RunningHub, campus: Campus, campus_dir: Path, clock: ManualClock
) -> None:
    school_id = campus.school()
    before = await _report(hub.target, school_id=school_id)
    (school,) = before.schools
    expected = _expected(campus_dir, school_id)
    assert {k: getattr(school, k) for k in expected} == expected
    assert expected["students"] > 0
    assert school.students_active == 0 and school.usage_rate == 0
    assert set(_taps(school)) == {
        "GATE_ENTRY",
        "GATE_EXIT",
        "CANTEEN_PURCHASE",
        "LIBRARY_BORROW",
        "LIBRARY_RETURN",
        "EXAM_CHECK_IN",
    }
    assert before.window_days == 7
    assert (before.first_date, before.last_date) == ("2026-11-18", "2026-11-24")

    walker, buyer = campus.card(), campus.card(skip=1)
    lost = campus.card(status="lost")
    assert (
        await campus.send(campus.chip(walker, campus.gate(), ENTRY))
    ).decision == auth_pb.DECISION_APPROVED
    assert (await campus.send(campus.qr(buyer, campus.pos(), BUY, amount_fen=800))).decision == (
        auth_pb.DECISION_APPROVED
    )
    assert (await campus.send(campus.qr(buyer, campus.pos(), BUY, amount_fen=700))).decision == (
        auth_pb.DECISION_APPROVED
    )
    assert (await campus.send(campus.chip(lost, campus.gate(), ENTRY))).decision == auth_pb.DECISION_DECLINED

    (school,) = (await _report(hub.target, school_id=school_id)).schools
    assert school.students_active == 2
    assert school.usage_rate == pytest.approx(round(2 / expected["students"], 4))
    taps = _taps(school)
    assert taps["GATE_ENTRY"] == (1, 1)
    assert taps["CANTEEN_PURCHASE"] == (2, 0)
    assert taps["GATE_EXIT"] == (0, 0)

    # Six days later the taps are still in the window; a seventh day pushes them out.
    clock.advance(minutes=6 * 24 * 60)
    (school,) = (await _report(hub.target, school_id=school_id)).schools
    assert school.students_active == 2 and _taps(school)["CANTEEN_PURCHASE"] == (2, 0)
    clock.advance(minutes=24 * 60)
    (school,) = (await _report(hub.target, school_id=school_id)).schools
    assert school.students_active == 0 and _taps(school)["CANTEEN_PURCHASE"] == (0, 0)


async def test_scope_clerk_own_school_province_all(hub: RunningHub, creds: CampusCredentials) -> None:
    first, second = creds.schools[0], creds.schools[1]
    everything = await _report(hub.target)
    assert [s.school_id for s in everything.schools] == sorted(creds.schools)
    own = await _report(hub.target, f"{first}-clerk")
    assert [s.school_id for s in own.schools] == [first]
    named = await _report(hub.target, f"{first}-clerk", first)
    assert named.schools == own.schools
    with pytest.raises(PermissionDeniedError) as denied:
        await _report(hub.target, f"{first}-clerk", second)
    assert denied.value.reason == "OTHER_SCHOOL"
    with pytest.raises(NotFoundError) as missing:
        await _report(hub.target, ADMIN, "no-such-school")
    assert missing.value.field == "school_id"


async def test_the_report_survives_a_restart(
    campus_dir: Path, creds: CampusCredentials, clock: ManualClock
) -> None:
    async with running_hub(hub_config(campus_dir), clock) as running:
        campus = Campus(creds, clock, running.target)
        try:
            card = campus.card()
            await campus.send(campus.chip(card, campus.gate(), ENTRY))
            await campus.send(campus.chip(campus.card(status="lost"), campus.gate(), ENTRY))
            clock.advance(minutes=24 * 60)  # the next day: a second business day in the window
            await campus.send(campus.qr(campus.card(skip=2), campus.pos(), BUY, amount_fen=500))
        finally:
            await campus.close()
        before = await _report(running.target)
    async with running_hub(hub_config(campus_dir), clock) as running:
        after = await _report(running.target)
    assert after.schools == before.schools
    school = next(s for s in after.schools if s.school_id == creds.schools[0])
    assert school.students_active == 2
    assert _taps(school)["GATE_ENTRY"] == (1, 1)
    assert _taps(school)["CANTEEN_PURCHASE"] == (1, 0)


async def test_library_taps_count_live_and_after_a_restart(
    campus_dir: Path, creds: CampusCredentials, clock: ManualClock
) -> None:
    async with running_hub(hub_config(campus_dir), clock) as running:
        campus = Campus(creds, clock, running.target)
        try:
            reader = campus.card(skip=3)
            desk_id = borrow(campus, reader, "B-77").terminal_id
            lent = await campus.client(desk_id).borrow(borrow(campus, reader, "B-77"))
            assert lent.decision == auth_pb.DECISION_APPROVED
            refused = await campus.client(desk_id).borrow(borrow(campus, campus.card(status="lost"), "B-78"))
            assert refused.decision == auth_pb.DECISION_DECLINED
        finally:
            await campus.close()
        live = await _report(running.target, school_id=creds.schools[0])
    (school,) = live.schools
    assert _taps(school)["LIBRARY_BORROW"] == (1, 1) and school.students_active == 1
    async with running_hub(hub_config(campus_dir), clock) as running:
        assert (await _report(running.target, school_id=creds.schools[0])).schools == live.schools
