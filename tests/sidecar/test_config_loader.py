"""The settings loader in-process: defaults, the file, the environment, flags, and what
each of them refuses."""

from __future__ import annotations

import json
import logging
import math
import pwd
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arena.snapshot_ring import DEFAULT_DEPTH
from exex_bridge.socket_owner import SocketOwners
from sidecar.cli import build_parser, configure_logging
from sidecar.config_file import (
    build_settings,
    environment_names,
    load_settings,
    parse_config_text,
    settings_fields,
)
from sidecar.errors import ConfigError
from sidecar.settings import SECTIONS, ArenaSettings
from sidecar.socket_owners import expected_owners

WETH = "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2"


def load(argv: list[str], environ: dict[str, str] | None = None) -> ArenaSettings:
    if argv[0] == "record":
        argv = [*argv, "--out", "unused.arec"]  # required by record, not a setting
    return load_settings(
        build_parser().parse_args(argv), environ={} if environ is None else environ
    )


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "arena.toml"
    path.write_text(text)
    return path


def test_no_file_no_flags_gives_the_model_defaults() -> None:
    assert load(["run"]) == ArenaSettings()
    assert ArenaSettings().engine.ring_depth == DEFAULT_DEPTH


def test_flag_beats_environment_beats_file_beats_default(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        '[rpc]\nurl = "http://file:8545"\n'
        '[pathfinder]\nnats_url = "nats://file:4222"\ntop_k = 7\nchain = "base"\n',
    )
    environ = {"ARENA_RPC_URL": "http://env:8545", "ARENA_NATS_URL": "nats://env:4222"}
    got = load(["run", "--config", str(config), "--rpc", "http://flag:8545"], environ)
    assert got.rpc.url == "http://flag:8545"  # flag over environment
    assert got.pathfinder.nats_url == "nats://env:4222"  # environment over file
    assert got.pathfinder.top_k == 7  # file over default
    assert got.pathfinder.chain == "base"
    assert got.engine.ring_depth == DEFAULT_DEPTH  # default
    assert load(["run", "--config", str(config)], {"ARENA_RPC_URL": ""}).rpc.url == (
        "http://file:8545"  # an empty variable is unset
    )


def test_a_flag_given_with_the_default_value_still_beats_the_file(tmp_path: Path) -> None:
    config = write_config(tmp_path, "[engine]\nring_depth = 5\n[checkpoints]\nresume = true\n")
    got = load(["run", "--config", str(config), "--ring-depth", str(DEFAULT_DEPTH), "--no-resume"])
    assert got.engine.ring_depth == DEFAULT_DEPTH
    assert got.checkpoints.resume is False


def test_repeatable_settings_are_arrays_in_the_file_and_repeated_flags(tmp_path: Path) -> None:
    config = write_config(tmp_path, f'[pathfinder]\nbase_tokens = ["{WETH}"]\n')
    from_file = load(["replay", "--config", str(config)])
    assert from_file.pathfinder.base_tokens == (bytes.fromhex(WETH[2:]),)
    usdc = "0x" + "ab" * 20
    from_flags = load(
        ["replay", "--config", str(config), "--base-token", usdc, "--base-token", WETH]
    )
    assert from_flags.pathfinder.base_tokens == (bytes.fromhex("ab" * 20), bytes.fromhex(WETH[2:]))


def test_every_user_of_this_system_is_an_accepted_socket_owner_by_name(tmp_path: Path) -> None:
    users = pwd.getpwall()
    for user in users:
        got = load(["record", "--socket-owner", user.pw_name])
        assert got.socket.owners == (user.pw_uid,), user.pw_name
    names = json.dumps([u.pw_name for u in users])
    config = write_config(tmp_path, f"[socket]\nowners = {names}\n")
    assert load(["run", "--config", str(config)]).socket.owners == tuple(u.pw_uid for u in users)


def test_socket_owner_means_the_same_in_run_and_record() -> None:
    for command in ("run", "record"):
        assert expected_owners(load([command]).socket) is SocketOwners.CURRENT_USER_OR_ROOT
        assert expected_owners(load([command, "--socket-owner", "0"]).socket) == [0]
        mixed = load([command, "--socket-owner", "0", "--socket-owner", "any"])
        assert expected_owners(mixed.socket) is None
        with pytest.raises(ConfigError, match=r"^--socket-owner: unknown user 'no-such-user-x'$"):
            load([command, "--socket-owner", "no-such-user-x"])


