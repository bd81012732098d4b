"""What a database file must be before the hub opens it for writing (`SqliteStore.open`).

Only `onecard-hub seed` creates a database. Any other file the hub is given must be a hub
database (its application_id, or for one seeded before the id existed, the hub's tables at its
schema version), of a schema this hub knows, whole (its header, its size, `PRAGMA quick_check`),
and writable with its folder. All of it is checked through a read-only connection first — with
`immutable=1` when no -wal or -shm file is beside it, so SQLite creates neither — so a database
the hub refuses is left exactly as it was, byte for byte.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from onecard_hub.store.schema import APPLICATION_ID, SCHEMA_VERSION, tables_at

SQLITE_SIGNATURE = b"SQLite format 3\x00"
HEADER_BYTES = 100


class DatabaseRefused(RuntimeError):
    """The hub will not open this database file; the message says why, in one line."""


class DatabaseMissing(DatabaseRefused):
    """There is no file: `onecard-hub seed` creates one."""


class NotAHubDatabase(DatabaseRefused):
    """Empty, not SQLite, another application's, or a hub schema with no campus in it."""


class DatabaseCorrupt(DatabaseRefused):
    """Truncated, a damaged header, or SQLite finds it malformed."""


class SchemaTooNew(DatabaseRefused):
    """The database was written by a newer hub."""


class SchemaTooOld(DatabaseRefused):
    """An older schema whose migration to this hub's failed (nothing was changed)."""


class NotWritable(DatabaseRefused):
    """The file, its -wal or -shm, or its folder cannot be written (or the file not even read)."""


@dataclass(frozen=True, slots=True)
class DatabaseInfo:
    application_id: int  # APPLICATION_ID, or 0 for a hub database seeded before the id existed
    schema_version: int
    has_campus: bool  # at least one school: a finished seed


def sidecars(path: Path) -> tuple[Path, Path]:
    """SQLite's write-ahead log and shared-memory index beside the database."""
    return path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")


def inspect_database(path: Path) -> DatabaseInfo:
    """Checks, reading only, that `path` is a whole hub database this hub can serve from.

    Raises a DatabaseRefused (missing, not a hub database, corrupt, schema too new)."""
    header = _read_header(path)
    real = path.resolve()  # where SQLite looks for the -wal and -shm
    had_sidecars = any(f.exists() for f in sidecars(real))  # after a crash: the log holds committed work
    _check_header(path, header, real.stat().st_size, logged=had_sidecars)
    query = "?mode=ro" if had_sidecars else "?mode=ro&immutable=1"
    try:
        conn = sqlite3.connect(real.as_uri() + query, uri=True)
    except sqlite3.Error as exc:
        raise _unreadable(path, exc) from exc
    try:
        return _inspect(path, conn)
    except sqlite3.Error as exc:
        raise _unreadable(path, exc) from exc
    finally:
        conn.close()


def check_writable(path: Path) -> None:
    """The database and its -wal and -shm (when present) open for writing, and its folder takes new
    files (SQLite creates the -wal and -shm there). Opening for writing changes nothing; the folder
    is asked of the kernel (access(2) with the effective ids), which also answers for root: a
    read-only mount or an immutable folder (chattr +i) is refused even to root."""
    real = path.resolve()
    for file in (path, *(f for f in sidecars(real) if f.exists())):
        try:
            os.close(os.open(file, os.O_RDWR))
        except OSError as exc:
            raise NotWritable(f"{file} cannot be opened for writing: {exc.strerror}") from exc
    folder = real.parent
    effective = os.access in os.supports_effective_ids
    if not os.access(folder, os.W_OK | os.X_OK, effective_ids=effective):
        raise NotWritable(
            f"{path}'s folder {folder} is not writable: SQLite keeps its -wal and -shm files there"
        )


def _read_header(path: Path) -> bytes:
    try:
        with path.open("rb") as file:
            return file.read(HEADER_BYTES)
    except FileNotFoundError:
        raise DatabaseMissing(f"{path} does not exist; `onecard-hub seed --db {path}` creates one") from None
    except IsADirectoryError:
        raise NotAHubDatabase(f"{path} is a folder, not a database file") from None
    except OSError as exc:
        raise NotWritable(f"{path} cannot be read: {exc.strerror}") from exc


