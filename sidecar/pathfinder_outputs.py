"""How `arena replay` and `arena run` attach the path recalculation: sinks, and the best
opportunities for the replay summary.

`PathfinderOutputs.open(engine, settings)` builds the sinks the `[pathfinder]` settings
ask for (JSONL file, NATS subject), a tracker of the best opportunities, and the
recalculator; its `on_settled` subscribes to every settled point
(`Pipeline.subscribe_settled`), trustworthy or not: the recalculator keeps the changes of
untrusted points for the next trusted one and emits nothing from them.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Final, Self, final

from arena.block_assembler import Settled
from arena.engine import ArenaEngine
from exex_bridge.connection_state import ConnectionState
from exex_bridge.redaction import shown_url
from exex_bridge.whitelist import Token
from pathfinder.opportunity import Opportunity
from pathfinder.recalculator import PathfinderConfig, PathRecalculator
from pathfinder.sinks import JsonlSink, NatsSink, OpportunitySink, SinkError
from sidecar.amounts import format_units
from sidecar.settings import PathfinderSettings

log = logging.getLogger(__name__)

BEST_SHOWN: Final = 5


def pathfinder_config(settings: PathfinderSettings) -> PathfinderConfig:
    return PathfinderConfig(
        chain=settings.chain,
        base_tokens=settings.base_tokens,
        top_k=settings.top_k,
    )


def build_recalculator(
    engine: ArenaEngine, settings: PathfinderSettings, sinks: Sequence[OpportunitySink] = ()
) -> PathRecalculator:
    return PathRecalculator(engine, pathfinder_config(settings), sinks)


@final
class BestOpportunities:
    """Keeps the `keep` opportunities with the highest net profit seen (a sink)."""

    name = "best"

    def __init__(self, keep: int = BEST_SHOWN) -> None:
        self.keep = keep
        self.seen = 0
        self._heap: list[tuple[int, int, Opportunity]] = []

    def __call__(self, opportunities: Sequence[Opportunity]) -> None:
        for opportunity in opportunities:
            self.seen += 1
            item = (opportunity.net_profit, -self.seen, opportunity)  # earlier wins ties
            if len(self._heap) < self.keep:
                heapq.heappush(self._heap, item)
            elif item[:2] > self._heap[0][:2]:
                heapq.heapreplace(self._heap, item)

    def best(self) -> list[Opportunity]:
        return [o for _, _, o in sorted(self._heap, key=lambda i: i[:2], reverse=True)]

    def close(self) -> None:
        pass


def token_symbols(engine: ArenaEngine) -> dict[str, str]:
    """'0x…' -> symbol, for every whitelisted token that has one."""
    return {key: token.symbol for key, token in tokens_of(engine).items() if token.symbol}


def tokens_of(engine: ArenaEngine) -> dict[str, Token]:
    """'0x…' -> the whitelist's token (decimals, symbol), for every whitelisted token."""
    out: dict[str, Token] = {}
    for pool in engine.registry.pools:
        for token in (pool.token0, pool.token1):
            out["0x" + token.address.hex()] = token
    return out


def _label(token: str, symbols: dict[str, str]) -> str:
    return symbols.get(token) or f"{token[:6]}…{token[-4:]}"


def _amount(amount: int, token: Token | None) -> str:
    """Token units with the symbol, then the exact integer (start-token smallest units)."""
    if token is None:
        return str(amount)
    return f"{format_units(amount, token.decimals, token.symbol)} ({amount})"


def opportunity_rows(best: Sequence[Opportunity], symbols: dict[str, str]) -> list[dict[str, Any]]:
    """The summary's view: block, token path, amount in, net profit (start-token units)."""
    return [
        {
            "block": o.block,
            "path": [_label(t, symbols) for t in o.tokens],
            "amount_in": o.amount_in,
            "net_profit": o.net_profit,
            "after_reorg": o.after_reorg,
        }
        for o in best
    ]


