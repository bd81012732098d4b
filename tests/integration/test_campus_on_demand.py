"""Students and cards are built when first used (campus_loader.py), not at start: a card first used
after start answers exactly as one built at start did — found with its counters and presence, a
lost one declined, its balance right, each student's current card the newest live one — also when
its latest counters are only in the unfolded log; and walking every card builds the same campus
as reading every row at start did."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import date
from pathlib import Path

import pytest

from onecard.auth.v1 import authorization_service_pb2 as pb
from onecard.records.v1 import student_records_service_pb2 as rpb
from onecard_client import AlreadyExistsError, ClientConfig, StudentRecordsClient
from onecard_client.campus import CampusCredentials
from onecard_hub.domain.card_lifecycle import DEAD
from onecard_hub.domain.clock import ManualClock
from onecard_hub.domain.model import CardStatus, Presence
from onecard_hub.domain.pii import mask_name
from onecard_hub.grants.batches import current_cards
from onecard_hub.hub import Hub
from onecard_hub.server import running_hub
from tests.conftest import hub_config
from tests.helpers import Campus, name
from tests.integration.card_office_helpers import holder_of, new_student_id_number

BUY, ENTRY = pb.SCENE_CANTEEN_PURCHASE, pb.SCENE_GATE_ENTRY
APPROVED = pb.DECISION_APPROVED

# Every card as the hub read them all at start before (the card_states view: card_state, unless
# the log holds later counters), in issue order.
EVERY_CARD = (
    "SELECT c.card_no, c.student_id, c.status, c.pin_hash, c.bank_code, COALESCE(s.atc, 0),"
    " COALESCE(s.pin_failures, 0), COALESCE(s.presence, 0), c.bank_status, c.generation,"
    " c.ecard_issued, c.ecard_suspended, c.issued_ms, c.replaced_by"
    " FROM cards c LEFT JOIN card_states s ON s.card_no = c.card_no ORDER BY c.rowid"
)
EVERY_STUDENT = (
    "SELECT student_id, school_id, name, id_number_index, id_number_masked, birth_date, student_group,"
    " enrollment, wallet_account_id FROM students"
)


def in_memory(hub: Hub, card_no: str) -> bool:
    return dict.__contains__(hub.campus.cards, card_no)


def _set_state(
    db: Path, card_no: str, *, folded: tuple[int, int, int], logged: list[tuple[int, int, int]]
) -> None:
    """The card's counters as a fold left them in card_state, then later ones only in the log."""
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT OR REPLACE INTO card_state (card_no, atc, pin_failures, presence) VALUES (?, ?, ?, ?)",
            (card_no, *folded),
        )
        for state in logged:
            conn.execute(
                "INSERT INTO card_state_log (card_no, atc, pin_failures, presence) VALUES (?, ?, ?, ?)",
                (card_no, *state),
            )


def _second_card(db: Path, card_no: str, new_no: str) -> None:
    """The student of `card_no` got a new card (issued after it): the old one is replaced."""
    with sqlite3.connect(db) as conn:
        columns = [r[1] for r in conn.execute("PRAGMA table_info(cards)")]
        found = conn.execute("SELECT * FROM cards WHERE card_no = ?", (card_no,)).fetchone()
        row = dict(zip(columns, found, strict=True))
        row.update(card_no=new_no, issued_ms=row["issued_ms"] + 1)
        marks = ", ".join("?" * len(columns))
        conn.execute(f"INSERT INTO cards ({', '.join(columns)}) VALUES ({marks})", [row[c] for c in columns])
        conn.execute(
            "UPDATE cards SET status = 'replaced', replaced_by = ? WHERE card_no = ?", (new_no, card_no)
        )


