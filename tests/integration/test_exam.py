"""Exam scene (考试管理) over a real hub and real SQLite: sessions, rosters with a per-row report,
check-in once in the right room inside the window, attendance, closing, scope, bad input and a
restart."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from onecard.auth.v1 import authorization_service_pb2 as auth_pb
from onecard.exam.v1 import exam_service_pb2 as pb
from onecard_client import (
    AlreadyExistsError,
    ClientConfig,
    ExamAdminClient,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
)
from onecard_client.campus import CardCredential, TerminalInfo
from onecard_hub.domain.clock import ManualClock
from onecard_hub.server import RunningHub, running_hub
from tests.conftest import hub_config
from tests.helpers import Campus, name
from tests.integration.scene_taps import CHECK_IN, check_in, desk, tablets

APPROVED, DECLINED = auth_pb.DECISION_APPROVED, auth_pb.DECISION_DECLINED
MINUTE_MS = 60_000
PROBLEM = pb.RosterRowProblem


@pytest.fixture
async def clerk(hub: RunningHub, campus: Campus) -> AsyncIterator[ExamAdminClient]:
    async with ExamAdminClient(f"{campus.school()}-clerk", ClientConfig(target=hub.target)) as client:
        yield client


def session(
    campus: Campus, session_id: str = "S-1", *, starts_in_min: int = 20, school: int = 0
) -> pb.ExamSession:
    """Starts `starts_in_min` from now (check-in: 30 min before to 15 min after), 120 minutes long,
    in the rooms of the school's two seeded tablets."""
    start = campus.clock.now_ms() + starts_in_min * MINUTE_MS
    message = pb.ExamSession(
        session_id=session_id,
        school_id=campus.school(school),
        subject="电工基础",
        rooms=[t.location for t in tablets(campus, school)],
    )
    message.start.FromMilliseconds(start)
    message.end.FromMilliseconds(start + 120 * MINUTE_MS)
    return message


async def seat(clerk: ExamAdminClient, campus: Campus, cards: list[CardCredential], sid: str = "S-1") -> None:
    """Seats the cards' students alternately in the two rooms."""
    rooms = [t.location for t in tablets(campus)]
    rows = [(c.student_id, rooms[i % 2], f"{i + 1:02d}") for i, c in enumerate(cards)]
    answer = await clerk.import_exam_roster(f"seat-{sid}", sid, rows)
    assert list(answer.rejected) == [] and answer.applied == len(cards)


async def test_check_in_once_in_the_right_room(campus: Campus, clerk: ExamAdminClient) -> None:
    created = await clerk.create_exam_session("c-1", session(campus))
    assert created.session.check_in_opens_minutes_before == 30
    assert created.session.check_in_closes_minutes_after == 15 and not created.session.closed
    a, b = campus.card(), campus.card(skip=1)
    await seat(clerk, campus, [a, b])
    room_a, room_b = tablets(campus)  # a sits in room_a, b in room_b
    tablet_a = campus.client(room_a)

    first = await tablet_a.check_in(check_in(campus, a, "S-1", room_a))
    assert first.decision == APPROVED, name(first.decline_reason)
    assert (first.room, first.seat, first.display_text) == (room_a.location, "01", "通过")
    assert first.checked_in_at.ToMilliseconds() == campus.clock.now_ms()
    assert "*" in first.holder_name_masked

    campus.clock.advance(minutes=3)
    again = await tablet_a.check_in(check_in(campus, a, "S-1", room_a, qr=True))
    assert (again.decision, name(again.decline_reason)) == (DECLINED, "ALREADY_CHECKED_IN")
    assert again.checked_in_at == first.checked_in_at and again.display_text == "已签到"

    wrong = await tablet_a.check_in(check_in(campus, b, "S-1", room_a))
    assert (name(wrong.decline_reason), wrong.room, wrong.display_text) == (
        "WRONG_ROOM",
        room_b.location,
        "考场错误，请核对考场",
    )
    right = await campus.client(room_b).check_in(check_in(campus, b, "S-1", room_b, qr=True))
    assert right.decision == APPROVED

    stranger = await tablet_a.check_in(check_in(campus, campus.card(skip=2), "S-1", room_a))
    assert (name(stranger.decline_reason), stranger.room) == ("NOT_ON_ROSTER", "")

    attendance = await clerk.get_attendance("S-1")
    assert [(p.student_id, p.room) for p in attendance.present] == [
        (a.student_id, room_a.location),
        (b.student_id, room_b.location),
    ]
    assert attendance.present[0].terminal_id == room_a.terminal_id
    assert attendance.present[0].checked_in_at == first.checked_in_at
    assert list(attendance.absent) == []
    assert [(w.student_id, w.expected_room, w.room) for w in attendance.wrong_room_attempts] == [
        (b.student_id, room_b.location, room_a.location)
    ]
    assert attendance.session.roster_size == 2


