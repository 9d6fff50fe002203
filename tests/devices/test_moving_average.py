"""The plug's moving average: the mean of exactly the values of the last window."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from m2mpay.devices.plug import MovingAverage


def test_an_empty_window_has_no_mean() -> None:
    average = MovingAverage(1000)
    assert average.mean(0) is None
    assert average.samples(0) == 0


def test_the_mean_of_the_values_within_the_window() -> None:
    average = MovingAverage(1000)
    average.add(0, 10.0)
    average.add(500, 20.0)
    assert average.mean(500) == 15.0
    average.add(999, 30.0)
    assert average.mean(999) == 20.0
    assert average.samples(999) == 3


def test_a_value_leaves_the_window_when_it_is_window_old() -> None:
    average = MovingAverage(1000)
    average.add(0, 10.0)
    average.add(500, 20.0)
    assert average.mean(999) == 15.0
    assert average.mean(1000) == 20.0  # the value at 0 is now a whole window old
    assert average.samples(1000) == 1
    assert average.mean(1500) is None


def test_adding_a_value_drops_what_left_the_window() -> None:
    average = MovingAverage(1000)
    for at_ms in range(0, 10_000, 100):
        average.add(at_ms, float(at_ms))
    assert average.samples(9_900) == 10
    assert average.mean(9_900) == pytest.approx(sum(range(9_000, 10_000, 100)) / 10)


def test_time_must_not_go_back() -> None:
    average = MovingAverage(1000)
    average.add(500, 1.0)
    average.add(500, 2.0)  # the same instant is fine
    with pytest.raises(ValueError, match="older"):
        average.add(499, 3.0)


def test_the_window_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        MovingAverage(0)


@given(
    window_ms=st.integers(1, 5_000),
    steps=st.lists(
        st.tuples(st.integers(0, 3_000), st.floats(0, 1e6, allow_nan=False)), max_size=60
    ),
    later_ms=st.integers(0, 6_000),
)
def test_the_mean_is_that_of_the_values_newer_than_a_window(
    window_ms: int, steps: list[tuple[int, float]], later_ms: int
) -> None:
    average = MovingAverage(window_ms)
    added: list[tuple[int, float]] = []
    now = 0
    for gap, value in steps:
        now += gap
        average.add(now, value)
        added.append((now, value))
    now += later_ms
    recent = [value for at_ms, value in added if at_ms > now - window_ms]
    assert average.samples(now) == len(recent)
    mean = average.mean(now)
    if not recent:
        assert mean is None
    else:
        assert mean is not None
        assert math.isclose(mean, math.fsum(recent) / len(recent), rel_tol=1e-12, abs_tol=1e-9)
        assert min(recent) - 1e-6 <= mean <= max(recent) + 1e-6
