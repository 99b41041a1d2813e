"""The `arena` command never answers bad input with a traceback.

Hypothesis draws whitelists, initial states and recordings — valid ones, then broken in
every way a file can be (invalid JSON, wrong types, huge or negative numbers, bytes
flipped, frames duplicated, reordered or cut, garbage appended, headers broken) — and
runs the real command as a subprocess. Whatever it is given, it exits with a status its
help documents, says why in one line when it fails, and writes a `--state-out` that
reads back whenever it says it wrote one. `arena run` and `arena record` are fed bad
configuration files, whitelists and a socket that is not there.
"""

from __future__ import annotations

import json
import math
import os
import struct
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arena.state_file import read_state_file
from exex_bridge import messages as m
from exex_bridge.codec import encode_message
from exex_bridge.producers.broadcast import StreamSequencer
from exex_bridge.recording import MAGIC
from sidecar.commands import replay
from sidecar.settings import SECTIONS
from tests.arena.replay_scenario import (
    FIRST_BLOCK,
    FOREIGN,
    V2_A,
    V2_F,
    V3_B,
    V3_C,
    WHITELISTED,
    Model,
    StreamBuilder,
    initial_pools,
    liquidity,
    standard_scenario,
    swap,
    sync,
    whitelist_document,
)
from tests.exex_bridge.strategies import HOT_PAYLOADS, control_messages, payloads

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 120.0  # bound on one command; each takes about a second

REPLAY_CODES = frozenset(
    {
        replay.EXIT_OK,
        replay.EXIT_DATA_LOST,
        replay.EXIT_USAGE,
        replay.EXIT_BLOCK_NOT_REACHED,
        replay.EXIT_INTERRUPTED,
    }
)
STATE_WRITTEN = frozenset({replay.EXIT_OK, replay.EXIT_DATA_LOST, replay.EXIT_INTERRUPTED})
# `arena run` and `arena record`: done, bad input (one line), interrupted before the
# command's own handler was installed.
SERVICE_CODES = frozenset({0, 2, 130})

PROPERTY = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# -- running the command ------------------------------------------------------------------
@dataclass(frozen=True)
class Outcome:
    argv: Sequence[str]
    code: int
    stdout: str
    stderr: str

    def assert_no_traceback(self, codes: frozenset[int]) -> None:
        shown = f"{' '.join(self.argv)}\nexit {self.code}\n{self.stderr[-3000:]}"
        assert "Traceback" not in self.stderr, shown
        assert self.code in codes, shown
        if self.code != 0:
            last = self.stderr.rstrip("\n").rpartition("\n")[2]
            prefix = f"arena {self.argv[3]}: "  # `arena executor deploy` says `arena executor:`
            assert last.startswith(prefix), shown
            assert len(last) > len(prefix), shown


def arena(*argvs: Sequence[str | Path], cwd: Path = ROOT) -> list[Outcome]:
    """Run each command line at the same time (the two cores are used); wait for all."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ARENA_")}
    commands = [[sys.executable, "-m", "sidecar.cli", *map(str, argv)] for argv in argvs]
    running = [
        subprocess.Popen(
            command,
            cwd=cwd,
            env=environ,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
        )
        for command in commands
    ]
    outcomes = []
    for command, process in zip(commands, running, strict=True):
        try:
            stdout, stderr = process.communicate(timeout=TIMEOUT)
        finally:
            process.kill()
            process.wait()
        outcomes.append(Outcome(command, process.returncode, stdout, stderr))
    return outcomes


# -- JSON documents, valid and broken -------------------------------------------------------
HUGE = st.sampled_from([1 << 64, 1 << 127, 1 << 256, -(1 << 200), 10**80, -1, 2**63])
JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(1 << 70), 1 << 70),
    HUGE,
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(["0x" + "a1" * 20, "0x12", "0xzz", "", "-1", str(1 << 300), "v3", "v2"]),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def mutated_json(draw: st.DrawFn, document: Any) -> Any:
    """`document` with a few values somewhere inside it replaced, removed or added."""
    for _ in range(draw(st.integers(1, 3))):
        document = _mutate_somewhere(draw, document)
    return document


def _mutate_somewhere(draw: st.DrawFn, node: Any) -> Any:
    if isinstance(node, dict) and node and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(node)))
        return node | {key: _mutate_somewhere(draw, node[key])}
    if isinstance(node, list) and node and draw(st.booleans()):
        i = draw(st.integers(0, len(node) - 1))
        return [*node[:i], _mutate_somewhere(draw, node[i]), *node[i + 1 :]]
    action = draw(st.sampled_from(["replace", "drop", "add", "duplicate"]))
    if action == "drop" and isinstance(node, dict) and node:
        key = draw(st.sampled_from(sorted(node)))
        return {k: v for k, v in node.items() if k != key}
    if action == "add" and isinstance(node, dict):
        return node | {draw(st.text(max_size=8)): draw(JSON_VALUES)}
    if action == "duplicate" and isinstance(node, list) and node:
        return [*node, node[0]]
    return draw(JSON_VALUES)


def file_bytes(document: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    """A JSON document's file as written, or one no JSON reader accepts."""
    encoded = document.map(lambda doc: json.dumps(doc).encode())
    return st.one_of(
        encoded,
        encoded,
        encoded.flatmap(lambda data: st.integers(0, len(data)).map(lambda n: data[:n])),
        JSON_VALUES.map(lambda doc: json.dumps(doc).encode()),
        st.binary(max_size=64),
        st.just(b""),
    )


