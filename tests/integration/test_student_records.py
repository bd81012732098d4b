"""StudentRecordsService (学籍) on a real hub: enroll, status changes, transfer; scope, idempotency,
and what the next tap sees."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from onecard.auth.v1 import authorization_service_pb2 as auth_pb
from onecard.records.v1 import student_records_service_pb2 as pb
from onecard.records.v1 import student_records_service_pb2_grpc as records_grpc
from onecard_client import (
    AlreadyExistsError,
    ClientConfig,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    StudentRecordsClient,
)
from onecard_hub.server import RunningHub
from tests.conftest import db_count
from tests.helpers import Campus, name, new_request_id
from tests.unit.test_enrollment import id_number

BUY = auth_pb.SCENE_CANTEEN_PURCHASE
ADMIN = "province-admin"

Clients = Callable[[str], StudentRecordsClient]


def clerk(school_id: str) -> str:
    return f"{school_id}-clerk"


@pytest.fixture
async def records(hub: RunningHub) -> AsyncIterator[Clients]:
    made: dict[str, StudentRecordsClient] = {}

    def client(operator_id: str) -> StudentRecordsClient:
        if operator_id not in made:
            made[operator_id] = StudentRecordsClient(operator_id, ClientConfig(target=hub.target))
        return made[operator_id]

    yield client
    for c in made.values():
        await c.close()


async def buy(campus: Campus, card_no: str, school: int = 0) -> str:
    card = next(c for c in campus.creds.cards if c.card_no == card_no)
    answer = await campus.send(campus.chip(card, campus.pos(school), BUY, amount_fen=300))
    return "APPROVED" if answer.decision == auth_pb.DECISION_APPROVED else name(answer.decline_reason)


async def test_enroll_opens_a_wallet_and_shows_only_masked_data(
    records: Clients, campus: Campus, campus_dir: Path
) -> None:
    school = campus.school()
    number = id_number("20091125", seq="101")  # 17 on the hub's day (2026-11-24): a minor
    students, accounts = db_count(campus_dir, "students"), db_count(campus_dir, "accounts")
    answer = await records(clerk(school)).enroll_student(
        "enr-1", school, "new-0001", "欧阳小峰", number, "2009-11-25", "boarder"
    )
    student = answer.student
    assert (student.student_id, student.school_id, student.name_masked) == ("new-0001", school, "欧**峰")
    assert student.id_number_masked == number[:4] + "*" * 10 + number[-4:]
    assert (student.enrollment, student.group) == (pb.ENROLLMENT_STATUS_ENROLLED, pb.STUDENT_GROUP_BOARDER)
    assert (student.minor, student.wallet_balance_fen, list(student.card_nos)) == (True, 0, [])
    assert (db_count(campus_dir, "students"), db_count(campus_dir, "accounts")) == (
        students + 1,
        accounts + 1,
    )
    with sqlite3.connect(campus_dir / "hub.db") as db:
        enc, masked = db.execute(
            "SELECT id_number_enc, id_number_masked FROM students WHERE student_id = 'new-0001'"
        ).fetchone()
        assert number.encode() not in enc and masked == student.id_number_masked
        audit = db.execute(
            "SELECT action, actor_id, details FROM audit_log WHERE student_id = 'new-0001'"
        ).fetchall()
    assert audit == [("EnrollStudent", clerk(school), "group=boarder")]
    got = await records(ADMIN).get_student("new-0001")
    assert got.student == student


async def test_enroll_is_idempotent_and_refuses_duplicates_and_bad_data(
    records: Clients, campus: Campus, campus_dir: Path
) -> None:
    school, other = campus.school(0), campus.school(1)
    number = id_number("20050505", seq="202")
    first = await records(ADMIN).enroll_student(
        "enr-2", school, "new-0002", "张三", number, "2005-05-05", "day"
    )
    assert not first.student.minor
    again = await records(ADMIN).enroll_student(
        "enr-2", school, "new-0002", "张三", number, "2005-05-05", "day"
    )
    assert again == first
    with pytest.raises(FailedPreconditionError) as reused:
        await records(ADMIN).enroll_student("enr-2", school, "new-0002", "张四", number, "2005-05-05", "day")
    assert reused.value.reason == "IDEMPOTENCY_KEY_REUSED"
    with pytest.raises(AlreadyExistsError):  # the same ID number under another student_id
        await records(ADMIN).enroll_student("enr-3", other, "new-0003", "张三", number, "2005-05-05", "day")
    with pytest.raises(AlreadyExistsError):  # a student_id taken
        other_number = id_number("20050505", seq="204")
        await records(ADMIN).enroll_student(
            "enr-4", school, "new-0002", "李四", other_number, "2005-05-05", "day"
        )
    students = db_count(campus_dir, "students")
    bad: list[tuple[dict[str, object], str]] = [
        ({"id_number": number[:17] + ("0" if number[17] != "0" else "1")}, "id_number"),
        ({"birth_date": "2005-05-06"}, "birth_date"),
        ({"group": 0}, "group"),
        ({"name": ""}, "name"),
        ({"student_id": ""}, "student_id"),
        ({"school_id": ""}, "school_id"),
    ]
    for change, field in bad:
        values: dict[str, object] = {
            "school_id": school,
            "student_id": "new-0009",
            "name": "王五",
            "id_number": id_number("20050505", seq="206"),
            "birth_date": "2005-05-05",
            "group": "day",
        }
        values.update(change)
        with pytest.raises(InvalidArgumentError) as raised:
            await records(ADMIN).enroll_student(new_request_id(), **values)  # type: ignore[arg-type]
        assert raised.value.field == field
    with pytest.raises(PermissionDeniedError):
        await records(clerk(other)).enroll_student(
            "enr-5", school, "new-0005", "王五", id_number("20050505", seq="208"), "2005-05-05", "day"
        )
    with pytest.raises(NotFoundError):
        await records(ADMIN).enroll_student(
            "enr-6",
            "no-such-school",
            "new-0006",
            "王五",
            id_number("20050505", seq="210"),
            "2005-05-05",
            "day",
        )
    assert db_count(campus_dir, "students") == students


async def test_status_changes_take_effect_on_the_next_tap(records: Clients, campus: Campus) -> None:
    card = campus.card(0)
    office = records(clerk(campus.school()))
    student_id = card.student_id
    assert await buy(campus, card.card_no) == "APPROVED"

    suspended = await office.suspend_student("s-1", student_id)
    assert suspended.student.enrollment == pb.ENROLLMENT_STATUS_SUSPENDED
    assert await buy(campus, card.card_no) == "STUDENT_SUSPENDED"
    with pytest.raises(FailedPreconditionError) as twice:
        await office.suspend_student("s-2", student_id)
    assert (twice.value.reason, twice.value.metadata["state"]) == ("ILLEGAL_TRANSITION", "suspended")
    with pytest.raises(FailedPreconditionError) as graduate:
        await office.graduate_student("s-3", student_id)
    assert graduate.value.metadata["state"] == "suspended"

    resumed = await office.resume_student("s-4", student_id)
    assert resumed.student.enrollment == pb.ENROLLMENT_STATUS_ENROLLED
    assert await buy(campus, card.card_no) == "APPROVED"
    with pytest.raises(FailedPreconditionError) as resume_enrolled:
        await office.resume_student("s-5", student_id)
    assert resume_enrolled.value.metadata["state"] == "enrolled"
    assert await office.resume_student("s-4", student_id) == resumed  # a replay, not a second change

    graduated = await office.graduate_student("s-6", student_id)
    assert graduated.student.enrollment == pb.ENROLLMENT_STATUS_GRADUATED
    assert await buy(campus, card.card_no) == "STUDENT_GRADUATED"
    for action in (office.resume_student, office.suspend_student, office.withdraw_student):
        with pytest.raises(FailedPreconditionError) as final:
            await action(new_request_id(), student_id)
        assert final.value.metadata["state"] == "graduated"


async def test_withdrawal_from_enrolled_and_from_suspended(records: Clients, campus: Campus) -> None:
    office = records(ADMIN)
    first, second = campus.card(0, skip=1), campus.card(0, skip=2)
    withdrawn = await office.withdraw_student("w-1", first.student_id)
    assert withdrawn.student.enrollment == pb.ENROLLMENT_STATUS_WITHDRAWN
    assert await buy(campus, first.card_no) == "STUDENT_WITHDRAWN"
    await office.suspend_student("w-2", second.student_id)
    await office.withdraw_student("w-3", second.student_id)
    assert await buy(campus, second.card_no) == "STUDENT_WITHDRAWN"
    with pytest.raises(FailedPreconditionError) as graduate:
        await office.graduate_student("w-4", first.student_id)
    assert graduate.value.metadata["state"] == "withdrawn"


async def test_scope_and_unknown_students(records: Clients, campus: Campus) -> None:
    card = campus.card(0)
    with pytest.raises(PermissionDeniedError) as other_school:
        await records(clerk(campus.school(1))).suspend_student("x-1", card.student_id)
    assert other_school.value.reason == "OTHER_SCHOOL"
    with pytest.raises(PermissionDeniedError):
        await records(clerk(campus.school(1))).get_student(card.student_id)
    with pytest.raises(NotFoundError) as missing:
        await records(ADMIN).suspend_student("x-2", "no-such-student")
    assert missing.value.field == "student_id"
    with pytest.raises(NotFoundError):
        await records(ADMIN).get_student("no-such-student")
    with pytest.raises(InvalidArgumentError) as no_id:
        await records(ADMIN).suspend_student("", card.student_id)
    assert no_id.value.field == "request_id"
    assert await buy(campus, card.card_no) == "APPROVED"  # nothing changed


async def test_transfer_moves_wallet_and_cards_to_the_new_school(
    records: Clients, campus: Campus, hub: RunningHub
) -> None:
    old, new = campus.school(0), campus.school(1)
    card = campus.card(0)
    assert await buy(campus, card.card_no, school=0) == "APPROVED"
    before = (await records(ADMIN).get_student(card.student_id)).student
    with pytest.raises(PermissionDeniedError):  # only the source school's clerk (or the province)
        await records(clerk(new)).transfer_student("t-1", card.student_id, new)
    with pytest.raises(InvalidArgumentError) as same:
        await records(clerk(old)).transfer_student("t-2", card.student_id, old)
    assert same.value.field == "to_school_id"
    with pytest.raises(NotFoundError) as nowhere:
        await records(clerk(old)).transfer_student("t-3", card.student_id, "no-such-school")
    assert nowhere.value.field == "to_school_id"

    moved = await records(clerk(old)).transfer_student("t-4", card.student_id, new)
    assert (moved.from_school_id, moved.student.school_id) == (old, new)
    assert moved.student.wallet_balance_fen == before.wallet_balance_fen
    assert list(moved.student.card_nos) == [card.card_no]
    assert await buy(campus, card.card_no, school=1) == "APPROVED"
    assert await buy(campus, card.card_no, school=0) == "CARD_OTHER_SCHOOL"
    assert await records(clerk(old)).transfer_student("t-4", card.student_id, new) == moved  # replay
    with pytest.raises(PermissionDeniedError):  # the old school's clerk no longer sees the student
        await records(clerk(old)).get_student(card.student_id)
    assert (await records(clerk(new)).get_student(card.student_id)).student.school_id == new

    # A blocked card of a transferred student leaves the old school's blocklist for the new one's.
    lost = campus.card(0, status="lost")
    campus_state = hub.hub.campus
    assert lost.card_no in campus_state.blocklist(old).card_nos
    await records(ADMIN).transfer_student("t-5", lost.student_id, new)
    assert lost.card_no not in campus_state.blocklist(old).card_nos
    assert lost.card_no in campus_state.blocklist(new).card_nos


async def test_graduated_students_cannot_transfer(records: Clients, campus: Campus) -> None:
    card = campus.card(0)
    await records(ADMIN).graduate_student("g-1", card.student_id)
    with pytest.raises(FailedPreconditionError) as refused:
        await records(ADMIN).transfer_student("g-2", card.student_id, campus.school(1))
    assert (refused.value.reason, refused.value.metadata["state"]) == ("ILLEGAL_TRANSITION", "graduated")


async def test_the_service_is_served_and_checked_for_health(hub: RunningHub) -> None:
    async with grpc.aio.insecure_channel(hub.target) as channel:
        health: Any = health_pb2_grpc.HealthStub(channel)
        answer = await health.Check(
            health_pb2.HealthCheckRequest(service="onecard.records.v1.StudentRecordsService")
        )
    assert answer.status == health_pb2.HealthCheckResponse.SERVING


async def test_a_caller_without_operator_identity_is_refused(hub: RunningHub, campus: Campus) -> None:
    async with grpc.aio.insecure_channel(hub.target) as channel:
        stub: Any = records_grpc.StudentRecordsServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await stub.GetStudent(pb.GetStudentRequest(student_id=campus.card().student_id), timeout=10)
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