async def test_a_card_first_used_after_start_answers_as_if_built_at_start(
    campus_dir: Path, clock: ManualClock
) -> None:
    creds = CampusCredentials.load(campus_dir / "hub.keys")
    c0 = Campus(creds, clock, "")
    card, lost, folded_only = c0.card(), c0.card(status="lost"), c0.card(skip=1)
    db = campus_dir / "hub.db"
    _set_state(db, folded_only.card_no, folded=(9, 0, int(Presence.INSIDE)), logged=[])
    _set_state(db, card.card_no, folded=(3, 0, int(Presence.OUTSIDE)), logged=[(6, 0, 2), (7, 0, 1)])
    async with running_hub(hub_config(campus_dir), clock) as running:
        hub = running.hub
        assert not any(in_memory(hub, x.card_no) for x in (card, lost, folded_only))
        c = Campus(creds, clock, running.target)
        pos, gate = c.pos(), c.gate()

        # counters 7 and presence INSIDE, only in the log: a replay is refused, so is a second entry
        assert name((await c.send(c.chip(card, pos, BUY, amount_fen=100, atc=7))).decline_reason) == (
            "COUNTER_REPLAYED"
        )
        assert in_memory(hub, card.card_no)
        assert name((await c.send(c.chip(card, gate, ENTRY, atc=8))).decline_reason) == "ANTI_PASSBACK"
        before = (await c.client(pos).wallet_balance(card.card_no)).balance_fen
        paid = await c.send(c.chip(card, pos, BUY, amount_fen=1_100, atc=9))
        assert paid.decision == APPROVED and paid.balance_fen == before - 1_100

        # as a fold left it: counter 9, inside
        assert (
            name((await c.send(c.chip(folded_only, gate, ENTRY, atc=10))).decline_reason) == "ANTI_PASSBACK"
        )
        assert hub.campus.cards[folded_only.card_no].atc == 10  # the tap's counter is taken in
        assert (await c.send(c.chip(folded_only, gate, pb.SCENE_GATE_EXIT, atc=11))).decision == APPROVED

        assert name((await c.send(c.chip(lost, gate, ENTRY))).decline_reason) == "CARD_REPORTED_LOST"
        assert lost.card_no in hub.campus.blocklists[lost.school_id].card_nos  # listed before it was built
        unknown = c.chip(card, pos, BUY, amount_fen=100, atc=20)
        unknown.chip.card_no = "NOSUCHCARD0001"
        assert name((await c.send(unknown)).decline_reason) == "CARD_UNKNOWN"
        assert hub.campus.cards.get("NOSUCHCARD0001") is None and "NOSUCHCARD0001" not in hub.campus.cards
        await c.close()


async def test_a_student_is_built_with_all_their_cards_and_their_current_one(
    campus_dir: Path, clock: ManualClock
) -> None:
    creds = CampusCredentials.load(campus_dir / "hub.keys")
    old = Campus(creds, clock, "").card(skip=2)
    db = campus_dir / "hub.db"
    _second_card(db, old.card_no, "NEW" + old.card_no)
    with sqlite3.connect(db) as conn:
        student_id = conn.execute(
            "SELECT student_id FROM cards WHERE card_no = ?", (old.card_no,)
        ).fetchone()[0]
    async with running_hub(hub_config(campus_dir), clock) as running:
        hub = running.hub
        assert student_id not in hub.card_book.current
        assert old.card_no in hub.campus.blocklists[old.school_id].card_nos  # replaced: blocked
        new = hub.campus.cards["NEW" + old.card_no]  # the new card brings its student and the old card
        student = new.student
        assert in_memory(hub, old.card_no) and hub.campus.cards[old.card_no].student is student
        assert hub.campus.students[student_id] is student
        assert [x.card_no for x in hub.campus.cards_of(student)] == [old.card_no, new.card_no]
        assert hub.card_book.current[student_id] == new.card_no
        assert hub.campus.cards[old.card_no].status is CardStatus.REPLACED
        c = Campus(creds, clock, running.target)
        assert name((await c.send(c.chip(old, c.gate(), ENTRY))).decline_reason) == "CARD_REPLACED"
        await c.close()


def _varied_campus(campus_dir: Path, clock: ManualClock) -> tuple[CampusCredentials, Path]:
    """The seeded campus with a card whose latest counters are only in the log, and a student with
    a second card that replaced the first."""
    creds = CampusCredentials.load(campus_dir / "hub.keys")
    c0 = Campus(creds, clock, "")
    db = campus_dir / "hub.db"
    _set_state(db, c0.card(skip=3).card_no, folded=(4, 1, 1), logged=[(5, 2, 2)])
    _second_card(db, c0.card(skip=4).card_no, "NEWCARD0004")
    return creds, db