WHITELIST = whitelist_document()
INITIAL_STATE = standard_scenario().initial_state
whitelist_files = file_bytes(st.one_of(st.just(WHITELIST), mutated_json(WHITELIST)))
state_files = file_bytes(st.one_of(st.just(INITIAL_STATE), mutated_json(INITIAL_STATE)))


# -- streams, valid and broken ----------------------------------------------------------------
_SANE_EVENTS = st.sampled_from(["sync_a", "sync_f", "swap_b", "mint_c", "burn_c"])


def _sane_event(kind: str, value: int) -> tuple[str, m.PoolUpdatePayload]:
    match kind:
        case "sync_a":
            return V2_A, sync(value, value + 1)
        case "sync_f":
            return V2_F, sync(value + 2, value)
        case "swap_b":
            return V3_B, swap(2**96 + value, 10**18 + value, value % 120 - 60)
        case "mint_c":
            return V3_C, liquidity(-60, 60, 10**12 + value)
        case _:
            return V3_C, liquidity(-600, 600, -(10**9) - value)


_SANE_BLOCK = st.lists(st.tuples(_SANE_EVENTS, st.integers(1, 10**9)), max_size=4)


@st.composite
def modelled_streams(draw: st.DrawFn) -> list[m.ControlMessage]:
    """Blocks and reorgs the model follows: a stream the arena replays to exit 0."""
    model = Model(pools=initial_pools(), block=FIRST_BLOCK)
    model.record(FIRST_BLOCK)
    builder = StreamBuilder(model)
    for _ in range(draw(st.integers(1, 3))):
        tip = model.block
        for number in range(tip + 1, tip + 1 + draw(st.integers(1, 3))):
            builder.block(number, [_sane_event(k, v) for k, v in draw(_SANE_BLOCK)])
        depth = draw(st.integers(0, min(2, model.block - FIRST_BLOCK)))
        if depth:
            reverted = list(range(model.block, model.block - depth, -1))
            new = [
                (reverted[-1] + i, [_sane_event(k, v) for k, v in draw(_SANE_BLOCK)])
                for i in range(draw(st.integers(0, depth + 1)))
            ]
            builder.reorg(reverted, new, [])
    return builder.messages


@st.composite
def wild_streams(draw: st.DrawFn) -> list[m.ControlMessage]:
    """Sequenced blocks whose updates carry any value of any hot payload, for whitelisted
    pools and others, at any block number."""
    seq = StreamSequencer()
    messages: list[m.ControlMessage] = []
    number = draw(st.sampled_from([FIRST_BLOCK + 1, 0, 1 << 62, draw(st.integers(0, 10**6))]))
    pools = sorted(WHITELISTED | {FOREIGN})
    for _ in range(draw(st.integers(1, 3))):
        events = [
            m.PoolUpdateMessage(
                pool_id=m.PoolAddress(value=bytes.fromhex(draw(st.sampled_from(pools))[2:])),
                protocol=draw(st.sampled_from(m.Protocol)),
                update_type=draw(st.sampled_from(m.UpdateType)),
                block_number=number,
                block_timestamp=number,
                tx_index=i,
                log_index=i,
                is_revert=False,
                update=draw(payloads(HOT_PAYLOADS)),
            )
            for i in range(draw(st.integers(0, 3)))
        ]
        messages += seq.block(number, events, base_fee_per_gas=7, block_timestamp=number)
        number += draw(st.sampled_from([1, 1, 1, 0, 2, -1]))
        number = max(number, 0)
    return messages


