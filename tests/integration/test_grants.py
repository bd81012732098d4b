"""GrantService (奖助学金) on a real hub paying into a bank: a batch paid, advance notice and
FAILED items for students without an activated bank function, retry after activation, RETURNED,
the ledger's grant pool and bank clearing, and the coverage report."""

from __future__ import annotations

from pathlib import Path

from onecard.bank.v1 import bank_service_pb2 as bank_pb
from onecard.grants.v1 import grant_service_pb2 as pb
from onecard_hub.domain.clock import ManualClock
from onecard_hub.domain.ledger import AccountKind
from onecard_hub.server import RunningHub
from tests.integration.grant_bank import FakeBank, running_fake_bank
from tests.integration.grant_fixtures import (
    YEAR,
    grants_client,
    hub_with_bank,
    set_bank_status,
    students_with_cards,
    until_done,
)

GRANT = pb.GRANT_TYPE_NATIONAL_GRANT


def balance(hub: RunningHub, kind: AccountKind, owner: str) -> int:
    return next(
        a.balance_fen for a in hub.hub.campus.ledger.accounts.values() if a.kind == kind and a.owner == owner
    )


async def test_a_batch_is_paid_into_the_bank_accounts(campus_dir: Path, clock: ManualClock) -> None:
    bank = FakeBank()
    async with running_fake_bank(bank) as target, hub_with_bank(campus_dir, clock, target) as hub:
        school = sorted(hub.hub.campus.schools)[0]
        people = students_with_cards(hub, school, 6)
        pool_before = balance(hub, AccountKind.GRANT_POOL, school)
        async with grants_client(hub) as client:
            items = [(s, 150_000 + n) for n, (s, _) in enumerate(people)]
            answer = await client.submit_grant_batch("g-1", school, "B1", GRANT, YEAR, items)
            assert answer.accepted and not answer.errors
            assert answer.batch.status == pb.BATCH_STATUS_SUBMITTED
            assert bank.transfers == {}  # nothing moves before approval
            await client.approve_grant_batch("g-2", school, "B1")
            batch = await until_done(client, school, "B1")
        assert {i.status for i in batch.items} == {pb.ITEM_STATUS_PAID}
        assert [(t.status, t.count, t.sum_fen) for t in batch.totals] == [
            (pb.ITEM_STATUS_PAID, 6, sum(a for _, a in items))
        ]
        assert all(i.name_masked and "*" in i.name_masked for i in batch.items)
        assert bank.balances == {card: amount for (_, card), (_, amount) in zip(people, items, strict=True)}
        assert all(n == 1 for n in bank.credits_applied.values())
        assert balance(hub, AccountKind.GRANT_POOL, school) == pool_before - sum(a for _, a in items)
        assert hub.hub.campus.ledger.total_fen() == 0
    assert (await _ledger_sum_after_restart(campus_dir, clock)) == 0


async def _ledger_sum_after_restart(campus_dir: Path, clock: ManualClock) -> int:
    async with running_fake_bank(FakeBank()) as target, hub_with_bank(campus_dir, clock, target) as hub:
        return (await hub.hub.ledger_totals()).sum_fen


async def test_not_activated_students_are_told_first_fail_then_are_paid_after_activation(
    campus_dir: Path, clock: ManualClock
) -> None:
    bank = FakeBank()
    async with running_fake_bank(bank) as target:
        async with hub_with_bank(campus_dir, clock, target) as hub:
            school = sorted(hub.hub.campus.schools)[0]
            people = students_with_cards(hub, school, 5)
        dormant = [card for _, card in people[:2]]
        set_bank_status(campus_dir, dormant, "not_activated")
        for card in dormant:
            bank.states[card] = bank_pb.ACCOUNT_STATE_NOT_ACTIVATED
        async with hub_with_bank(campus_dir, clock, target) as hub, grants_client(hub) as client:
            items = [(s, 100_000) for s, _ in people]
            answer = await client.submit_grant_batch("n-1", school, "B2", GRANT, YEAR, items)
            assert answer.notified == 2
            notices = (await client.list_notifications(school, "B2")).notifications
            assert sorted(n.student_id for n in notices) == sorted(s for s, _ in people[:2])
            assert all(
                "未激活" in n.message and "*" in n.name_masked and n.amount_fen == 100_000 for n in notices
            )
            assert (await client.notify_batch("n-2", school, "B2")).notified == 0  # told once each
            await client.approve_grant_batch("n-3", school, "B2")
            batch = await until_done(client, school, "B2")
            by_student = {i.student_id: i for i in batch.items}
            for student_id, _ in people[:2]:
                assert by_student[student_id].status == pb.ITEM_STATUS_FAILED
                assert by_student[student_id].fail_reason == pb.FAIL_REASON_NOT_ACTIVATED
            assert sum(i.status == pb.ITEM_STATUS_PAID for i in batch.items) == 3
            for card in dormant:  # the students activate the bank function at the branch
                bank.states[card] = bank_pb.ACCOUNT_STATE_ACTIVE
            retried = await client.retry_failed_items("n-4", school, "B2")
            assert retried.retried == 2
            batch = await until_done(client, school, "B2")
            assert {i.status for i in batch.items} == {pb.ITEM_STATUS_PAID}
            assert {by.attempts for by in batch.items if by.student_id in dict(people[:2])} == {2}
            assert sum(bank.balances.values()) == 500_000
            assert hub.hub.campus.ledger.total_fen() == 0


