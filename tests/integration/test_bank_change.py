"""Change of co-branded bank: the new account is opened and linked at once; the old one is closed
only after the holder's pending top-up there settles (PENDING_CLOSE → CLOSED); the identity check
(a guardian for a minor); bad input named with nothing written."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from onecard.bank.v1 import bank_service_pb2 as bank_pb
from onecard.funds.v1 import funds_service_pb2 as pb
from onecard_client.campus import CampusCredentials
from onecard_client.errors import FailedPreconditionError, InvalidArgumentError, PermissionDeniedError
from onecard_hub.domain.clock import ManualClock
from tests.integration.card_office_helpers import holders
from tests.integration.topup_fixtures import cards, rid, speed_up, until_final, world


def _other_bank(code: str) -> str:
    return "JXB" if code != "JXB" else "ICBC"


async def test_the_old_account_closes_after_its_pending_top_up_settles(
    campus_dir: Path, clock: ManualClock, creds: CampusCredentials, tmp_path: Path
) -> None:
    people = holders(campus_dir)
    async with world(campus_dir, clock, tmp_path) as w:
        assert w.hub.funds is not None and w.hub.funds.closer is not None
        speed_up(w.hub, max_reversals=1_000)
        card = next(c for c in cards(creds, 50) if not people[c.card_no].minor)
        holder = people[card.card_no]
        old, new = card.bank_code, _other_bank(card.bank_code)
        await w.bank.control.set_faults(outage_s=60, bank_code=old)
        pending = (await w.client.top_up(rid(), 2_000, card_no=card.card_no)).topup
        assert pending.state == pb.TOP_UP_STATE_PENDING

        changed = await w.client.change_bank(rid(), card.student_id, new, holder.id_number)
        assert changed.change.state == pb.BANK_CHANGE_STATE_PENDING_CLOSE
        assert changed.change.old_bank_code == old and changed.account_no_masked.startswith("****")
        shown = await w.client.get_bank_function(card.student_id)
        assert shown.bank_code == new and shown.status == pb.BANK_FUNCTION_STATUS_ACTIVE
        await w.hub.funds.closer.close_if_settled(w.hub.funds.book.changes[card.student_id][-1])
        assert (await w.client.get_bank_function(card.student_id)).last_change.state == (
            pb.BANK_CHANGE_STATE_PENDING_CLOSE  # the top-up at the old bank is not final yet
        )

        with pytest.raises(FailedPreconditionError) as back:  # not back to the account being closed
            await w.client.change_bank(rid(), card.student_id, old, holder.id_number)
        assert back.value.reason == "ILLEGAL_TRANSITION" and back.value.field == "new_bank_code"

        await w.bank.control.set_faults(outage_s=0, bank_code=old)
        settled = await until_final(w.client, pending.topup_id)
        assert settled.state == pb.TOP_UP_STATE_VOIDED and settled.bank_code == old
        for _ in range(500):
            change = (await w.client.get_bank_function(card.student_id)).last_change
            if change.state == pb.BANK_CHANGE_STATE_CLOSED:
                break
            await asyncio.sleep(0.02)
        assert change.state == pb.BANK_CHANGE_STATE_CLOSED
        closed = await w.bank.control.get_account(old, card_no=card.card_no)
        assert closed.state == bank_pb.ACCOUNT_STATE_CLOSED

        await w.bank.control.adjust_account(new, card_no=card.card_no, add_fen=10_000)
        later = (await w.client.top_up(rid(), 3_000, card_no=card.card_no)).topup
        assert later.state == pb.TOP_UP_STATE_POSTED and later.bank_code == new
        assert w.hub.hub.campus.ledger.total_fen() == 0


async def test_checks_and_bad_input_change_nothing(
    campus_dir: Path, clock: ManualClock, creds: CampusCredentials, tmp_path: Path
) -> None:
    people = holders(campus_dir)
    async with world(campus_dir, clock, tmp_path) as w:
        assert w.hub.funds is not None
        adult = next(c for c in cards(creds, 50) if not people[c.card_no].minor)
        number = people[adult.card_no].id_number
        for code, field in (
            ("XYZ", "new_bank_code"),
            (adult.bank_code, "new_bank_code"),
            ("", "new_bank_code"),
        ):
            with pytest.raises(InvalidArgumentError) as bad:
                await w.client.change_bank(rid(), adult.student_id, code, number)
            assert bad.value.field == field
        other = next(p for p in people.values() if p.student_id != adult.student_id)
        with pytest.raises(PermissionDeniedError) as wrong:
            await w.client.change_bank(rid(), adult.student_id, _other_bank(adult.bank_code), other.id_number)
        assert wrong.value.reason == "IDENTITY_CHECK_FAILED"
        minors = [c for c in cards(creds, 500) + cards(creds, 500, school=1) if people[c.card_no].minor]
        if minors:
            child = minors[0]
            with pytest.raises(FailedPreconditionError) as guardian:
                await w.client.change_bank(
                    rid(), child.student_id, _other_bank(child.bank_code), people[child.card_no].id_number
                )
            assert guardian.value.reason == "GUARDIAN_REQUIRED"
        assert w.hub.funds.book.changes == {}
        assert w.hub.hub.campus.cards[adult.card_no].bank_code == adult.bank_code