@st.composite
def streams(draw: st.DrawFn) -> list[bytes]:
    """The frame payloads of a stream, with foreign messages sometimes mixed in."""
    messages = draw(
        st.one_of(modelled_streams(), wild_streams(), st.just(standard_scenario().builder.messages))
    )
    messages = list(messages)
    for _ in range(draw(st.integers(0, 2))):
        messages.insert(draw(st.integers(0, len(messages))), draw(control_messages()))
    return [encode_message(msg) for msg in messages]


def _frame(payload: bytes) -> bytes:
    return struct.pack("<I", len(payload)) + payload


@st.composite
def recordings(draw: st.DrawFn) -> bytes:
    """A recording or raw dump of a stream, then broken in a few ways at once."""
    frames = draw(streams())
    for _ in range(draw(st.integers(0, 2))):
        if not frames:
            break
        i = draw(st.integers(0, len(frames) - 1))
        match draw(st.sampled_from(["duplicate", "swap", "drop", "flip", "cut"])):
            case "duplicate":
                frames.insert(i, frames[i])
            case "swap":
                j = draw(st.integers(0, len(frames) - 1))
                frames[i], frames[j] = frames[j], frames[i]
            case "drop":
                del frames[i]
            case "flip":
                frames[i] = _flipped(draw, frames[i])
            case _:
                frames[i] = frames[i][: draw(st.integers(0, len(frames[i])))]
    body = b"".join(_frame(payload) for payload in frames)
    data = draw(st.sampled_from([_header(), b""])) + body
    match draw(st.sampled_from(["keep", "keep", "truncate", "garbage", "flip", "header"])):
        case "truncate":
            data = data[: draw(st.integers(0, len(data)))]
        case "garbage":
            data += draw(st.binary(min_size=1, max_size=40))
        case "flip":
            data = _flipped(draw, data)
        case "header":
            data = draw(broken_headers()) + body
    return data


def _flipped(draw: st.DrawFn, data: bytes) -> bytes:
    if not data:
        return data
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(out) - 1))
        out[i] ^= 1 << draw(st.integers(0, 7))
    return bytes(out)


def _header(metadata: bytes | None = None, version: int = 1, length: int | None = None) -> bytes:
    if metadata is None:
        metadata = json.dumps(
            {"created_at": "2026-12-01T00:00:00Z", "source": "fuzz", "arena_version": "0"}
        ).encode()
    size = len(metadata) if length is None else length
    return MAGIC + struct.pack("<HI", version, size) + metadata


@st.composite
def broken_headers(draw: st.DrawFn) -> bytes:
    match draw(st.sampled_from(["magic", "version", "length", "metadata", "short"])):
        case "magic":
            return MAGIC[: draw(st.integers(1, len(MAGIC) - 1))]
        case "version":
            return _header(version=draw(st.integers(0, 0xFFFF).filter(lambda v: v != 1)))
        case "length":
            return _header(length=draw(st.integers(0, 0xFFFF_FFFF)))
        case "metadata":
            return _header(metadata=draw(st.binary(max_size=40)))
        case _:
            return _header()[: draw(st.integers(len(MAGIC), len(_header()) - 1))]


# -- arena replay --------------------------------------------------------------------------------
def _replay_argv(
    tmp: Path, recording: Path, whitelist: Path, initial: Path | None, *extra: str
) -> list[str]:
    argv = [
        "replay", str(recording), "--whitelist", str(whitelist), "--no-progress",
        "--spill-path", str(tmp / "spill"), *extra,
    ]  # fmt: skip
    if initial is not None:
        argv += ["--initial-state", str(initial)]
    return argv


def _check_replay(outcome: Outcome, state_out: Path) -> None:
    outcome.assert_no_traceback(REPLAY_CODES)
    if outcome.code in STATE_WRITTEN:
        state = read_state_file(state_out)
        assert state.unsynced is (outcome.code != replay.EXIT_OK), outcome.stderr[-2000:]
    else:
        assert not state_out.exists(), f"exit {outcome.code} wrote {state_out}"


