"""Helpers for the card-office tests: holders as the card office sees them (read from the seeded
database with the hub's keys: the credentials export holds no ID numbers), cardless students
added before the hub starts, and cards made usable from an issue's personalization."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from onecard.auth.v1 import authorization_service_pb2 as auth_pb
from onecard.cardoffice.v1 import card_office_service_pb2 as pb
from onecard_client import CardOfficeClient, ClientConfig
from onecard_client.campus import CardCredential
from onecard_hub.domain.guardian import age_on
from onecard_hub.domain.pii import id_check_digit, mask_id_number
from onecard_hub.security.keys import HubKeys
from onecard_hub.security.protect import FieldProtector
from tests.helpers import Campus, name

ADMIN = "province-admin"
BUY = auth_pb.SCENE_CANTEEN_PURCHASE
ENTRY = auth_pb.SCENE_GATE_ENTRY
TODAY = date(2026, 11, 24)  # tests.conftest.LUNCH_MS
PIN_FREE_LIMIT_FEN = 5_000  # the seeded policy's


def clerk(school_id: str) -> str:
    return f"{school_id}-clerk"


def office(target: str, operator_id: str = ADMIN) -> CardOfficeClient:
    return CardOfficeClient(operator_id, ClientConfig(target=target))


def id_number(area: str, born: date, sequence: int) -> str:
    first17 = f"{area}{born:%Y%m%d}{sequence:03d}"
    return first17 + id_check_digit(first17)


PARENT_ID = id_number("360702", date(1980, 3, 14), 123)
OTHER_ADULT_ID = id_number("360102", date(1975, 7, 2), 456)


def parent(name: str = "王建国", number: str = PARENT_ID) -> pb.Guardian:
    return pb.Guardian(name=name, id_number=number, relation=pb.GUARDIAN_RELATION_PARENT)


@dataclass(frozen=True)
class Holder:
    student_id: str
    school_id: str
    id_number: str
    birth_date: date
    card_no: str

    @property
    def minor(self) -> bool:
        return age_on(self.birth_date, TODAY) < 18


def holders(campus_dir: Path) -> dict[str, Holder]:
    """Every seeded card's holder by card number, with the clear ID number (test material)."""
    protector = FieldProtector(HubKeys.load(campus_dir / "hub.keys"))
    with sqlite3.connect(campus_dir / "hub.db") as db:
        rows = db.execute(
            "SELECT c.card_no, s.student_id, s.school_id, s.id_number_enc, s.birth_date"
            " FROM cards c JOIN students s ON s.student_id = c.student_id"
        ).fetchall()
    return {
        card_no: Holder(
            student_id,
            school_id,
            protector.decrypt(enc, context=b"id_number"),
            date.fromisoformat(born),
            card_no,
        )
        for card_no, student_id, school_id, enc, born in rows
    }


def holder_of(campus_dir: Path, card: CardCredential) -> Holder:
    return holders(campus_dir)[card.card_no]


def add_student(campus_dir: Path, student_id: str, school_id: str, born: date, number: str) -> None:
    """A student without a card (an intake), written before the hub starts."""
    protector = FieldProtector(HubKeys.load(campus_dir / "hub.keys"))
    with sqlite3.connect(campus_dir / "hub.db") as db:
        account_id = int(db.execute("SELECT MAX(account_id) FROM accounts").fetchone()[0]) + 1
        db.execute("INSERT INTO accounts VALUES (?, 'wallet', ?, 0)", (account_id, student_id))
        db.execute(
            "INSERT INTO students (student_id, school_id, name, id_number_enc, id_number_index,"
            " id_number_masked, birth_date, student_group, enrollment, wallet_account_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                student_id,
                school_id,
                "李小明",
                protector.encrypt(number, context=b"id_number"),
                protector.index(number),
                mask_id_number(number),
                born.isoformat(),
                "day",
                "enrolled",
                account_id,
            ),
        )


def new_student_id_number(born: date, sequence: int) -> str:
    return id_number("360703", born, sequence)


def usable(issued: pb.CardPersonalization, school_id: str, pin: str, group: str = "day") -> CardCredential:
    """A card credential for taps, from the personalization an issue answered."""
    return CardCredential(
        card_no=issued.card_no,
        school_id=school_id,
        student_group=group,
        card_key=issued.card_key,
        ecard_key=issued.ecard_key,
        pin=pin,
        atc=0,
    )


async def buy(campus: Campus, card: CardCredential, *, qr: bool = False, amount_fen: int = 100) -> str:
    """One canteen purchase; the decision's name (APPROVED or the decline reason)."""
    pos = campus.pos(campus.creds.schools.index(card.school_id))
    pin = card.pin if amount_fen > PIN_FREE_LIMIT_FEN else ""
    request = (campus.qr if qr else campus.chip)(card, pos, BUY, amount_fen=amount_fen, pin=pin)
    response = await campus.send(request)
    return "APPROVED" if response.decision == auth_pb.DECISION_APPROVED else name(response.decline_reason)


async def enter(campus: Campus, card: CardCredential, *, qr: bool = False) -> str:
    """One entry at a side gate (soft anti-passback: a card may enter again and again)."""
    gate = campus.gate(campus.creds.schools.index(card.school_id), group="side")
    request = (campus.qr if qr else campus.chip)(card, gate, ENTRY)
    response = await campus.send(request)
    return "APPROVED" if response.decision == auth_pb.DECISION_APPROVED else name(response.decline_reason)
