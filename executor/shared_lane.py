"""A nonce lane shared by several executor processes sending with one key, through NATS
JetStream KV: one key per (chain, sender), the `LaneState` as JSON, every change a
compare-and-set (`update(key, value, last=revision)`) retried on a lost race.

When NATS cannot be reached the lane raises `LaneUnavailableError`; the sender then refuses
to send (default), or — only when configured to — uses a local lane instead
(`FallbackLane`), accepting that another process may hand out the same nonces meanwhile.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Final, final

from nats.js.errors import (
    BucketNotFoundError,
    KeyNotFoundError,
    KeyWrongLastSequenceError,
)
from nats.js.kv import KeyValue

from executor.errors import ExecutorError
from executor.nats_link import NatsLink, NatsUnavailableError
from executor.nonce_lane import (
    DEFAULT_LEASE_S,
    LANE_DECODER,
    LANE_ENCODER,
    LaneState,
    NonceLane,
    PendingCount,
    advance,
    confirm,
    now_ms,
    release,
    reserve,
)

log = logging.getLogger(__name__)

DEFAULT_BUCKET: Final = "arena-nonce-lanes"
MAX_RACES: Final = 200


class LaneUnavailableError(ExecutorError):
    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"nonce lane unavailable: {reason}")


def lane_key(chain_id: int, sender: bytes) -> str:
    return f"lane.{chain_id}.0x{sender.hex()}"


@final
class SharedLane:
    def __init__(
        self,
        link: NatsLink,
        kv: KeyValue,
        key: str,
        pending: PendingCount,
        *,
        owner: str,
        lease_s: float = DEFAULT_LEASE_S,
    ) -> None:
        self.link = link
        self.kv = kv
        self.key = key
        self.pending = pending
        self.owner = owner
        self.lease_ms = int(lease_s * 1000)
        self.races = 0  # lost compare-and-set rounds, retried
        self.state = LaneState(next=0)
        self.pending_now = 0  # the node's pending count at the last resync
        self._lock = threading.Lock()

    @classmethod
    def open(
        cls,
        link: NatsLink,
        bucket: str,
        key: str,
        pending: PendingCount,
        *,
        owner: str,
        lease_s: float = DEFAULT_LEASE_S,
    ) -> SharedLane:
        async def bucket_kv() -> KeyValue:
            js = link.client.jetstream()
            try:
                return await js.key_value(bucket)
            except BucketNotFoundError:
                return await js.create_key_value(bucket=bucket, history=1)

        try:
            kv = link.call(bucket_kv)
        except NatsUnavailableError as exc:
            raise LaneUnavailableError(str(exc)) from None
        lane = cls(link, kv, key, pending, owner=owner, lease_s=lease_s)
        lane.resync()
        log.info("shared nonce lane %s in %s: next nonce %d", key, bucket, lane.state.next)
        return lane

    def _change(self, step: Callable[[LaneState], LaneState]) -> LaneState:
        """Read, change, compare-and-set; again when another process changed it first."""
        for _ in range(MAX_RACES):
            try:
                state = self.link.call(lambda: self._cas(step))
            except KeyWrongLastSequenceError:
                self.races += 1
                continue
            except NatsUnavailableError as exc:
                raise LaneUnavailableError(str(exc)) from None
            self.state = state
            return state
        raise LaneUnavailableError(f"{MAX_RACES} compare-and-set races lost in a row")

    async def _cas(self, step: Callable[[LaneState], LaneState]) -> LaneState:
        try:
            entry = await self.kv.get(self.key)
        except KeyNotFoundError:
            state = step(LaneState(next=self.pending_now))
            await self.kv.create(self.key, LANE_ENCODER.encode(state))
            return state
        current = LANE_DECODER.decode(entry.value or b"")
        state = step(current)
        if state != current:
            await self.kv.update(self.key, LANE_ENCODER.encode(state), last=entry.revision)
        return state

    def reserve(self) -> int:
        got: list[int] = []

        def step(state: LaneState) -> LaneState:
            new, nonce = reserve(state, self.owner, now_ms(), self.lease_ms)
            got[:] = [nonce]
            return new

        with self._lock:
            self._change(step)
        return got[0]

    def confirm(self, nonce: int) -> None:
        with self._lock:
            self._change(lambda state: confirm(state, nonce))

    def release(self, nonce: int) -> None:
        with self._lock:
            self._change(lambda state: release(state, nonce))

    def resync(self) -> None:
        with self._lock:
            self.pending_now = self.pending()
            pending = self.pending_now
            self._change(lambda state: advance(state, pending))

    def close(self) -> None:
        self.link.close()


@final
class FallbackLane:
    """The shared lane, or a local one while NATS is unreachable (only when configured).

    A nonce is confirmed or released through the lane that handed it out."""

    def __init__(self, shared: NonceLane, local: NonceLane) -> None:
        self.shared = shared
        self.local = local
        self.fallbacks = 0
        self._from_local: set[int] = set()

    def reserve(self) -> int:
        try:
            return self.shared.reserve()
        except LaneUnavailableError as exc:
            self.fallbacks += 1
            log.warning("%s: using the local lane (configured fallback)", exc)
            self.local.resync()
            nonce = self.local.reserve()
            self._from_local.add(nonce)
            return nonce

    def _lane(self, nonce: int) -> NonceLane:
        return self.local if nonce in self._from_local else self.shared

    def confirm(self, nonce: int) -> None:
        lane = self._lane(nonce)
        self._from_local.discard(nonce)
        lane.confirm(nonce)

    def release(self, nonce: int) -> None:
        lane = self._lane(nonce)
        self._from_local.discard(nonce)
        lane.release(nonce)

    def resync(self) -> None:
        self.local.resync()
        try:
            self.shared.resync()
        except LaneUnavailableError as exc:
            log.warning("%s: shared lane not resynced", exc)
