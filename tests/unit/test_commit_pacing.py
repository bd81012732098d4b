"""How far apart the journal writer starts its commits, by how busy the hub's core was."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from onecard_hub.store.writer import pacing_interval


def test_none_while_lightly_loaded_then_in_step_with_the_share_up_to_the_longest() -> None:
    assert pacing_interval(0.0, 0.5, 0.9, 0.008) == 0.0
    assert pacing_interval(0.5, 0.5, 0.9, 0.008) == 0.0
    assert pacing_interval(0.7, 0.5, 0.9, 0.008) == pytest.approx(0.004)
    assert pacing_interval(0.9, 0.5, 0.9, 0.008) == 0.008
    assert pacing_interval(1.3, 0.5, 0.9, 0.008) == 0.008  # several threads: more than a core


def test_a_longest_of_zero_never_paces() -> None:
    assert pacing_interval(1.0, 0.5, 0.9, 0.0) == 0.0


@given(st.floats(0, 2), st.floats(0, 2))
def test_a_busier_hub_never_commits_more_often(a: float, b: float) -> None:
    low, high = sorted((a, b))
    assert 0 <= pacing_interval(low, 0.5, 0.9, 0.008) <= pacing_interval(high, 0.5, 0.9, 0.008) <= 0.008
