"""What the replay summary says: duplicates dropped, only the updates of blocks taken,
the recalculation latency beside apply and revert, and state-only replays."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from decimal import ROUND_DOWN, Decimal
from pathlib import Path

import pytest

from exex_bridge import messages as m
from exex_bridge.codec import encode_frame
from tests.arena.replay_scenario import Scenario, standard_scenario

ROOT = Path(__file__).resolve().parents[2]
COPIES = 5


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return standard_scenario()


def replay(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sidecar.cli", "replay", "--no-progress", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


def applied_updates(scenario: Scenario) -> dict[str, int]:
    names = {m.Protocol.UNISWAP_V2: "v2", m.Protocol.UNISWAP_V3: "v3"}
    counts = Counter(
        names[msg.event.protocol]
        for msg in scenario.builder.messages
        if isinstance(msg, m.PoolUpdate)
    )
    return dict(sorted(counts.items()))


def test_a_concatenated_recording_says_what_it_dropped(tmp_path: Path, scenario: Scenario) -> None:
    whitelist, initial = scenario.write_inputs(tmp_path)
    raw = tmp_path / "five.raw"
    raw.write_bytes(scenario.builder.raw_dump() * COPIES)
    done = replay(raw, "--whitelist", whitelist, "--initial-state", initial, "--json-summary")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    sequenced = sum(1 for msg in scenario.builder.messages if not isinstance(msg, m.Ping))
    assert summary["duplicates"] == (COPIES - 1) * sequenced
    assert summary["updates_by_protocol"] == applied_updates(scenario)
    table = replay(raw, "--whitelist", whitelist, "--initial-state", initial)
    assert f"duplicates dropped    {(COPIES - 1) * sequenced}" in table.stdout


def test_the_recalculation_latency_is_reported_and_no_pathfinder_skips_it(
    tmp_path: Path, scenario: Scenario
) -> None:
    whitelist, initial = scenario.write_inputs(tmp_path)
    raw = tmp_path / "one.raw"
    raw.write_bytes(scenario.builder.raw_dump())
    common = (raw, "--whitelist", whitelist, "--initial-state", initial, "--json-summary")
    with_paths = json.loads(replay(*common).stdout)
    assert with_paths["recalc_latency"]["count"] == with_paths["settled_points"]
    assert with_paths["recalc_latency"]["p99_us"] > 0
    assert "best_opportunities" in with_paths
    done = replay(*common, "--no-pathfinder")
    assert done.returncode == 0, done.stderr
    state_only = json.loads(done.stdout)
    assert state_only["recalc_latency"]["count"] == 0
    assert "best_opportunities" not in state_only
    assert state_only["tip_block"] == with_paths["tip_block"]
    table = replay(raw, "--whitelist", whitelist, "--initial-state", initial, "--no-pathfinder")
    assert "best opportunities" not in table.stdout
    assert "recalculation" in table.stdout


def test_one_garbage_frame_inside_a_reorg_envelope_is_one_loss(
    tmp_path: Path, scenario: Scenario
) -> None:
    """The envelope is skipped as a whole (none of its blocks applied while unsynced); the
    loss is counted once, as what it was; the blocks after it apply, still unsynced."""
    whitelist, initial = scenario.write_inputs(tmp_path)
    messages = scenario.builder.messages
    start = next(i for i, msg in enumerate(messages) if isinstance(msg, m.ReorgStart))
    frames = [encode_frame(msg) for msg in messages]
    victim = start + 2  # the first update of the first reverted block
    payload = frames[victim][4:-1]  # one byte short: undecodable, stream_seq still readable
    frames[victim] = len(payload).to_bytes(4, "little") + payload
    raw = tmp_path / "garbage-in-envelope.raw"
    raw.write_bytes(b"".join(frames))
    done = replay(raw, "--whitelist", whitelist, "--initial-state", initial, "--json-summary")
    assert done.returncode == 1, done.stderr
    summary = json.loads(done.stdout)
    assert summary["decode_errors"] == 1
    assert summary["discarded_by_reason"] == {"decode_error": 1}
    assert summary["unsynced_cause"] == "decode_error"
    assert summary["blocks_reverted"] == 0  # nothing of the envelope was taken
    blocks_before = sum(
        1 for msg in messages[:start] if isinstance(msg, m.BeginBlock) and not msg.is_revert
    )
    blocks_after = sum(
        1 for msg in messages[start:] if isinstance(msg, m.BeginBlock) and msg.block_number > 106
    )
    assert summary["blocks_applied"] == blocks_before + blocks_after
    assert summary["tip_block"] == 108
    assert "epilogue_outside_reorg" not in done.stderr
    assert "block_gap" not in done.stderr


def test_amounts_are_shown_in_token_units_beside_the_exact_integers() -> None:
    table = replay("--sample")
    assert table.returncode == 0, table.stderr
    rows = [line for line in table.stdout.splitlines() if "WETH →" in line]
    assert rows
    for row in rows:
        shown = re.findall(r"([\d ]+\.\d\d) WETH \((\d+)\)", row)
        assert len(shown) == 2, row  # amount_in and net_profit
        for units, exact in shown:
            assert Decimal(units.replace(" ", "")) == Decimal(exact).scaleb(-18).quantize(
                Decimal("0.01"), rounding=ROUND_DOWN
            )
    document = json.loads(replay("--sample", "--json-summary").stdout)
    best = document["best_opportunities"]
    assert best and all(isinstance(o["amount_in"], int) for o in best)
    assert all(isinstance(o["net_profit"], int) for o in best)
