"""degenbot 0.3.0's side of `benchmarks.bench_quote`: run in `.bench-venv-degenbot/`.

.bench-venv-degenbot/bin/python benchmarks/degenbot_quote.py JOB.json OUT.json

degenbot's pool objects read their immutable data and slot0/reserves over RPC when they
are built (there is no offline constructor in 0.3.0), so the job names the anvil node
that `bench_quote` started with the same deployed pools and the block to read at. The V3
pool gets its full tick map (`tick_bitmap` + `tick_data`) from the job, so quoting never
touches the node. Each case is timed with `calculate_tokens_out_from_tokens_in`, the same
way as in `bench_quote` (one amount repeated, and a new amount every call: degenbot
memoizes its math functions, so a repeated amount is mostly cache hits); the outputs for
`checked` consecutive amounts are written back for comparison.
This script imports nothing from the project's packages (the project's venv has web3 8,
degenbot pins web3 < 8), only the stdlib-only timing beside it, shared with bench_quote.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from degenbot import UniswapV2Pool, UniswapV3Pool, set_web3
from quote_timing import per_call_us  # beside this script: standard library only
from web3 import HTTPProvider, Web3


def build_pools(job: dict[str, Any]) -> dict[str, Any]:
    set_web3(Web3(HTTPProvider(job["url"], request_kwargs={"timeout": 60})))
    pools: dict[str, Any] = {}
    for spec in job["pools"]:
        if spec["kind"] == "v2":
            pools[spec["address"]] = UniswapV2Pool(
                spec["address"], state_block=job["block"], verify_address=False, silent=True
            )
        else:
            pools[spec["address"]] = UniswapV3Pool(
                spec["address"],
                state_block=job["block"],
                tick_bitmap={int(w): {"bitmap": b} for w, b in spec["tick_bitmap"].items()},
                tick_data={
                    int(t): {"liquidity_net": net, "liquidity_gross": gross}
                    for t, (net, gross) in spec["tick_data"].items()
                },
                verify_address=False,
                silent=True,
            )
    return pools


def main() -> None:
    job = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    pools = build_pools(job)
    results = []
    for case in job["cases"]:
        pool = pools[case["pool"]]
        token_in = pool.token0 if case["zero_for_one"] else pool.token1
        amount = int(case["amount_in"])

        def quote(amount: int, pool: Any = pool, token_in: Any = token_in) -> int:
            return int(pool.calculate_tokens_out_from_tokens_in(token_in, amount))

        outs = [str(quote(amount + j)) for j in range(job["checked"])]
        results.append(
            {
                "name": case["name"],
                "amounts_out": outs,
                "us_repeated": per_call_us(quote, amount, distinct=False),
                "us_distinct": per_call_us(quote, amount, distinct=True),
            }
        )
    Path(sys.argv[2]).write_text(json.dumps({"results": results}), encoding="utf-8")


if __name__ == "__main__":
    main()
