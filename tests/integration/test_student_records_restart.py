"""学籍 survives a restart: new students, their wallets, status changes, transfers, idempotency."""

from __future__ import annotations

from pathlib import Path

from onecard.auth.v1 import authorization_service_pb2 as auth_pb
from onecard.records.v1 import student_records_service_pb2 as pb
from onecard_client import ClientConfig, StudentRecordsClient
from onecard_client.campus import CampusCredentials
from onecard_hub.domain.clock import ManualClock
from onecard_hub.server import running_hub
from tests.conftest import hub_config
from tests.helpers import Campus, name
from tests.unit.test_enrollment import id_number

BUY = auth_pb.SCENE_CANTEEN_PURCHASE
ROSTER = (
    "student_id,name,id_number,birth_date,group\n"
    + f"rs-2,李四,{id_number('20080808', seq='402')},2008-08-08,day\n"
)


async def _buy(campus: Campus, card_no: str, school: int) -> str:
    card = next(c for c in campus.creds.cards if c.card_no == card_no)
    answer = await campus.send(campus.chip(card, campus.pos(school), BUY, amount_fen=300))
    return "APPROVED" if answer.decision == auth_pb.DECISION_APPROVED else name(answer.decline_reason)


async def test_student_records_survive_a_restart(campus_dir: Path, clock: ManualClock) -> None:
    creds = CampusCredentials.load(campus_dir / "hub.keys")
    old, new = creds.schools[0], creds.schools[1]
    c0 = Campus(creds, clock, "")
    suspended, moved = c0.card(0), c0.card(0, skip=1)
    number = id_number("20000101", seq="401")
    async with (
        running_hub(hub_config(campus_dir), clock) as running,
        StudentRecordsClient("province-admin", ClientConfig(target=running.target)) as office,
    ):
        enrolled = await office.enroll_student("rs-e", old, "rs-1", "张三", number, "2000-01-01", "day")
        await office.import_roster("rs-i", old, ROSTER)
        await office.suspend_student("rs-s", suspended.student_id)
        transferred = await office.transfer_student("rs-t", moved.student_id, new)
    async with running_hub(hub_config(campus_dir), clock) as running:
        c = Campus(creds, clock, running.target)
        assert await _buy(c, suspended.card_no, 0) == "STUDENT_SUSPENDED"
        assert await _buy(c, moved.card_no, 1) == "APPROVED"
        assert await _buy(c, moved.card_no, 0) == "CARD_OTHER_SCHOOL"
        async with StudentRecordsClient("province-admin", ClientConfig(target=running.target)) as office:
            assert (await office.get_student("rs-1")).student == enrolled.student
            assert (await office.get_student("rs-2")).student.group == pb.STUDENT_GROUP_DAY
            got = (await office.get_student(moved.student_id)).student
            assert got.school_id == new
            assert got.wallet_balance_fen == transferred.student.wallet_balance_fen - 300
            # Replays answer the original; the records remember who is who.
            again = await office.enroll_student("rs-e", old, "rs-1", "张三", number, "2000-01-01", "day")
            assert again == enrolled
            assert (await office.transfer_student("rs-t", moved.student_id, new)) == transferred
            resumed = await office.resume_student("rs-r", suspended.student_id)
            assert resumed.student.enrollment == pb.ENROLLMENT_STATUS_ENROLLED
            roster = await office.import_roster("rs-i2", old, ROSTER)
            assert [r.outcome for r in roster.rows] == [pb.ROW_OUTCOME_EXISTING]
        assert await _buy(c, suspended.card_no, 0) == "APPROVED"
        await c.close()