def _replay_inputs(
    tmp: Path, recording: bytes, whitelist: bytes, initial: bytes | None
) -> tuple[Path, Path, Path | None]:
    paths = (tmp / "input.arec", tmp / "whitelist.json", tmp / "initial.json")
    paths[0].write_bytes(recording)
    paths[1].write_bytes(whitelist)
    if initial is not None:
        paths[2].write_bytes(initial)
    return paths[0], paths[1], None if initial is None else paths[2]


@PROPERTY
@given(
    recording=recordings(),
    initial=st.sampled_from([True, True, False]),
    at_block=st.one_of(st.none(), st.integers(FIRST_BLOCK - 1, FIRST_BLOCK + 12)),
)
def test_replay_of_any_recording(recording: bytes, initial: bool, at_block: int | None) -> None:
    """Valid whitelist and state, a recording broken in any way: two replays at once, one
    with `--json-summary`, one with `--at-block` (or the table)."""
    with tempfile.TemporaryDirectory(prefix="arena-cli-") as name:
        tmp = Path(name)
        state = json.dumps(INITIAL_STATE).encode() if initial else None
        inputs = _replay_inputs(tmp, recording, json.dumps(WHITELIST).encode(), state)
        out_a, out_b = tmp / "a.json", tmp / "b.json"
        at = [] if at_block is None else ["--at-block", str(at_block)]
        summary, stopped = arena(
            _replay_argv(tmp / "a", *inputs, "--state-out", str(out_a), "--json-summary"),
            _replay_argv(tmp / "b", *inputs, "--state-out", str(out_b), *at),
        )
        _check_replay(summary, out_a)
        _check_replay(stopped, out_b)
        if summary.code in STATE_WRITTEN:
            document = json.loads(summary.stdout)  # the summary is one JSON document
            assert document["frames"] >= 0
        if at_block is None and stopped.code != replay.EXIT_USAGE:
            assert stopped.code == summary.code  # the same input replays the same way


@PROPERTY
@given(whitelist=whitelist_files, initial=st.none() | state_files, recording=recordings())
def test_replay_of_any_whitelist_and_state(
    whitelist: bytes, initial: bytes | None, recording: bytes
) -> None:
    with tempfile.TemporaryDirectory(prefix="arena-cli-") as name:
        tmp = Path(name)
        inputs = _replay_inputs(tmp, recording, whitelist, initial)
        state_out = tmp / "state.json"
        (outcome,) = arena(_replay_argv(tmp, *inputs, "--state-out", str(state_out)))
        _check_replay(outcome, state_out)


# -- arena run and arena record: bad input that fails at start -----------------------------------
def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))


KNOWN_KEYS = [(section, f.name) for section, model in SECTIONS.items() for f in fields(model)]


@st.composite
def config_files(draw: st.DrawFn, tmp: Path) -> str:
    """A TOML file of known and unknown sections and keys with values of any type: paths
    stay under `tmp`, URLs point where nothing answers."""
    scalars = st.one_of(
        st.integers(-(1 << 70), 1 << 70),
        HUGE.filter(lambda n: -(1 << 63) <= n < 1 << 63),
        st.sampled_from([0, 1, 65535, 65536, 70000]),
        st.floats(),
        st.booleans(),
        st.sampled_from(["", "any", "root", "no-such-user-x", "DEBUG", "loud", "0x" + "c0" * 20]),
        st.sampled_from(["http://127.0.0.1:1", "nats://127.0.0.1:1", "not a url", "ethereum"]),
        st.sampled_from(["state.json", "a/b", "~/x", "/dev/null/x", "/proc/x"]).map(
            lambda p: p if p.startswith("/") else str(tmp / p)
        ),
        st.text(max_size=8).map(lambda s: str(tmp / "t" / s.replace("\0", "")) if s else ""),
    )
    values = scalars | st.lists(scalars, max_size=3)
    chosen: dict[str, dict[str, Any]] = {}
    for section, key in draw(st.lists(st.sampled_from(KNOWN_KEYS), max_size=5)):
        chosen.setdefault(section, {})[key] = draw(values)
    if draw(st.integers(0, 5)) == 0:
        chosen.setdefault(draw(st.sampled_from([*SECTIONS, "extra"])), {})["unknown"] = 1
    text = "".join(
        f"[{section}]\n" + "".join(f"{k} = {_toml_value(v)}\n" for k, v in keys.items())
        for section, keys in chosen.items()
    )
    if draw(st.integers(0, 6)) == 0:
        text += draw(st.sampled_from(["[rpc\n", "x =\n", "\0", "[state]\n[state]\n"]))
    return text


