"""`--config`, the environment and the flags through the real command line: bad settings
are one line on stderr and exit status 2; good ones reach the command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 120


def arena(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ARENA_")}
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "sidecar.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=environ,
        timeout=TIMEOUT,
        check=False,
    )


def refused(done: subprocess.CompletedProcess[str]) -> str:
    """The one line a refused command printed."""
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "arena.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[engine]\nring_deep = 3\n", "[engine] ring_deep: unknown key (known: ring_depth, "),
        ("[executors]\nlive = true\n", "[executors]: unknown section (known: socket, state, "),
        (
            '[engine]\nring_depth = "x"\n',
            '[engine] ring_depth: expected a positive integer, got "x"',
        ),
        ("[engine]\nring_depth = 0\n", "[engine] ring_depth: expected a positive integer, got 0"),
        (  # the ring is preallocated: a depth no machine can hold is refused, not tried
            f"[engine]\nring_depth = {1 << 62}\n",
            f"[engine] ring_depth: expected at most 65536 blocks, got {1 << 62}",
        ),
        (
            '[socket]\nowners = ["no-such-user-x"]\n',
            "[socket] owners: unknown user 'no-such-user-x'",
        ),
        ("[rpc\n", "not valid TOML"),
    ],
)
def test_run_refuses_a_bad_file_in_one_line_naming_file_and_key(
    tmp_path: Path, text: str, message: str
) -> None:
    path = config(tmp_path, text)
    line = refused(arena("run", "--config", path))
    assert line.startswith(f"arena run: {path}: {message}")


def test_replay_and_record_read_the_same_file_and_refuse_it_alike(tmp_path: Path) -> None:
    path = config(tmp_path, "[metrics]\nport = 70000\n")
    expected = f"arena replay: {path}: [metrics] port: expected a TCP port (0 to 65535), got 70000"
    assert refused(arena("replay", "--sample", "--config", path)) == expected
    record = arena("record", "--out", tmp_path / "x.arec", "--config", path)
    assert refused(record) == expected.replace("arena replay", "arena record")


def test_flags_and_environment_refuse_in_one_line() -> None:
    assert refused(arena("run", "--ring-depth", "x")) == (
        'arena run: --ring-depth: expected a positive integer, got "x"'
    )
    for command in ("run", "record"):
        extra = ["--out", "unused.arec"] if command == "record" else []
        done = arena(command, *extra, "--socket-owner", "no-such-user-x")
        assert refused(done) == f"arena {command}: --socket-owner: unknown user 'no-such-user-x'"
    secret = "hunter2"
    done = arena("run", env={"ARENA_RPC_URL": f"user:{secret} at host"})
    assert refused(done) == "arena run: ARENA_RPC_URL: expected a URL such as scheme://host:port"
    assert secret not in done.stderr
    assert refused(arena("--log-level", "LOUD", "replay", "--sample")).startswith(
        'arena replay: --log-level: expected one of DEBUG, INFO, WARNING, ERROR, got "LOUD"'
    )


def test_directories_that_cannot_be_created_are_one_line_naming_the_path(tmp_path: Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    base = ["run", "--whitelist", tmp_path / "pools.json"]

    under_a_file = a_file / "state"
    line = refused(arena(*base, "--data-dir", under_a_file))
    assert (
        line
        == f"arena run: cannot create the spill directory {under_a_file}/spill: Not a directory"
    )

    line = refused(
        arena(*base, "--spill-depth", "0", "--checkpoint-every", "1", "--checkpoint-path", a_file)
    )
    assert line == (
        f"arena run: cannot create the checkpoint directory {a_file}: a file of that name exists"
    )

    forbidden = Path("/sys/pool-state-arena-test")  # sysfs refuses mkdir, even to root
    line = refused(arena(*base, "--data-dir", forbidden))
    assert line.startswith(f"arena run: cannot create the spill directory {forbidden}/spill: ")

    path = config(
        tmp_path,
        f'[engine]\nspill_depth = 0\n[checkpoints]\nresume = true\npath = "{a_file}"\n',
    )
    assert refused(arena(*base, "--config", path)) == (
        f"arena run: cannot create the checkpoint directory {a_file}: a file of that name exists"
    )


def test_run_without_a_whitelist_anywhere_is_one_line() -> None:
    assert refused(arena("run", "--spill-depth", "0")) == (
        "arena run: --whitelist: required (or [state] whitelist in the --config file)"
    )


def test_replay_takes_its_settings_from_the_file_and_flags_win(tmp_path: Path) -> None:
    from_file, from_flag = tmp_path / "from-file.json", tmp_path / "from-flag.json"
    path = config(
        tmp_path,
        f'[state]\nstate_out = "{from_file}"\n[engine]\nspill_depth = 0\n'
        '[service]\nlog_level = "WARNING"\n',
    )
    quiet = arena("replay", "--sample", "--no-progress", "--json-summary", "--config", path)
    assert quiet.returncode == 0, quiet.stderr
    assert " INFO " not in quiet.stderr  # the file's log level
    assert json.loads(from_file.read_bytes())["block"] == json.loads(quiet.stdout)["tip_block"]
    from_file.unlink()

    flags = ["--no-progress", "--config", path, "--state-out", from_flag]
    loud = arena("--log-level", "INFO", "replay", "--sample", *flags)
    assert loud.returncode == 0, loud.stderr
    assert " INFO " in loud.stderr  # the flag's log level
    assert from_flag.is_file()
    assert not from_file.exists()
