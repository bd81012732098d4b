"""`seed_campus`: a valid, deterministic, balanced campus whose personal data is protected."""

from __future__ import annotations

import json
import sqlite3
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from onecard_client.campus import CREDENTIALS_FILE, CampusCredentials
from onecard_client.credentials import derive_card_key, derive_ecard_key
from onecard_hub.domain.pii import is_valid_id_number, mask_id_number
from onecard_hub.security.keys import HubKeys
from onecard_hub.security.protect import FieldProtector, PinHasher
from onecard_hub.seed import REFERENCE_DATE, SeedError, SeedOptions, SeedReport, seed_campus
from onecard_hub.store.sqlite import SqliteStore

OPTIONS = SeedOptions(schools=2, students=300, gates_per_school=4, pos_per_school=6, anomalies=0.02, seed=3)


async def _seed(folder: Path, options: SeedOptions = OPTIONS) -> SeedReport:
    return await seed_campus(folder / "hub.db", folder / "hub.keys", options, progress=False)


def _rows(db: Path, sql: str) -> list[Any]:
    with sqlite3.connect(db) as conn:
        return list(conn.execute(sql).fetchall())


def _age(born: date) -> int:
    return (
        REFERENCE_DATE.year
        - born.year
        - ((REFERENCE_DATE.month, REFERENCE_DATE.day) < (born.month, born.day))
    )


@pytest.fixture
async def seeded(tmp_path: Path) -> tuple[Path, SeedReport]:
    report = await _seed(tmp_path)
    return tmp_path, report


async def test_report_counts(seeded: tuple[Path, SeedReport]) -> None:
    folder, report = seeded
    assert (report.schools, report.students, report.cards) == (2, 300, 300)
    assert (report.terminals, report.merchants) == (2 * (4 + 6 + 1 + 2), 2 * 6)
    assert report.total_balance_fen == 300 * OPTIONS.initial_balance_fen
    assert 0 < report.minors < report.students
    assert 0 < report.boarders < report.students
    db = folder / "hub.db"
    assert _rows(db, "SELECT COUNT(*) FROM students") == [(300,)]
    assert _rows(db, "SELECT school_id, COUNT(*) FROM students GROUP BY school_id") == [
        ("jx-ts-01", 150),
        ("jx-ts-02", 150),
    ]


async def test_id_numbers_are_valid_and_match_birth_dates(seeded: tuple[Path, SeedReport]) -> None:
    folder, report = seeded
    protector = FieldProtector(HubKeys.load(folder / "hub.keys"))
    rows = _rows(
        folder / "hub.db", "SELECT id_number_enc, id_number_index, id_number_masked, birth_date FROM students"
    )
    ages = []
    for enc, index, masked, birth in rows:
        number = protector.decrypt(enc, context=b"id_number")
        assert is_valid_id_number(number)
        assert number.startswith("36")  # Jiangxi
        assert number[6:14] == birth.replace("-", "")
        assert masked == mask_id_number(number)
        assert index == protector.index(number)
        ages.append(_age(date.fromisoformat(birth)))
    assert min(ages) >= 15 and max(ages) <= 21
    minors = sum(age < 18 for age in ages)
    assert minors == report.minors
    assert 0.2 < minors / len(ages) < 0.5  # roughly a third


async def test_groups_enrollment_and_card_status(seeded: tuple[Path, SeedReport]) -> None:
    folder, _ = seeded
    db = folder / "hub.db"
    assert dict(_rows(db, "SELECT student_group, COUNT(*) FROM students GROUP BY 1")).keys() == {
        "boarder",
        "day",
    }
    enrollment = dict(_rows(db, "SELECT enrollment, COUNT(*) FROM students GROUP BY 1"))
    status = dict(_rows(db, "SELECT status, COUNT(*) FROM cards GROUP BY 1"))
    assert enrollment == {"enrolled": 294, "suspended": 6}  # 2% of 150, in each school
    assert status == {"active": 294, "lost": 6}
    cards = [row[0] for row in _rows(db, "SELECT card_no FROM cards")]
    assert all(len(c) == 9 and c[0].isupper() and c[0].isascii() and c[1:].isdigit() for c in cards)
    assert set(dict(_rows(db, "SELECT bank_code, 1 FROM cards"))) <= {"ICBC", "CCB", "ABC", "BOC", "JXB"}


