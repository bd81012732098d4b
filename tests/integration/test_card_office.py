"""CardOfficeService over a real hub: issuing, the identity function's life (enable, loss,
unlock, freeze, replacement) and the e-card, each approved and refused, with the next tap."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import pytest

from onecard.cardoffice.v1 import card_office_service_pb2 as pb
from onecard_client import CardOfficeClient, ClientConfig, StudentRecordsClient
from onecard_client.errors import (
    AlreadyExistsError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
)
from onecard_hub.server import RunningHub
from tests.helpers import Campus, new_request_id

from .card_office_helpers import (
    ADMIN,
    OTHER_ADULT_ID,
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
ADULT = ("jx-ts-01-90001", date(2006, 1, 10))
MINOR = ("jx-ts-01-90002", date(2010, 3, 1))
PIN = "480913"


@pytest.fixture(autouse=True)
def _intake(campus_dir: Path) -> None:
    """Two new students without cards, before the hub starts."""
    for n, (student_id, born) in enumerate((ADULT, MINOR), start=1):
        add_student(campus_dir, student_id, SCHOOL, born, new_student_id_number(born, 10 + 2 * n))


@pytest.fixture
async def admin(hub: RunningHub) -> AsyncIterator[CardOfficeClient]:
    async with office(hub.target) as client:
        yield client


async def _issue(admin: CardOfficeClient, student_id: str, **kw: object) -> pb.IssueCardResponse:
    return await admin.issue_card(new_request_id(), student_id, "JXB", PIN, **kw)  # type: ignore[arg-type]


# -- issuing -------------------------------------------------------------------------------


async def test_an_issued_card_works_once_its_identity_function_is_enabled(
    admin: CardOfficeClient, campus: Campus
) -> None:
    issued = await _issue(admin, ADULT[0])
    card = issued.card
    assert card.identity_status == pb.IDENTITY_STATUS_NOT_ENABLED
    assert card.bank_status == pb.BANK_STATUS_NOT_ACTIVATED
    assert (card.bank_code, card.generation) == ("JXB", pb.CARD_GENERATION_THIRD)
    assert card.ecard_status == pb.ECARD_STATUS_ACTIVE  # a third-generation card has its e-card at once
    assert not card.holder_is_minor and card.issued_at.ToMilliseconds() == campus.clock.now_ms()
    keys = issued.personalization
    assert keys.card_no == card.card_no and len(keys.card_key) == 32 and len(keys.ecard_key) == 32
    new = usable(keys, SCHOOL, PIN)
    assert await enter(campus, new) == "CARD_INACTIVE"

    enabled = await admin.enable_identity(new_request_id(), card.card_no)
    assert enabled.card.identity_status == pb.IDENTITY_STATUS_ACTIVE
    assert await enter(campus, new) == "APPROVED"
    assert await enter(campus, new, qr=True) == "APPROVED"
    again = await admin.get_card(student_id=ADULT[0])
    assert again.card.card_no == card.card_no


async def test_a_second_generation_card_has_no_ecard(admin: CardOfficeClient, campus: Campus) -> None:
    issued = await _issue(admin, ADULT[0], generation=pb.CARD_GENERATION_SECOND)
    assert issued.card.ecard_status == pb.ECARD_STATUS_NOT_ISSUED
    assert issued.personalization.ecard_key == b""
    await admin.enable_identity(new_request_id(), issued.card.card_no)
    new = usable(issued.personalization, SCHOOL, PIN)
    assert await enter(campus, new) == "APPROVED"


async def test_a_minor_needs_a_guardian(admin: CardOfficeClient) -> None:
    with pytest.raises(FailedPreconditionError) as refused:
        await _issue(admin, MINOR[0])
    assert refused.value.reason == "GUARDIAN_REQUIRED"
    with pytest.raises(InvalidArgumentError) as bad:
        await _issue(admin, MINOR[0], guardian=parent(number=PARENT_ID[:-1] + "0"))  # wrong check digit
    assert bad.value.field == "guardian.id_number"
    young = new_student_id_number(date(2011, 1, 1), 55)
    with pytest.raises(InvalidArgumentError) as child:
        await _issue(admin, MINOR[0], guardian=parent(number=young))
    assert child.value.field == "guardian.id_number"
    with pytest.raises(InvalidArgumentError) as no_relation:
        await _issue(admin, MINOR[0], guardian=pb.Guardian(name="王建国", id_number=PARENT_ID))
    assert no_relation.value.field == "guardian.relation"
    with pytest.raises(NotFoundError):  # nothing was issued by the refused calls
        await admin.get_card(student_id=MINOR[0])

    issued = await _issue(admin, MINOR[0], guardian=parent())
    assert issued.card.holder_is_minor
    [guardian] = issued.card.guardians
    assert guardian.name_masked == "王*国"
    assert guardian.id_number_masked == PARENT_ID[:4] + "*" * 10 + PARENT_ID[-4:]
    assert guardian.relation == pb.GUARDIAN_RELATION_PARENT


async def test_issuing_is_refused_for_bad_input_and_out_of_scope(
    hub: RunningHub, admin: CardOfficeClient
) -> None:
    with pytest.raises(NotFoundError) as unknown:
        await _issue(admin, "jx-ts-01-99999")
    assert unknown.value.field == "student_id"
    with pytest.raises(InvalidArgumentError) as bank:
        await admin.issue_card(new_request_id(), ADULT[0], "HSBC", PIN)
    assert bank.value.field == "bank_code"
    for pin in ("12345", "111111", "123456", "12a456"):
        with pytest.raises(InvalidArgumentError) as weak:
            await admin.issue_card(new_request_id(), ADULT[0], "ICBC", pin)
        assert weak.value.field == "initial_pin"
    with pytest.raises(InvalidArgumentError) as generation:
        await admin.issue_card(new_request_id(), ADULT[0], "ICBC", PIN, generation=1)
    assert generation.value.field == "generation"
    async with office(hub.target, clerk("jx-ts-02")) as other_clerk:
        with pytest.raises(PermissionDeniedError) as scope:
            await _issue(other_clerk, ADULT[0])
        assert scope.value.reason == "OTHER_SCHOOL"
    async with office(hub.target, clerk(SCHOOL)) as own_clerk:
        await _issue(own_clerk, ADULT[0])
        with pytest.raises(AlreadyExistsError):  # one card per student: a second is a replacement
            await _issue(own_clerk, ADULT[0])


async def test_an_issue_is_idempotent_and_its_replay_carries_the_same_keys(admin: CardOfficeClient) -> None:
    request_id = new_request_id()
    first = await admin.issue_card(request_id, ADULT[0], "CCB", PIN)
    again = await admin.issue_card(request_id, ADULT[0], "CCB", PIN)
    assert again == first
    with pytest.raises(FailedPreconditionError) as reused:
        await admin.issue_card(request_id, ADULT[0], "ABC", PIN)
    assert reused.value.reason == "IDEMPOTENCY_KEY_REUSED"
    assert (await admin.get_card(student_id=ADULT[0])).card.bank_code == "CCB"


# -- loss, unlock, freeze ------------------------------------------------------------------


async def test_a_lost_cards_very_next_tap_is_declined_and_an_unlock_needs_the_holders_id(
    hub: RunningHub, admin: CardOfficeClient, campus: Campus, campus_dir: Path
) -> None:
    card = campus.card()
    holder = holder_of(campus_dir, card)
    assert await enter(campus, card) == "APPROVED"
    lost = await admin.report_loss(new_request_id(), card.card_no)
    assert lost.card.identity_status == pb.IDENTITY_STATUS_LOST
    assert await enter(campus, card) == "CARD_REPORTED_LOST"
    assert await enter(campus, card, qr=True) == "CARD_REPORTED_LOST"
    assert await buy(campus, card) == "CARD_REPORTED_LOST"
    config = await campus.client(campus.gate()).get_config()
    assert card.card_no in config.blocked_card_nos
    assert lost.blocklist_version == config.blocklist_version

    with pytest.raises(FailedPreconditionError) as twice:
        await admin.report_loss(new_request_id(), card.card_no)
    assert twice.value.reason == "ILLEGAL_TRANSITION" and twice.value.metadata["state"] == "lost"
    with pytest.raises(PermissionDeniedError) as wrong:
        await admin.unlock(new_request_id(), card.card_no, OTHER_ADULT_ID)
    assert wrong.value.reason == "IDENTITY_CHECK_FAILED"
    with pytest.raises(InvalidArgumentError) as malformed:
        await admin.unlock(new_request_id(), card.card_no, "3607")
    assert malformed.value.field == "proof.holder_id_number"
    assert await enter(campus, card) == "CARD_REPORTED_LOST"

    guardian = PARENT_ID if holder.minor else ""
    if holder.minor:
        await admin.set_guardian(new_request_id(), holder.student_id, parent())
    unlocked = await admin.unlock(new_request_id(), card.card_no, holder.id_number, guardian)
    assert unlocked.card.identity_status == pb.IDENTITY_STATUS_ACTIVE
    assert await enter(campus, card) == "APPROVED"
    assert card.card_no not in (await campus.client(campus.gate()).get_config()).blocked_card_nos


async def test_a_minors_unlock_needs_a_registered_guardian(
    admin: CardOfficeClient, campus: Campus, campus_dir: Path
) -> None:
    minor = next(
        (c, h) for c in campus.creds.cards_of(SCHOOL) if c.usable and (h := holder_of(campus_dir, c)).minor
    )
    card, holder = minor
    await admin.report_loss(new_request_id(), card.card_no)
    with pytest.raises(FailedPreconditionError) as alone:
        await admin.unlock(new_request_id(), card.card_no, holder.id_number)
    assert alone.value.reason == "GUARDIAN_REQUIRED"
    with pytest.raises(FailedPreconditionError) as unregistered:
        await admin.unlock(new_request_id(), card.card_no, holder.id_number, PARENT_ID)
    assert unregistered.value.reason == "GUARDIAN_REQUIRED"
    await admin.set_guardian(new_request_id(), holder.student_id, parent())
    with pytest.raises(PermissionDeniedError) as stranger:
        await admin.unlock(new_request_id(), card.card_no, holder.id_number, OTHER_ADULT_ID)
    assert stranger.value.reason == "IDENTITY_CHECK_FAILED"
    await admin.unlock(new_request_id(), card.card_no, holder.id_number, PARENT_ID)
    assert await enter(campus, card) == "APPROVED"


async def test_a_freeze_is_the_schools_and_is_not_a_loss(admin: CardOfficeClient, campus: Campus) -> None:
    card = campus.card(skip=1)
    frozen = await admin.freeze_card(new_request_id(), card.card_no)
    assert frozen.card.identity_status == pb.IDENTITY_STATUS_FROZEN
    assert await enter(campus, card) == "CARD_FROZEN"
    with pytest.raises(FailedPreconditionError) as lost:
        await admin.report_loss(new_request_id(), card.card_no)
    assert lost.value.metadata["state"] == "frozen"
    with pytest.raises(FailedPreconditionError) as unlock:
        await admin.unlock(new_request_id(), card.card_no, OTHER_ADULT_ID)
    assert unlock.value.reason == "ILLEGAL_TRANSITION"
    await admin.unfreeze_card(new_request_id(), card.card_no)
    assert await enter(campus, card) == "APPROVED"
    with pytest.raises(FailedPreconditionError) as again:
        await admin.unfreeze_card(new_request_id(), card.card_no)
    assert again.value.metadata["state"] == "active"
    with pytest.raises(FailedPreconditionError) as enable:
        await admin.enable_identity(new_request_id(), card.card_no)
    assert enable.value.reason == "ILLEGAL_TRANSITION"


async def test_status_changes_are_refused_for_unknown_cards_and_other_schools(
    hub: RunningHub, campus: Campus
) -> None:
    card = campus.card(1)  # the second school's
    async with office(hub.target, clerk(SCHOOL)) as own_clerk:
        with pytest.raises(NotFoundError) as unknown:
            await own_clerk.report_loss(new_request_id(), "Z00000000")
        assert unknown.value.field == "card_no"
        with pytest.raises(PermissionDeniedError):
            await own_clerk.report_loss(new_request_id(), card.card_no)
        with pytest.raises(PermissionDeniedError):
            await own_clerk.get_card(card.card_no)
    assert await enter(campus, card) == "APPROVED"  # nothing changed


# -- replacement -----------------------------------------------------------------------------


async def test_a_replacement_kills_the_old_card_and_keeps_the_wallet(
    admin: CardOfficeClient, campus: Campus, campus_dir: Path
) -> None:
    card = next(c for c in campus.creds.cards_of(SCHOOL) if c.usable and not holder_of(campus_dir, c).minor)
    holder = holder_of(campus_dir, card)
    assert await buy(campus, card, amount_fen=1_234) == "APPROVED"
    pos = campus.client(campus.pos())
    balance = (await pos.wallet_balance(card.card_no)).balance_fen
    await admin.report_loss(new_request_id(), card.card_no)

    with pytest.raises(PermissionDeniedError):
        await admin.replace_card(new_request_id(), card.card_no, "BOC", PIN, OTHER_ADULT_ID)
    replaced = await admin.replace_card(new_request_id(), card.card_no, "BOC", PIN, holder.id_number)
    old, new = replaced.old_card, replaced.new_card
    assert old.identity_status == pb.IDENTITY_STATUS_REPLACED and old.replaced_by == new.card_no
    assert new.identity_status == pb.IDENTITY_STATUS_ACTIVE  # a lost card's replacement works at once
    assert new.card_no != card.card_no and new.bank_code == "BOC"  # any co-branded bank
    assert new.bank_status == pb.BANK_STATUS_NOT_ACTIVATED
    assert replaced.personalization.card_no == new.card_no

    fresh = usable(replaced.personalization, SCHOOL, PIN, card.student_group)
    assert await enter(campus, card) == "CARD_REPLACED"
    assert await enter(campus, card, qr=True) == "CARD_REPLACED"
    assert await enter(campus, fresh) == "APPROVED"
    assert (await pos.wallet_balance(fresh.card_no)).balance_fen == balance
    assert await buy(campus, fresh, amount_fen=66) == "APPROVED"
    assert (await pos.wallet_balance(card.card_no)).balance_fen == balance - 66  # one wallet
    assert (await admin.get_card(student_id=holder.student_id)).card.card_no == new.card_no

    for attempt in (
        admin.unlock(new_request_id(), card.card_no, holder.id_number),
        admin.replace_card(new_request_id(), card.card_no, "ICBC", PIN, holder.id_number),
        admin.freeze_card(new_request_id(), card.card_no),
        admin.suspend_ecard(new_request_id(), card.card_no),
    ):
        with pytest.raises(FailedPreconditionError) as dead:
            await attempt
        assert dead.value.reason == "ILLEGAL_TRANSITION" and dead.value.metadata["state"] == "replaced"


async def test_a_frozen_cards_replacement_stays_frozen(
    admin: CardOfficeClient, campus: Campus, campus_dir: Path
) -> None:
    card = next(c for c in campus.creds.cards_of(SCHOOL) if c.usable and not holder_of(campus_dir, c).minor)
    holder = holder_of(campus_dir, card)
    await admin.freeze_card(new_request_id(), card.card_no)
    replaced = await admin.replace_card(
        new_request_id(), card.card_no, "ICBC", PIN, holder.id_number, generation=pb.CARD_GENERATION_SECOND
    )
    assert replaced.new_card.identity_status == pb.IDENTITY_STATUS_FROZEN
    assert replaced.new_card.ecard_status == pb.ECARD_STATUS_NOT_ISSUED
    assert await enter(campus, usable(replaced.personalization, SCHOOL, PIN)) == "CARD_FROZEN"


# -- the e-card --------------------------------------------------------------------------------


async def test_a_suspended_ecard_declines_qr_scans_only(admin: CardOfficeClient, campus: Campus) -> None:
    card = campus.card(skip=2)
    suspended = await admin.suspend_ecard(new_request_id(), card.card_no)
    assert suspended.card.ecard_status == pb.ECARD_STATUS_SUSPENDED
    assert suspended.card.identity_status == pb.IDENTITY_STATUS_ACTIVE
    assert await enter(campus, card, qr=True) == "ECARD_SUSPENDED"
    assert await enter(campus, card) == "APPROVED"
    with pytest.raises(FailedPreconditionError) as twice:
        await admin.suspend_ecard(new_request_id(), card.card_no)
    assert twice.value.metadata["state"] == "ecard_suspended"
    assert card.card_no not in (await campus.client(campus.gate()).get_config()).blocked_card_nos
    await admin.resume_ecard(new_request_id(), card.card_no)
    assert await enter(campus, card, qr=True) == "APPROVED"
    with pytest.raises(FailedPreconditionError):
        await admin.resume_ecard(new_request_id(), card.card_no)


async def test_a_student_enrolled_at_run_time_gets_a_card_and_a_guardian_check(
    hub: RunningHub, admin: CardOfficeClient, campus: Campus
) -> None:
    """学籍 then 卡务: the enrolment's birth date and ID number are what the card office checks."""
    born = date(2010, 6, 1)
    number = new_student_id_number(born, 77)
    async with StudentRecordsClient(ADMIN, ClientConfig(target=hub.target)) as records:
        await records.enroll_student(
            new_request_id(), SCHOOL, "jx-ts-01-92001", "赵小红", number, "2010-06-01", "day"
        )
    with pytest.raises(FailedPreconditionError) as needs:
        await _issue(admin, "jx-ts-01-92001")
    assert needs.value.reason == "GUARDIAN_REQUIRED"
    issued = await _issue(admin, "jx-ts-01-92001", guardian=parent())
    card = issued.card.card_no
    await admin.enable_identity(new_request_id(), card)
    await admin.report_loss(new_request_id(), card)
    with pytest.raises(PermissionDeniedError):
        await admin.unlock(new_request_id(), card, OTHER_ADULT_ID, PARENT_ID)
    await admin.unlock(new_request_id(), card, number, PARENT_ID)
    assert await enter(campus, usable(issued.personalization, SCHOOL, PIN)) == "APPROVED"