def _ensure_socket_absent(tmp: Path) -> Path:
    socket = tmp / "absent.sock"
    assert not socket.exists()
    return socket


@settings(PROPERTY, max_examples=15)
@given(data=st.data(), whitelist=whitelist_files)
def test_run_refuses_bad_input_at_start(data: st.DataObject, whitelist: bytes) -> None:
    with tempfile.TemporaryDirectory(prefix="arena-cli-") as name:
        tmp = Path(name)
        (tmp / "whitelist.json").write_bytes(whitelist)
        config = tmp / "arena.toml"
        config.write_text(data.draw(config_files(tmp)))
        socket = _ensure_socket_absent(tmp)
        base = [
            "run", "--config", str(config), "--socket", str(socket), "--connect-timeout", "0.2",
            "--data-dir", str(tmp / "data"), "--health-interval", "60", "--metrics-addr",
            "127.0.0.1",
        ]  # fmt: skip
        with_whitelist = [*base, "--whitelist", str(tmp / "whitelist.json")]
        for outcome in arena(with_whitelist, base, cwd=tmp):
            outcome.assert_no_traceback(SERVICE_CODES)
            assert outcome.code == 2, outcome.stderr[-2000:]  # no socket: it cannot start


@settings(PROPERTY, max_examples=15)
@given(data=st.data(), out=st.sampled_from(["new", "exists", "directory", "no-parent"]))
def test_record_refuses_bad_input_at_start(data: st.DataObject, out: str) -> None:
    with tempfile.TemporaryDirectory(prefix="arena-cli-") as name:
        tmp = Path(name)
        config = tmp / "arena.toml"
        config.write_text(data.draw(config_files(tmp)))
        target = {"no-parent": tmp / "missing" / "x.arec"}.get(out, tmp / "x.arec")
        if out == "exists":
            target.write_bytes(b"kept")
        elif out == "directory":
            target.mkdir()
        socket = _ensure_socket_absent(tmp)
        argv = [
            "record", "--config", str(config), "--out", str(target), "--socket", str(socket),
            "--connect-timeout", "0.2",
        ]  # fmt: skip
        force = data.draw(st.booleans())
        (outcome,) = arena([*argv, *(["--force"] if force else [])], cwd=tmp)
        outcome.assert_no_traceback(SERVICE_CODES)
        assert outcome.code == 2, outcome.stderr[-2000:]
        if out == "exists" and not force:
            assert target.read_bytes() == b"kept"  # never overwritten without --force
        if out == "new":
            assert not target.exists()  # nothing was recorded: no header-only file is left


def test_follow_execute_and_deploy_refuse_bad_input_at_start() -> None:
    """The other commands, on inputs that fail before any node answers: one line, exit 2."""
    with tempfile.TemporaryDirectory(prefix="arena-cli-") as name:
        tmp = Path(name)
        good, broken = tmp / "whitelist.json", tmp / "broken.json"
        good.write_text(json.dumps(WHITELIST))
        broken.write_bytes(b'{"pools": [')
        key, bad_key = tmp / "k.key", tmp / "bad.key"
        key.write_text("00" * 31 + "01")
        bad_key.write_text("not a key")
        nowhere = "http://127.0.0.1:1"
        follow = ["follow", "--rpc", nowhere, "--poll-interval", "0.2"]
        execute = [
            "execute", "--rpc", nowhere, "--executor", "0x" + "ee" * 20, "--opportunities",
            str(tmp / "o.jsonl"), "--journal", str(tmp / "j.jsonl"), "--until-idle", "0.2",
        ]  # fmt: skip
        outcomes = arena(
            [*follow, "--whitelist", str(broken), "--socket", str(tmp / "a.sock")],
            [*follow, "--whitelist", str(good), "--socket", str(tmp / "missing" / "a.sock")],
            [*follow, "--whitelist", str(good), "--socket", str(tmp / ("s" * 120))],
            [*execute, "--whitelist", str(broken), "--key-file", str(key)],
            [*execute, "--whitelist", str(good), "--key-file", str(bad_key)],
            [*execute, "--whitelist", str(good), "--key-file", str(tmp / "absent.key")],
            ["executor", "deploy", "--rpc", nowhere, "--key-file", str(bad_key)],
            ["executor", "deploy", "--rpc", nowhere, "--key-file", str(key), "--timeout", "1"],
            cwd=tmp,
        )
        for outcome in outcomes:
            outcome.assert_no_traceback(frozenset({2}))
