"""`onecard-hub seed`: a simulated campus of Jiangxi technical schools in a new database.

Everything that makes up the campus (schools, students, ID numbers, cards, PINs, bank
codes, terminals) comes from the options' random seed, so the same options give the
same campus; only the hub's keys are fresh each time. The keys go to the keys folder,
the campus into the database in one transaction, and the credentials export that
simulators and load tests read (`onecard_client.campus`) beside the keys.

ID numbers are stored only encrypted, with a keyed index and a masked form; PINs only
as a keyed hash. Neither is ever printed or logged (the export holds the simulated
holders' PINs on purpose: it is test material, written with owner-only permissions).
"""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import string
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from faker import Faker
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from onecard_client.campus import CREDENTIALS_FILE
from onecard_client.credentials import derive_card_key, derive_ecard_key
from onecard_hub.domain.ledger import AccountKind, TransferKind
from onecard_hub.domain.model import CardStatus, Enrollment, StudentGroup, TerminalKind
from onecard_hub.domain.pii import id_check_digit, mask_id_number
from onecard_hub.domain.policy import default_policy, policy_to_json
from onecard_hub.security.files import write_private
from onecard_hub.security.keys import HubKeys
from onecard_hub.security.protect import FieldProtector, PinHasher
from onecard_hub.store.checks import DatabaseRefused
from onecard_hub.store.records import (
    AccountRow,
    CardRow,
    MerchantRow,
    OperatorRow,
    SchoolRow,
    SeedData,
    StudentRow,
    TerminalRow,
    TransferRow,
)
from onecard_hub.store.sqlite import SqliteStore

__all__ = ["REFERENCE_DATE", "SeedError", "SeedOptions", "SeedReport", "seed_campus"]

# Ages are counted at the start of the 2026 school year; under 18 there is a minor.
REFERENCE_DATE = date(2026, 9, 1)
ADULT_AGE = 18
# Age → weight: roughly a third of technical-school students are 15 to 17.
AGE_WEIGHTS = {15: 10, 16: 12, 17: 12, 18: 22, 19: 20, 20: 14, 21: 10}
BOARDER_SHARE = 0.6
LOCAL_SHARE = 0.7  # students born in the school's own city

# Plausible Jiangxi technical schools, each with the area-code prefix of its city.
SCHOOL_NAMES = (
    ("赣州技师学院", "3607"),
    ("江西省南昌技工学校", "3601"),
    ("九江技师学院", "3604"),
    ("吉安技师学院", "3608"),
    ("宜春技师学院", "3609"),
    ("抚州市高级技工学校", "3610"),
    ("新余技师学院", "3605"),
    ("上饶市技工学校", "3611"),
)
# Real Jiangxi county-level area codes (the first six digits of a resident ID number).
AREA_CODES = (
    "360102", "360103", "360104", "360111", "360112", "360121",  # 南昌
    "360202",  # 景德镇
    "360302",  # 萍乡
    "360402", "360403",  # 九江
    "360502",  # 新余
    "360602",  # 鹰潭
    "360702", "360703", "360704", "360721", "360781",  # 赣州
    "360802",  # 吉安
    "360902",  # 宜春
    "361002",  # 抚州
    "361102",  # 上饶
)  # fmt: skip
# Co-branded banks of the social security card: code → weight.
BANKS = {"ICBC": 25, "CCB": 25, "ABC": 20, "BOC": 10, "JXB": 20}  # JXB: 江西银行 Bank of Jiangxi
WINDOWS_PER_CANTEEN = 4
_CN_NUMERALS = "一二三四五六七八九十"


class SeedError(ValueError):
    """The campus cannot be seeded: bad options, or the database already holds one."""


