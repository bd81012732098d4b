"""Library scene (图书借阅) over a real hub and real SQLite: borrow and return at a library desk,
the loan limit, the overdue block, the overdue list, bad input, idempotency and a restart."""

from __future__ import annotations

from pathlib import Path

import pytest

from onecard.auth.v1 import authorization_service_pb2 as auth_pb
from onecard_client import (
    AdminClient,
    ClientConfig,
    FailedPreconditionError,
    InvalidArgumentError,
    LibraryAdminClient,
    PermissionDeniedError,
)
from onecard_hub.domain.clock import ManualClock
from onecard_hub.server import RunningHub, running_hub
from tests.conftest import hub_config
from tests.helpers import Campus, name
from tests.integration.scene_taps import BORROW, borrow, desk, give_back

APPROVED, DECLINED = auth_pb.DECISION_APPROVED, auth_pb.DECISION_DECLINED
DAY_MS = 86_400_000


async def test_borrow_then_return_records_the_loan(campus: Campus) -> None:
    card = campus.card()
    desk = campus.client(borrow(campus, card, "B-0001").terminal_id)
    lent = await desk.borrow(borrow(campus, card, "B-0001"))
    assert lent.decision == APPROVED, name(lent.decline_reason)
    assert (lent.display_text, lent.loans_held, lent.loan_limit) == ("通过", 1, 5)
    assert "*" in lent.holder_name_masked and lent.loan.holder_name_masked == lent.holder_name_masked
    now = campus.clock.now_ms()
    assert lent.loan.book_id == "B-0001" and lent.loan.student_id == card.student_id
    assert lent.loan.borrowed_at.ToMilliseconds() == now
    assert lent.loan.due_at.ToMilliseconds() == now + 30 * DAY_MS
    assert not lent.loan.HasField("returned_at")

    campus.clock.advance(minutes=5)
    back = await desk.return_book(give_back(campus, card, "B-0001", qr=True))
    assert back.decision == APPROVED, name(back.decline_reason)
    assert back.loan.loan_id == lent.loan.loan_id
    assert back.loan.returned_at.ToMilliseconds() == campus.clock.now_ms()
    assert (back.loans_held, back.loan.days_overdue) == (0, 0)


async def test_a_book_on_loan_is_unavailable_and_only_its_borrower_returns_it(campus: Campus) -> None:
    first, second = campus.card(), campus.card(skip=1)
    desk = campus.client(borrow(campus, first, "B-1").terminal_id)
    assert (await desk.borrow(borrow(campus, first, "B-1"))).decision == APPROVED
    taken = await desk.borrow(borrow(campus, second, "B-1", qr=True))
    assert (taken.decision, name(taken.decline_reason)) == (DECLINED, "BOOK_UNAVAILABLE")
    assert taken.display_text == "该书已被借出" and not taken.HasField("loan")
    again = await desk.borrow(borrow(campus, first, "B-1"))
    assert name(again.decline_reason) == "BOOK_UNAVAILABLE"  # this student has it already
    wrong = await desk.return_book(give_back(campus, second, "B-1"))
    assert name(wrong.decline_reason) == "BOOK_NOT_ON_LOAN"
    never = await desk.return_book(give_back(campus, first, "B-never-lent"))
    assert name(never.decline_reason) == "BOOK_NOT_ON_LOAN"
    assert (await desk.return_book(give_back(campus, first, "B-1"))).decision == APPROVED
    assert (await desk.borrow(borrow(campus, second, "B-1"))).decision == APPROVED  # free again


async def test_the_loan_limit(campus: Campus) -> None:
    card = campus.card()
    desk = campus.client(borrow(campus, card, "x").terminal_id)
    for i in range(5):
        lent = await desk.borrow(borrow(campus, card, f"L-{i}", qr=bool(i % 2)))
        assert lent.decision == APPROVED, name(lent.decline_reason)
    sixth = await desk.borrow(borrow(campus, card, "L-5"))
    assert (name(sixth.decline_reason), sixth.loans_held, sixth.display_text) == (
        "LOAN_LIMIT_REACHED",
        5,
        "借阅数量已满",
    )
    assert (await desk.return_book(give_back(campus, card, "L-0"))).decision == APPROVED
    assert (await desk.borrow(borrow(campus, card, "L-5"))).decision == APPROVED


