"""Fixtures shared by every test package."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest
from hypothesis import settings

from tests.nats_server import NatsServer

# CI runs the property tests with a fixed derandomized seed so that a green run is
# reproducible; a developer's run explores new examples every time (and keeps the failing
# ones in .hypothesis/).
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture
async def nats_server() -> AsyncIterator[NatsServer]:
    """A real nats-server on a port of its own, stopped after the test."""
    async with NatsServer() as server:
        yield server