@dataclass(frozen=True)
class SeedOptions:
    schools: int = 2
    students: int = 2000  # total, spread over schools
    gates_per_school: int = 4  # half gate_group "main", half "side"
    pos_per_school: int = 6  # one canteen window (merchant) per POS
    library_desks_per_school: int = 1  # 图书馆借还台
    exam_tablets_per_school: int = 2  # one per exam room, the room (A101, A102, …) its location
    initial_balance_fen: int = 50_000
    daily_limit_fen: int = 30_000
    meal_count_limit: int = 3
    pin_free_limit_fen: int = 5_000
    anomalies: float = 0.01  # share of students suspended and of cards reported lost (each)
    bank_not_activated_share: float = 0.05  # cards whose bank function was never activated (未激活)
    seed: int = 7  # random seed: same options → same campus (names, ids, cards, PINs)

    def check(self) -> None:
        problems = [
            text
            for bad, text in (
                (self.schools < 1, "schools must be at least 1"),
                (self.students < 0, "students must not be negative"),
                (self.gates_per_school < 0, "gates_per_school must not be negative"),
                (self.pos_per_school < 0, "pos_per_school must not be negative"),
                (self.library_desks_per_school < 0, "library_desks_per_school must not be negative"),
                (self.exam_tablets_per_school < 0, "exam_tablets_per_school must not be negative"),
                (self.initial_balance_fen < 0, "initial_balance_fen must not be negative"),
                (self.daily_limit_fen < 0, "daily_limit_fen must not be negative"),
                (self.meal_count_limit < 0, "meal_count_limit must not be negative"),
                (self.pin_free_limit_fen < 0, "pin_free_limit_fen must not be negative"),
                (not 0.0 <= self.anomalies <= 0.5, "anomalies must be within [0, 0.5]"),
                (
                    not 0.0 <= self.bank_not_activated_share <= 1.0,
                    "bank_not_activated_share must be within [0, 1]",
                ),
            )
            if bad
        ]
        if problems:
            raise SeedError("; ".join(problems))


@dataclass(frozen=True)
class SeedReport:
    schools: int
    students: int
    minors: int
    boarders: int
    cards: int
    terminals: int
    merchants: int
    total_balance_fen: int


async def seed_campus(
    db_path: Path, keys_dir: Path, options: SeedOptions, *, progress: bool = True
) -> SeedReport:
    """Seeds a campus into a new (or empty) database, the only way a hub database is made; refuses
    one that already holds a campus, and any file that is not a hub database."""
    options.check()
    db_path, keys_dir = Path(db_path), Path(keys_dir)
    await asyncio.to_thread(db_path.parent.mkdir, parents=True, exist_ok=True)
    store = SqliteStore(db_path)
    try:
        try:
            await store.open(create=True)
            empty = await store.is_empty()
        except (sqlite3.DatabaseError, DatabaseRefused) as exc:
            raise SeedError(f"{db_path} cannot be seeded: {exc}") from exc
        if not empty:
            raise SeedError(f"{db_path} already holds a campus; seed into a new database file")
        keys = HubKeys.generate()
        campus = await asyncio.to_thread(_build, keys, options, progress)
        # Keys first: a campus whose keys were lost could never be read again.
        await asyncio.to_thread(keys.save, keys_dir)
        await store.seed(campus.data)
    finally:
        await store.close()
    await asyncio.to_thread(write_private, keys_dir / CREDENTIALS_FILE, campus.export_json())
    return campus.report


# -- building the campus ----------------------------------------------------------------


@dataclass
class _Campus:
    data: SeedData = field(default_factory=SeedData)
    export: dict[str, list[Any]] = field(
        default_factory=lambda: {
            "schools": [],
            "terminals": [],
            "operators": [],
            "cards": [],
            "merchants": [],
        }
    )
    minors: int = 0
    boarders: int = 0
    next_account: int = 1

    def account(self, kind: AccountKind, owner: str, balance_fen: int = 0) -> AccountRow:
        row = AccountRow(self.next_account, kind.value, owner, balance_fen)
        self.next_account += 1
        self.data.accounts.append(row)
        return row

    def export_json(self) -> bytes:
        return json.dumps(self.export, ensure_ascii=False, separators=(",", ":")).encode()

    @property
    def report(self) -> SeedReport:
        data = self.data
        return SeedReport(
            schools=len(data.schools),
            students=len(data.students),
            minors=self.minors,
            boarders=self.boarders,
            cards=len(data.cards),
            terminals=len(data.terminals),
            merchants=len(data.merchants),
            total_balance_fen=sum(a.balance_fen for a in data.accounts if a.kind == AccountKind.WALLET),
        )


