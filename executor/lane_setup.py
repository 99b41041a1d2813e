"""The nonce lane and the NATS link the settings ask for.

No `nats_url`: a local lane, one file per (chain, sender) under `lane_dir`. With
`nats_url`: the shared lane in JetStream KV (the kill subject is subscribed on the same
link); when NATS cannot be reached at start, `lane_fallback_local` decides between a
local lane (with a warning) and refusing to start.
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

import msgspec

from executor.chain import ChainClient
from executor.nats_link import NatsLink, NatsUnavailableError
from executor.nonce_lane import LocalLane, NonceLane
from executor.settings import ExecutorSettings
from executor.shared_lane import FallbackLane, LaneUnavailableError, SharedLane, lane_key

log = logging.getLogger(__name__)


class LaneSetup(msgspec.Struct, kw_only=True):
    lane: NonceLane
    link: NatsLink | None = None


def lane_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def local_lane_path(settings: ExecutorSettings, chain_id: int, sender: bytes) -> Path:
    folder = Path(settings.lane_dir or Path(settings.journal).parent / "nonce-lanes")
    return folder / f"{chain_id}-0x{sender.hex()}.json"


def open_lane(
    settings: ExecutorSettings, chain: ChainClient, sender: bytes, chain_id: int
) -> LaneSetup:
    def pending() -> int:
        return chain.nonce(sender, "pending")

    owner = lane_owner()

    def local() -> LocalLane:
        path = local_lane_path(settings, chain_id, sender)
        return LocalLane(path, pending, owner=owner, lease_s=settings.lane_lease_s)

    if settings.nats_url is None:
        return LaneSetup(lane=local())
    link: NatsLink | None = None
    try:
        link = NatsLink.connect(settings.nats_url)
        shared = SharedLane.open(
            link,
            settings.lane_bucket,
            lane_key(chain_id, sender),
            pending,
            owner=owner,
            lease_s=settings.lane_lease_s,
        )
    except (NatsUnavailableError, LaneUnavailableError) as exc:
        if link is not None:
            link.close()
        if not settings.lane_fallback_local:
            raise LaneUnavailableError(f"{exc} (lane_fallback_local is off)") from None
        log.warning("%s: sending from a local nonce lane (configured fallback)", exc)
        return LaneSetup(lane=local())
    lane: NonceLane = shared
    if settings.lane_fallback_local:
        lane = FallbackLane(shared, local())
    return LaneSetup(lane=lane, link=link)