async def test_an_overdue_loan_blocks_borrowing_and_is_listed(hub: RunningHub, campus: Campus) -> None:
    late, punctual = campus.card(), campus.card(skip=1)
    desk = campus.client(borrow(campus, late, "x").terminal_id)
    assert (await desk.borrow(borrow(campus, late, "OLD-1"))).decision == APPROVED
    campus.clock.advance(minutes=29 * 24 * 60)
    assert (await desk.borrow(borrow(campus, punctual, "NEW-1"))).decision == APPROVED
    campus.clock.advance(minutes=(24 + 1) * 60)  # OLD-1 is an hour past due
    blocked = await desk.borrow(borrow(campus, late, "OLD-2"))
    assert (name(blocked.decline_reason), blocked.display_text) == ("LOAN_OVERDUE", "有逾期图书，请先归还")
    assert (await desk.borrow(borrow(campus, punctual, "NEW-2"))).decision == APPROVED

    school = campus.school()
    config = ClientConfig(target=hub.target)
    async with LibraryAdminClient(f"{school}-clerk", config) as clerk:
        listed = await clerk.list_overdue_loans(school)
        assert [(loan.book_id, loan.student_id, loan.days_overdue) for loan in listed.loans] == [
            ("OLD-1", late.student_id, 1)
        ]
        assert "*" in listed.loans[0].holder_name_masked
        assert listed.as_of.ToMilliseconds() == campus.clock.now_ms()
        with pytest.raises(PermissionDeniedError):
            await clerk.list_overdue_loans(campus.school(1))
        with pytest.raises(InvalidArgumentError) as missing:
            await clerk.list_overdue_loans("")
        assert missing.value.field == "school_id"
    async with LibraryAdminClient("province-admin", config) as province:
        assert len((await province.list_overdue_loans("")).loans) == 1
        assert (await province.list_overdue_loans(campus.school(1))).loans == []

    back = await desk.return_book(give_back(campus, late, "OLD-1"))
    assert (back.decision, back.loan.days_overdue) == (APPROVED, 1)
    assert (await desk.borrow(borrow(campus, late, "OLD-2"))).decision == APPROVED


async def test_the_holder_rule_applies_at_the_desk(hub: RunningHub, campus: Campus) -> None:
    desk = campus.client(borrow(campus, campus.card(), "x").terminal_id)
    for card, reason in (
        (campus.card(status="lost"), "CARD_REPORTED_LOST"),
        (campus.card(enrollment="suspended"), "STUDENT_SUSPENDED"),
        (campus.card(school=1), "CARD_OTHER_SCHOOL"),
    ):
        answer = await desk.borrow(borrow(campus, card, "H-1"))
        assert name(answer.decline_reason) == reason
    card = campus.card()
    bad = borrow(campus, card, "H-1")
    bad.chip.cryptogram = bytes(8)
    assert name((await desk.borrow(bad)).decline_reason) == "CREDENTIAL_INVALID"
    used = borrow(campus, card, "H-1")
    assert (await desk.borrow(used)).decision == APPROVED
    replayed = borrow(campus, card, "H-2", atc=used.chip.atc)
    assert name((await desk.borrow(replayed)).decline_reason) == "COUNTER_REPLAYED"

    async with AdminClient("province-admin", ClientConfig(target=hub.target)) as province:
        await province.set_live_scenes("gates-and-canteen", campus.school(), [1, 2, 3])
    off = await desk.borrow(borrow(campus, card, "H-3"))
    assert (name(off.decline_reason), off.display_text) == ("SCENE_NOT_LIVE", "本校暂未开通此功能")


