"""One exact quote in µs, ours beside degenbot 0.3.0, on the same real pools and inputs.

.venv/bin/python -m benchmarks.bench_quote [--positions 300] [--no-degenbot]
                                           [--save-baseline]

Starts anvil, deploys the real Uniswap contracts (`devchain`), mints
`--positions` random positions into the WETH/USDC 0.3 % V3 pool, hydrates it and a V2 pair
over RPC, and picks exact-input amounts that cross exactly 0, 1 and 5 initialized ticks
in each direction (plus two V2 swaps). Ours: `v3_swap.quote_exact_input` over a
`TickTable` and `v2_math.get_amount_out`, and the same through `ExactQuoter.hop_out` over
an `ArenaEngine` (what the recalculator pays). degenbot: `calculate_tokens_out_from_tokens_in`
of its `UniswapV3Pool`/`UniswapV2Pool` built against the same node and block with the same
tick map, run by `benchmarks/degenbot_quote.py` in `.bench-venv-degenbot/` (create it with
`bash benchmarks/setup_degenbot.sh`). Every amount out must be equal on both sides.

V4: the real PoolManager is deployed too (`devchain.v4_world`), `--positions` random
positions go into its WETH/USDC 0.3 % pool through the liquidity router, the pool is
hydrated through StateView and quoted the same way (0, 1 and 5 crossings each way; ours
only: the degenbot side covers V2 and V3).
Curve StableSwap-NG: a real 2-coin and 3-coin plain pool (`devchain.curve_pool`) hydrated
over RPC; ours is `curve_stableswap.get_dy` and `ExactQuoter.hop_out` over the arena's
store (no degenbot column: its exactness is proven against the pool in the tests).

Balancer V2 weighted: the real Vault with pools of both generations
(`devchain.balancer_world`), hydrated over RPC; ours is `WeightedPoolMath.amount_out` and
`ExactQuoter.hop_out` over the arena's store, and every case's outputs must also equal the
Vault's own `BalancerQueries.querySwap` (no degenbot column).
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import msgspec
from web3 import Web3

from arena.balancer_hydration import BalancerPoolSnapshot, hydrate_balancer_pools
from arena.coin_pools import WeightedParams
from arena.curve_hydration import read_curve_pools
from arena.engine import ArenaEngine
from arena.hydration import V2PoolSnapshot, V3PoolSnapshot, hydrate_pools
from arena.v4_hydration import V4Pool as V4Locator
from arena.v4_hydration import hydrate_v4_pools
from benchmarks.common import compare_baseline, machine_line, save_baseline
from benchmarks.quote_timing import REPEATS, per_call_us
from devchain import AnvilNode, Deployment, TxRequest, deploy, execute_block
from devchain.abi import encode_call
from devchain.balancer_world import deploy_balancer_world
from devchain.curve_pool import deploy_curve_pool
from devchain.deploy import DEADLINE, Pool
from devchain.rpc import block_number, nonce_at
from devchain.spec import clamp_range
from devchain.v4_world import deploy_v4, modify_call
from devchain.whitelist_file import v4_pool_entry
from exex_bridge import messages as m
from exex_bridge.whitelist import PoolJson, Token, WhitelistedPool, parse_pool
from pathfinder.balancer_weighted import weighted_math_of
from pathfinder.curve_hop import SECONDS_PER_BLOCK, stableswap_pool
from pathfinder.curve_stableswap import get_dy
from pathfinder.exact_quote import ExactQuoter
from pathfinder.tick_math import get_sqrt_ratio_at_tick
from pathfinder.tick_table import TickTable
from pathfinder.v2_math import get_amount_out
from pathfinder.v3_swap import V3SwapState, quote_exact_input, swap

ROOT = Path(__file__).resolve().parents[1]
DEGENBOT_PYTHON = ROOT / ".bench-venv-degenbot" / "bin" / "python"
DEGENBOT_SCRIPT = ROOT / "benchmarks" / "degenbot_quote.py"
CROSSINGS = (0, 1, 5)
CHECKED = 50  # consecutive amounts per case whose outputs must agree
Q96 = 1 << 96


@dataclass
class Case:
    name: str
    pool: Pool | None  # None: a V4 or Curve pool (not run by degenbot)
    zero_for_one: bool
    amount_in: int
    crossed: int | None  # V3/V4 only
    ours: Callable[[int], int]  # amount in -> amount out
    via_arena: Callable[[int], int]


def mint_positions(node: AnvilNode, d: Deployment, pool: Pool, count: int, seed: int) -> None:
    """`count` positions of random width around the pool's price, from the deployer."""
    w3 = node.web3()
    (snap,) = hydrate_pools(w3, [(pool.address, "v3")], block_number(w3))
    if not isinstance(snap, V3PoolSnapshot):
        raise TypeError(f"{pool.label} did not hydrate as a V3 pool")
    rng = random.Random(seed)
    spacing = snap.tick_spacing
    x = snap.liquidity * Q96 // snap.sqrt_price_x96
    y = snap.liquidity * snap.sqrt_price_x96 // Q96
    nonce = nonce_at(w3, d.deployer)
    txs = []
    for i in range(count):
        lower = (snap.tick // spacing + rng.randint(-150, 120)) * spacing
        lower, upper = clamp_range(lower, lower + rng.randint(1, 80) * spacing, spacing)
        share = 10 ** rng.uniform(-4, -2)
        params = (
            pool.token0.address,
            pool.token1.address,
            pool.fee,
            lower,
            upper,
            int(x * share) + 1,
            int(y * share) + 1,
            0,
            0,
            d.deployer,
            DEADLINE,
        )
        txs.append(
            TxRequest(
                sender=d.deployer,
                to=d.position_manager,
                gas=1_000_000,
                data=encode_call("NonfungiblePositionManager", "mint", params),
                nonce=nonce + i,
                label=f"position {i}",
            )
        )
    for start in range(0, len(txs), 50):
        execute_block(w3, txs[start : start + 50])


def crossing_amount(state: V3SwapState, table: TickTable, zero_for_one: bool, k: int) -> int:
    """An input whose swap crosses exactly `k` initialized ticks: it ends halfway between
    the k-th and the (k+1)-th initialized tick in the swap's direction."""
    ticks = list(table)
    ahead = (
        [t for t in reversed(ticks) if t <= state.tick]
        if zero_for_one
        else [t for t in ticks if t > state.tick]
    )
    near = state.sqrt_price_x96 if k == 0 else get_sqrt_ratio_at_tick(ahead[k - 1])
    far = get_sqrt_ratio_at_tick(ahead[k])
    target = (near + far) // 2
    reach = swap(state, table, zero_for_one, 2**200, target)
    amount = reach.amount0 if zero_for_one else reach.amount1
    crossed = swap(state, table, zero_for_one, amount).ticks_crossed
    if crossed != k:
        raise RuntimeError(f"amount {amount} crosses {crossed} ticks, not {k}")
    return amount


def whitelisted(pool: Pool) -> WhitelistedPool:
    def token(t: Any) -> Token:
        return Token(address=bytes.fromhex(t.address[2:]), decimals=t.decimals, symbol=t.symbol)

    address = bytes.fromhex(pool.address[2:])
    protocol = m.Protocol.UNISWAP_V3 if pool.protocol == "v3" else m.Protocol.UNISWAP_V2
    return WhitelistedPool(
        key=address,
        address=address,
        protocol=protocol,
        token0=token(pool.token0),
        token1=token(pool.token1),
        fee=pool.fee,
        tick_spacing=pool.tick_spacing,
    )


def build_cases(v3: Pool, v3_snap: V3PoolSnapshot, v2: Pool, v2_snap: V2PoolSnapshot) -> list[Case]:
    engine = ArenaEngine()
    v3_index, v2_index = engine.add_pools([whitelisted(v3), whitelisted(v2)])
    engine.set_slot0(
        v3_index, v3_snap.sqrt_price_x96, v3_snap.liquidity, v3_snap.tick, v3_snap.ticks
    )
    engine.set_reserves(v2_index, v2_snap.reserve0, v2_snap.reserve1)
    quoter = ExactQuoter(engine)
    state = V3SwapState(
        sqrt_price_x96=v3_snap.sqrt_price_x96,
        tick=v3_snap.tick,
        liquidity=v3_snap.liquidity,
        fee_pips=v3.fee,
        tick_spacing=v3_snap.tick_spacing,
    )
    table = TickTable.from_net_gross(v3_snap.ticks, v3_snap.tick_spacing)
    cases = []
    for zero_for_one in (True, False):
        for k in CROSSINGS:
            amount = crossing_amount(state, table, zero_for_one, k)
            cases.append(
                Case(
                    f"V3 {'0→1' if zero_for_one else '1→0'}, {k} ticks crossed",
                    v3,
                    zero_for_one,
                    amount,
                    k,
                    partial(quote_exact_input, state, table, zero_for_one),
                    partial(quoter.hop_out, v3_index, zero_for_one),
                )
            )
    r0, r1 = v2_snap.reserve0, v2_snap.reserve1
    for zero_for_one, amount in ((True, r0 // 1000), (False, r1 // 50)):
        r_in, r_out = (r0, r1) if zero_for_one else (r1, r0)
        cases.append(
            Case(
                f"V2 {'0→1' if zero_for_one else '1→0'}, {amount * 100 / r_in:.1f} % of reserve",
                v2,
                zero_for_one,
                amount,
                None,
                partial(_v2_quote, r_in, r_out),
                partial(quoter.hop_out, v2_index, zero_for_one),
            )
        )
    return cases


def curve_cases(node: AnvilNode, deployer: str) -> list[Case]:
    """A 2-coin (18, 6 decimals) and a 3-coin (18, 6, 8) plain pool, A = 200, 0.04 %."""
    w3 = node.web3()
    engine = ArenaEngine()
    cases = []
    for decimals in ((18, 6), (18, 6, 8)):
        liquidity = tuple(1_000_000 * 10**d for d in decimals)
        curve = deploy_curve_pool(
            w3,
            deployer,
            decimals=decimals,
            amp=200,
            fee=4_000_000,
            offpeg_fee_multiplier=20_000_000_000,
            liquidity=liquidity,
        )
        (snap,) = read_curve_pools(w3, [curve.address], block_number(w3))
        if snap.state is None:
            raise RuntimeError(f"the Curve pool did not hydrate: {snap.excluded} {snap.detail}")
        tokens = [
            Token(address=bytes.fromhex(c.address[2:]), decimals=d)
            for c, d in zip(curve.coins, decimals, strict=True)
        ]
        address = bytes.fromhex(curve.address[2:])
        (index,) = engine.add_pools(
            [
                WhitelistedPool(
                    key=address,
                    address=address,
                    protocol=m.Protocol.CURVE_STABLE,
                    token0=tokens[0],
                    token1=tokens[1],
                )
            ]
        )
        engine.set_coin_state(index, snap.state)
        math_pool = stableswap_pool(snap.state)
        if math_pool is None:
            raise TypeError("not a Curve state")
        quoter = ExactQuoter(engine)
        for zero_for_one, share in ((True, 1e-3), (False, 0.1)):
            i, j = (0, 1) if zero_for_one else (1, 0)
            amount = int(math_pool.balances[i] * share)
            cases.append(
                Case(
                    f"Curve {len(decimals)} coins {i}→{j}, {share:.1%} of balance",
                    None,
                    zero_for_one,
                    amount,
                    None,
                    partial(
                        get_dy, math_pool, i, j, timestamp=engine.coins.clock + SECONDS_PER_BLOCK
                    ),
                    partial(quoter.hop_out, index, zero_for_one),
                )
            )
    return cases


def balancer_cases(node: AnvilNode) -> list[Case]:
    """Each pool of the Balancer world between its first two tokens, 0.1 % and 10 % of
    the balance in; outputs checked against `BalancerQueries.querySwap` first."""
    w3 = node.web3()
    world = deploy_balancer_world(w3)
    engine = ArenaEngine()
    indices = engine.add_pools(world.whitelisted())
    block = block_number(w3)
    cases = []
    for pool, index, found in zip(
        world.pools,
        indices,
        hydrate_balancer_pools(w3, [p.pool_id for p in world.pools], block),
        strict=True,
    ):
        if not isinstance(found, BalancerPoolSnapshot):
            raise RuntimeError(f"the Balancer pool did not hydrate: {found}")
        engine.set_coin_state(index, found.state)
        params = found.state.params
        if not isinstance(params, WeightedParams):
            raise TypeError("not a weighted pool's state")
        math = weighted_math_of(params)
        quoter = ExactQuoter(engine)
        weights = "/".join(str(w // 10**16) for w in params.weights)
        for zero_for_one, share in ((True, 1e-3), (False, 0.1)):
            i, j = (0, 1) if zero_for_one else (1, 0)
            amount = int(found.state.balances[i] * share)
            if math.amount_out(found.state.balances, i, j, amount) != world.query_swap(
                pool, i, j, amount
            ):
                raise RuntimeError(f"{pool.version} {i}→{j}: differs from BalancerQueries")
            cases.append(
                Case(
                    f"Balancer {pool.version} {weights} {i}→{j}, {share:.1%} of balance",
                    None,
                    zero_for_one,
                    amount,
                    None,
                    partial(math.amount_out, found.state.balances, i, j),
                    partial(quoter.hop_out, index, zero_for_one),
                )
            )
    return cases


def _v2_quote(reserve_in: int, reserve_out: int, amount_in: int) -> int:
    return get_amount_out(amount_in, reserve_in, reserve_out, 30)


def bitmap_words(ticks: dict[int, tuple[int, int]], spacing: int) -> dict[int, int]:
    words: dict[int, int] = {}
    for tick in ticks:
        compressed = tick // spacing
        words[compressed >> 8] = words.get(compressed >> 8, 0) | 1 << (compressed & 255)
    return words


def run_degenbot(
    url: str, block: int, v3_snap: V3PoolSnapshot, v2: Pool, cases: list[Case]
) -> dict[str, dict[str, Any]]:
    job = {
        "url": url,
        "block": block,
        "pools": [
            {
                "kind": "v3",
                "address": v3_snap.address,
                "tick_bitmap": bitmap_words(v3_snap.ticks, v3_snap.tick_spacing),
                "tick_data": {t: list(v) for t, v in v3_snap.ticks.items()},
            },
            {"kind": "v2", "address": v2.address},
        ],
        "checked": CHECKED,
        "cases": [
            {
                "name": c.name,
                "pool": c.pool.address if c.pool else "",
                "zero_for_one": c.zero_for_one,
                "amount_in": c.amount_in,
            }
            for c in cases
            if c.pool is not None
        ],
    }
    with tempfile.TemporaryDirectory() as d:
        job_path, out_path = Path(d) / "job.json", Path(d) / "out.json"
        job_path.write_text(json.dumps(job), encoding="utf-8")
        subprocess.run(
            [str(DEGENBOT_PYTHON), str(DEGENBOT_SCRIPT), str(job_path), str(out_path)],
            check=True,
            timeout=900,
        )
        results = json.loads(out_path.read_text(encoding="utf-8"))["results"]
    return {r["name"]: r for r in results}


def print_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for n, r in enumerate([header, *rows]):
        print(" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
        if n == 0:
            print("-+-".join("-" * w for w in widths))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--positions", type=int, default=300)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--no-degenbot", action="store_true", help="time our side only")
    parser.add_argument("--save-baseline", action="store_true")
    args = parser.parse_args()
    if not args.no_degenbot and not DEGENBOT_PYTHON.exists():
        sys.exit(
            f"{DEGENBOT_PYTHON} missing: run `bash benchmarks/setup_degenbot.sh` first "
            "(or pass --no-degenbot)"
        )

    with AnvilNode() as node:
        w3 = node.web3()
        deployment = deploy(w3)
        v3 = next(
            p
            for p in deployment.pools_of("v3")
            if p.fee == 3000 and {p.token0.symbol, p.token1.symbol} == {"WETH", "USDC"}
        )
        v2 = next(
            p
            for p in deployment.pools_of("v2")
            if {p.token0.symbol, p.token1.symbol} == {"WETH", "USDC"}
        )
        mint_positions(node, deployment, v3, args.positions, args.seed)
        block = block_number(w3)
        v3_snap, v2_snap = hydrate_pools(w3, [(v3.address, "v3"), (v2.address, "v2")], block)
        if not (isinstance(v3_snap, V3PoolSnapshot) and isinstance(v2_snap, V2PoolSnapshot)):
            raise TypeError("the pools did not hydrate as one V3 and one V2 pool")
        cases = build_cases(v3, v3_snap, v2, v2_snap) + curve_cases(node, deployment.deployer)
        cases += balancer_cases(node)
        theirs = {} if args.no_degenbot else run_degenbot(node.url, block, v3_snap, v2, cases)
        cases += v4_cases(w3, deployment, args.positions, args.seed)
    report(args, v3, v3_snap, cases, theirs)


def v4_cases(w3: Web3, deployment: Deployment, positions: int, seed: int) -> list[Case]:
    """The V4 WETH/USDC 0.3 % pool with `positions` random positions: 0/1/5 crossings."""
    v4 = deploy_v4(w3, deployment)
    pool = next(
        p
        for p in v4.pools
        if p.fee == 3000 and {p.token0.symbol, p.token1.symbol} == {"WETH", "USDC"}
    )
    manager = bytes.fromhex(v4.pool_manager[2:])
    locator = V4Locator(pool_id=pool.pool_id, pool_manager=manager, tick_spacing=pool.tick_spacing)
    (snap,) = hydrate_v4_pools(w3, [locator], block_number(w3), state_view=v4.state_view)
    rng, spacing = random.Random(seed), pool.tick_spacing
    nonce, txs = nonce_at(w3, deployment.deployer), []
    for i in range(positions):
        lower = (snap.tick // spacing + rng.randint(-150, 120)) * spacing
        lower, upper = clamp_range(lower, lower + rng.randint(1, 80) * spacing, spacing)
        liquidity = int(snap.liquidity * 10 ** rng.uniform(-4, -2)) + 1
        data = modify_call(pool, lower, upper, liquidity, i.to_bytes(32, "big"))
        txs.append(
            TxRequest(
                sender=deployment.deployer,
                to=v4.liquidity_router,
                gas=1_500_000,
                data=data,
                nonce=nonce + i,
                label=f"v4 position {i}",
            )
        )
    for start in range(0, len(txs), 50):
        execute_block(w3, txs[start : start + 50])
    (snap,) = hydrate_v4_pools(w3, [locator], block_number(w3), state_view=v4.state_view)
    entry = msgspec.convert(v4_pool_entry(pool, v4), PoolJson)
    engine = ArenaEngine()
    (index,) = engine.add_pools([parse_pool(entry, "bench")])
    engine.set_slot0(index, snap.sqrt_price_x96, snap.liquidity, snap.tick, snap.ticks)
    quoter = ExactQuoter(engine)
    state = V3SwapState(
        sqrt_price_x96=snap.sqrt_price_x96,
        tick=snap.tick,
        liquidity=snap.liquidity,
        fee_pips=pool.fee,
        tick_spacing=spacing,
    )
    table = TickTable.from_net_gross(snap.ticks, spacing)
    return [
        Case(
            f"V4 {'0→1' if zero_for_one else '1→0'}, {k} ticks crossed",
            None,
            zero_for_one,
            crossing_amount(state, table, zero_for_one, k),
            k,
            partial(quote_exact_input, state, table, zero_for_one),
            partial(quoter.hop_out, index, zero_for_one),
        )
        for zero_for_one in (True, False)
        for k in CROSSINGS
    ]


def report(
    args: argparse.Namespace,
    v3: Pool,
    v3_snap: V3PoolSnapshot,
    cases: list[Case],
    theirs: dict[str, dict[str, Any]],
) -> None:
    rows, figures, mismatches = [], {}, []
    for case in cases:
        outs = [case.ours(case.amount_in + j) for j in range(CHECKED)]
        if [case.via_arena(case.amount_in + j) for j in range(CHECKED)] != outs:
            mismatches.append(f"{case.name}: ExactQuoter.hop_out differs from the direct quote")
        ours = per_call_us(case.ours, case.amount_in, distinct=True)
        ours_repeated = per_call_us(case.ours, case.amount_in, distinct=False)
        arena = per_call_us(case.via_arena, case.amount_in, distinct=True)
        figures[case.name] = ours
        row = [
            case.name,
            "—" if case.crossed is None else str(case.crossed),
            f"{ours:.1f} ({ours_repeated:.1f})",
            f"{arena:.1f}",
        ]
        if theirs and case.name not in theirs:
            row += ["—", "—", "—"]
        elif theirs:
            other = theirs[case.name]
            same = [int(x) for x in other["amounts_out"]] == outs
            if not same:
                mismatches.append(
                    f"{case.name}: degenbot {other['amounts_out'][:3]}..., ours {outs[:3]}..."
                )
            row += [
                f"{other['us_distinct']:.1f} ({other['us_repeated']:.1f})",
                f"{other['us_distinct'] / ours:.1f}×",
                "yes" if same else "NO",
            ]
        rows.append(tuple(row))
    print(
        f"One exact-input quote: {v3.label} with {args.positions} minted positions "
        f"({len(v3_snap.ticks)} initialized ticks). CPU µs per call, best of {REPEATS} "
        "batches, a new amount every call (in brackets: one amount repeated)"
    )
    print(f"machine: {machine_line()}\n")
    header: tuple[str, ...] = ("case", "ticks crossed", "ours µs", "ours via ExactQuoter µs")
    if theirs:
        header += ("degenbot 0.3.0 µs", "degenbot ÷ ours", f"same {CHECKED} amounts out")
    print_table(header, rows)
    for line in compare_baseline("bench_quote", figures, higher_is_better=False):
        print(line)
    if args.save_baseline:
        print(f"baseline saved to {save_baseline('bench_quote', figures)}")
    if mismatches:
        sys.exit("amounts differ:\n" + "\n".join(mismatches))


if __name__ == "__main__":
    main()
