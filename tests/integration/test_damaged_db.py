"""A damaged, foreign or unwritable database: `onecard-hub serve` answers with one line on stderr and
the exit code of its class (hub/README.md, "When the database is damaged"), and leaves the file as
it was — the same bytes, no -wal or -shm beside it. A stop always finishes, whatever the store raises.

The hub runs as its own process (`python -m onecard_hub.cli serve`) on a copy of the seeded campus
(conftest), damaged first. "Read-only" must hold for the user the tests run as: root ignores
permission bits, so as root the file or folder is made immutable (`chattr +i`, which binds root
too); as anyone else, its write bits are cleared. Either way the test first shows that a write
really fails.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from onecard.auth.v1 import authorization_service_pb2 as pb
from onecard_client.campus import CampusCredentials
from onecard_hub.domain.clock import ManualClock
from onecard_hub.exit_codes import ExitCode
from onecard_hub.server import running_hub
from onecard_hub.stopping import StopFailed
from onecard_hub.store.schema import APPLICATION_ID, SCHEMA_VERSION, tables_at
from onecard_hub.store.sqlite import SqliteStore
from tests.conftest import LUNCH_MS, hub_config
from tests.helpers import Campus

TIMEOUT_S = 60  # a hub that hangs fails its test instead of hanging the suite
PAGE = 4096


@dataclass(frozen=True)
class Files:
    digest: str  # sha256 of the database file
    names: frozenset[str]  # the database and whatever SQLite keeps beside it


def files(db: Path) -> Files:
    names = frozenset(p.name for p in db.parent.iterdir() if p.name.startswith(db.name))
    return Files(hashlib.sha256(db.read_bytes()).hexdigest() if db.is_file() else "", names)


def serve_argv(db: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "onecard_hub.cli",
        "serve",
        "--db",
        str(db),
        "--listen",
        "127.0.0.1:0",
        *extra,
    ]


def serve(db: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        serve_argv(db, *extra), capture_output=True, text=True, timeout=TIMEOUT_S, check=False
    )


def assert_refused(db: Path, code: ExitCode, message: str, *extra: str) -> None:
    """`serve` exits with `code` and one line `error: …` matching `message`, no traceback; the file
    is untouched."""
    before = files(db)
    done = serve(db, *extra)
    assert done.returncode == code, done.stderr
    assert "listening" not in done.stdout
    lines = done.stderr.strip().splitlines()  # log lines (a migration's) may come first
    assert [line for line in lines if line.startswith("error: ")] == lines[-1:], done.stderr
    assert "Traceback" not in done.stderr
    assert re.search(message, lines[-1]), lines[-1]
    assert files(db) == before


# -- the damage ----------------------------------------------------------------------------------


def rewrite(db: Path, change: Callable[[bytearray], bytes | bytearray]) -> None:
    db.write_bytes(bytes(change(bytearray(db.read_bytes()))))


def garbage_page(data: bytearray) -> bytearray:
    middle = len(data) // PAGE // 2
    data[middle * PAGE : (middle + 1) * PAGE] = random.Random(7).randbytes(PAGE)
    return data


def garbled_header(data: bytearray) -> bytearray:
    data[16:24] = b"\xff\x13\x07\x09\x00\x99\x88\x77"  # page size, format versions, payload fractions
    return data


def garbled_signature(data: bytearray) -> bytearray:
    data[0:16] = random.Random(3).randbytes(16)
    return data


def sql(db: Path, *statements: str) -> None:
    with sqlite3.connect(db) as conn:
        for statement in statements:
            conn.execute(statement)
    conn.close()


def foreign(db: Path, application_id: int = 0) -> None:
    db.unlink()
    sql(db, "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)", "INSERT INTO notes VALUES (1, 'hi')")
    if application_id:
        sql(db, f"PRAGMA application_id={application_id}")


DAMAGES: dict[str, tuple[Callable[[Path], object], ExitCode, str]] = {
    "empty": (
        lambda db: db.write_bytes(b""),
        ExitCode.NOT_A_HUB_DATABASE,
        r"hub\.db is empty \(0 bytes\), not a hub database; `onecard-hub seed` creates databases$",
    ),
    "truncated": (
        lambda db: rewrite(db, lambda d: d[: len(d) // 2 + 100]),
        ExitCode.CORRUPT,
        r"hub\.db is truncated: \d+ bytes, its header says \d+$",
    ),
    "truncated inside the header": (
        lambda db: rewrite(db, lambda d: d[:60]),
        ExitCode.CORRUPT,
        r"hub\.db is truncated: 60 bytes, shorter than SQLite's header$",
    ),
    "garbage page in the middle": (
        lambda db: rewrite(db, garbage_page),
        ExitCode.CORRUPT,
        r"hub\.db is damaged: .*(malformed|quick_check)",
    ),
    "garbled header": (
        lambda db: rewrite(db, garbled_header),
        ExitCode.CORRUPT,
        r"hub\.db is damaged: its SQLite header has impossible values$",
    ),
    "garbled signature": (
        lambda db: rewrite(db, garbled_signature),
        ExitCode.CORRUPT,
        r"hub\.db is damaged: its header does not begin with SQLite's signature$",
    ),
    "not SQLite": (
        lambda db: db.write_text("school_id,name\n36-01,赣州技师学院\n", encoding="utf-8"),
        ExitCode.NOT_A_HUB_DATABASE,
        r"hub\.db is not an SQLite database, so not a hub database$",
    ),
    "foreign SQLite file": (
        foreign,
        ExitCode.NOT_A_HUB_DATABASE,
        r"hub\.db is an SQLite database with other tables \(notes\), not a hub database$",
    ),
    "another application's": (
        lambda db: foreign(db, application_id=0x0F055112),
        ExitCode.NOT_A_HUB_DATABASE,
        r"hub\.db belongs to another application \(application_id 0x0f055112\), not a hub database$",
    ),
    "newer schema": (
        lambda db: sql(db, f"PRAGMA user_version={SCHEMA_VERSION + 1}"),
        ExitCode.SCHEMA_TOO_NEW,
        rf"hub\.db has schema {SCHEMA_VERSION + 1}, written by a newer hub;"
        rf" this hub knows up to {SCHEMA_VERSION}$",
    ),
    "older schema that cannot be migrated": (  # the next migration's tables are there already
        lambda db: sql(db, f"PRAGMA user_version={SCHEMA_VERSION - 1}"),
        ExitCode.SCHEMA_TOO_OLD,
        rf"hub\.db has schema {SCHEMA_VERSION - 1}, and bringing it to schema {SCHEMA_VERSION} failed"
        r" \(table \w+ already exists\); nothing was changed$",
    ),
}


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_or_foreign_database_is_refused_and_left_as_it_was(campus_dir: Path, damage: str) -> None:
    apply, code, message = DAMAGES[damage]
    db = campus_dir / "hub.db"
    apply(db)
    assert_refused(db, code, message)


async def test_a_hub_schema_without_a_campus_is_refused(tmp_path: Path, campus_dir: Path) -> None:
    db = tmp_path / "unfinished" / "hub.db"
    db.parent.mkdir()
    store = SqliteStore(db)
    await store.open(create=True)  # what a seed that stopped before the campus leaves behind
    await store.close()
    keys = campus_dir / "hub.keys"
    assert_refused(
        db, ExitCode.NOT_A_HUB_DATABASE, r"hub\.db has the hub's schema but no campus", "--keys", str(keys)
    )


def test_a_missing_database_or_keys_folder_has_its_own_code(campus_dir: Path) -> None:
    db = campus_dir / "hub.db"
    assert_refused(
        campus_dir / "nothing.db", ExitCode.USAGE, r"nothing\.db does not exist; run `onecard-hub seed"
    )
    assert not (campus_dir / "nothing.db").exists()
    missing = campus_dir / "no.keys"
    assert_refused(
        db, ExitCode.KEYS, rf"keys folder {re.escape(str(missing))} not found", "--keys", str(missing)
    )


def test_an_address_in_use_has_its_own_code(campus_dir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [*serve_argv(campus_dir / "hub.db"), "--listen", f"127.0.0.1:{port}"],
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
        )
    assert done.returncode == ExitCode.CANNOT_LISTEN, done.stderr
    assert done.stderr.strip().splitlines()[-1] == f"error: cannot listen on 127.0.0.1:{port}"
    assert "Traceback" not in done.stderr


def test_debug_shows_the_traceback(campus_dir: Path) -> None:
    db = campus_dir / "hub.db"
    db.write_bytes(b"")
    done = serve(db, "--debug")
    assert done.returncode == ExitCode.NOT_A_HUB_DATABASE
    assert done.stderr.startswith("Traceback (most recent call last):")
    assert done.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "NotAHubDatabase" in done.stderr


# -- read-only: for real, even for root ------------------------------------------------------------


@contextmanager
def read_only(path: Path) -> Iterator[None]:
    """Makes the file or folder `path` read-only for this process, root included."""
    if os.geteuid() != 0:
        mode = path.stat().st_mode
        path.chmod(mode & ~0o222)
        try:
            yield
        finally:
            path.chmod(mode)
        return
    try:
        done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        pytest.skip("running as root without chattr: no way to make a file read-only for root")
    if done.returncode != 0:
        pytest.skip(f"chattr +i does not work here ({done.stderr.strip()}); root would write anyway")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def assert_cannot_write(path: Path) -> None:
    """The condition is real: this process (root or not) cannot write there."""
    with pytest.raises(PermissionError):
        if path.is_dir():
            (path / "probe").touch()
        else:
            os.close(os.open(path, os.O_RDWR))


def test_a_read_only_database_file_is_refused_and_left_as_it_was(campus_dir: Path) -> None:
    db = campus_dir / "hub.db"
    with read_only(db):
        assert_cannot_write(db)
        assert_refused(
            db, ExitCode.NOT_WRITABLE, r"hub\.db cannot be opened for writing: Operation not permitted|denied"
        )


def test_a_database_in_a_read_only_folder_is_refused_and_left_as_it_was(campus_dir: Path) -> None:
    db = campus_dir / "hub.db"
    with read_only(campus_dir):
        assert_cannot_write(campus_dir)
        assert_refused(
            db, ExitCode.NOT_WRITABLE, r"hub\.db's folder .* is not writable: SQLite keeps its -wal"
        )


# -- a database from before the application id, and an older schema ----------------------------------


def downgrade(db: Path) -> None:
    """What a hub of the previous schema seeded: no application id, the last migration's tables not
    there yet (a freshly seeded campus has no rows in them)."""
    newest = sorted(tables_at(SCHEMA_VERSION) - tables_at(SCHEMA_VERSION - 1))
    sql(
        db,
        *(f"DROP TABLE {t}" for t in newest),
        "PRAGMA application_id=0",
        f"PRAGMA user_version={SCHEMA_VERSION - 1}",
    )


def header(db: Path) -> tuple[int, int]:
    with sqlite3.connect(db) as conn:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        application_id = int(conn.execute("PRAGMA application_id").fetchone()[0])
    conn.close()
    return version, application_id


async def start(argv: list[str]) -> tuple[asyncio.subprocess.Process, str]:
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    assert process.stdout is not None
    while line := (await asyncio.wait_for(process.stdout.readline(), TIMEOUT_S)).decode():
        if "listening on" in line:
            return process, line.split("listening on ")[1].split()[0]
    await asyncio.wait_for(process.wait(), TIMEOUT_S)
    stderr = await process.stderr.read() if process.stderr is not None else b""
    raise AssertionError(f"the hub did not start ({process.returncode}): {stderr.decode()}")


async def stopped(process: asyncio.subprocess.Process) -> tuple[int, str]:
    process.send_signal(signal.SIGTERM)
    try:
        _, stderr = await asyncio.wait_for(process.communicate(), TIMEOUT_S)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError("the hub did not stop on SIGTERM") from None
    assert process.returncode is not None
    return process.returncode, stderr.decode()


async def test_an_older_database_without_the_application_id_is_migrated_and_served(
    campus_dir: Path, creds: CampusCredentials
) -> None:
    db = campus_dir / "hub.db"
    downgrade(db)
    assert header(db) == (SCHEMA_VERSION - 1, 0)
    process, target = await start(serve_argv(db, "--clock-start", "2026-11-24T12:00:00+08:00"))
    try:
        campus = Campus(creds, ManualClock(LUNCH_MS), target)
        card, pos = campus.card(), campus.pos()
        campus.clock.ms = (await campus.client(pos).hub_time()).now_ms()
        paid = await campus.send(campus.chip(card, pos, pb.SCENE_CANTEEN_PURCHASE, amount_fen=500))
        assert paid.decision == pb.DECISION_APPROVED
        await campus.close()
    finally:
        code, stderr = await stopped(process)
    assert code == 0, stderr
    assert header(db) == (SCHEMA_VERSION, APPLICATION_ID)
    assert f"migrating {db} to schema version {SCHEMA_VERSION}" in stderr


# -- a stop always finishes --------------------------------------------------------------------------


def store_threads() -> set[threading.Thread]:
    """The journal's thread and aiosqlite's: alive, they keep a process from exiting."""
    return {
        t
        for t in threading.enumerate()
        if t.name.startswith("onecard-journal") or "_connection_worker_thread" in t.name
    }


async def test_stop_finishes_and_stops_the_store_threads_when_the_disk_turns_read_only(
    campus_dir: Path, clock: ManualClock, creds: CampusCredentials
) -> None:
    before = store_threads()
    running = running_hub(hub_config(campus_dir), clock)
    hub = await running.__aenter__()
    stopping = False
    try:
        campus = Campus(creds, clock, hub.target)
        card, pos = campus.card(), campus.pos()
        paid = await campus.send(campus.chip(card, pos, pb.SCENE_CANTEEN_PURCHASE, amount_fen=300))
        assert paid.decision == pb.DECISION_APPROVED
        await campus.close()
        assert store_threads() - before
        wal = campus_dir / "hub.db-wal"
        with read_only(wal):
            assert_cannot_write(wal)
            stopping = True
            with pytest.raises(
                StopFailed, match=r"the last checkpoint failed \(OperationalError: disk I/O error\)"
            ):
                await asyncio.wait_for(running.__aexit__(None, None, None), TIMEOUT_S)
    finally:
        if not stopping:
            await running.__aexit__(None, None, None)
    assert not store_threads() - before  # the store was closed all the same


async def test_sigterm_stops_a_hub_whose_disk_turned_read_only(campus_dir: Path) -> None:
    db = campus_dir / "hub.db"
    process, _ = await start(serve_argv(db, "--log-level", "WARNING"))
    wal = campus_dir / "hub.db-wal"
    try:
        with read_only(wal):
            assert_cannot_write(wal)
            code, stderr = await stopped(process)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert code == ExitCode.FAILED, stderr
    assert stderr.strip().splitlines()[-1] == (
        "error: the hub did not stop cleanly: the last checkpoint failed (OperationalError: disk I/O error)"
    )