async def test_the_check_in_window_and_closing(campus: Campus, clerk: ExamAdminClient) -> None:
    await clerk.create_exam_session("c-1", session(campus, starts_in_min=45))  # opens in 15 minutes
    early, late, absent = campus.card(), campus.card(skip=1), campus.card(skip=2)
    await seat(clerk, campus, [early, late, absent])
    room_a, room_b = tablets(campus)
    too_early = await campus.client(room_a).check_in(check_in(campus, early, "S-1", room_a))
    assert (name(too_early.decline_reason), too_early.display_text) == (
        "OUTSIDE_CHECK_IN_WINDOW",
        "不在签到时间内",
    )
    campus.clock.advance(minutes=16)
    assert (await campus.client(room_a).check_in(check_in(campus, early, "S-1", room_a))).decision == APPROVED
    campus.clock.advance(minutes=30 + 15)  # 16 minutes after the start: closed to late arrivals
    too_late = await campus.client(room_b).check_in(check_in(campus, late, "S-1", room_b))
    assert name(too_late.decline_reason) == "OUTSIDE_CHECK_IN_WINDOW"

    closed = await clerk.close_exam_session("close-1", "S-1")
    assert closed.session.closed and closed.closed_at.ToMilliseconds() == campus.clock.now_ms()
    assert await clerk.close_exam_session("close-1", "S-1") == closed  # the same request: the same answer
    with pytest.raises(FailedPreconditionError) as twice:
        await clerk.close_exam_session("close-2", "S-1")
    assert (twice.value.reason, twice.value.metadata.get("state")) == ("ILLEGAL_TRANSITION", "closed")
    with pytest.raises(FailedPreconditionError):
        await clerk.import_exam_roster("late-seat", "S-1", [(absent.student_id, room_a.location, "99")])
    after = await campus.client(room_a).check_in(check_in(campus, early, "S-1", room_a))
    assert name(after.decline_reason) == "OUTSIDE_CHECK_IN_WINDOW"  # closed: not even ALREADY_CHECKED_IN

    attendance = await clerk.get_attendance("S-1")
    assert [p.student_id for p in attendance.present] == [early.student_id]
    assert sorted(s.student_id for s in attendance.absent) == sorted([late.student_id, absent.student_id])
    assert attendance.session.closed


