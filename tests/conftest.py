"""Shared fixtures: a seeded campus (made once per session, copied per test), a hand-set
clock, and a real hub on 127.0.0.1 with a real SQLite file."""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from onecard_client.campus import CampusCredentials
from onecard_hub.config import HubConfig
from onecard_hub.domain.clock import ManualClock, parse_instant
from onecard_hub.seed import SeedOptions, seed_campus
from onecard_hub.server import RunningHub, running_hub

# Tuesday 24 November 2026, 12:00 in Ganzhou: lunch is being served.
LUNCH_MS = parse_instant("2026-11-24T12:00:00+08:00")
SEED_OPTIONS = SeedOptions(
    schools=2, students=240, gates_per_school=4, pos_per_school=4, anomalies=0.05, seed=11
)


@pytest.fixture(scope="session")
def campus_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("campus-template")
    asyncio.run(seed_campus(folder / "hub.db", folder / "hub.keys", SEED_OPTIONS, progress=False))
    return folder


@pytest.fixture
def campus_dir(campus_template: Path, tmp_path: Path) -> Path:
    target = tmp_path / "campus"
    shutil.copytree(campus_template, target)
    return target


@pytest.fixture
def creds(campus_dir: Path) -> CampusCredentials:
    return CampusCredentials.load(campus_dir / "hub.keys")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(LUNCH_MS)


def hub_config(campus_dir: Path, **overrides: Any) -> HubConfig:
    return HubConfig(
        db=campus_dir / "hub.db",
        keys=campus_dir / "hub.keys",
        listen="127.0.0.1:0",
        grace_seconds=2,
        **overrides,
    )


@pytest.fixture
async def hub(campus_dir: Path, clock: ManualClock) -> AsyncIterator[RunningHub]:
    async with running_hub(hub_config(campus_dir), clock) as running:
        yield running


def set_policy(campus_dir: Path, **changes: Any) -> None:
    """Changes every school's policy in the database before the hub starts."""
    with sqlite3.connect(campus_dir / "hub.db") as db:
        for school_id, text in db.execute("SELECT school_id, policy_json FROM schools").fetchall():
            doc = json.loads(text)
            doc.update(changes)
            db.execute("UPDATE schools SET policy_json = ? WHERE school_id = ?", (json.dumps(doc), school_id))


def db_count(campus_dir: Path, table: str) -> int:
    with sqlite3.connect(campus_dir / "hub.db") as db:
        return int(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


@pytest.fixture
async def campus(hub: RunningHub, creds: CampusCredentials, clock: ManualClock) -> AsyncIterator[Any]:
    from tests.helpers import Campus

    c = Campus(creds, clock, hub.target)
    yield c
    await c.close()
