"""A dictionary whose entries are built the first time they are asked for.

A hub with a million students does not build a million students and cards before it serves: the
campus' `students` and `cards` are `OnDemand` dictionaries that start empty, and whatever looks one up
— `d[key]`, `d.get(key)`, `key in d` — and finds nothing asks `fetch(key)`, which builds what the store
holds under that key (and whatever belongs with it) and puts it in. A key the store does not hold
either stays absent, so a lookup answers exactly as a dictionary holding everything would.

Walking the dictionary (`values()`, `items()`, iteration, `len()`) first builds everything still
missing (`fetch_all`), once: the few callers that need every student or card (reports, grant
coverage) then see them all. `in_memory()` walks what is built so far without building anything, for
callers that know what they look for is already there (the cards of a student that is in memory).
"""

from __future__ import annotations

from _collections_abc import dict_items, dict_keys, dict_values
from collections.abc import Callable, Iterator, ValuesView
from typing import Any, TypeVar

K = TypeVar("K")
V = TypeVar("V")


def _nothing(key: Any) -> None:
    return None


def _no_more() -> None:
    return None


class OnDemand(dict[K, V]):
    """`fetch(key)` puts the key's entry (and any others that belong with it) into the dictionary,
    or nothing when the store has no such key; `fetch_all()` puts in every entry still missing."""

    __slots__ = ("_fetch", "_fetch_all", "complete")

    def __init__(
        self, fetch: Callable[[K], None] = _nothing, fetch_all: Callable[[], None] = _no_more
    ) -> None:
        super().__init__()
        self._fetch = fetch
        self._fetch_all = fetch_all
        self.complete = False  # every entry the store holds is in memory

    def __missing__(self, key: K) -> V:
        if not self.complete:
            try:
                self._fetch(key)
            except KeyError as exc:  # not "no such key": building what the store holds failed
                raise RuntimeError(f"building the entry of {key!r} failed: {exc!r}") from exc
            if dict.__contains__(self, key):
                return dict.__getitem__(self, key)
        raise KeyError(key)

    def get(self, key: K, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def __contains__(self, key: object) -> bool:
        if dict.__contains__(self, key):
            return True
        if self.complete:
            return False
        try:
            self[key]  # type: ignore[index]
        except (KeyError, TypeError):
            return False
        return True

    def in_memory(self) -> ValuesView[V]:
        """The entries built so far; builds nothing."""
        return dict.values(self)

    def everything(self) -> None:
        """Builds every entry still missing, once."""
        if not self.complete:
            self._fetch_all()
            self.complete = True

    def values(self) -> dict_values[K, V]:
        self.everything()
        return dict.values(self)

    def items(self) -> dict_items[K, V]:
        self.everything()
        return dict.items(self)

    def keys(self) -> dict_keys[K, V]:
        self.everything()
        return dict.keys(self)

    def __iter__(self) -> Iterator[K]:
        self.everything()
        return dict.__iter__(self)

    def __len__(self) -> int:
        self.everything()
        return dict.__len__(self)

    def __bool__(self) -> bool:
        return dict.__len__(self) > 0 or len(self) > 0
