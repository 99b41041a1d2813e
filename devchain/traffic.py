"""Seeded traffic on the dev chain: V2/V3 swaps both ways, V2 and V3 mints and burns.

Every transaction comes from the deployment's trader account with an explicit nonce, so
execution order is submission order. V2 swaps are router-less (there is no V2 router in
the installed packages): `transfer` to the pair, then `pair.swap` with the exact
`getAmountOut` computed here from the reserves this block will have at that point. V3
swaps go through SwapRouter.exactInputSingle; mints and burns through the
NonfungiblePositionManager. The same seed on the same deployment gives the same blocks.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, final

from web3 import Web3

from devchain.abi import encode_call
from devchain.deploy import DEADLINE, Deployment
from devchain.rpc import TxRequest, execute_block
from devchain.spec import clamp_range
from devchain.view import ChainView, PositionView, V2PairView, V3PoolView

log = logging.getLogger(__name__)

MIN_SQRT_RATIO: Final = 4295128739
MAX_SQRT_RATIO: Final = 1461446703485210103287273184169141223316061434
MAX_UINT128: Final = 2**128 - 1
_SWAP_GAS: Final = 1_500_000
_LIQUIDITY_GAS: Final = 1_000_000
_TRANSFER_GAS: Final = 150_000


@dataclass(frozen=True, kw_only=True)
class TrafficConfig:
    max_actions_per_block: int = 8
    empty_block_probability: float = 0.1
    price_limit_probability: float = 0.25
    # Relative weights of the actions in one block.
    v2_swap: int = 4
    v3_swap: int = 6
    v3_mint: int = 2
    v3_increase: int = 1
    v3_decrease: int = 2
    v2_mint: int = 1
    v2_burn: int = 1


@dataclass(frozen=True, kw_only=True)
class BlockTraffic:
    number: int
    hash: str
    labels: tuple[str, ...]


def v2_amount_out(amount_in: int, reserve_in: int, reserve_out: int) -> int:
    with_fee = amount_in * 997
    return with_fee * reserve_out // (reserve_in * 1000 + with_fee)


def _fraction(rng: random.Random, low: float, high: float) -> float:
    # Log-uniform: many small trades, a few large ones.
    return float(low * (high / low) ** rng.random())


Action = Callable[[random.Random, ChainView], list[TxRequest]]
# One more kind of trader transaction (e.g. `devchain.v4_world.V4Traffic.actions()`):
# (to, calldata, label), sent with the view's nonce.
ExtraAction = Callable[[random.Random], tuple[str, bytes, str]]


@final
class TrafficGenerator:
    def __init__(
        self,
        w3: Web3,
        deployment: Deployment,
        seed: int,
        config: TrafficConfig | None = None,
        *,
        extra_actions: Sequence[tuple[ExtraAction, int]] = (),
    ) -> None:
        self.w3 = w3
        self.deployment = deployment
        self.config = config or TrafficConfig()
        self.rng = random.Random(seed)
        c = self.config
        self._actions: list[tuple[Action, int]] = [
            (self._v2_swap, c.v2_swap),
            (self._v3_swap, c.v3_swap),
            (self._v3_mint, c.v3_mint),
            (self._v3_increase, c.v3_increase),
            (self._v3_decrease, c.v3_decrease),
            (self._v2_mint, c.v2_mint),
            (self._v2_burn, c.v2_burn),
        ]
        self._actions += [(self._extra(action), weight) for action, weight in extra_actions]

    def load_view(self, block: int | None = None) -> ChainView:
        number = block if block is not None else int(self.w3.eth.block_number)
        return ChainView.load(self.w3, self.deployment, number)

    def build_block(self, rng: random.Random, view: ChainView) -> list[TxRequest]:
        """The transactions of one block, exact against `view`, which they update."""
        if rng.random() < self.config.empty_block_probability:
            return []
        actions, weights = zip(*self._actions, strict=True)
        txs: list[TxRequest] = []
        for _ in range(rng.randint(1, self.config.max_actions_per_block)):
            action = rng.choices(actions, weights)[0]
            txs += action(rng, view)
        return txs

    def generate_block(self, rng: random.Random | None = None) -> BlockTraffic:
        """Builds, sends and mines one block; every transaction must succeed."""
        view = self.load_view()
        txs = self.build_block(rng or self.rng, view)
        number, _ = execute_block(self.w3, txs)
        block_hash = str(self.w3.eth.get_block(number)["hash"].to_0x_hex())
        log.debug("block %d: %d transactions", number, len(txs))
        return BlockTraffic(number=number, hash=block_hash, labels=tuple(t.label for t in txs))

    def run(self, blocks: int) -> list[BlockTraffic]:
        return [self.generate_block() for _ in range(blocks)]

    def _tx(self, view: ChainView, to: str, data: bytes, gas: int, label: str) -> TxRequest:
        view.nonce += 1
        return TxRequest(
            sender=self.deployment.trader,
            to=to,
            data=data,
            gas=gas,
            nonce=view.nonce - 1,
            label=label,
        )

    def _extra(self, action: ExtraAction) -> Action:
        def run(rng: random.Random, view: ChainView) -> list[TxRequest]:
            to, data, label = action(rng)
            return [self._tx(view, to, data, _SWAP_GAS, label)]

        return run

    def _v2_swap(self, rng: random.Random, view: ChainView) -> list[TxRequest]:
        pair = rng.choice(list(view.v2.values()))
        zero_for_one = rng.random() < 0.5
        r_in, r_out = (
            (pair.reserve0, pair.reserve1) if zero_for_one else (pair.reserve1, pair.reserve0)
        )
        amount_in = max(1, int(r_in * _fraction(rng, 5e-4, 2e-2)))
        amount_out = v2_amount_out(amount_in, r_in, r_out)
        if amount_out == 0:
            return []
        p = pair.pool
        token_in = p.token0 if zero_for_one else p.token1
        outs = (0, amount_out) if zero_for_one else (amount_out, 0)
        if zero_for_one:
            pair.reserve0, pair.reserve1 = r_in + amount_in, r_out - amount_out
        else:
            pair.reserve1, pair.reserve0 = r_in + amount_in, r_out - amount_out
        label = f"v2 swap {p.label} {'0->1' if zero_for_one else '1->0'}"
        return [
            self._tx(
                view,
                token_in.address,
                encode_call("ERC20", "transfer", p.address, amount_in),
                _TRANSFER_GAS,
                label + " (pay)",
            ),
            self._tx(
                view,
                p.address,
                encode_call("UniswapV2Pair", "swap", *outs, self.deployment.trader, b""),
                _SWAP_GAS,
                label,
            ),
        ]

    def _v3_swap(self, rng: random.Random, view: ChainView) -> list[TxRequest]:
        pool = rng.choice(list(view.v3.values()))
        p = pool.pool
        zero_for_one = rng.random() < 0.5
        balance = pool.balance0 if zero_for_one else pool.balance1
        amount_in = max(1, int(balance * _fraction(rng, 1e-3, 1e-1)))
        limit = 0
        if p.address not in view.moved and rng.random() < self.config.price_limit_probability:
            limit = _price_limit(rng, pool, zero_for_one)
        view.moved.add(p.address)
        token_in, token_out = (p.token0, p.token1) if zero_for_one else (p.token1, p.token0)
        params = (
            token_in.address,
            token_out.address,
            p.fee,
            self.deployment.trader,
            DEADLINE,
            amount_in,
            0,
            limit,
        )
        label = f"v3 swap {p.label} {'0->1' if zero_for_one else '1->0'}"
        return [
            self._tx(
                view,
                self.deployment.swap_router,
                encode_call("SwapRouter", "exactInputSingle", params),
                _SWAP_GAS,
                label + (" limited" if limit else ""),
            )
        ]

    def _v3_mint(self, rng: random.Random, view: ChainView) -> list[TxRequest]:
        pool = rng.choice(list(view.v3.values()))
        p = pool.pool
        spacing = p.tick_spacing or 1
        kind = rng.choice(("around", "above", "below", "wide"))
        width = rng.randint(1, 12) * spacing
        if kind == "around":
            lower, upper = pool.tick - rng.randint(0, 8) * spacing, pool.tick + width
        elif kind == "above":
            lower = pool.tick + rng.randint(1, 10) * spacing
            upper = lower + width
        elif kind == "below":
            upper = pool.tick - rng.randint(1, 10) * spacing
            lower = upper - width
        else:
            lower, upper = pool.tick - 50 * width, pool.tick + 50 * width
        lower, upper = clamp_range(lower, upper + spacing, spacing)
        share = _fraction(rng, 1e-3, 2e-2)
        params = (
            p.token0.address,
            p.token1.address,
            p.fee,
            lower,
            upper,
            int(pool.balance0 * share) + 1,
            int(pool.balance1 * share) + 1,
            0,
            0,
            self.deployment.trader,
            DEADLINE,
        )
        view.next_token_id += 1
        return [
            self._tx(
                view,
                self.deployment.position_manager,
                encode_call("NonfungiblePositionManager", "mint", params),
                _LIQUIDITY_GAS,
                f"v3 mint {p.label} [{lower},{upper}) {kind}",
            )
        ]

    def _live_position(self, rng: random.Random, view: ChainView) -> PositionView | None:
        live = [
            pos for pos in view.positions if pos.liquidity > 0 and pos.token_id not in view.spent
        ]
        return rng.choice(live) if live else None

    def _v3_increase(self, rng: random.Random, view: ChainView) -> list[TxRequest]:
        pos = self._live_position(rng, view)
        if pos is None:
            return self._v3_mint(rng, view)
        pool = view.v3[pos.pool.address]
        share = _fraction(rng, 1e-3, 1e-2)
        params = (
            pos.token_id,
            int(pool.balance0 * share) + 1,
            int(pool.balance1 * share) + 1,
            0,
            0,
            DEADLINE,
        )
        return [
            self._tx(
                view,
                self.deployment.position_manager,
                encode_call("NonfungiblePositionManager", "increaseLiquidity", params),
                _LIQUIDITY_GAS,
                f"v3 increase #{pos.token_id} {pos.pool.label}",
            )
        ]

    def _v3_decrease(self, rng: random.Random, view: ChainView) -> list[TxRequest]:
        pos = self._live_position(rng, view)
        if pos is None:
            return []
        view.spent.add(pos.token_id)
        amount = pos.liquidity if rng.random() < 0.4 else max(1, int(pos.liquidity * rng.random()))
        npm, trader = self.deployment.position_manager, self.deployment.trader
        label = f"v3 decrease #{pos.token_id} {pos.pool.label} by {amount}"
        return [
            self._tx(
                view,
                npm,
                encode_call(
                    "NonfungiblePositionManager",
                    "decreaseLiquidity",
                    (pos.token_id, amount, 0, 0, DEADLINE),
                ),
                _LIQUIDITY_GAS,
                label,
            ),
            self._tx(
                view,
                npm,
                encode_call(
                    "NonfungiblePositionManager",
                    "collect",
                    (pos.token_id, trader, MAX_UINT128, MAX_UINT128),
                ),
                _LIQUIDITY_GAS,
                f"v3 collect #{pos.token_id}",
            ),
        ]

    def _v2_mint(self, rng: random.Random, view: ChainView) -> list[TxRequest]:
        pair = rng.choice(list(view.v2.values()))
        p = pair.pool
        amount0 = max(1, int(pair.reserve0 * _fraction(rng, 1e-3, 2e-2)))
        amount1 = amount0 * pair.reserve1 // pair.reserve0 + 1
        minted = min(
            amount0 * pair.total_supply // pair.reserve0,
            amount1 * pair.total_supply // pair.reserve1,
        )
        if minted == 0:
            return []
        pair.reserve0 += amount0
        pair.reserve1 += amount1
        pair.total_supply += minted
        pair.trader_liquidity += minted
        return [
            self._tx(
                view,
                p.token0.address,
                encode_call("ERC20", "transfer", p.address, amount0),
                _TRANSFER_GAS,
                f"v2 mint {p.label} (pay0)",
            ),
            self._tx(
                view,
                p.token1.address,
                encode_call("ERC20", "transfer", p.address, amount1),
                _TRANSFER_GAS,
                f"v2 mint {p.label} (pay1)",
            ),
            self._tx(
                view,
                p.address,
                encode_call("UniswapV2Pair", "mint", self.deployment.trader),
                _LIQUIDITY_GAS,
                f"v2 mint {p.label}",
            ),
        ]

    def _v2_burn(self, rng: random.Random, view: ChainView) -> list[TxRequest]:
        pair = rng.choice(list(view.v2.values()))
        liquidity = int(pair.trader_liquidity * rng.uniform(0.1, 1.0))
        amount0, amount1 = _burn_amounts(pair, liquidity)
        if amount0 == 0 or amount1 == 0:
            return self._v2_mint(rng, view)
        pair.reserve0 -= amount0
        pair.reserve1 -= amount1
        pair.total_supply -= liquidity
        pair.trader_liquidity -= liquidity
        p = pair.pool
        return [
            self._tx(
                view,
                p.address,
                encode_call("UniswapV2Pair", "transfer", p.address, liquidity),
                _TRANSFER_GAS,
                f"v2 burn {p.label} (return)",
            ),
            self._tx(
                view,
                p.address,
                encode_call("UniswapV2Pair", "burn", self.deployment.trader),
                _LIQUIDITY_GAS,
                f"v2 burn {p.label}",
            ),
        ]


def _burn_amounts(pair: V2PairView, liquidity: int) -> tuple[int, int]:
    if liquidity <= 0 or pair.total_supply == 0:
        return 0, 0
    return (
        liquidity * pair.reserve0 // pair.total_supply,
        liquidity * pair.reserve1 // pair.total_supply,
    )


def _price_limit(rng: random.Random, pool: V3PoolView, zero_for_one: bool) -> int:
    # A limit a little past the current price, on the side the swap moves it.
    step = 1.0 - _fraction(rng, 2e-4, 5e-3) if zero_for_one else 1.0 + _fraction(rng, 2e-4, 5e-3)
    limit = int(pool.sqrt_price_x96 * step)
    return min(max(limit, MIN_SQRT_RATIO + 1), MAX_SQRT_RATIO - 1)