async def test_a_returned_credit_is_booked_back_to_the_pool(campus_dir: Path, clock: ManualClock) -> None:
    bank = FakeBank()
    async with running_fake_bank(bank) as target, hub_with_bank(campus_dir, clock, target) as hub:
        school = sorted(hub.hub.campus.schools)[0]
        people = students_with_cards(hub, school, 2)
        bank.returning.add(people[0][1])
        pool_before = balance(hub, AccountKind.GRANT_POOL, school)
        async with grants_client(hub) as client:
            await client.submit_grant_batch(
                "r-1", school, "B3", GRANT, YEAR, [(s, 80_000) for s, _ in people]
            )
            await client.approve_grant_batch("r-2", school, "B3")
            batch = await until_done(client, school, "B3")
        statuses = {i.student_id: i.status for i in batch.items}
        assert statuses == {people[0][0]: pb.ITEM_STATUS_RETURNED, people[1][0]: pb.ITEM_STATUS_PAID}
        assert balance(hub, AccountKind.GRANT_POOL, school) == pool_before - 80_000
        assert hub.hub.campus.ledger.total_fen() == 0


async def test_coverage_shows_which_groups_got_each_grant_type(campus_dir: Path, clock: ManualClock) -> None:
    async with running_fake_bank(FakeBank()) as target, hub_with_bank(campus_dir, clock, target) as hub:
        school = sorted(hub.hub.campus.schools)[0]
        with_cards = dict(students_with_cards(hub, school, 1000))
        boarders = [
            s.student_id
            for s in hub.hub.campus.students.values()
            if s.student_id in with_cards and s.group.value == "boarder"
        ][:3]
        async with grants_client(hub) as client:
            await client.submit_grant_batch(
                "cv-1", school, "CV", GRANT, YEAR, [(s, 100_000) for s in boarders]
            )
            await client.approve_grant_batch("cv-2", school, "CV")
            await until_done(client, school, "CV")
            report = await client.get_grant_coverage(school, YEAR)
            other_year = await client.get_grant_coverage(school, "2025-2026")
    cells = {(c.grant_type, c.group): c for c in report.cells}
    assert (
        cells[(GRANT, pb.STUDENT_GROUP_BOARDER)].paid_students,
        cells[(GRANT, pb.STUDENT_GROUP_BOARDER)].paid_fen,
    ) == (
        3,
        300_000,
    )
    assert (
        cells[(GRANT, pb.STUDENT_GROUP_DAY)].paid_students
        == 0
        < cells[(GRANT, pb.STUDENT_GROUP_DAY)].students
    )
    assert set(report.types_not_covered) == {
        pb.GRANT_TYPE_NATIONAL_SCHOLARSHIP,
        pb.GRANT_TYPE_PROVINCIAL_SCHOLARSHIP,
        pb.GRANT_TYPE_SCHOOL_AWARD,
    }
    gaps = {(c.grant_type, c.group) for c in report.gaps}
    assert (GRANT, pb.STUDENT_GROUP_DAY) in gaps and (GRANT, pb.STUDENT_GROUP_BOARDER) not in gaps
    assert len(other_year.types_not_covered) == 4