async def test_the_roster_report_applies_good_rows_only(campus: Campus, clerk: ExamAdminClient) -> None:
    await clerk.create_exam_session("c-1", session(campus))
    room_a, room_b = (t.location for t in tablets(campus))
    a, b, c, d = (campus.card(skip=i) for i in range(4))
    other_school = campus.card(school=1)
    answer = await clerk.import_exam_roster(
        "r-1",
        "S-1",
        [
            (a.student_id, room_a, "01"),
            (b.student_id, room_a, "01"),  # a's seat
            ("NO-SUCH-STUDENT", room_a, "02"),
            (other_school.student_id, room_a, "03"),
            (c.student_id, "Z999", "01"),
            (a.student_id, room_b, "05"),  # a again in this import
            (d.student_id, room_b, ""),
            (c.student_id, room_b, "01"),
        ],
    )
    assert [(r.index, r.problem) for r in answer.rejected] == [
        (1, PROBLEM.ROSTER_ROW_PROBLEM_DUPLICATE_SEAT),
        (2, PROBLEM.ROSTER_ROW_PROBLEM_UNKNOWN_STUDENT),
        (3, PROBLEM.ROSTER_ROW_PROBLEM_UNKNOWN_STUDENT),
        (4, PROBLEM.ROSTER_ROW_PROBLEM_ROOM_NOT_IN_SESSION),
        (5, PROBLEM.ROSTER_ROW_PROBLEM_DUPLICATE_STUDENT),
        (6, PROBLEM.ROSTER_ROW_PROBLEM_INVALID),
    ]
    assert all(r.detail for r in answer.rejected)
    assert (answer.applied, answer.roster_size) == (2, 2)

    # b was refused: nothing of the row applied; a moves; the same rows again change nothing
    moved = await clerk.import_exam_roster(
        "r-2", "S-1", [(a.student_id, room_b, "02"), (b.student_id, room_a, "01")]
    )
    assert (list(moved.rejected), moved.roster_size) == ([], 3)
    again = await clerk.import_exam_roster("r-3", "S-1", [(a.student_id, room_b, "02")])
    assert (again.applied, again.roster_size) == (1, 3)
    tablet_b = tablets(campus)[1]
    assert (await campus.client(tablet_b).check_in(check_in(campus, a, "S-1", tablet_b))).decision == APPROVED
    refused = await clerk.import_exam_roster("r-4", "S-1", [(a.student_id, room_a, "07")])
    assert [r.problem for r in refused.rejected] == [PROBLEM.ROSTER_ROW_PROBLEM_ALREADY_CHECKED_IN]
    seats = {s.student_id: (s.room, s.seat) for s in (await clerk.get_attendance("S-1")).absent}
    assert seats == {b.student_id: (room_a, "01"), c.student_id: (room_b, "01")}


async def test_the_holder_rule_at_the_tablet(hub: RunningHub, campus: Campus, clerk: ExamAdminClient) -> None:
    await clerk.create_exam_session("c-1", session(campus))
    lost, suspended = campus.card(status="lost"), campus.card(enrollment="suspended")
    await seat(clerk, campus, [lost, suspended])
    tablet = tablets(campus)[0]
    client = campus.client(tablet)
    assert (
        name((await client.check_in(check_in(campus, lost, "S-1", tablet))).decline_reason)
        == "CARD_REPORTED_LOST"
    )
    answer = await client.check_in(check_in(campus, suspended, "S-1", tablet, qr=True))
    assert name(answer.decline_reason) == "STUDENT_SUSPENDED"
    other = await client.check_in(check_in(campus, campus.card(school=1), "S-1", tablet))
    assert name(other.decline_reason) == "CARD_OTHER_SCHOOL"
    assert (await clerk.get_attendance("S-1")).wrong_room_attempts == []