async def test_bad_input_and_the_wrong_caller(campus: Campus) -> None:
    card, desk_info = campus.card(), desk(campus)
    desk_client = campus.client(desk_info)
    for field, spoil in (
        ("book_id", lambda r: setattr(r, "book_id", "")),
        ("request_id", lambda r: setattr(r, "request_id", "bad id!")),
        ("tap_time", lambda r: r.ClearField("tap_time")),
        ("credential", lambda r: r.ClearField("chip")),
        ("chip.cryptogram", lambda r: setattr(r.chip, "cryptogram", b"123")),
    ):
        request = borrow(campus, card, "B-9")
        spoil(request)
        with pytest.raises(InvalidArgumentError) as raised:
            await desk_client.borrow(request)
        assert raised.value.field == field
    with pytest.raises(PermissionDeniedError) as mismatch:
        await desk_client.borrow(borrow(campus, card, "B-9", terminal=campus.gate()))
    assert mismatch.value.reason == "TERMINAL_MISMATCH"
    gate = campus.client(campus.gate())
    with pytest.raises(PermissionDeniedError) as kind:
        await gate.borrow(borrow(campus, card, "B-9", terminal=campus.gate()))
    assert kind.value.reason == "SCENE_NOT_ALLOWED"
    with pytest.raises(InvalidArgumentError) as authorize:
        await desk_client.authorize(campus.chip(card, desk_info, BORROW))
    assert authorize.value.field == "scene" and "LibraryService" in authorize.value.message


async def test_borrow_is_idempotent_by_request_id(campus: Campus) -> None:
    card = campus.card()
    request = borrow(campus, card, "I-1")
    desk = campus.client(request.terminal_id)
    first = await desk.borrow(request)
    assert first.decision == APPROVED
    campus.clock.advance(minutes=1)
    assert await desk.borrow(request) == first
    other = borrow(campus, card, "I-2")
    other.request_id = request.request_id
    with pytest.raises(FailedPreconditionError) as reused:
        await desk.borrow(other)
    assert reused.value.reason == "IDEMPOTENCY_KEY_REUSED"
    assert (await desk.borrow(borrow(campus, campus.card(skip=1), "I-2"))).decision == APPROVED


async def test_loans_survive_a_restart(campus_dir: Path, clock: ManualClock, creds: object) -> None:
    async with running_hub(hub_config(campus_dir), clock) as running:
        campus = Campus(creds, clock, running.target)  # type: ignore[arg-type]
        card, other = campus.card(), campus.card(skip=1)
        request = borrow(campus, card, "R-1", qr=True)
        desk = campus.client(request.terminal_id)
        lent = await desk.borrow(request)
        assert lent.decision == APPROVED
        returned = borrow(campus, other, "R-2")
        assert (await desk.borrow(returned)).decision == APPROVED
        assert (await desk.return_book(give_back(campus, other, "R-2"))).decision == APPROVED
        await campus.close()
    async with running_hub(hub_config(campus_dir), clock) as running:
        campus = Campus(creds, clock, running.target, atc=campus.atc)  # type: ignore[arg-type]
        desk = campus.client(request.terminal_id)
        assert await desk.borrow(request) == lent  # the same answer, from the journal
        clock.advance(minutes=31 * 24 * 60)
        taken = await desk.borrow(borrow(campus, other, "R-1"))
        assert name(taken.decline_reason) == "BOOK_UNAVAILABLE"
        assert (await desk.borrow(borrow(campus, other, "R-2"))).decision == APPROVED  # returned before
        blocked = await desk.borrow(borrow(campus, card, "R-3"))
        assert name(blocked.decline_reason) == "LOAN_OVERDUE"
        async with LibraryAdminClient("province-admin", ClientConfig(target=running.target)) as province:
            overdue = (await province.list_overdue_loans("")).loans
            assert [(loan.book_id, loan.days_overdue) for loan in overdue] == [("R-1", 1)]
        await campus.close()


async def test_desk_taps_count_in_the_usage_report(hub: RunningHub, campus: Campus) -> None:
    card = campus.card()
    desk_client = campus.client(desk(campus))
    assert (await desk_client.borrow(borrow(campus, card, "U-1"))).decision == APPROVED
    assert (await desk_client.borrow(borrow(campus, card, "U-1"))).decision == DECLINED
    assert (await desk_client.return_book(give_back(campus, card, "U-1"))).decision == APPROVED
    async with AdminClient("province-admin", ClientConfig(target=hub.target)) as province:
        report = await province.usage_report(campus.school())
    taps = {t.scene: (t.approved, t.declined) for t in report.schools[0].taps}
    assert taps[BORROW] == (1, 1) and taps[auth_pb.SCENE_LIBRARY_RETURN] == (1, 0)
    assert report.schools[0].students_active >= 1
