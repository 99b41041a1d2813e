"""The `[executor]` section: the same fields for `arena execute`'s flags and the file,
one-line errors naming the key, and no key material accepted or echoed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from executor.settings import GWEI
from sidecar.cli import build_parser
from sidecar.config_file import load_settings, parse_config_text
from sidecar.errors import ConfigError
from sidecar.execution import executor_settings
from sidecar.executor_section import DEFAULT_JOURNAL_NAME
from sidecar.settings import EXECUTE, RUN, ArenaSettings

CONTRACT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
WETH = "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2"
ROOT = Path(__file__).resolve().parents[2]
SECRET = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"


def load(argv: list[str], environ: dict[str, str] | None = None) -> ArenaSettings:
    return load_settings(build_parser().parse_args(argv), environ=environ or {})


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "arena.toml"
    path.write_text(text)
    return path


def test_the_file_and_the_execute_flags_are_the_same_settings(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        "[rpc]\n"
        'url = "http://node:8545"\n'
        "[state]\n"
        'whitelist = "w.json"\n'
        "[executor]\n"
        f'contract = "{CONTRACT}"\n'
        'key_file = "executor.key"\n'
        'journal = "j.jsonl"\n'
        "priority_fee_gwei = 3\n"
        f'max_amount_in = ["{WETH}=100000000000000000000"]\n'
        'min_net_profit = "20000000000000000000"\n',
    )
    from_file = load(["execute", "--config", str(config), "--opportunities", "o.jsonl"])
    from_flags = load(
        [
            "execute",
            "--rpc",
            "http://node:8545",
            "--whitelist",
            "w.json",
            "--executor",
            CONTRACT,
            "--key-file",
            "executor.key",
            "--journal",
            "j.jsonl",
            "--priority-fee-gwei",
            "3",
            "--max-amount-in",
            f"{WETH}=100000000000000000000",
            "--min-net-profit",
            "20000000000000000000",
            "--opportunities",
            "o.jsonl",
        ]
    )
    assert from_file == from_flags
    wanted = executor_settings(from_file, EXECUTE)
    assert wanted.rpc_url == "http://node:8545"
    assert wanted.executor == CONTRACT.lower()
    assert wanted.key_file == "executor.key" and not wanted.live
    assert wanted.priority_fee_per_gas == 3 * GWEI
    assert wanted.min_net_profit == 20 * 10**18
    assert wanted.cap_for(WETH) == 100 * 10**18


def test_run_takes_the_node_from_rpc_and_the_journal_from_the_data_dir(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        f'[rpc]\nurl = "http://node:8545"\n[state]\nwhitelist = "w.json"\n'
        f'[engine]\ndata_dir = "{tmp_path}"\n'
        f'[executor]\nenabled = true\ncontract = "{CONTRACT}"\nlive = true\n',
    )
    settings = load(["run", "--config", str(config)])
    assert settings.executor.enabled
    wanted = executor_settings(settings, RUN)
    assert wanted.rpc_url == "http://node:8545" and wanted.live
    assert wanted.journal == str(tmp_path / DEFAULT_JOURNAL_NAME)
    assert wanted.key_file is None  # then the key comes from the environment
    dry = load(["run", "--config", str(config), "--no-live", "--executor-rpc", "http://ex:1"])
    assert not executor_settings(dry, RUN).live
    assert executor_settings(dry, RUN).rpc_url == "http://ex:1"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--executor", CONTRACT, "--journal", "j"], "--rpc: required"),
        (["--rpc", "http://n:1", "--journal", "j"], "--executor: required"),
        (["--rpc", "http://n:1", "--executor", CONTRACT], "--journal: required"),
        (
            [
                "--rpc",
                "http://n:1",
                "--executor",
                CONTRACT,
                "--journal",
                "j",
                "--channel",
                "bundle",
            ],
            "--relay: required by --channel bundle",
        ),
    ],
)
def test_execute_names_the_missing_setting(argv: list[str], message: str) -> None:
    settings = load(["execute", "--whitelist", "w.json", "--opportunities", "o", *argv])
    with pytest.raises(ConfigError, match=f"^{message}"):
        executor_settings(settings, EXECUTE)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("enabled = 1", "[executor] enabled: expected true or false, got 1"),
        ('contract = "0x12"', "[executor] contract: not a 0x-prefixed 20-byte hex address"),
        ('rpc_url = "node"', "[executor] rpc_url: expected a URL such as scheme://host:port"),
        ("priority_fee_gwei = -1", "[executor] priority_fee_gwei: expected a non-negative"),
        ("coinbase_share_bps = 10001", "[executor] coinbase_share_bps: expected basis points"),
        ('min_net_profit = "1e18"', "[executor] min_net_profit: expected a non-negative"),
        (f'max_amount_in = "{WETH}=1"', "[executor] max_amount_in: expected an array of"),
        (f'max_amount_in = ["{WETH}"]', "[executor] max_amount_in: expected TOKEN=AMOUNT"),
        ("receipt_timeout = 0", "[executor] receipt_timeout: expected a positive number"),
        ("queue_batches = 0", "[executor] queue_batches: expected a positive integer, got 0"),
        ('channel = "relay"', '[executor] channel: expected one of mempool, bundle, got "relay"'),
        ('relays = "http://r:1"', "[executor] relays: expected an array of"),
        ('relays = ["relay"]', "[executor] relays: expected a URL such as scheme://host:port"),
        ("bundle_blocks = 0", "[executor] bundle_blocks: expected a positive integer, got 0"),
        ("confirm_depth = -1", "[executor] confirm_depth: expected a non-negative integer"),
        ("drop_after_blocks = 0", "[executor] drop_after_blocks: expected a positive integer"),
        (f'private_key = "{SECRET}"', "[executor] private_key: unknown key (known: enabled, "),
    ],
)
def test_a_bad_value_is_one_line_naming_the_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config_text(f"[executor]\n{text}\n", "arena.toml")
    assert str(caught.value).startswith(f"arena.toml: {message}")
    assert "\n" not in str(caught.value)
    assert SECRET not in str(caught.value)


def test_the_channel_settings_from_the_file_and_the_flags(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        f'[rpc]\nurl = "http://node:8545"\n[state]\nwhitelist = "w.json"\n'
        f'[executor]\ncontract = "{CONTRACT}"\njournal = "j"\nchannel = "bundle"\n'
        'relays = ["http://r1:1", "http://r2:2"]\nrelay_auth_key_file = "auth.key"\n'
        "bundle_blocks = 3\nconfirm_depth = 4\ndrop_after_blocks = 6\n",
    )
    from_file = load(["execute", "--config", str(config), "--opportunities", "o"])
    flags = ["--channel", "bundle", "--relay", "http://r1:1", "--relay", "http://r2:2"]
    flags += ["--relay-auth-key-file", "auth.key", "--bundle-blocks", "3"]
    flags += ["--confirm-depth", "4", "--drop-after-blocks", "6", "--journal", "j"]
    node = ["--rpc", "http://node:8545", "--whitelist", "w.json", "--executor", CONTRACT]
    from_flags = load(["execute", *node, *flags, "--opportunities", "o"])
    assert from_file == from_flags
    wanted = executor_settings(from_file, EXECUTE)
    assert wanted.channel == "bundle" and wanted.relays == ("http://r1:1", "http://r2:2")
    assert wanted.relay_auth_key_file == "auth.key" and wanted.bundle_blocks == 3
    assert (wanted.confirm_depth, wanted.drop_after_blocks) == (4, 6)
    with pytest.raises(ConfigError) as caught:
        load(["run", "--relay-auth-key-file", SECRET])
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize("key", ["key_file", "password_file"])
@pytest.mark.parametrize("value", [SECRET, "0x" + SECRET, SECRET.upper(), '{"crypto": {}}'])
def test_a_key_where_a_path_is_expected_is_refused_unshown(key: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config_text(f"[executor]\n{key} = '{value}'\n", "arena.toml")
    assert str(caught.value) == (
        f"arena.toml: [executor] {key}: expected the path of a key file, not a key "
        "(the value is not shown)"
    )
    flag = "--" + key.replace("_", "-")
    with pytest.raises(ConfigError) as caught:
        load(["run", flag, value])
    assert str(caught.value).startswith(f"{flag}: expected the path of a key file")
    assert value not in str(caught.value)


def arena_run(tmp_path: Path, executor_lines: str) -> subprocess.CompletedProcess[str]:
    whitelist = tmp_path / "w.json"
    whitelist.write_text('{"chain": "ethereum", "pools": []}')
    config = write_config(
        tmp_path,
        f'[state]\nwhitelist = "{whitelist}"\n[engine]\nspill_depth = 0\n'
        f'data_dir = "{tmp_path}"\n[executor]\nenabled = true\n{executor_lines}',
    )
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ARENA_")}
    return subprocess.run(
        [sys.executable, "-m", "sidecar.cli", "run", "--config", str(config)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=environ,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (f"key_file = '{SECRET}'\n", "[executor] key_file: expected the path of a key file"),
        (f'contract = "{CONTRACT}"\n', "--rpc: required (or [executor] rpc_url, or [rpc] url)"),
        ('rpc_url = "http://127.0.0.1:9/v2/api-key"\n', "--executor: required"),
        (
            f'rpc_url = "http://127.0.0.1:9/v2/api-key"\ncontract = "{CONTRACT}"\n'
            f'key_file = "{ROOT / "no-such.key"}"\n',
            "executor: signing key from",
        ),
        (
            f'rpc_url = "http://127.0.0.1:9/v2/api-key"\ncontract = "{CONTRACT}"\n',
            "executor: signing key from $ARENA_EXECUTOR_KEY: the variable is not set",
        ),
    ],
)
def test_arena_run_refuses_an_executor_it_cannot_start_in_one_line(
    tmp_path: Path, lines: str, message: str
) -> None:
    done = arena_run(tmp_path, lines)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("arena run: ")]
    assert len(errors) == 1 and message in errors[0], done.stderr
    assert SECRET not in done.stderr and "api-key" not in done.stderr


def test_an_unreachable_node_is_named_without_its_path(tmp_path: Path) -> None:
    key_file = tmp_path / "executor.key"
    key_file.write_text(SECRET)
    done = arena_run(
        tmp_path,
        f'rpc_url = "http://127.0.0.1:9/v2/api-key"\ncontract = "{CONTRACT}"\n'
        f'key_file = "{key_file}"\n',
    )
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("arena run: ")]
    assert errors == [
        "arena run: executor: eth_chainId: no endpoint answered after 3 attempt(s): "
        "http://127.0.0.1:9: transport: ClientConnectorError"
    ], done.stderr
    assert SECRET not in done.stderr and "api-key" not in done.stderr
