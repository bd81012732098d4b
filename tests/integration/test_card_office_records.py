"""CardOfficeService over a real hub: PINs and their lockout, guardians, bulk issuance for an
intake, the audit log, idempotent replays, and a restart that keeps all of it."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from onecard.cardoffice.v1 import card_office_service_pb2 as pb
from onecard_client import CardOfficeClient
from onecard_client.campus import CampusCredentials, CardCredential
from onecard_client.errors import (
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
)
from onecard_hub.domain.clock import ManualClock
from onecard_hub.server import RunningHub, running_hub
from tests.conftest import hub_config
from tests.helpers import Campus, new_request_id

from .card_office_helpers import (
    PARENT_ID,
    add_student,
    buy,
    clerk,
    enter,
    holder_of,
    new_student_id_number,
    office,
    parent,
    usable,
)

SCHOOL = "jx-ts-01"
INTAKE = [
    ("jx-ts-01-91001", date(2005, 6, 1)),
    ("jx-ts-01-91002", date(2006, 2, 2)),
    ("jx-ts-01-91003", date(2010, 9, 9)),  # a minor
    ("jx-ts-01-91004", date(2004, 12, 12)),
]
PIN = "480913"
BIG = 6_000  # above the PIN-free limit (¥50)
THIRD = pb.CARD_GENERATION_THIRD
_ID_RUN = re.compile(r"[0-9]{17}[0-9X]")


@pytest.fixture(autouse=True)
def _intake(campus_dir: Path) -> None:
    for n, (student_id, born) in enumerate(INTAKE, start=1):
        add_student(campus_dir, student_id, SCHOOL, born, new_student_id_number(born, 100 + 2 * n))


@pytest.fixture
async def admin(hub: RunningHub) -> AsyncIterator[CardOfficeClient]:
    async with office(hub.target) as client:
        yield client


def _adult_card(creds: CampusCredentials, campus_dir: Path, skip: int = 0) -> CardCredential:
    cards = [c for c in creds.cards_of(SCHOOL) if c.usable and not holder_of(campus_dir, c).minor]
    return cards[skip]


# -- PINs --------------------------------------------------------------------------------


async def test_a_pin_change_needs_the_old_pin_and_wrong_ones_lock_it_until_a_reset(
    admin: CardOfficeClient, campus: Campus, campus_dir: Path
) -> None:
    card = _adult_card(campus.creds, campus_dir)
    holder = holder_of(campus_dir, card)
    wrong = "000000" if card.pin != "000000" else "999999"
    first = new_request_id()
    with pytest.raises(PermissionDeniedError) as refused:
        await admin.change_pin(first, card.card_no, wrong, "246813")
    assert refused.value.reason == "IDENTITY_CHECK_FAILED"
    with pytest.raises(PermissionDeniedError):  # the same request again: the same refusal, not a new try
        await admin.change_pin(first, card.card_no, wrong, "246813")
    assert (await admin.get_card(card.card_no)).card.pin_failures == 1
    for _ in range(2):
        with pytest.raises(PermissionDeniedError):
            await admin.change_pin(new_request_id(), card.card_no, wrong, "246813")
    view = (await admin.get_card(card.card_no)).card
    assert view.pin_locked and view.pin_failures == 3
    assert await buy(campus, card, amount_fen=BIG) == "PIN_LOCKED"  # the same lockout as at the POS
    with pytest.raises(FailedPreconditionError) as locked:
        await admin.change_pin(new_request_id(), card.card_no, card.pin, "246813")
    assert locked.value.reason == "ILLEGAL_TRANSITION" and locked.value.metadata["state"] == "pin_locked"

    with pytest.raises(InvalidArgumentError) as weak:
        await admin.reset_pin(new_request_id(), card.card_no, "222222", holder.id_number)
    assert weak.value.field == "new_pin"
    with pytest.raises(PermissionDeniedError) as stranger:
        await admin.reset_pin(new_request_id(), card.card_no, "246813", PARENT_ID)
    assert stranger.value.reason == "IDENTITY_CHECK_FAILED"
    reset = await admin.reset_pin(new_request_id(), card.card_no, "246813", holder.id_number)
    assert not reset.card.pin_locked and reset.card.pin_failures == 0
    assert await buy(campus, replace(card, pin="246813"), amount_fen=BIG) == "APPROVED"
    assert await buy(campus, card, amount_fen=BIG) == "PIN_INCORRECT"  # the old PIN is gone

    changed = await admin.change_pin(new_request_id(), card.card_no, "246813", "135792")
    assert changed.card.pin_failures == 0
    assert await buy(campus, replace(card, pin="135792"), amount_fen=BIG) == "APPROVED"


async def test_a_minors_pin_reset_needs_their_guardian(
    admin: CardOfficeClient, campus: Campus, campus_dir: Path
) -> None:
    card = next(c for c in campus.creds.cards_of(SCHOOL) if c.usable and holder_of(campus_dir, c).minor)
    holder = holder_of(campus_dir, card)
    with pytest.raises(FailedPreconditionError) as alone:
        await admin.reset_pin(new_request_id(), card.card_no, "246813", holder.id_number)
    assert alone.value.reason == "GUARDIAN_REQUIRED"
    with pytest.raises(InvalidArgumentError) as own:  # the student cannot be their own guardian
        await admin.set_guardian(new_request_id(), holder.student_id, parent(number=holder.id_number))
    assert own.value.field == "guardian.id_number"
    registered = await admin.set_guardian(new_request_id(), holder.student_id, parent())
    assert [g.name_masked for g in registered.guardians] == ["王*国"]
    await admin.reset_pin(new_request_id(), card.card_no, "246813", holder.id_number, PARENT_ID)
    view = (await admin.get_card(card.card_no)).card
    assert view.holder_is_minor and len(view.guardians) == 1


# -- bulk issuance ------------------------------------------------------------------------------


async def test_a_bulk_issue_applies_the_good_rows_and_reports_the_bad_ones(
    admin: CardOfficeClient, campus: Campus
) -> None:
    rows = [
        pb.BulkIssueRow(student_id=INTAKE[0][0], bank_code="ICBC", generation=THIRD, initial_pin=PIN),
        pb.BulkIssueRow(student_id="jx-ts-01-99999", bank_code="ICBC", generation=THIRD, initial_pin=PIN),
        pb.BulkIssueRow(student_id=INTAKE[1][0], bank_code="NOPE", generation=THIRD, initial_pin=PIN),
        pb.BulkIssueRow(student_id=INTAKE[2][0], bank_code="JXB", generation=THIRD, initial_pin=PIN),  # minor
        pb.BulkIssueRow(student_id=INTAKE[0][0], bank_code="CCB", generation=THIRD, initial_pin=PIN),  # again
        pb.BulkIssueRow(
            student_id=INTAKE[3][0], bank_code="ABC", generation=pb.CARD_GENERATION_SECOND, initial_pin=PIN
        ),
        pb.BulkIssueRow(
            student_id=campus.card(1).card_no, bank_code="ABC", generation=THIRD, initial_pin=PIN
        ),
        pb.BulkIssueRow(
            student_id=INTAKE[2][0],
            bank_code="JXB",
            generation=THIRD,
            initial_pin="111111",
            guardian=parent(),
        ),
    ]
    request_id = new_request_id()
    report = await admin.bulk_issue_cards(request_id, rows)
    assert (report.issued, report.rejected) == (2, 6)
    outcome = {r.row: (r.issued, r.error_reason, r.error_field) for r in report.results}
    assert outcome == {
        0: (True, "", ""),
        1: (False, "NOT_FOUND", "rows[1].student_id"),
        2: (False, "FIELD_INVALID", "rows[2].bank_code"),
        3: (False, "GUARDIAN_REQUIRED", ""),
        4: (False, "ALREADY_EXISTS", ""),
        5: (True, "", ""),
        6: (False, "NOT_FOUND", "rows[6].student_id"),
        7: (False, "FIELD_INVALID", "rows[7].initial_pin"),
    }
    # A bad row applied nothing of itself: the minor has neither card nor guardian.
    with pytest.raises(NotFoundError):
        await admin.get_card(student_id=INTAKE[2][0])
    issued = [r for r in report.results if r.issued]
    assert issued[1].card.ecard_status == pb.ECARD_STATUS_NOT_ISSUED
    new = usable(issued[0].personalization, SCHOOL, PIN)
    await admin.enable_identity(new_request_id(), new.card_no)
    assert await enter(campus, new) == "APPROVED"
    assert await admin.bulk_issue_cards(request_id, rows) == report  # a replay, keys included
    with pytest.raises(InvalidArgumentError) as empty:
        await admin.bulk_issue_cards(new_request_id(), [])
    assert empty.value.field == "rows"


# -- the audit log ------------------------------------------------------------------------------


async def test_every_action_is_in_the_audit_log_masked_and_queryable(
    hub: RunningHub, admin: CardOfficeClient, campus: Campus, campus_dir: Path
) -> None:
    card = _adult_card(campus.creds, campus_dir, skip=1)
    holder = holder_of(campus_dir, card)
    async with office(hub.target, clerk(SCHOOL)) as own_clerk:
        await own_clerk.report_loss(new_request_id(), card.card_no)
        await own_clerk.unlock(new_request_id(), card.card_no, holder.id_number)
        await own_clerk.freeze_card(new_request_id(), card.card_no)
        await admin.unfreeze_card(new_request_id(), card.card_no)
        await own_clerk.set_guardian(new_request_id(), holder.student_id, parent())
        await own_clerk.issue_card(new_request_id(), INTAKE[0][0], "ICBC", PIN)

        page = await own_clerk.query_audit_log(student_id=holder.student_id)
        actions = [e.action for e in page.entries]
        assert actions == ["SetGuardian", "UnfreezeCard", "FreezeCard", "Unlock", "ReportLoss"]
        assert {e.actor_id for e in page.entries} == {clerk(SCHOOL), "province-admin"}
        unlock = page.entries[3]
        assert unlock.card_no == card.card_no and unlock.school_id == SCHOOL
        assert unlock.at.ToMilliseconds() == campus.clock.now_ms()
        assert "identity=holder" in unlock.details and "lost->active" in unlock.details
        assert PARENT_ID not in page.entries[0].details and PARENT_ID[-4:] in page.entries[0].details

        mine = await own_clerk.query_audit_log(operator_id=clerk(SCHOOL), page_size=2)
        assert [e.action for e in mine.entries] == ["IssueCard", "SetGuardian"]
        rest = await own_clerk.query_audit_log(operator_id=clerk(SCHOOL), page_token=mine.next_page_token)
        assert [e.action for e in rest.entries] == ["FreezeCard", "Unlock", "ReportLoss"]
        assert rest.next_page_token == ""
        with pytest.raises(InvalidArgumentError):
            await own_clerk.query_audit_log(student_id=holder.student_id, operator_id=clerk(SCHOOL))
        with pytest.raises(InvalidArgumentError) as token:
            await own_clerk.query_audit_log(student_id=holder.student_id, page_token="abc")
        assert token.value.field == "page_token"

    async with office(hub.target, clerk("jx-ts-02")) as other_clerk:
        with pytest.raises(PermissionDeniedError):
            await other_clerk.query_audit_log(student_id=holder.student_id)
        with pytest.raises(PermissionDeniedError):
            await other_clerk.query_audit_log(operator_id=clerk(SCHOOL))
        assert (await other_clerk.query_audit_log(operator_id="province-admin")).entries == []


# -- a restart ---------------------------------------------------------------------------------


async def test_a_restart_keeps_cards_guardians_statuses_pins_and_the_audit_log(
    campus_dir: Path, clock: ManualClock, creds: CampusCredentials
) -> None:
    campus = Campus(creds, clock, "")
    lost = _adult_card(creds, campus_dir, skip=2)
    replaced = _adult_card(creds, campus_dir, skip=3)
    holder = holder_of(campus_dir, replaced)
    async with running_hub(hub_config(campus_dir), clock) as running:
        campus.target = running.target
        async with office(running.target) as admin:
            issued = await admin.issue_card(
                "issue-minor",
                INTAKE[2][0],
                "JXB",
                PIN,
                guardian=parent(),
                generation=pb.CARD_GENERATION_THIRD,
            )
            await admin.enable_identity(new_request_id(), issued.card.card_no)
            await admin.suspend_ecard(new_request_id(), issued.card.card_no)
            await admin.report_loss(new_request_id(), lost.card_no)
            swap = await admin.replace_card(new_request_id(), replaced.card_no, "CCB", PIN, holder.id_number)
            await admin.change_pin(new_request_id(), swap.new_card.card_no, PIN, "975312")
            before = {
                no: (await admin.get_card(no)).card
                for no in (issued.card.card_no, lost.card_no, replaced.card_no, swap.new_card.card_no)
            }
            audit = await admin.query_audit_log(student_id=holder.student_id)
        await campus.close()
        campus.clients.clear()

    async with running_hub(hub_config(campus_dir), clock) as running:
        campus.target = running.target
        async with office(running.target) as admin:
            for no, card in before.items():
                assert (await admin.get_card(no)).card == card
            assert (await admin.query_audit_log(student_id=holder.student_id)) == audit
            replay = await admin.issue_card(
                "issue-minor",
                INTAKE[2][0],
                "JXB",
                PIN,
                guardian=parent(),
                generation=pb.CARD_GENERATION_THIRD,
            )
            assert replay == issued  # the keys are derived again, not read from the journal
            assert (await admin.get_card(student_id=INTAKE[2][0])).card.guardians[0].name_masked == "王*国"
        minor = usable(issued.personalization, SCHOOL, PIN)
        fresh = usable(swap.personalization, SCHOOL, "975312", replaced.student_group)
        assert await enter(campus, minor) == "APPROVED"
        assert await enter(campus, minor, qr=True) == "ECARD_SUSPENDED"
        assert await enter(campus, lost) == "CARD_REPORTED_LOST"
        assert await enter(campus, replaced) == "CARD_REPLACED"
        assert await buy(campus, fresh, amount_fen=BIG) == "APPROVED"  # the changed PIN
        config = await campus.client(campus.gate()).get_config()
        assert {lost.card_no, replaced.card_no} <= set(config.blocked_card_nos)
        await campus.close()

    # The database never holds a clear ID number or PIN from the card office.
    with sqlite3.connect(campus_dir / "hub.db") as db:
        texts = [r[0] for r in db.execute("SELECT details FROM audit_log")]
        bodies = [r[0] for r in db.execute("SELECT response FROM requests")]
        guardians = db.execute("SELECT id_number_enc, id_number_masked FROM guardians").fetchall()
    assert texts and not any(_ID_RUN.search(t) for t in texts)
    assert not any(PARENT_ID.encode() in b or b"975312" in b or PIN.encode() in b for b in bodies)
    assert all(PARENT_ID.encode() not in enc and "*" in masked for enc, masked in guardians)
    assert not any(issued.personalization.card_key in b for b in bodies)