async def test_walking_every_card_builds_what_reading_every_row_at_start_did(
    campus_dir: Path, clock: ManualClock
) -> None:
    creds, db = _varied_campus(campus_dir, clock)
    async with running_hub(hub_config(campus_dir), clock) as running:
        hub = running.hub
        c = Campus(creds, clock, running.target)
        first = c.card(skip=5)
        assert (await c.send(c.chip(first, c.gate(), ENTRY))).decision == APPROVED  # one built before
        built = dict.__len__(hub.campus.cards)
        with sqlite3.connect(db) as conn:
            cards = conn.execute(EVERY_CARD).fetchall()
        assert 0 < built < len(cards)

        _matches_every_row(hub, db, (first.card_no, c.atc[first.card_no]))
        await c.close()


async def test_the_background_fill_builds_every_student_without_a_walk_while_taps_go_on(
    campus_dir: Path, clock: ManualClock
) -> None:
    creds, db = _varied_campus(campus_dir, clock)
    async with running_hub(hub_config(campus_dir), clock) as running:
        hub = running.hub
        loader = hub.campus_loader
        assert loader is not None
        c = Campus(creds, clock, running.target)
        first, late = c.card(skip=5), c.card(skip=6)
        assert (await c.send(c.chip(first, c.gate(), ENTRY))).decision == APPROVED  # built before
        tapped = hub.campus.cards[first.card_no]
        filling = asyncio.create_task(loader.fill(step=3, share=0.2))
        await asyncio.sleep(0)  # its first step: three students, then it sleeps
        assert not filling.done() and not in_memory(hub, late.card_no)
        # a tap meanwhile builds its student; the fill then finds it built
        assert (await c.send(c.chip(late, c.gate(), ENTRY))).decision == APPROVED
        await filling
        with sqlite3.connect(db) as conn:
            count = conn.execute("SELECT COUNT(*) FROM cards").fetchone()[0]
        assert hub.campus.cards.complete and hub.campus.students.complete  # type: ignore[attr-defined]
        assert dict.__len__(hub.campus.cards) == count  # all built, no walk needed
        assert hub.campus.cards[first.card_no] is tapped  # what was built stays; nothing built twice
        assert hub.campus.cards[late.card_no].presence is Presence.INSIDE
        _matches_every_row(
            hub, db, (first.card_no, c.atc[first.card_no]), (late.card_no, c.atc[late.card_no])
        )
        await c.close()


async def test_enrolling_a_known_id_number_is_refused_without_building_every_student(
    campus_dir: Path, clock: ManualClock
) -> None:
    creds = CampusCredentials.load(campus_dir / "hub.keys")
    seeded = holder_of(campus_dir, Campus(creds, clock, "").card(skip=6))
    async with running_hub(hub_config(campus_dir), clock) as running:
        hub = running.hub
        assert not dict.__contains__(hub.campus.students, seeded.student_id)
        async with StudentRecordsClient("province-admin", ClientConfig(target=running.target)) as records:
            with pytest.raises(AlreadyExistsError):  # the ID number of a student not in memory
                await records.enroll_student(
                    "enr-od-1", seeded.school_id, "od-0001", "张三", seeded.id_number,
                    seeded.birth_date.isoformat(), "day",
                )  # fmt: skip
            number = new_student_id_number(date(2005, 5, 5), 301)
            await records.enroll_student(
                "enr-od-2", seeded.school_id, "od-0002", "李四", number, "2005-05-05", "day"
            )
            with pytest.raises(AlreadyExistsError):  # the ID number of a student just enrolled
                await records.enroll_student(
                    "enr-od-3", seeded.school_id, "od-0003", "李四", number, "2005-05-05", "day"
                )
        assert not hub.campus.students.complete and not hub.campus.cards.complete  # type: ignore[attr-defined]


async def test_grant_current_cards_are_found_for_students_not_in_memory(
    campus_dir: Path, clock: ManualClock
) -> None:
    creds = CampusCredentials.load(campus_dir / "hub.keys")
    c0 = Campus(creds, clock, "")
    old = c0.card(skip=8)
    db = campus_dir / "hub.db"
    _second_card(db, old.card_no, "NEWCARD0008")
    with sqlite3.connect(db) as conn:
        ids = dict(conn.execute("SELECT card_no, student_id FROM cards"))
    plain = c0.card(skip=9)
    async with running_hub(hub_config(campus_dir), clock) as running:
        hub = running.hub
        wanted = [ids[old.card_no], ids[plain.card_no], "no-such-student"]
        found = current_cards(hub, wanted)
        assert {sid: card.card_no for sid, card in found.items()} == {
            ids[old.card_no]: "NEWCARD0008",
            ids[plain.card_no]: plain.card_no,
        }
        assert not hub.campus.cards.complete  # type: ignore[attr-defined]


