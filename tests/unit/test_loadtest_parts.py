"""The plain-Python parts of the load tests: card slices and decks, counters, rush profiles, CSV reading.

The Locust side itself runs only in a subprocess (tests/integration/test_loadtest.py): Locust patches the
process for gevent, which would break grpc.aio in this one.
"""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from onecard_client.campus import CardCredential
from onecard_load.deck import MAX_ATC, CardDeck, NoFreeCard, atc_floor, card_slice, decks_by_school
from onecard_load.figures import limiting_side
from onecard_load.profiles import MEAL_RUSH, MORNING_GATE, RushProfile, users_for_rate
from onecard_load.stats import aggregated, read_stats, scene_of


def _cards(n: int, schools: int = 2) -> list[CardCredential]:
    return [
        CardCredential(
            card_no=f"C{i:08d}",
            school_id=f"s{i % schools}",
            student_group="day",
            card_key=b"k" * 32,
            ecard_key=b"e" * 32,
            pin="123456",
            atc=i % 7,
        )
        for i in range(n)
    ]


@pytest.mark.parametrize("count", [1, 2, 3, 8])
def test_card_slices_are_disjoint_and_cover_every_card(count: int) -> None:
    cards = _cards(101)
    shuffled = random.Random(1).sample(cards, len(cards))  # the export's order does not matter
    slices = [card_slice(shuffled, index, count) for index in range(count)]
    seen = [card.card_no for part in slices for card in part]
    assert sorted(seen) == sorted(card.card_no for card in cards)
    assert len(seen) == len(set(seen))
    assert max(map(len, slices)) - min(map(len, slices)) <= 1


@pytest.mark.parametrize(("index", "count"), [(1, 1), (-1, 2), (0, 0)])
def test_a_process_index_outside_the_slices_is_refused(index: int, count: int) -> None:
    with pytest.raises(ValueError):
        card_slice(_cards(4), index, count)


def test_a_deck_lends_each_card_to_one_call_at_a_time_round_robin() -> None:
    deck = CardDeck(_cards(3))
    first, second, third = deck.take(), deck.take(), deck.take()
    assert len({first.card.card_no, second.card.card_no, third.card.card_no}) == 3
    with pytest.raises(NoFreeCard):
        deck.take()
    deck.give_back(second)
    deck.retire(first)  # its last tap had no answer: never lent again
    deck.give_back(third)
    assert [deck.take(), deck.take()] == [second, third]
    assert deck.retired == 1


def test_counters_start_at_the_floor_and_only_move_forward() -> None:
    cards = _cards(10)
    decks = decks_by_school(cards, random.Random(2), floor=1_000)
    states = [decks[school].take() for school in sorted(decks) for _ in range(len(decks[school]))]
    assert sorted(s.card.card_no for s in states) == sorted(c.card_no for c in cards)
    for state in states:
        assert state.atc == 1_000
        assert [state.next_atc(), state.next_atc()] == [1_001, 1_002]
    assert CardDeck(cards[:1], floor=0).take().atc == cards[0].atc


def test_the_counter_floor_grows_ten_a_second_and_fits_the_chip() -> None:
    now = 1_800_000_000.0  # 2027
    assert atc_floor(now + 1.0) - atc_floor(now) == 10
    assert atc_floor(0.0) == 0
    assert atc_floor(now * 10) < MAX_ATC


@pytest.mark.parametrize("profile", [MEAL_RUSH, MORNING_GATE])
def test_a_rush_starts_low_reaches_its_peak_and_ends_low(profile: RushProfile) -> None:
    levels = [profile.level(i / 100) for i in range(101)]
    assert levels[0] < 0.2 and levels[-1] < 0.2
    assert max(levels) == 1.0
    assert all(0.0 <= level <= 1.0 for level in levels)
    assert profile.level(-1.0) == levels[0] and profile.level(2.0) == levels[-1]
    peak = levels.index(1.0) / 100
    assert profile.users_at(peak, peak_rate=500, user_rate=10) == 50


def test_rates_become_users() -> None:
    assert users_for_rate(500, 10) == 50
    assert users_for_rate(501, 10) == 51
    assert users_for_rate(1, 10) == 1
    with pytest.raises(ValueError):
        users_for_rate(100, 0)


def test_a_profile_must_cover_the_whole_rush() -> None:
    with pytest.raises(ValueError):
        RushProfile("bad", ((0.1, 0.5), (1.0, 1.0)), 0.5, "2026-11-24T12:00:00+08:00", "")


CSV = """Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,\
Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,\
99%,99.9%,99.99%,100%
grpc,Authorize canteen_purchase,90,0,3,3.2,1,30.5,120,9.0,0.0,3,3,4,4,5,6,8,12,30,30,31
grpc,Authorize canteen_purchase DECLINED:CARD_REPORTED_LOST,2,0,2,2.0,1,3.1,60,0.2,0.0,2,2,3,3,3,3,3,3,3,3,3
grpc,GetClock,1,0,7,7.0,7,7.0,40,0.1,0.0,7,7,7,7,7,7,7,7,7,7,7
,Aggregated,93,0,3,3.2,1,30.5,117,9.3,0.0,3,3,4,4,5,6,8,12,30,30,31
grpc,Authorize gate_exit,0,0,0,0,0,0,0,0,0,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A
"""


def test_locust_statistics_are_read_by_entry(tmp_path: Path) -> None:
    path = tmp_path / "locust_stats.csv"
    path.write_text(CSV, encoding="utf-8")
    rows = read_stats(path)
    total = aggregated(rows)
    assert (total.requests, total.failures, total.p50_ms, total.p99_ms) == (93, 0, 3.0, 12.0)
    declined = [row for row in rows if row.declined]
    assert [row.decline_reason for row in declined] == ["CARD_REPORTED_LOST"]
    assert rows[-1].p99_ms is None
    assert [scene_of(row.name) for row in rows] == [
        "canteen_purchase",
        "canteen_purchase",
        None,
        None,
        "gate_exit",
    ]


def test_the_tools_around_locust_never_import_gevent() -> None:
    code = (
        "import sys\n"
        "import onecard_load.deck, onecard_load.profiles, onecard_load.stats, onecard_load.processes\n"
        "import onecard_load.prepare, onecard_load.headless, onecard_load.run, onecard_load.measure\n"
        "print(','.join(m for m in sys.modules if m.split('.')[0] in ('gevent', 'locust')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""


@pytest.mark.parametrize(
    ("cpu", "side"),
    [
        ({"server": 0.97, "locust": 0.70, "others": 0.02}, "server"),
        ({"server": 0.80, "locust": 0.99, "others": 0.02}, "Locust"),
        ({"server": 0.95, "locust": 0.93, "others": 0.00}, "Locust and server"),
        ({"server": 0.50, "locust": 0.40, "others": 0.45}, "others"),
        ({"server": 0.60, "locust": 0.45, "others": 0.05}, "neither"),
        ({}, "neither"),
    ],
)
def test_the_side_that_limits_a_run_is_the_one_near_a_whole_cpu(cpu: dict[str, float], side: str) -> None:
    assert limiting_side(cpu) == side
