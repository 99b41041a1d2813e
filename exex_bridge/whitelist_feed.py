"""The whitelist control plane: `whitelist.pools.{chain}.full|add|remove` on NATS.

`WhitelistFeed` subscribes, asks the publisher for the chain's snapshot
(`whitelist.snapshot.request.{chain}`, and `whitelist.reseed` for publishers that re-send
every snapshot), parses every document with `exex_bridge.whitelist`, and queues the
changes. The consumer drains the queue at a block boundary: whitelist membership changes
only between blocks. A document that cannot be used at all is counted and logged; a bad
pool entry inside a usable document is skipped and logged by the parser.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any, Literal, NamedTuple, final

import nats

from exex_bridge.errors import WhitelistError
from exex_bridge.redaction import shown_url
from exex_bridge.whitelist import (
    RESEED_SUBJECT,
    WhitelistedPool,
    parse_pools_document,
    parse_remove_document,
    snapshot_request_subject,
    subject,
)

log = logging.getLogger(__name__)

ChangeKind = Literal["full", "add", "remove"]


class WhitelistChange(NamedTuple):
    kind: ChangeKind
    pools: tuple[WhitelistedPool, ...] = ()  # full, add
    keys: tuple[bytes, ...] = ()  # remove


@final
class WhitelistFeed:
    def __init__(self, url: str, chain: str = "ethereum") -> None:
        self.url = url
        self.chain = chain
        self.documents = 0
        self.rejected = 0
        self.snapshots = 0  # usable `.full` documents
        self._pending: deque[WhitelistChange] = deque()
        self._received = asyncio.Condition()
        self._nc: Any = None

    async def start(self, connect_timeout: float = 5.0) -> None:
        """Connect, subscribe to the three subjects, and ask for the snapshot (on
        `whitelist.snapshot.request.{chain}` and `whitelist.reseed`). TimeoutError if
        no server answers within `connect_timeout`: unbounded reconnection only once
        connected (the client would retry a first connection forever)."""
        self._nc = await asyncio.wait_for(
            nats.connect(
                self.url,
                connect_timeout=connect_timeout,
                max_reconnect_attempts=-1,
                name="pool-state-arena whitelist",
            ),
            connect_timeout,
        )
        for kind in ("full", "add", "remove"):
            await self._nc.subscribe(subject(self.chain, kind), cb=self._on_message)
        await self._nc.publish(snapshot_request_subject(self.chain), b"")
        await self._nc.publish(RESEED_SUBJECT, b"")
        await self._nc.flush()
        log.info(
            "whitelist feed on %s, subjects whitelist.pools.%s.*", shown_url(self.url), self.chain
        )

    async def close(self) -> None:
        if self._nc is not None:
            await self._nc.drain()
            self._nc = None

    async def __aenter__(self) -> WhitelistFeed:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def drain(self) -> list[WhitelistChange]:
        """The changes received since the last call, in arrival order."""
        changes = list(self._pending)
        self._pending.clear()
        return changes

    async def wait_for_documents(self, count: int) -> None:
        """Until `count` documents (usable or not) have arrived in total."""
        async with self._received:
            await self._received.wait_for(lambda: self.documents + self.rejected >= count)

    async def wait_for_snapshot(self, timeout: float) -> bool:
        """Until a usable `.full` document has arrived (True), at most `timeout` seconds
        (False)."""
        try:
            async with asyncio.timeout(timeout), self._received:
                await self._received.wait_for(lambda: self.snapshots > 0)
        except TimeoutError:
            return False
        return True

    async def _on_message(self, msg: Any) -> None:
        kind: ChangeKind = msg.subject.rsplit(".", 1)[-1]
        try:
            if kind == "remove":
                change = WhitelistChange("remove", keys=tuple(parse_remove_document(msg.data)))
            else:
                doc = parse_pools_document(msg.data, msg.subject)
                change = WhitelistChange(kind, pools=doc.pools)
        except WhitelistError as exc:
            self.rejected += 1
            log.warning("whitelist document rejected: %s", exc)
        else:
            self.documents += 1
            self.snapshots += kind == "full"
            self._pending.append(change)
        async with self._received:
            self._received.notify_all()