def test_connect_timeout_means_the_same_in_run_and_record() -> None:
    for command in ("run", "record"):
        assert load([command, "--connect-timeout", "0.5"]).socket.connect_timeout == 0.5
        for bad in ("0", "-1", "nan", "soon"):
            with pytest.raises(ConfigError, match=r"^--connect-timeout: expected a positive"):
                load([command, "--connect-timeout", bad])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[engine]\nring_deep = 3\n", "[engine] ring_deep: unknown key (known: ring_depth, "),
        ("[engines]\nring_depth = 3\n", "[engines]: unknown section (known: socket, "),
        ("engine = 3\n", "[engine]: expected a table of settings"),
        (
            '[engine]\nring_depth = "x"\n',
            '[engine] ring_depth: expected a positive integer, got "x"',
        ),
        ("[engine]\nring_depth = 0\n", "[engine] ring_depth: expected a positive integer, got 0"),
        (
            "[engine]\nring_depth = 1.5\n",
            "[engine] ring_depth: expected a positive integer, got 1.5",
        ),
        ("[checkpoints]\nresume = 1\n", "[checkpoints] resume: expected true or false, got 1"),
        (
            "[metrics]\nport = 70000\n",
            "[metrics] port: expected a TCP port (0 to 65535), got 70000",
        ),
        ("[service]\nstop_grace = -2\n", "[service] stop_grace: expected a positive number of"),
        ('[service]\nlog_level = "LOUD"\n', "[service] log_level: expected one of DEBUG, INFO"),
        ('[socket]\nowners = "root"\n', "[socket] owners: expected an array of a uid, a user"),
        (
            '[pathfinder]\nbase_tokens = ["0x12"]\n',
            "[pathfinder] base_tokens: not a 0x-prefixed 20-byte hex address",
        ),
        ('[state]\nwhitelist = ""\n', '[state] whitelist: expected a path, got ""'),
        ("[engine\n", "not valid TOML"),
    ],
)
def test_the_file_refuses_with_the_file_and_the_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config_text(text, "arena.toml")
    assert str(caught.value).startswith(f"arena.toml: {message}")
    assert "\n" not in str(caught.value)


def test_a_bad_url_never_echoes_its_value(tmp_path: Path) -> None:
    secret = "s3cret-password"
    with pytest.raises(ConfigError) as caught:
        load(["run"], {"ARENA_RPC_URL": f"not a url {secret}"})
    assert str(caught.value) == "ARENA_RPC_URL: expected a URL such as scheme://host:port"
    config = write_config(tmp_path, f'[whitelist_feed]\nnats_url = "{secret}"\n')
    with pytest.raises(ConfigError) as caught:
        load(["run", "--config", str(config)])
    assert secret not in str(caught.value)
    assert str(caught.value).endswith(
        "[whitelist_feed] nats_url: expected a URL such as " + ("scheme://host:port")
    )


def test_environment_variables_are_only_the_credential_carrying_urls() -> None:
    assert environment_names() == {
        "ARENA_RPC_URL": "[rpc] url",
        "ARENA_WHITELIST_NATS_URL": "[whitelist_feed] nats_url",
        "ARENA_RELAY_NATS_URL": "[relay] nats_url",
        "ARENA_JETSTREAM_URL": "[jetstream] url",
        "ARENA_NATS_URL": "[pathfinder] nats_url",
        "ARENA_EXECUTOR_RPC_URL": "[executor] rpc_url",
        "ARENA_EXECUTOR_NATS_URL": "[executor] nats_url",
    }


def test_a_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "absent.toml"
    with pytest.raises(ConfigError, match=r"absent.toml: cannot read: No such file"):
        load(["run", "--config", str(missing)])


def test_every_setting_has_a_distinct_flag_within_each_command() -> None:
    # One flag may name the same thing for two commands (`--nats`: the NATS server of
    # `arena run`'s opportunities and of `arena relay`), never two settings of one command.
    fields_ = [s for _, _, s in settings_fields()]
    for command in set().union(*(s.commands for s in fields_)):
        flags = [s.flag for s in fields_ if command in s.commands]
        assert len(flags) == len(set(flags)), command
    assert all(s.flag.startswith("--") for s in fields_)


# -- any document: settings or a ConfigError, never another exception ------------------

_KNOWN_KEYS = [(section, key) for section, key, _ in settings_fields()]
_SCALARS = (
    st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)
    | st.sampled_from(["any", "root", "0", "x", "~", "http://h:1", WETH, "INFO", "/tmp/x"])
)
_VALUES = _SCALARS | st.lists(_SCALARS, max_size=4)
_NAMES = st.sampled_from([*SECTIONS, "executor", ""]) | st.text(max_size=12)
_KEYS = st.sampled_from([key for _, key in _KNOWN_KEYS]) | st.text(max_size=12)


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    return json.dumps(value)


def _document(sections: dict[str, dict[str, object]], top: dict[str, object]) -> str:
    lines = [f"{json.dumps(key)} = {_toml(value)}" for key, value in top.items()]
    for name, table in sections.items():
        lines.append(f"[{json.dumps(name)}]")
        lines += [f"{json.dumps(key)} = {_toml(value)}" for key, value in table.items()]
    return "\n".join(lines) + "\n"


@settings(max_examples=400, deadline=None)
@given(
    sections=st.dictionaries(_NAMES, st.dictionaries(_KEYS, _VALUES, max_size=5), max_size=4),
    top=st.dictionaries(_NAMES, _SCALARS, max_size=2),
)
def test_any_document_loads_or_is_a_config_error(
    sections: dict[str, dict[str, object]], top: dict[str, object]
) -> None:
    text = _document(sections, top)
    try:
        got = build_settings(parse_config_text(text, "random.toml"))
    except ConfigError as exc:
        assert str(exc).startswith("random.toml")
        assert "\n" not in str(exc)
    else:
        assert isinstance(got, ArenaSettings)


def test_endpoint_loggers_never_go_below_info() -> None:
    root = logging.getLogger()
    saved = root.level, list(root.handlers)
    try:
        configure_logging("DEBUG")
        for name in ("web3.providers.HTTPProvider", "urllib3.connectionpool"):
            assert not logging.getLogger(name).isEnabledFor(logging.DEBUG), name
    finally:
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]
