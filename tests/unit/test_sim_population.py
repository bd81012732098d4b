"""Simulated students: usable cards for traffic, unusable ones for mistakes, one tap at a time."""

from __future__ import annotations

from pathlib import Path

from onecard_sim.population import Population, wallclock_floor


def test_load_splits_usable_and_unusable(campus_dir: Path) -> None:
    population = Population.load(campus_dir / "hub.keys", seed=1)
    school = population.schools[0]
    assert population.usable(school) and population.unusable(school)
    assert all(s.usable for s in population.usable(school))
    assert not any(s.usable for s in population.unusable(school))
    # Boarders start the day inside, day students outside.
    assert all(s.inside == (s.group == "boarder") for s in population.students)


def test_school_filter_and_counter_floor(campus_dir: Path) -> None:
    full = Population.load(campus_dir / "hub.keys")
    one = Population.load(campus_dir / "hub.keys", [full.schools[1]], atc_floor=1_000)
    assert one.schools == [full.schools[1]]
    assert all(s.atc >= 1_000 for s in one.students)
    student = one.students[0]
    assert student.next_atc() == 1_001 and student.next_atc() == 1_002
    assert wallclock_floor(1_767_225_600 + 10) == 100


def test_a_student_is_lent_to_one_tap_at_a_time(campus_dir: Path) -> None:
    population = Population.load(campus_dir / "hub.keys", seed=3)
    school = population.schools[0]
    outside = [s for s in population.usable(school) if not s.inside]
    taken = [population.take(school, inside=False) for _ in outside]
    assert all(t is not None and not t.inside for t in taken)
    assert len({id(t) for t in taken}) == len(outside)
    assert population.take(school, inside=False) is None  # every one is busy
    first = taken[0]
    assert first is not None
    population.give_back(first)
    assert population.take(school, inside=False) is first


def test_prefer_falls_back_to_any_student(campus_dir: Path) -> None:
    population = Population.load(campus_dir / "hub.keys", seed=4)
    school = population.schools[0]
    chosen = population.usable(school)[5]
    assert population.take(school, prefer=lambda s: s is chosen) is chosen
    assert population.take(school, prefer=lambda s: s is chosen) is not None  # chosen is busy: any other
