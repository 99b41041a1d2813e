"""Nonce lanes: one per sending key, so that no nonce is used twice and none is skipped.

A lane's state (`LaneState`) is the next fresh nonce, the nonces given back (`free`,
reused lowest first) and the leases: nonces handed to a sender that has not yet reported
whether the node accepted its transaction. The transitions are pure functions, shared by
the local lane (a file per key, `LocalLane`) and the lane several processes share through
NATS JetStream KV (`executor.shared_lane.SharedLane`):

- `reserve`: reclaim expired leases (their holder died between reservation and sending),
  then hand out the lowest free nonce, else the next fresh one, under a new lease;
- `confirm(nonce)`: the node accepted a transaction with it (or it is mined): used for good;
- `release(nonce)`: nothing was accepted with it (the node refused before accepting, the
  attempt was abandoned, a sent transaction was dropped): the next reservation reuses it;
- `resync(pending)`: align with the node's `pending` transaction count — free nonces below
  it are gone; a lane nobody holds a lease on restarts at it exactly (after a reorg or a
  dropped transaction the count can fall); otherwise it only moves forward (`advance`,
  what the shared lane always does: another process may have confirmed a nonce the count
  read a moment ago did not include yet).

Every nonce below `next` is at any time either confirmed, leased, or free: nothing is
skipped (`tests/executor/test_nonce_lane.py` checks this over random operations).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Final, Protocol, final

import msgspec

log = logging.getLogger(__name__)

DEFAULT_LEASE_S: Final = 30.0


class Lease(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    nonce: int
    owner: str
    expires_ms: int


class LaneState(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    next: int
    free: tuple[int, ...] = ()  # ascending
    leases: tuple[Lease, ...] = ()


LANE_ENCODER: Final = msgspec.json.Encoder()
LANE_DECODER: Final = msgspec.json.Decoder(LaneState)


class NonceLane(Protocol):
    """What the sending path asks for nonces, and tells what became of them."""

    def reserve(self) -> int: ...

    def confirm(self, nonce: int) -> None: ...

    def release(self, nonce: int) -> None: ...

    def resync(self) -> None: ...


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def reclaim_expired(state: LaneState, now: int) -> tuple[LaneState, tuple[int, ...]]:
    """Expired leases become free nonces; (the new state, the nonces reclaimed)."""
    expired = tuple(lease.nonce for lease in state.leases if lease.expires_ms <= now)
    if not expired:
        return state, ()
    kept = tuple(lease for lease in state.leases if lease.expires_ms > now)
    free = tuple(sorted({*state.free, *expired}))
    return LaneState(next=state.next, free=free, leases=kept), expired


def reserve(state: LaneState, owner: str, now: int, lease_ms: int) -> tuple[LaneState, int]:
    state, _ = reclaim_expired(state, now)
    lease_until = now + lease_ms
    if state.free:
        nonce, free, fresh = state.free[0], state.free[1:], state.next
    else:
        nonce, free, fresh = state.next, (), state.next + 1
    lease = Lease(nonce=nonce, owner=owner, expires_ms=lease_until)
    return LaneState(next=fresh, free=free, leases=(*state.leases, lease)), nonce


def confirm(state: LaneState, nonce: int) -> LaneState:
    leases = tuple(lease for lease in state.leases if lease.nonce != nonce)
    free = tuple(n for n in state.free if n != nonce)
    return LaneState(next=max(state.next, nonce + 1), free=free, leases=leases)


def release(state: LaneState, nonce: int) -> LaneState:
    leases = tuple(lease for lease in state.leases if lease.nonce != nonce)
    if nonce >= state.next:
        return LaneState(next=state.next, free=state.free, leases=leases)
    free = sorted({*state.free, nonce})
    fresh = state.next
    held = {lease.nonce for lease in leases}
    while free and free[-1] == fresh - 1 and free[-1] not in held:
        fresh = free.pop()
    return LaneState(next=fresh, free=tuple(free), leases=leases)


def resync(state: LaneState, pending: int) -> LaneState:
    if not state.leases:
        return LaneState(next=pending)
    return advance(state, pending)


def advance(state: LaneState, pending: int) -> LaneState:
    """`resync` that never moves back: for a lane other processes hold leases on unseen."""
    free = tuple(n for n in state.free if n >= pending)
    return LaneState(next=max(state.next, pending), free=free, leases=state.leases)


class PendingCount(Protocol):
    def __call__(self) -> int: ...


@final
class LocalLane:
    """A lane in one process, persisted to `path` after every change (atomically, by
    rename), so a restart resumes where it left off: leases of the dead process expire
    and are reused, and the node's pending count is taken when nobody holds a lease."""

    def __init__(
        self, path: Path, pending: PendingCount, *, owner: str, lease_s: float = DEFAULT_LEASE_S
    ) -> None:
        self.path = path
        self.pending = pending
        self.owner = owner
        self.lease_ms = int(lease_s * 1000)
        self._lock = threading.Lock()
        self.state = self._load()

    def _load(self) -> LaneState:
        chain = self.pending()
        try:
            saved = LANE_DECODER.decode(self.path.read_bytes())
        except FileNotFoundError:
            saved = LaneState(next=chain)
        except (OSError, msgspec.DecodeError) as exc:
            log.warning(
                "nonce lane %s unreadable (%s): starting at the node's count", self.path, exc
            )
            saved = LaneState(next=chain)
        state = resync(saved, chain)
        self._save(state)
        log.info("nonce lane %s: next nonce %d", self.path, state.next)
        return state

    def _save(self, state: LaneState, durable: bool = False) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(self.path.suffix + ".partial")
        with partial.open("wb") as f:
            f.write(LANE_ENCODER.encode(state))
            f.flush()
            if durable:
                os.fsync(f.fileno())
        partial.replace(self.path)

    def _apply(self, state: LaneState, durable: bool = False) -> None:
        self._save(state, durable)
        self.state = state

    def reserve(self) -> int:
        # Only a reservation is synced to disk: a confirm or release lost in a crash
        # leaves a lease that expires (and the node's count settles it on restart).
        with self._lock:
            state, nonce = reserve(self.state, self.owner, now_ms(), self.lease_ms)
            self._apply(state, durable=True)
            return nonce

    def confirm(self, nonce: int) -> None:
        with self._lock:
            self._apply(confirm(self.state, nonce))

    def release(self, nonce: int) -> None:
        with self._lock:
            self._apply(release(self.state, nonce))

    def resync(self) -> None:
        pending = self.pending()
        with self._lock:
            self._apply(resync(self.state, pending))
