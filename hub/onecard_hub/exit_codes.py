"""`onecard-hub`'s exit codes: one per class of start-up failure, so that a supervisor (or a
person) can tell a damaged disk from a typo. The table is in hub/README.md and `serve --help`."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1  # the journal failed while serving, a step of the stop failed, or an unexpected error
    USAGE = 2  # bad flags or values; the database file does not exist; seed refused
    NOT_A_HUB_DATABASE = 3
    CORRUPT = 4
    SCHEMA_TOO_NEW = 5
    SCHEMA_TOO_OLD = 6
    NOT_WRITABLE = 7
    KEYS = 8
    CANNOT_LISTEN = 9


class StartupError(Exception):
    """The hub cannot start; `code` is the exit code, the message one line for stderr."""

    def __init__(self, message: str, code: ExitCode) -> None:
        super().__init__(message)
        self.code = code


EPILOG = """\
exit codes:
  0  stopped cleanly (SIGTERM or SIGINT)
  1  failed while serving or stopping (the journal failed, a step of the stop raised),
     or an unexpected error (--debug shows its traceback)
  2  usage: a bad flag or value, no --db, the database file does not exist
  3  not a hub database: empty, not SQLite, another application's, or no campus in it
  4  corrupt: truncated, a damaged header, or SQLite's quick_check fails
  5  schema too new: written by a newer hub
  6  schema too old: migrating it to this hub's schema failed (nothing was changed)
  7  not writable: the database, its -wal/-shm, or its folder
  8  keys or TLS: the keys folder is missing or unreadable, --tls DIR is not a usable PKI
  9  cannot listen on --listen
Only `onecard-hub seed` creates a database; a refused one is left exactly as it was."""
