"""Fixtures shared by every test package."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.nats_server import NatsServer


@pytest.fixture
async def nats_server() -> AsyncIterator[NatsServer]:
    """A real nats-server on a port of its own, stopped after the test."""
    async with NatsServer() as server:
        yield server
