"""A chain-following producer: the ExEx socket stream, built from a node's JSON-RPC.

`ChainFollower` polls the node for new heads, reads each new block's logs by block hash,
decodes the whitelisted pools' events exactly as the upstream ExEx does (see
`exex_bridge.producers.log_decoding`) and publishes `BeginBlock` / `PoolUpdate`* / `EndBlock`
through a `FrameBroadcastServer`, numbered by one `stream_seq` counter from 1.

Reorgs are found from block hashes (anvil never marks removed logs, and a rollback just
lowers the tip): when a new block's parent is not the stored tip, or the tip's hash
changed, or the head fell below it, the follower walks back through its stored recent
blocks to the common ancestor and emits one envelope, as the producer does for
`ChainReorged` / `ChainReverted`: `ReorgStart`, the old blocks newest first with their
updates reversed (original indexes kept, no `V2Sync`), the new blocks, one epilogue final
per affected pool read at the final tip, `ReorgComplete`. Affected pools are the
producer's: every V2 pair with an event in a reverted block and every V3/V4 pool with a
reverted swap, a V4 pool's final read from its PoolManager's storage through `extsload`
(`epilogue_scope="touched"` adds the new blocks' pools and reverted mints/burns). A reorg
below the stored blocks cannot be reverted message by message: the follower then skips
one `stream_seq` (the wire's "state may be lost") and continues at the new head, so a
consumer resyncs.

Every poll is built completely (all node reads done) before its first frame is sent;
a poll that meets an inconsistent chain (it moved while being read) sends nothing and
the next poll starts over.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Literal, final

from web3 import Web3

from exex_bridge import messages as m
from exex_bridge.codec import encode_message
from exex_bridge.framing import LENGTH_PREFIX
from exex_bridge.producers import chain_rpc as rpc
from exex_bridge.producers.balancer_fees import resolve_fee_changes
from exex_bridge.producers.broadcast import FrameBroadcastServer, StreamSequencer
from exex_bridge.producers.chain_rpc import FollowerRpcError, Header
from exex_bridge.producers.follower_reports import (
    FollowedBlock,
    FollowerStats,
    PollReport,
    ReorgReport,
)
from exex_bridge.producers.log_decoding import (
    MAINNET_BALANCER_VAULT,
    DecodedLog,
    EventKind,
    decode_block_logs,
)
from exex_bridge.whitelist import V4_MAINNET_POOL_MANAGER, Whitelist, WhitelistedPool

__all__ = [
    "ChainFollower",
    "FollowedBlock",
    "FollowerRpcError",
    "FollowerStats",
    "PollReport",
    "ReorgReport",
]

log = logging.getLogger(__name__)

EpilogueScope = Literal["producer", "touched"]
DEFAULT_KEEP_BLOCKS: Final = 64
DEFAULT_MAX_BLOCKS_PER_POLL: Final = 128
_FOLLOWED: Final = frozenset(
    {
        m.Protocol.UNISWAP_V2,
        m.Protocol.UNISWAP_V3,
        m.Protocol.UNISWAP_V4,
        m.Protocol.CURVE_STABLE,
        m.Protocol.BALANCER_V2_WEIGHTED,
    }
)
_SLOT0_SWAPS: Final = frozenset({EventKind.V3_SWAP, EventKind.V4_SWAP})


@dataclass(slots=True)
class _Poll:
    messages: list[m.SequencedMessage]
    chain: list[FollowedBlock]
    report: PollReport
    next_seq: int


@final
class ChainFollower:
    """`await follower.poll_once()` (tests drive it step by step) or `await run(stop)`.

    `start_block` is the first block published (default: the block after the head at
    the first poll); the block before it is kept as an anchor, never published.
    `on_frame` receives every frame payload as published (recordings).
    `balancer_vault` is the Vault whose events are Balancer pool updates (mainnet's by
    default; a test chain deploys its own).
    """

    def __init__(
        self,
        rpc_source: Web3 | str,
        whitelist: Whitelist | Iterable[WhitelistedPool],
        server: FrameBroadcastServer | None,
        *,
        start_block: int | None = None,
        poll_interval: float = 1.0,
        keep_blocks: int = DEFAULT_KEEP_BLOCKS,
        max_blocks_per_poll: int = DEFAULT_MAX_BLOCKS_PER_POLL,
        epilogue_scope: EpilogueScope = "producer",
        on_frame: Callable[[bytes], None] | None = None,
        balancer_vault: bytes = MAINNET_BALANCER_VAULT,
    ) -> None:
        if start_block is not None and start_block < 1:
            raise ValueError(f"start_block must be at least 1, got {start_block}")
        if keep_blocks < 2 or max_blocks_per_poll < 1 or poll_interval <= 0:
            raise ValueError("keep_blocks >= 2, max_blocks_per_poll >= 1, poll_interval > 0")
        self.w3 = rpc.connect(rpc_source)
        self.server = server
        self.start_block = start_block
        self.poll_interval = poll_interval
        self.keep_blocks = keep_blocks
        self.max_blocks_per_poll = max_blocks_per_poll
        self.epilogue_scope: EpilogueScope = epilogue_scope
        self.on_frame = on_frame
        self.balancer_vault = balancer_vault
        self.stats = FollowerStats()
        self._chain: deque[FollowedBlock] = deque(maxlen=keep_blocks)
        self._next_seq = 1
        self._tracked: set[bytes] = set()
        self._v4_managers: dict[bytes, bytes] = {}  # V4 pool id -> its PoolManager
        self._pending: list[tuple[bool, list[bytes]]] = []
        self._lock = threading.Lock()
        pools = whitelist.pools if isinstance(whitelist, Whitelist) else tuple(whitelist)
        self.add_pools(pools)
        self._apply_pending()

    # -- whitelist (takes effect at the next block boundary) ----------------------------
    @property
    def tracked(self) -> frozenset[bytes]:
        return frozenset(self._tracked)

    def add_pools(self, pools: Iterable[WhitelistedPool]) -> None:
        keys = []
        for pool in pools:
            if pool.protocol in _FOLLOWED:
                keys.append(pool.key)  # the address; a V4 or Balancer pool's 32-byte id
                if pool.pool_manager is not None:
                    self._v4_managers[pool.key] = pool.pool_manager
            else:
                log.warning(
                    "not following %s: %s pools are not decoded here",
                    pool.key_hex,
                    pool.protocol.name,
                )
        with self._lock:
            self._pending.append((True, keys))

    def remove_pools(self, keys: Iterable[bytes]) -> None:
        with self._lock:
            self._pending.append((False, list(keys)))

    def _apply_pending(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        for add, keys in pending:
            if add:
                self._tracked.update(keys)
            else:
                self._tracked.difference_update(keys)

    @property
    def tip(self) -> FollowedBlock | None:
        return self._chain[-1] if self._chain else None

    # -- driving ------------------------------------------------------------------------
    async def poll_once(self) -> PollReport:
        """Read the node up to its head and publish what changed (nothing on a race)."""
        poll = await asyncio.to_thread(self._advance)
        self.stats.polls += 1
        if poll is None:
            return PollReport()
        payloads = [encode_message(msg) for msg in poll.messages]
        frames = [len(p).to_bytes(LENGTH_PREFIX, "little") + p for p in payloads]
        if self.server is not None:
            await self.server.publish_many(frames)
        if self.on_frame is not None:
            for payload in payloads:
                self.on_frame(payload)
        self._commit(poll)
        return poll.report

    async def run(
        self, stop: asyncio.Event, on_report: Callable[[PollReport], None] | None = None
    ) -> None:
        """Poll until `stop` is set; node errors are counted, logged and retried."""
        while not stop.is_set():
            try:
                report = await self.poll_once()
            except (FollowerRpcError, OSError, ValueError) as exc:
                self.stats.rpc_errors += 1
                log.warning("poll failed (%s); retrying in %.1f s", exc, self.poll_interval)
                report = PollReport()
            if on_report is not None and (report.frames or report.deep_reorg):
                on_report(report)
            if report.behind:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.poll_interval)

    def _commit(self, poll: _Poll) -> None:
        self._chain = deque(poll.chain, maxlen=self.keep_blocks)
        self._next_seq = poll.next_seq
        report, stats = poll.report, self.stats
        stats.frames += report.frames
        stats.updates += report.updates
        stats.blocks += len(report.blocks)
        if report.reorg is not None:
            stats.blocks += len(report.reorg.new_blocks)
            stats.epilogues += report.reorg.epilogues
            stats.depths[report.reorg.depth] += 1
            if report.reorg.new_blocks:
                stats.reorgs += 1
            else:
                stats.reverts += 1
        stats.deep_reorgs += report.deep_reorg
        stats.tip = self._chain[-1].number if self._chain else None

    # -- one poll (worker thread: every node read happens here) -------------------------
    def _advance(self) -> _Poll | None:
        self._apply_pending()
        head = rpc.block_number(self.w3)
        if not self._chain:
            anchor = self._anchor(head)
            if anchor is None:
                return None
            chain = [anchor]
        else:
            chain = list(self._chain)
        tip = chain[-1]
        if head > tip.number:
            first = rpc.header(self.w3, tip.number + 1)
            if first is None:
                return None
            if first.parent_hash == tip.header.hash:
                last = min(head, tip.number + self.max_blocks_per_poll)
                return self._extend(chain, first, last, behind=last < head)
        elif head == tip.number:
            current = rpc.header(self.w3, head)
            if current is None or current.hash == tip.header.hash:
                return self._unchanged(chain)
        return self._reorg(chain, head)

    def _anchor(self, head: int) -> FollowedBlock | None:
        number = head if self.start_block is None else self.start_block - 1
        if number > head:
            return None
        anchor = rpc.header(self.w3, number)
        if anchor is None:
            return None
        log.info("following from block %d (anchor %d %s)", number + 1, number, anchor.hash)
        return FollowedBlock(anchor, (), published=False)

    def _unchanged(self, chain: list[FollowedBlock]) -> _Poll:
        return _Poll([], chain, PollReport(), self._next_seq)

    def _headers(self, parent: Header, first: int, last: int) -> list[Header] | None:
        """Canonical headers first..last chained onto `parent`; None if the chain moved."""
        out: list[Header] = []
        previous = parent
        for number in range(first, last + 1):
            current = rpc.header(self.w3, number)
            if current is None or current.parent_hash != previous.hash:
                log.debug("chain moved while reading block %d: retrying next poll", number)
                return None
            out.append(current)
            previous = current
        return out

    def _read_blocks(self, headers: Sequence[Header]) -> list[FollowedBlock]:
        # Every pool event is kept, tracked or not: like the producer, which re-reads a
        # reverted block's receipts, a revert is filtered by the whitelist of its time.
        return [
            FollowedBlock(
                h,
                self._with_curve_states(
                    h,
                    decode_block_logs(rpc.block_logs(self.w3, h.hash), vault=self.balancer_vault),
                ),
            )
            for h in headers
        ]

    def _resolved(self, block: FollowedBlock, state_hash: str) -> tuple[DecodedLog, ...]:
        """The block's events with Balancer fee changes read at `state_hash`."""
        return resolve_fee_changes(self.w3, block.logs, frozenset(self._tracked), state_hash)

    def _with_curve_states(self, h: Header, logs: list[DecodedLog]) -> tuple[DecodedLog, ...]:
        """Curve swaps and liquidity events of tracked pools carry the pool's state at the
        end of the block, read from storage as the producer reads it (kept for a revert
        of the block: the arena restores its own pre-images there anyway)."""
        pools = sorted(
            {e.pool for e in logs if e.kind is EventKind.CURVE_STATE and e.pool in self._tracked}
        )
        if not pools:
            return tuple(logs)
        states = rpc.read_curve_states(self.w3, pools, h.hash)
        return tuple(
            dataclasses.replace(e, payload=states[e.pool])
            if e.kind is EventKind.CURVE_STATE and e.pool in states
            else e
            for e in logs
        )

    def _still_canonical(self, header: Header) -> bool:
        current = rpc.header(self.w3, header.number)
        return current is not None and current.hash == header.hash

    def _extend(
        self, chain: list[FollowedBlock], first: Header, last: int, *, behind: bool
    ) -> _Poll | None:
        rest = self._headers(first, first.number + 1, last)
        if rest is None:
            return None
        blocks = self._read_blocks([first, *rest])
        resolved = [self._resolved(b, b.header.hash) for b in blocks]
        if not self._still_canonical(blocks[-1].header):
            return None
        seq = StreamSequencer(self._next_seq)
        messages: list[m.SequencedMessage] = []
        updates = 0
        for block, logs in zip(blocks, resolved, strict=True):
            block_msgs = self._block_messages(seq, block, logs, is_revert=False)
            updates += len(block_msgs) - 2
            messages += block_msgs
        report = PollReport(
            blocks=tuple(b.number for b in blocks),
            frames=len(messages),
            updates=updates,
            behind=behind,
        )
        return _Poll(messages, chain + blocks, report, seq.next_seq)

    def _block_messages(
        self,
        seq: StreamSequencer,
        block: FollowedBlock,
        logs: Sequence[DecodedLog],
        *,
        is_revert: bool,
    ) -> list[m.SequencedMessage]:
        h = block.header
        events = [
            msg
            for entry in (reversed(logs) if is_revert else logs)
            if entry.pool in self._tracked
            and (msg := entry.message(h.number, h.timestamp, is_revert=is_revert)) is not None
        ]
        return seq.block(
            h.number,
            events,
            block_timestamp=h.timestamp,
            base_fee_per_gas=h.base_fee_per_gas,
            is_revert=is_revert,
        )

    def _find_ancestor(self, chain: list[FollowedBlock], start: int) -> int | None:
        """Index in `chain` of the newest stored block still canonical."""
        base = chain[0].number
        for number in range(min(start, chain[-1].number), base - 1, -1):
            current = rpc.header(self.w3, number)
            if current is not None and current.hash == chain[number - base].header.hash:
                return number - base
        return None

    def _reorg(self, chain: list[FollowedBlock], head: int) -> _Poll | None:
        at = self._find_ancestor(chain, head)
        if at is None:
            return self._deep_reorg(chain, head)
        ancestor, old = chain[at], chain[at + 1 :]
        last = min(head, ancestor.number + max(len(old), self.max_blocks_per_poll))
        headers = self._headers(ancestor.header, ancestor.number + 1, last)
        if headers is None:
            return None
        new = self._read_blocks(headers)
        final_tip = new[-1].header if new else ancestor.header
        finals = self._finals(old, new, final_tip.hash)
        # The producer reads a reverted block's absolute states at the final tip.
        old_logs = [self._resolved(b, final_tip.hash) for b in old]
        new_logs = [self._resolved(b, b.header.hash) for b in new]
        if not self._still_canonical(final_tip):
            return None
        seq = StreamSequencer(self._next_seq)
        messages: list[m.SequencedMessage] = [
            seq.reorg_start(_range([b.number for b in old]), _range([b.number for b in new]))
        ]
        for block, logs in reversed(list(zip(old, old_logs, strict=True))):
            messages += self._block_messages(seq, block, logs, is_revert=True)
        for block, logs in zip(new, new_logs, strict=True):
            messages += self._block_messages(seq, block, logs, is_revert=False)
        # The producer stamps a revert's epilogues with timestamp 0, a reorg's with the
        # last new block's.
        stamp = new[-1].header.timestamp if new else 0
        messages += [seq.epilogue(final_tip.number, u, final_tip_timestamp=stamp) for u in finals]
        messages.append(seq.reorg_complete(final_tip.number))
        reorg = ReorgReport(
            fork_block=ancestor.number,
            old_blocks=tuple(b.number for b in old),
            new_blocks=tuple(b.number for b in new),
            final_tip=final_tip.number,
            epilogues=len(finals),
        )
        log.info(
            "reorg at fork %d: %d blocks reverted, %d new, %d finals",
            ancestor.number,
            len(old),
            len(new),
            len(finals),
        )
        updates = sum(isinstance(msg, m.PoolUpdate) for msg in messages)
        report = PollReport(reorg=reorg, frames=len(messages), updates=updates, behind=last < head)
        return _Poll(messages, chain[: at + 1] + new, report, seq.next_seq)

    def _finals(
        self, old: Sequence[FollowedBlock], new: Sequence[FollowedBlock], tip_hash: str
    ) -> list[m.ReorgEpilogueUpdate]:
        v2: set[bytes] = set()
        v3: set[bytes] = set()
        v4: set[bytes] = set()
        by_protocol = {
            m.Protocol.UNISWAP_V2: v2,
            m.Protocol.UNISWAP_V3: v3,
            m.Protocol.UNISWAP_V4: v4,
        }
        touched = self.epilogue_scope == "touched"
        # Curve and Balancer pools have no epilogue final: the arena restores its own
        # pre-images of them.
        without_final = (m.Protocol.CURVE_STABLE, m.Protocol.BALANCER_V2_WEIGHTED)
        for block in old:
            for entry in block.logs:
                if entry.protocol in without_final:
                    continue
                v2_pair = entry.protocol is m.Protocol.UNISWAP_V2
                if v2_pair or entry.kind in _SLOT0_SWAPS or touched:
                    by_protocol[entry.protocol].add(entry.pool)
        if touched:
            for entry in (e for b in new for e in b.logs if e.protocol not in without_final):
                by_protocol[entry.protocol].add(entry.pool)
        v2 &= self._tracked
        v3 &= self._tracked
        managers = self._v4_managers
        v4_pools = [
            (p, managers.get(p, V4_MAINNET_POOL_MANAGER)) for p in sorted(v4 & self._tracked)
        ]
        return rpc.read_finals(self.w3, sorted(v2), sorted(v3), tip_hash, v4_pools)

    def _deep_reorg(self, chain: list[FollowedBlock], head: int) -> _Poll | None:
        """Deeper than the stored blocks: skip one stream_seq and restart at the head."""
        log.error(
            "reorg below the %d stored blocks (oldest %d): skipping a stream_seq so that "
            "consumers resync; following again after block %d",
            len(chain),
            chain[0].number,
            head,
        )
        anchor = rpc.header(self.w3, head)
        if anchor is None:
            return None
        fresh = [FollowedBlock(anchor, (), published=False)]
        return _Poll([], fresh, PollReport(deep_reorg=True), self._next_seq + 1)


def _range(numbers: Sequence[int]) -> m.ReorgRange:
    if not numbers:
        return m.ReorgRange(first_block=None, last_block=None, block_count=0)
    return m.ReorgRange(first_block=min(numbers), last_block=max(numbers), block_count=len(numbers))
