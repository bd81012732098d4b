"""Generic rendering for people: any answer as a key/value table, repeated records as a table."""

from __future__ import annotations

from typing import Any

from google.protobuf.message import Message
from rich.console import Console
from rich.table import Table

from onecard_cli.session import as_dict


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
            scalars.append((name, ", ".join(str(v) for v in value)))
        else:
            scalars.append((name, str(value)))
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
