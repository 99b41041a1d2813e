"""Per-block latencies of a replay: fixed memory, percentiles within the bin width."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arena.summary import LATENCY_BIN_GROWTH, LatencySamples

# A bin's middle is within √1.01 of anything in it; a little more for float rounding.
TOLERANCE = math.sqrt(LATENCY_BIN_GROWTH) - 1 + 1e-9

latencies = st.lists(
    st.floats(min_value=1e-7, max_value=100.0, allow_nan=False), min_size=1, max_size=300
)


@given(latencies, st.sampled_from([0.0, 1.0, 50.0, 90.0, 99.0, 100.0]))
def test_percentile_is_within_a_bin_of_the_exact_one(values: list[float], q: float) -> None:
    samples = LatencySamples()
    for v in values:
        samples.add(v)
    ordered = np.sort(np.asarray(values))
    rank = q / 100 * (len(values) - 1)
    low, high = ordered[math.floor(rank)], ordered[math.ceil(rank)]
    estimate = samples.percentile(q)
    assert low * (1 - TOLERANCE) <= estimate <= high * (1 + TOLERANCE)


@given(latencies)
def test_count_and_max_are_exact(values: list[float]) -> None:
    samples = LatencySamples()
    for v in values:
        samples.add(v)
    stats = samples.stats()
    assert stats.count == len(samples) == len(values)
    assert stats.max_us == round(max(values) * 1e6, 1)


@settings(max_examples=20)
@given(st.integers(min_value=0, max_value=20_000), st.floats(min_value=0.0, max_value=1e4))
def test_memory_never_grows_with_the_blocks_added(blocks: int, seconds: float) -> None:
    samples = LatencySamples()
    bound = samples.nbytes
    for i in range(blocks):
        samples.add(seconds * (1 + i % 7))
        assert samples.nbytes <= bound
    assert len(samples) == blocks


def test_empty_samples_have_no_percentiles() -> None:
    samples = LatencySamples()
    assert samples.stats().p50_us is None
    with pytest.raises(ValueError, match="no latency"):
        samples.percentile(50)