class _People:
    """Deterministic people, ID numbers, card numbers and PINs from one seed."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.faker = Faker("zh_CN")
        self.faker.seed_instance(seed)
        self._id_numbers: set[str] = set()
        self._card_nos: set[str] = set()
        self._ages = list(AGE_WEIGHTS)
        self._age_weights = list(AGE_WEIGHTS.values())
        self._banks = list(BANKS)
        self._bank_weights = list(BANKS.values())

    def name(self, male: bool) -> str:
        # zh_CN's name_male() draws from the unisex list: pick the given name by sex ourselves.
        given = self.faker.first_name_male() if male else self.faker.first_name_female()
        return self.faker.last_name() + given

    def birth_date(self) -> date:
        """A birth date giving an age of 15 to 21 at REFERENCE_DATE, weighted by AGE_WEIGHTS."""
        age = self.rng.choices(self._ages, self._age_weights)[0]
        latest = REFERENCE_DATE.replace(year=REFERENCE_DATE.year - age)
        earliest = REFERENCE_DATE.replace(year=REFERENCE_DATE.year - age - 1) + timedelta(days=1)
        return earliest + timedelta(days=self.rng.randrange((latest - earliest).days + 1))

    def id_number(self, area_prefix: str, born: date, male: bool) -> str:
        """GB 11643: area (6) + birth date (8) + sequence (3, odd last digit for men) + check."""
        local = [code for code in AREA_CODES if code.startswith(area_prefix)]
        while True:
            pool = local if local and self.rng.random() < LOCAL_SHARE else AREA_CODES
            area = self.rng.choice(pool)
            sequence = self.rng.randrange(100) * 10 + self.rng.randrange(1 if male else 0, 10, 2)
            first17 = f"{area}{born:%Y%m%d}{sequence:03d}"
            number = first17 + id_check_digit(first17)
            if number not in self._id_numbers:
                self._id_numbers.add(number)
                return number

    def card_no(self) -> str:
        """A social security card number: one capital letter and eight digits."""
        while True:
            number = f"{self.rng.choice(string.ascii_uppercase)}{self.rng.randrange(10**8):08d}"
            if number not in self._card_nos:
                self._card_nos.add(number)
                return number

    def pin(self) -> str:
        while True:
            pin = f"{self.rng.randrange(10**6):06d}"
            if len(set(pin)) > 2 and pin not in "0123456789" and pin not in "9876543210":
                return pin

    def bank_code(self) -> str:
        return self.rng.choices(self._banks, self._bank_weights)[0]


def _build(keys: HubKeys, options: SeedOptions, progress: bool) -> _Campus:
    campus = _Campus()
    data, export = campus.data, campus.export
    people = _People(options.seed)
    activation = random.Random(options.seed + 1)  # bank function activated or not: a draw of its own
    protector, pin_hasher = FieldProtector(keys), PinHasher(keys)
    issuer_key, ecard_key = keys.issuer_master.key, keys.ecard_master.key
    now_ms = time.time_ns() // 1_000_000

    clearing = {code: campus.account(AccountKind.BANK_CLEARING, code) for code in BANKS}
    campus.account(AccountKind.SUSPENSE, "suspense")
    policy_json = policy_to_json(
        default_policy(
            pin_free_limit_fen=options.pin_free_limit_fen,
            daily_limit_fen=options.daily_limit_fen,
            meal_count_limit=options.meal_count_limit,
        )
    )
    data.operators.append(OperatorRow("province-admin", "", "province_admin"))
    export["operators"].append("province-admin")

    # Top-ups are tallied per bank and written into the clearing balances at the end.
    topped_up = dict.fromkeys(BANKS, 0)
    per_school, extra = divmod(options.students, options.schools)
    columns = (TextColumn("seeding students"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, disable=not progress, transient=False) as bar:
        task = bar.add_task("students", total=options.students)
        for s in range(1, options.schools + 1):
            school_id = f"jx-ts-{s:02d}"
            name, area_prefix = _school_name(s)
            data.schools.append(SchoolRow(school_id, name, policy_json))
            export["schools"].append({"school_id": school_id, "name": name})
            campus.account(AccountKind.GRANT_POOL, school_id)
            _terminals(campus, school_id, options)
            data.operators.append(OperatorRow(f"{school_id}-clerk", school_id, "clerk"))
            export["operators"].append(f"{school_id}-clerk")

            count = per_school + (1 if s <= extra else 0)
            anomalies = _anomaly_count(options.anomalies, count)
            picked = people.rng.sample(range(1, count + 1), 2 * anomalies)
            suspended, lost = set(picked[:anomalies]), set(picked[anomalies:])
            for n in range(1, count + 1):
                student_id = f"{school_id}-{n:05d}"
                male = people.rng.random() < 0.5
                student_name = people.name(male)
                born = people.birth_date()
                id_number = people.id_number(area_prefix, born, male)
                group = StudentGroup.BOARDER if people.rng.random() < BOARDER_SHARE else StudentGroup.DAY
                enrollment = Enrollment.SUSPENDED if n in suspended else Enrollment.ENROLLED
                card_no, pin, bank = people.card_no(), people.pin(), people.bank_code()
                status = CardStatus.LOST if n in lost else CardStatus.ACTIVE

                wallet = campus.account(AccountKind.WALLET, student_id, options.initial_balance_fen)
                if options.initial_balance_fen:
                    topped_up[bank] += options.initial_balance_fen
                    data.transfers.append(
                        TransferRow(
                            from_account=clearing[bank].account_id,
                            to_account=wallet.account_id,
                            amount_fen=options.initial_balance_fen,
                            kind=TransferKind.TOP_UP.value,
                            caller="seed",
                            request_id=f"seed-{student_id}",
                            origin_request_id="",
                            created_ms=now_ms,
                        )
                    )
                data.students.append(
                    StudentRow(
                        student_id=student_id,
                        school_id=school_id,
                        name=student_name,
                        id_number_enc=protector.encrypt(id_number, context=b"id_number"),
                        id_number_index=protector.index(id_number),
                        id_number_masked=mask_id_number(id_number),
                        birth_date=born.isoformat(),
                        student_group=group.value,
                        enrollment=enrollment.value,
                        wallet_account_id=wallet.account_id,
                    )
                )
                bank_status = (
                    "not_activated" if activation.random() < options.bank_not_activated_share else "active"
                )
                data.cards.append(
                    CardRow(
                        card_no,
                        student_id,
                        status.value,
                        pin_hasher(card_no, pin),
                        bank,
                        bank_status=bank_status,
                    )
                )
                export["cards"].append(
                    {
                        "card_no": card_no,
                        "student_id": student_id,
                        "school_id": school_id,
                        "student_group": group.value,
                        "card_key": derive_card_key(issuer_key, card_no).hex(),
                        "ecard_key": derive_ecard_key(ecard_key, card_no).hex(),
                        "pin": pin,
                        "atc": 0,
                        "status": status.value,
                        "enrollment": enrollment.value,
                        "bank_code": bank,
                        "bank_status": bank_status,
                    }
                )
                campus.minors += _age(born) < ADULT_AGE
                campus.boarders += group is StudentGroup.BOARDER
                if n % 256 == 0:
                    bar.update(task, advance=256)
            bar.update(task, advance=count % 256)

    # Each bank's clearing account owes what it paid into wallets: the ledger sums to zero.
    data.accounts = [
        AccountRow(a.account_id, a.kind, a.owner, -topped_up[a.owner])
        if a.kind == AccountKind.BANK_CLEARING
        else a
        for a in data.accounts
    ]
    return campus


def _terminals(campus: _Campus, school_id: str, options: SeedOptions) -> None:
    data, export = campus.data, campus.export
    main_gates = (options.gates_per_school + 1) // 2
    for i in range(1, options.gates_per_school + 1):
        group, door, k = ("main", "北门", i) if i <= main_gates else ("side", "东门", i - main_gates)
        terminal_id = f"{school_id}-gate-{i:02d}"
        data.terminals.append(
            TerminalRow(terminal_id, school_id, int(TerminalKind.GATE), f"{door} {k}号闸机", group, "", True)
        )
        export["terminals"].append(_terminal_info(terminal_id, school_id, "gate", group, ""))
    for i in range(1, options.pos_per_school + 1):
        canteen, window = divmod(i - 1, WINDOWS_PER_CANTEEN)
        name = f"{_canteen_name(canteen + 1)} {window + 1}号窗口"
        merchant_id = f"{school_id}-win-{i:02d}"
        account = campus.account(AccountKind.MERCHANT, merchant_id)
        bank = _merchant_account(merchant_id, school_id, i)
        data.merchants.append(
            MerchantRow(
                merchant_id, school_id, name, account.account_id, bank["bank_code"], bank["account_no"]
            )
        )
        export["merchants"].append(bank)
        terminal_id = f"{school_id}-pos-{i:02d}"
        data.terminals.append(
            TerminalRow(terminal_id, school_id, int(TerminalKind.CANTEEN_POS), name, "", merchant_id, True)
        )
        export["terminals"].append(_terminal_info(terminal_id, school_id, "canteen_pos", "", merchant_id))
    for i in range(1, options.library_desks_per_school + 1):
        terminal_id = f"{school_id}-lib-{i:02d}"
        kind, location = int(TerminalKind.LIBRARY_DESK), f"图书馆 {i}号借还台"
        data.terminals.append(TerminalRow(terminal_id, school_id, kind, location, "", "", True))
        export["terminals"].append(_terminal_info(terminal_id, school_id, "library_desk", "", "", location))
    for i in range(1, options.exam_tablets_per_school + 1):
        terminal_id, room = f"{school_id}-exam-{i:02d}", exam_room(i)
        data.terminals.append(
            TerminalRow(terminal_id, school_id, int(TerminalKind.EXAM_TABLET), room, "", "", True)
        )
        export["terminals"].append(_terminal_info(terminal_id, school_id, "exam_tablet", "", "", room))


def exam_room(number: int) -> str:
    """The exam room (考场) a seeded exam tablet stands in: its registered location."""
    return f"A{100 + number}"


def _merchant_account(merchant_id: str, school_id: str, window: int) -> dict[str, str]:
    """A canteen window's settlement account: every school banks with one co-branded bank. (The
    migration that gave merchants their accounts applies the same rule to databases seeded before:
    store/schema.py.)"""
    school_no = int("".join(ch for ch in school_id if ch.isdigit()) or "0")
    bank_code = list(BANKS)[school_no % len(BANKS)]
    account_no = f"6299{school_no:06d}{window:06d}"
    return {
        "merchant_id": merchant_id,
        "school_id": school_id,
        "bank_code": bank_code,
        "account_no": account_no,
    }


def _terminal_info(
    terminal_id: str, school_id: str, kind: str, gate_group: str, merchant_id: str, location: str = ""
) -> dict[str, str]:
    # Exactly the fields of onecard_client.campus.TerminalInfo (it is built with **).
    return {
        "terminal_id": terminal_id,
        "school_id": school_id,
        "kind": kind,
        "gate_group": gate_group,
        "merchant_id": merchant_id,
        "location": location,
    }


def _school_name(number: int) -> tuple[str, str]:
    """(name, area-code prefix of its city); past the list, numbered provincial schools."""
    if number <= len(SCHOOL_NAMES):
        return SCHOOL_NAMES[number - 1]
    return f"江西省第{number - len(SCHOOL_NAMES)}技工学校", "3601"


def _canteen_name(number: int) -> str:
    return f"第{_CN_NUMERALS[number - 1]}食堂" if number <= len(_CN_NUMERALS) else f"第{number}食堂"


def _anomaly_count(share: float, students: int) -> int:
    """Suspended students (and, apart from them, lost cards) in a school: at least one when asked for."""
    if share <= 0 or students < 2:
        return 0
    return min(max(1, round(share * students)), students // 2)


def _age(born: date) -> int:
    return (
        REFERENCE_DATE.year
        - born.year
        - ((REFERENCE_DATE.month, REFERENCE_DATE.day) < (born.month, born.day))
    )