async def test_errors_name_what_is_wrong(hub: RunningHub, campus: Campus, clerk: ExamAdminClient) -> None:
    await clerk.create_exam_session("c-1", session(campus))
    assert (
        await clerk.create_exam_session("c-2", session(campus))
    ).session.session_id == "S-1"  # same values
    changed = session(campus)
    changed.subject = "机械制图"
    with pytest.raises(AlreadyExistsError):
        await clerk.create_exam_session("c-3", changed)
    with pytest.raises(PermissionDeniedError):
        await clerk.create_exam_session("c-4", session(campus, "S-9", school=1))
    for field, spoil in (
        ("session.rooms", lambda s: s.ClearField("rooms")),
        ("session.end", lambda s: s.end.FromMilliseconds(s.start.ToMilliseconds())),
        ("session.start", lambda s: s.ClearField("start")),
        ("session.subject", lambda s: setattr(s, "subject", "")),
        ("session.session_id", lambda s: setattr(s, "session_id", "no spaces")),
        ("session.check_in_opens_minutes_before", lambda s: setattr(s, "check_in_opens_minutes_before", -1)),
    ):
        bad = session(campus, "S-2")
        spoil(bad)
        with pytest.raises(InvalidArgumentError) as raised:
            await clerk.create_exam_session(f"bad-{field}", bad)
        assert raised.value.field == field
    with pytest.raises(NotFoundError):
        await clerk.get_attendance("S-404")
    with pytest.raises(InvalidArgumentError) as empty:
        await clerk.import_exam_roster("r-0", "S-1", [])
    assert empty.value.field == "rows"

    async with ExamAdminClient(f"{campus.school(1)}-clerk", ClientConfig(target=hub.target)) as stranger:
        with pytest.raises(PermissionDeniedError):
            await stranger.get_attendance("S-1")
        with pytest.raises(PermissionDeniedError):
            await stranger.close_exam_session("x", "S-1")

    card = campus.card()
    await seat(clerk, campus, [card])
    tablet = tablets(campus)[0]
    client = campus.client(tablet)
    with pytest.raises(NotFoundError):
        await client.check_in(check_in(campus, card, "S-404", tablet))
    with pytest.raises(InvalidArgumentError) as room:
        await client.check_in(check_in(campus, card, "S-1", tablet, room="A999"))
    assert room.value.field == "room"
    other_tablet = tablets(campus, 1)[0]
    with pytest.raises(PermissionDeniedError) as school:
        await campus.client(other_tablet).check_in(
            check_in(campus, campus.card(school=1), "S-1", other_tablet)
        )
    assert school.value.reason == "OTHER_SCHOOL"
    desk_info: TerminalInfo = desk(campus)
    with pytest.raises(PermissionDeniedError) as kind:
        await campus.client(desk_info).check_in(
            check_in(campus, card, "S-1", desk_info, room=tablet.location)
        )
    assert kind.value.reason == "SCENE_NOT_ALLOWED"
    with pytest.raises(InvalidArgumentError) as authorize:
        await client.authorize(campus.chip(card, tablet, CHECK_IN))
    assert authorize.value.field == "scene"
    # none of that wrote a check-in: the student checks in now
    assert (await client.check_in(check_in(campus, card, "S-1", tablet))).decision == APPROVED


async def test_sessions_rosters_and_check_ins_survive_a_restart(
    campus_dir: Path, clock: ManualClock, creds: object
) -> None:
    async with running_hub(hub_config(campus_dir), clock) as running:
        campus = Campus(creds, clock, running.target)  # type: ignore[arg-type]
        config = ClientConfig(target=running.target)
        async with ExamAdminClient(f"{campus.school()}-clerk", config) as clerk:
            await clerk.create_exam_session("c-1", session(campus))
            a, b, c = campus.card(), campus.card(skip=1), campus.card(skip=2)
            await seat(clerk, campus, [a, b, c])
            room_a, room_b = tablets(campus)
            request = check_in(campus, a, "S-1", room_a, qr=True)
            first = await campus.client(room_a).check_in(request)
            assert first.decision == APPROVED
            assert name(
                (await campus.client(room_a).check_in(check_in(campus, b, "S-1", room_a))).decline_reason
            ) == ("WRONG_ROOM")
            before = await clerk.get_attendance("S-1")
        await campus.close()
    clock.advance(minutes=2)
    async with running_hub(hub_config(campus_dir), clock) as running:
        campus = Campus(creds, clock, running.target, atc=campus.atc)  # type: ignore[arg-type]
        async with ExamAdminClient(f"{campus.school()}-clerk", ClientConfig(target=running.target)) as clerk:
            assert await clerk.get_attendance("S-1") == before
            assert await campus.client(room_a).check_in(request) == first  # replayed from the journal
            again = await campus.client(room_a).check_in(check_in(campus, a, "S-1", room_a))
            assert (name(again.decline_reason), again.checked_in_at) == (
                "ALREADY_CHECKED_IN",
                first.checked_in_at,
            )
            assert (
                await campus.client(room_b).check_in(check_in(campus, b, "S-1", room_b))
            ).decision == APPROVED
            await clerk.close_exam_session("close", "S-1")
        await campus.close()
    async with (
        running_hub(hub_config(campus_dir), clock) as running,
        ExamAdminClient(f"{campus.school()}-clerk", ClientConfig(target=running.target)) as clerk,
    ):
        after = await clerk.get_attendance("S-1")
        assert after.session.closed
        assert [p.student_id for p in after.present] == [a.student_id, b.student_id]
        assert [s.student_id for s in after.absent] == [c.student_id]
        assert len(after.wrong_room_attempts) == 1
