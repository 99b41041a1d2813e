"""The pure parts of the RPC layer: breaker, token bucket, endpoint ranking."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exex_bridge.rpc import BreakerState, CircuitBreaker, EndpointLimits, TokenBucket, ranked
from exex_bridge.rpc.endpoint import endpoints_from

# -- breaker ---------------------------------------------------------------------------


@given(threshold=st.integers(1, 10), cooldown=st.floats(0.01, 100), t0=st.floats(0, 1e6))
def test_breaker_opens_after_n_failures_and_half_opens_after_the_cooldown(
    threshold: int, cooldown: float, t0: float
) -> None:
    breaker = CircuitBreaker(threshold, cooldown)
    for i in range(threshold - 1):
        breaker.record_failure(t0)
        assert breaker.state(t0) is BreakerState.CLOSED, i
        assert breaker.admit(t0)
    breaker.record_failure(t0)
    assert breaker.state(t0) is BreakerState.OPEN
    assert not breaker.admit(t0)
    assert breaker.state(math.nextafter(t0 + cooldown, -math.inf)) is BreakerState.OPEN
    later = t0 + cooldown
    assert breaker.state(later) is BreakerState.HALF_OPEN
    assert breaker.admit(later)  # one probe
    assert not breaker.admit(later)  # and only one at a time
    breaker.record_success()
    assert breaker.state(later) is BreakerState.CLOSED


@given(threshold=st.integers(1, 10), cooldown=st.floats(0.01, 100))
def test_a_failed_probe_opens_the_breaker_for_another_cooldown(
    threshold: int, cooldown: float
) -> None:
    breaker = CircuitBreaker(threshold, cooldown)
    for _ in range(threshold):
        breaker.record_failure(0.0)
    assert breaker.admit(cooldown)
    breaker.record_failure(cooldown)
    assert breaker.state(cooldown) is BreakerState.OPEN
    assert breaker.state(2 * cooldown) is BreakerState.HALF_OPEN


@given(outcomes=st.lists(st.booleans(), max_size=60), threshold=st.integers(1, 6))
def test_only_consecutive_failures_open_a_closed_breaker(
    outcomes: list[bool], threshold: int
) -> None:
    breaker = CircuitBreaker(threshold, cooldown_s=1e9)
    run = 0
    for ok in outcomes:
        if breaker.state(0.0) is BreakerState.OPEN:
            break
        if ok:
            breaker.record_success()
            run = 0
        else:
            breaker.record_failure(0.0)
            run += 1
        assert (breaker.state(0.0) is BreakerState.OPEN) == (run >= threshold)


def test_a_cancelled_probe_frees_the_half_open_slot() -> None:
    breaker = CircuitBreaker(1, 1.0)
    breaker.record_failure(0.0)
    assert breaker.admit(1.0)
    breaker.abandon()
    assert breaker.admit(1.0)


# -- token bucket ----------------------------------------------------------------------

_gaps = st.lists(st.floats(0, 2.0, allow_nan=False), min_size=1, max_size=80)


@given(rate=st.floats(0.5, 200), burst=st.floats(1, 20), gaps=_gaps, data=st.data())
def test_the_bucket_never_admits_more_than_burst_plus_rate_times_any_window(
    rate: float, burst: float, gaps: list[float], data: st.DataObject
) -> None:
    bucket = TokenBucket(rate, burst)
    now, admitted = 0.0, []
    for gap in gaps:
        now += gap
        wait = bucket.reserve(now)
        assert wait >= 0
        admitted.append(now + wait)
    assert admitted == sorted(admitted)  # first come, first served
    # any window [admitted[i], admitted[j]] holds j - i + 1 requests
    i = data.draw(st.integers(0, len(admitted) - 1))
    for j in range(i, len(admitted)):
        window = admitted[j] - admitted[i]
        assert j - i + 1 <= burst + rate * window + 1e-6


@given(rate=st.floats(0.5, 200), burst=st.integers(1, 20))
def test_a_full_bucket_admits_its_burst_at_once_and_then_paces_at_its_rate(
    rate: float, burst: int
) -> None:
    bucket = TokenBucket(rate, burst)
    assert [bucket.reserve(0.0) for _ in range(burst)] == [0.0] * burst
    assert bucket.reserve(0.0) == pytest.approx(1 / rate)
    assert bucket.reserve(0.0) == pytest.approx(2 / rate)


# -- ranking ---------------------------------------------------------------------------

_endpoint_state = st.tuples(
    st.none() | st.floats(0.001, 10),  # latency
    st.booleans(),  # healthy
    st.integers(0, 3),  # failures (threshold 2: 2+ opens)
    st.booleans(),  # cooled down (half-open) when open
)


@given(states=st.lists(_endpoint_state, min_size=1, max_size=8))
def test_ranking_offers_every_available_endpoint_once_best_first(
    states: list[tuple[float | None, bool, int, bool]],
) -> None:
    urls = [f"http://node{i}:8545" for i in range(len(states))]
    endpoints = endpoints_from(urls, EndpointLimits(failure_threshold=2, cooldown_s=10))
    for endpoint, (latency, healthy, failures, cooled) in zip(endpoints, states, strict=True):
        endpoint.latency_s, endpoint.healthy = latency, healthy
        for _ in range(failures):
            endpoint.breaker.record_failure(0.0 if cooled else 5.0)
    now = 10.0
    order = ranked(endpoints, now)
    assert {id(e) for e in order} == {id(e) for e in endpoints if e.breaker.available(now)}
    assert len(order) == len({id(e) for e in order})
    assert all(e.breaker.state(now) is not BreakerState.OPEN for e in order)

    def key(e: object) -> tuple[bool, bool, float]:
        assert e in endpoints
        ep = endpoints[endpoints.index(e)]  # type: ignore[arg-type]
        return (
            ep.breaker.state(now) is not BreakerState.CLOSED,
            not ep.healthy,
            ep.latency_s or 0.0,
        )

    keys = [key(e) for e in order]
    assert keys == sorted(keys)


def test_endpoint_names_are_redacted_and_unique() -> None:
    endpoints = endpoints_from(
        "https://user:secret@node.example:8545/v2/KEY,https://node.example:8545/v2/OTHER,"
        "wss://ws.example/KEY",
        EndpointLimits(),
    )
    assert [e.name for e in endpoints] == [
        "https://node.example:8545",
        "https://node.example:8545#2",
        "wss://ws.example",
    ]
    assert [e.transport for e in endpoints] == ["http", "http", "ws"]
    assert all("KEY" not in repr(e) and "secret" not in repr(e) for e in endpoints)


def test_an_endpoint_of_another_scheme_is_refused_without_showing_its_path() -> None:
    with pytest.raises(ValueError, match="ftp://host") as caught:
        endpoints_from("ftp://host/KEY", EndpointLimits())
    assert "KEY" not in str(caught.value)
