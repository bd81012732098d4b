"""OnDemand: a lookup that finds nothing asks the store, once per key the store holds; walking it
builds everything first; a key the store does not hold stays absent."""

from __future__ import annotations

import pytest

from onecard_hub.domain.on_demand import OnDemand


class Store:
    """What the dictionary is built from: a student's rows come with a sibling (as a student's
    cards come together)."""

    def __init__(self) -> None:
        self.rows = {"a": 1, "a2": 2, "b": 3}
        self.together = {"a": ("a", "a2"), "a2": ("a", "a2"), "b": ("b",)}
        self.asked: list[str] = []
        self.walks = 0
        self.table: OnDemand[str, int] = OnDemand(self.fetch, self.fetch_all)

    def fetch(self, key: str) -> None:
        self.asked.append(key)
        for k in self.together.get(key, ()):
            if not dict.__contains__(self.table, k):
                dict.__setitem__(self.table, k, self.rows[k])

    def fetch_all(self) -> None:
        self.walks += 1
        for k, v in self.rows.items():
            if not dict.__contains__(self.table, k):
                dict.__setitem__(self.table, k, v)


def test_a_lookup_builds_the_entry_and_what_belongs_with_it_once() -> None:
    store = Store()
    assert store.table["a"] == 1
    assert sorted(store.table.in_memory()) == [1, 2]  # the sibling came along
    assert store.table.get("a2") == 2 and "a2" in store.table and store.table["a"] == 1
    assert store.asked == ["a"]  # the sibling and the second lookup were already in memory
    assert store.walks == 0


def test_a_key_the_store_does_not_hold_stays_absent() -> None:
    store = Store()
    assert store.table.get("nobody") is None
    assert store.table.get("nobody", 7) == 7
    assert "nobody" not in store.table
    with pytest.raises(KeyError):
        store.table["nobody"]
    assert list(store.table.in_memory()) == []
    assert store.walks == 0


def test_get_and_in_answer_as_a_full_dictionary_would() -> None:
    store = Store()
    full = dict(store.rows)
    for key in ("b", "a", "zz", "a2"):
        assert (store.table.get(key), key in store.table) == (full.get(key), key in full)


def test_walking_builds_everything_first_and_only_once() -> None:
    store = Store()
    assert store.table["b"] == 3
    assert len(store.table) == 3
    assert sorted(store.table.values()) == [1, 2, 3]
    assert dict(store.table.items()) == store.rows and set(store.table) == set(store.rows)
    assert store.walks == 1 and store.table.complete
    assert store.table.get("nobody") is None and "nobody" not in store.table
    assert store.asked == ["b"]  # complete: a miss no longer asks the store


def test_entries_put_in_by_hand_are_kept_and_seen() -> None:
    store = Store()
    store.table["new"] = 9  # a student enrolled or a card issued while serving
    assert store.table["new"] == 9 and "new" in store.table
    assert store.asked == []
    assert store.table.get("b") == 3
    assert dict(store.table.items()) == {**store.rows, "new": 9}


def test_a_failure_while_building_is_not_taken_for_a_missing_key() -> None:
    store = Store()
    store.together["b"] = ("b", "gone")  # the store names an entry it cannot give: a KeyError inside
    with pytest.raises(RuntimeError, match="building the entry of 'b' failed"):
        store.table.get("b")  # not None: the card exists, it could not be built