async def test_a_roster_with_the_id_number_of_a_student_not_in_memory_finds_them_existing(
    campus_dir: Path, clock: ManualClock
) -> None:
    creds = CampusCredentials.load(campus_dir / "hub.keys")
    seeded = holder_of(campus_dir, Campus(creds, clock, "").card(skip=10))
    fresh = new_student_id_number(date(2006, 6, 6), 302)
    roster = "student_id,name,id_number,birth_date,group\n" + "\n".join(
        [
            f"od-r1,张三,{seeded.id_number},{seeded.birth_date.isoformat()},day",
            f"od-r2,李四,{fresh},2006-06-06,day",
        ]
    )
    async with running_hub(hub_config(campus_dir), clock) as running:
        hub = running.hub
        async with StudentRecordsClient("province-admin", ClientConfig(target=running.target)) as records:
            answer = await records.import_roster("roster-od-1", seeded.school_id, roster)
            assert [(r.student_id, r.outcome) for r in answer.rows] == [
                ("od-r1", rpb.ROW_OUTCOME_EXISTING),
                ("od-r2", rpb.ROW_OUTCOME_ENROLLED),
            ]
            again = await records.import_roster(
                "roster-od-2", seeded.school_id, roster.replace("od-r", "od-s")
            )
            assert [r.outcome for r in again.rows] == [rpb.ROW_OUTCOME_EXISTING, rpb.ROW_OUTCOME_EXISTING]
        assert not hub.campus.students.complete  # type: ignore[attr-defined]


def _matches_every_row(hub: Hub, db: Path, *tapped: tuple[str, int]) -> None:
    """Every student and card in memory is what its rows say (each `tapped` card, number and counter,
    was tapped once at a gate: inside, at that counter), each student's current card the newest live
    one, the blocklists every card that is not active."""
    taps = dict(tapped)
    with sqlite3.connect(db) as conn:
        cards = conn.execute(EVERY_CARD).fetchall()
        students = conn.execute(EVERY_STUDENT).fetchall()
    every = list(hub.campus.cards.values())
    assert len(every) == len(hub.campus.cards) == len(cards)
    for row in cards:
        card = hub.campus.cards[row[0]]
        atc = taps.get(row[0], row[5])  # the tap's counter
        presence = int(Presence.INSIDE) if row[0] in taps else row[7]
        assert (
            card.card_no, card.student.student_id, card.status.value, card.pin_hash, card.bank_code,
            card.atc, card.pin_failures, int(card.presence), card.bank_status.value, card.generation,
            int(card.ecard_issued), int(card.ecard_suspended), card.issued_ms, card.replaced_by,
        ) == (*row[:5], atc, row[6], presence, *row[8:])  # fmt: skip
        assert card.student is hub.campus.students[row[1]]
    assert len(hub.campus.students) == len(students)
    for sid, school, full_name, index, masked, birth, group, enrollment, wallet in students:
        s = hub.campus.students[sid]
        assert (s.school_id, s.name_masked, s.id_index, s.id_masked, s.birth_date) == (
            school,
            mask_name(full_name),
            index,
            masked,
            birth,
        )
        assert (s.group.value, s.enrollment.value, s.wallet.account.account_id) == (
            group,
            enrollment,
            wallet,
        )

    current: dict[str, str] = {}  # the newest live card, in issue order
    for row in cards:
        if CardStatus(row[2]) not in DEAD:
            current[row[1]] = row[0]
    assert hub.card_book.current == current
    blocked: dict[str, set[str]] = {}
    for row in cards:
        if row[2] != "active":
            blocked.setdefault(hub.campus.students[row[1]].school_id, set()).add(row[0])
    assert {s: b.card_nos for s, b in hub.campus.blocklists.items() if b.card_nos} == blocked
