"""Regenerate the bundled sample that `arena replay --sample` replays.

Starts anvil, deploys the real Uniswap contracts, writes the whitelist, runs a little
warm-up traffic, hydrates the initial state at the block before the first recorded one,
then drives seeded traffic with reorgs and rollbacks through the chain follower while a
socket client records the stream. Every settled point is checked against eth_call while
recording (devchain.chain_proof), and the finished recording is replayed from the initial
state and compared with the node once more before the files are kept.

    .venv/bin/python scripts/make_sample.py [--seed 1] [--blocks 260] [--out sidecar/samples]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
import tempfile
from pathlib import Path

import sidecar
from arena.engine import ArenaEngine
from arena.pipeline import PipelineConfig, open_pipeline
from arena.resync import resync
from arena.state_file import write_state_file
from devchain import AnvilNode, TrafficGenerator, deploy
from devchain.chain_check import compare_with_node
from devchain.chain_proof import ChainProof, ProofConfig, ProofResult, plan_steps
from devchain.whitelist_file import write_whitelist
from exex_bridge.recording import RecordingMetadata, RecordingWriter, open_recording
from exex_bridge.socket_source import SocketSource
from exex_bridge.whitelist import Whitelist, load_whitelist_file

MAX_BYTES = 2 * 1024 * 1024
WARM_UP_BLOCKS = 20


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--blocks", type=int, default=260, help="traffic blocks (reorgs add more)")
    p.add_argument("--reorgs", type=int, default=20)
    p.add_argument("--rollbacks", type=int, default=5)
    p.add_argument("--out", type=Path, default=Path(sidecar.__file__).parent / "samples")
    return p


async def _record(
    generator: TrafficGenerator, whitelist: Whitelist, config: ProofConfig, writer: RecordingWriter
) -> ProofResult:
    with tempfile.TemporaryDirectory(prefix="sample") as tmp:
        sock = os.path.join(tmp, "exex.sock")
        async with ChainProof(generator, whitelist.pools, sock, config) as proof:
            recorder = SocketSource(sock)
            progress = asyncio.Event()

            async def record() -> None:
                async for payload in recorder.frames():
                    writer.write_frame(payload)
                    progress.set()

            task = asyncio.create_task(record())
            await proof.server.wait_for_clients(2)
            result = await proof.run(plan_steps(config))
            while writer.frames < result.frames:
                progress.clear()
                await asyncio.wait_for(progress.wait(), 60)
            await recorder.close()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    return result


def _replay_check(out: Path, generator: TrafficGenerator) -> int:
    """Replay the three files exactly as `arena replay --sample` does; compare with the node."""
    config = PipelineConfig(
        whitelist=out / "sample_whitelist.json", initial_state=out / "sample_initial_state.json"
    )
    with open_pipeline(config) as pipeline:
        for payload in open_recording(out / "sample.arec").frames():
            pipeline.feed_frame(payload)
        tip = pipeline.engine.tip_block
        if tip is None or not pipeline.engine.synced:
            print(f"replay did not settle: {pipeline.engine.sync_status}", file=sys.stderr)
            return 1
        mismatches = compare_with_node(pipeline.engine, generator.w3, tip)
    for found in mismatches[:10]:
        print(found.line(), file=sys.stderr)
    print(f"replay of the sample: tip {tip}, {len(mismatches)} mismatches", file=sys.stderr)
    return 1 if mismatches else 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    config = ProofConfig(
        blocks=args.blocks, reorgs=args.reorgs, rollbacks=args.rollbacks, seed=args.seed
    )
    with AnvilNode() as node:
        w3 = node.web3()
        deployment = deploy(w3)
        whitelist_path = write_whitelist(deployment, args.out / "sample_whitelist.json")
        whitelist = load_whitelist_file(whitelist_path)
        generator = TrafficGenerator(w3, deployment, args.seed)
        generator.run(WARM_UP_BLOCKS)
        anchor = w3.eth.block_number
        engine = ArenaEngine(capacity=max(16, len(whitelist.pools)))
        engine.add_pools(whitelist.pools)
        resync(engine, w3, anchor)
        write_state_file(engine, args.out / "sample_initial_state.json")
        notes = {
            "seed": str(args.seed),
            "first_block": str(anchor + 1),
            "generator": "scripts/make_sample.py",
        }
        meta = RecordingMetadata.new(f"anvil:{node.url}", notes)
        with RecordingWriter(args.out / "sample.arec", meta, overwrite=True) as writer:
            result = asyncio.run(_record(generator, whitelist, config, writer))
        print(result.table(), file=sys.stderr)
        if not result.ok:
            return 1
        status = _replay_check(args.out, generator)
    size = (args.out / "sample.arec").stat().st_size
    print(f"wrote {args.out}: sample.arec {size} bytes, {result.frames} frames", file=sys.stderr)
    if size >= MAX_BYTES:
        print(f"sample.arec is {size} bytes, above the {MAX_BYTES} limit", file=sys.stderr)
        return 1
    return status


if __name__ == "__main__":
    sys.exit(main())
