"""Generic rendering for people: any answer as a key/value table, repeated records as a table."""

from __future__ import annotations

import functools
from typing import Any

from google.protobuf.message import Message
from rich.console import Console
from rich.table import Table

from onecard.admin.v1 import admin_service_pb2
from onecard.auth.v1 import authorization_service_pb2
from onecard.cardoffice.v1 import card_office_service_pb2
from onecard.exam.v1 import exam_service_pb2
from onecard.grants.v1 import grant_service_pb2
from onecard.library.v1 import library_service_pb2
from onecard.records.v1 import student_records_service_pb2
from onecard_cli.session import as_dict

_CONTRACT = (
    admin_service_pb2,
    authorization_service_pb2,
    card_office_service_pb2,
    exam_service_pb2,
    grant_service_pb2,
    library_service_pb2,
    student_records_service_pb2,
)


@functools.cache
def _enum_words() -> dict[str, str]:
    """Every enum value name of the contract → the word people read ("IDENTITY_STATUS_LOST" → "lost")."""
    words: dict[str, str] = {}
    for module in _CONTRACT:
        for enum in module.DESCRIPTOR.enum_types_by_name.values():
            names = [v.name for v in enum.values]
            prefix = names[0][: names[0].rfind("_") + 1]
            while prefix and not all(n.startswith(prefix) for n in names):
                prefix = prefix[: prefix.rfind("_", 0, len(prefix) - 1) + 1]
            words.update({n: n.removeprefix(prefix).lower() for n in names})
    return words


def _text(value: Any) -> str:
    text = str(value)
    return _enum_words().get(text, text)


def _flat(doc: dict[str, Any], prefix: str = "") -> tuple[list[tuple[str, str]], list[tuple[str, list[Any]]]]:
    """Scalars as (dotted key, text) and lists of records as (key, records)."""
    scalars: list[tuple[str, str]] = []
    tables: list[tuple[str, list[Any]]] = []
    for key, value in doc.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            inner, lists = _flat(value, f"{name}.")
            scalars += inner
            tables += lists
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            tables.append((name, value))
        elif isinstance(value, list):
            scalars.append((name, ", ".join(_text(v) for v in value)))
        else:
            scalars.append((name, _text(value)))
    return scalars, tables


def show_record(console: Console, message: Message) -> None:
    """A message as `field value` lines, and each list of records in it as a table."""
    scalars, tables = _flat(as_dict(message))
    if scalars:
        grid = Table(show_header=False, box=None, pad_edge=False)
        grid.add_column(style="bold")
        grid.add_column()
        for key, text in scalars:
            grid.add_row(key, text)
        console.print(grid)
    for name, records in tables:
        show_rows(console, name, records)


def show_rows(console: Console, title: str, records: list[dict[str, Any]]) -> None:
    flat = [dict(_flat(r)[0]) for r in records]
    columns: list[str] = []
    for row in flat:
        columns += [k for k in row if k not in columns]
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in flat:
        table.add_row(*(row.get(c, "") for c in columns))
    console.print(table)