def render_best(best: Sequence[Opportunity], tokens: dict[str, Token], seen: int) -> str:
    title = f"best opportunities ({seen} found; top {len(best)} by net profit, start-token units)"
    if not best:
        return f"{title}: none"
    symbols = {key: token.symbol for key, token in tokens.items() if token.symbol}
    rows = [("block", "path", "amount_in", "net_profit")]
    rows += [
        (
            str(o.block),
            " → ".join(_label(t, symbols) for t in o.tokens),
            _amount(o.amount_in, tokens.get(o.tokens[0])),
            _amount(o.net_profit, tokens.get(o.tokens[0])),
        )
        for o in best
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [title]
    lines += [
        f"  {r[0]:>{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]:>{widths[3]}}"
        for r in rows
    ]
    return "\n".join(lines)


@final
class PathfinderOutputs:
    """The recalculator and every sink the options asked for; closing closes the sinks."""

    def __init__(
        self, recalculator: PathRecalculator, sinks: list[OpportunitySink], best: BestOpportunities
    ) -> None:
        self.recalculator = recalculator
        self.sinks = sinks
        self.tracker = best

    @classmethod
    def open(
        cls,
        engine: ArenaEngine,
        settings: PathfinderSettings,
        more_sinks: Sequence[OpportunitySink] = (),
        *,
        nats_connected_within: float | None = None,
        on_loop: bool = False,
    ) -> PathfinderOutputs:
        """Raises SinkError if the JSONL file cannot be opened. The NATS sink connects
        in the background (never blocking a live arena; see `NatsSink`): on the service's
        loop when `on_loop` (started by `astart()`, stopped by `aclose()`), else on a
        thread of its own, started here; with
        `nats_connected_within` (an offline replay, which may finish in less time than a
        connection takes) it must be connected within that many seconds or SinkError is
        raised. `more_sinks` (the executor) come after those and are closed with them."""
        sinks: list[OpportunitySink] = []
        if settings.opportunities_out is not None:
            sinks.append(JsonlSink(settings.opportunities_out))
        if settings.nats_url is not None:
            nats_sink = NatsSink(
                settings.nats_url, settings.chain, registry=engine.metrics.registry
            )
            if not on_loop:
                nats_sink.start()
            sinks.append(nats_sink)
            if nats_connected_within is not None and not nats_sink.wait_until(
                lambda s: s.state is ConnectionState.CONNECTED, nats_connected_within
            ):
                for sink in sinks:
                    sink.close()
                raise SinkError(
                    shown_url(settings.nats_url),
                    f"not connected within {nats_connected_within:g} s",
                )
        sinks.extend(more_sinks)
        best = BestOpportunities()
        try:
            recalculator = build_recalculator(engine, settings, [*sinks, best])
        except BaseException:
            for sink in sinks:
                sink.close()
            raise
        log.info(
            "pathfinder: %d cycles through %s; sinks: %s",
            recalculator.graph.live_count(),
            ", ".join("0x" + t.hex() for t in recalculator.graph.base_tokens),
            ", ".join(s.name for s in sinks) or "none",
        )
        return cls(recalculator, sinks, best)

    def on_settled(self, settled: Settled) -> None:
        self.recalculator.on_settled(settled)

    def best(self) -> list[Opportunity]:
        return self.tracker.best()

    def render_best(self) -> str:
        engine = self.recalculator.engine
        return render_best(self.best(), tokens_of(engine), self.tracker.seen)

    def best_rows(self) -> list[dict[str, Any]]:
        return opportunity_rows(self.best(), token_symbols(self.recalculator.engine))

    async def astart(self) -> None:
        """Start the NATS sink's worker on the running loop (`open(on_loop=True)`)."""
        for sink in self.sinks:
            if isinstance(sink, NatsSink):
                await sink.astart()

    async def aclose(self) -> None:
        """Publish what is queued and stop the loop's NATS worker (bounded by its close
        timeout); `close()` still closes the other sinks."""
        for sink in self.sinks:
            if isinstance(sink, NatsSink):
                await sink.aclose()

    def close(self) -> None:
        for sink in self.sinks:
            try:
                sink.close()
            except OSError as exc:
                log.error("closing opportunity sink %s: %s", sink.name, exc)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
