"""Fixtures shared by every test package."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest
from hypothesis import HealthCheck, settings

from tests.nats_server import NatsServer

# Property tests assert values, never time: no per-example deadline and no "too slow"
# health check (a loaded 2-core machine must not fail a correct property), and every
# failure prints the blob that replays it.
settings.register_profile(
    "suite", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
# CI may also pin the seed (CI=1) so that a green run is reproducible; otherwise every run
# explores new examples (a developer's run keeps the failing ones in .hypothesis/).
settings.register_profile("ci", settings.get_profile("suite"), derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "suite")


@pytest.fixture
async def nats_server() -> AsyncIterator[NatsServer]:
    """A real nats-server on a port of its own, stopped after the test."""
    async with NatsServer() as server:
        yield server