def _check_header(path: Path, header: bytes, size: int, *, logged: bool) -> None:
    """The 100-byte header (sqlite.org/fileformat.html §1.3): SQLite's signature, sane fields, and a
    file as long as the header says (unless a write-ahead log may hold the rest)."""
    if size == 0:
        raise NotAHubDatabase(
            f"{path} is empty (0 bytes), not a hub database; `onecard-hub seed` creates databases"
        )
    ours = len(header) >= 72 and int.from_bytes(header[68:72], "big") == APPLICATION_ID
    if not header.startswith(SQLITE_SIGNATURE[: len(header)]):
        if ours or _fields_look_like_sqlite(header):
            raise DatabaseCorrupt(f"{path} is damaged: its header does not begin with SQLite's signature")
        raise NotAHubDatabase(f"{path} is not an SQLite database, so not a hub database")
    if len(header) < HEADER_BYTES:
        raise DatabaseCorrupt(f"{path} is truncated: {size} bytes, shorter than SQLite's header")
    page_size = _page_size(header)
    if page_size is None or not _fields_look_like_sqlite(header):
        raise DatabaseCorrupt(f"{path} is damaged: its SQLite header has impossible values")
    pages = int.from_bytes(header[28:32], "big")
    pages_valid = header[24:28] == header[92:96] and pages > 0  # the count is kept up to date
    if not logged and (size % page_size or (pages_valid and size < pages * page_size)):
        expected = f", its header says {pages * page_size}" if pages_valid else ""
        raise DatabaseCorrupt(f"{path} is truncated: {size} bytes{expected}")


def _page_size(header: bytes) -> int | None:
    raw = int.from_bytes(header[16:18], "big")
    size = 65_536 if raw == 1 else raw
    return size if 512 <= size <= 65_536 and size & (size - 1) == 0 else None


def _fields_look_like_sqlite(header: bytes) -> bool:
    """Fields every SQLite file has: file format versions 1 or 2, payload fractions 64/32/32."""
    return (
        len(header) >= 24
        and _page_size(header) is not None
        and header[18] in (1, 2)
        and header[19] in (1, 2)
        and header[21:24] == b"\x40\x20\x20"
    )


def _inspect(path: Path, conn: sqlite3.Connection) -> DatabaseInfo:
    application_id = int(conn.execute("PRAGMA application_id").fetchone()[0])
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    tables = {str(r[0]) for r in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")}
    if application_id == APPLICATION_ID:
        if version > SCHEMA_VERSION:
            raise SchemaTooNew(
                f"{path} has schema {version}, written by a newer hub; this hub knows up to {SCHEMA_VERSION}"
            )
        missing = tables_at(version) - tables
        if version == 0 or missing:
            raise DatabaseCorrupt(
                f"{path} is damaged: the hub's schema {version} lacks tables {', '.join(sorted(missing))}"
                if missing
                else f"{path} is damaged: it has the hub's application id but no schema"
            )
    elif application_id != 0:
        raise NotAHubDatabase(
            f"{path} belongs to another application (application_id {application_id:#010x}),"
            " not a hub database"
        )
    elif not 1 <= version <= SCHEMA_VERSION or tables_at(version) - tables:
        # No application id: a hub database seeded before the id existed has the hub's tables.
        shown = ", ".join(sorted(tables)[:5]) + (", …" if len(tables) > 5 else "")
        raise NotAHubDatabase(
            f"{path} is an SQLite database with other tables ({shown}), not a hub database"
            if tables
            else f"{path} is an SQLite database without tables, not a hub database"
        )
    problems = [str(r[0]) for r in conn.execute("PRAGMA quick_check(3)")]
    if problems != ["ok"]:
        raise DatabaseCorrupt(f"{path} is damaged: SQLite's quick_check finds {'; '.join(problems)}")
    has_campus = conn.execute("SELECT EXISTS (SELECT 1 FROM schools)").fetchone()[0] == 1
    return DatabaseInfo(application_id, version, has_campus)


def _unreadable(path: Path, exc: sqlite3.Error) -> DatabaseRefused:
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    if code in (sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM, sqlite3.SQLITE_AUTH):
        return NotWritable(f"{path} cannot be opened: {exc}")
    return DatabaseCorrupt(f"{path} is damaged: SQLite cannot read it ({exc})")