async def test_ledger_is_balanced(seeded: tuple[Path, SeedReport]) -> None:
    folder, _ = seeded
    store = SqliteStore(folder / "hub.db")
    await store.open()
    try:
        totals = await store.ledger_totals()
        assert totals.sum_fen == 0
        assert totals.transfer_count == 300
        assert await store.ledger_mismatches() == 0
        kinds = {kind: (accounts, balance) for kind, accounts, balance in totals.by_kind}
        assert kinds["wallet"] == (300, 300 * OPTIONS.initial_balance_fen)
        assert kinds["bank_clearing"] == (5, -300 * OPTIONS.initial_balance_fen)
        assert kinds["merchant"] == (12, 0)
        assert kinds["grant_pool"] == (2, 0)
        assert kinds["suspense"] == (1, 0)
    finally:
        await store.close()


async def test_export_loads_and_matches_the_keys(seeded: tuple[Path, SeedReport]) -> None:
    folder, _ = seeded
    keys = HubKeys.load(folder / "hub.keys")
    creds = CampusCredentials.load(folder / "hub.keys")
    assert creds.schools == ["jx-ts-01", "jx-ts-02"]
    assert creds.operators == ["province-admin", "jx-ts-01-clerk", "jx-ts-02-clerk"]
    assert len(creds.cards) == 300
    assert sum(c.usable for c in creds.cards) == 300 - 6 - 6
    gates = creds.terminals_of("jx-ts-01", "gate")
    assert sorted(t.gate_group for t in gates) == ["main", "main", "side", "side"]
    pos = creds.terminals_of("jx-ts-02", "canteen_pos")
    assert [t.merchant_id for t in pos] == [f"jx-ts-02-win-{i:02d}" for i in range(1, 7)]

    pin_hashes = dict(_rows(folder / "hub.db", "SELECT card_no, pin_hash FROM cards"))
    hasher = PinHasher(keys)
    for card in creds.cards:
        assert card.card_key == derive_card_key(keys.issuer_master.key, card.card_no)
        assert card.ecard_key == derive_ecard_key(keys.ecard_master.key, card.card_no)
        assert len(card.pin) == 6 and card.pin.isdigit()
        assert pin_hashes[card.card_no] == hasher(card.card_no, card.pin)
        assert card.atc == 0
    assert creds.public_key.public_bytes_raw() == keys.ecard_public_key.public_bytes_raw()
    assert (folder / "hub.keys" / CREDENTIALS_FILE).stat().st_mode & 0o077 == 0


async def test_same_seed_same_campus(tmp_path: Path) -> None:
    await _seed(tmp_path / "a")
    await _seed(tmp_path / "b")
    await _seed(tmp_path / "c", SeedOptions(schools=2, students=300, anomalies=0.02, seed=4))

    def campus(folder: Path) -> list[Any]:
        return _rows(
            folder / "hub.db",
            "SELECT s.student_id, s.name, s.id_number_masked, s.birth_date, s.student_group, s.enrollment,"
            " c.card_no, c.status, c.bank_code FROM students s JOIN cards c USING (student_id) ORDER BY 1",
        )

    def pins(folder: Path) -> list[tuple[str, str]]:
        doc = json.loads((folder / "hub.keys" / CREDENTIALS_FILE).read_text(encoding="utf-8"))
        return [(c["card_no"], c["pin"]) for c in doc["cards"]]

    assert campus(tmp_path / "a") == campus(tmp_path / "b")
    assert pins(tmp_path / "a") == pins(tmp_path / "b")
    assert campus(tmp_path / "a") != campus(tmp_path / "c")


async def test_second_seed_is_refused(seeded: tuple[Path, SeedReport]) -> None:
    folder, _ = seeded
    keys_before = (folder / "hub.keys" / "hub_keys.json").read_bytes()
    with pytest.raises(SeedError, match="already holds a campus"):
        await _seed(folder)
    # The existing campus keeps its keys.
    assert (folder / "hub.keys" / "hub_keys.json").read_bytes() == keys_before


async def test_bad_options_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SeedError, match="schools"):
        await _seed(tmp_path, SeedOptions(schools=0))
    assert not (tmp_path / "hub.db").exists()


async def test_id_numbers_are_not_stored_in_clear(seeded: tuple[Path, SeedReport]) -> None:
    folder, _ = seeded
    protector = FieldProtector(HubKeys.load(folder / "hub.keys"))
    db = folder / "hub.db"
    encrypted = [row[0] for row in _rows(db, "SELECT id_number_enc FROM students LIMIT 5")]
    numbers = [protector.decrypt(blob, context=b"id_number") for blob in encrypted]
    assert len(numbers) == 5
    content = b"".join(p.read_bytes() for p in folder.glob("hub.db*"))  # the file, and a WAL if one is left
    for number in numbers:
        assert number.encode() not in content
        assert number[6:].encode() not in content  # birth date + sequence + check digit
