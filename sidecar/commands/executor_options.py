"""The flags of `arena executor deploy` (not a subcommand), read by the same setting
kinds as the `[executor]` section's (`sidecar.executor_section`)."""

from __future__ import annotations

import argparse

from executor.keys import KEY_ENV_VAR
from sidecar.commands.common import flag_type
from sidecar.setting_values import ADDRESS, KEY_PATH

_address = flag_type(ADDRESS)


def address(value: str) -> str:
    return "0x" + _address(value).hex()


def add_key_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--key-file",
        type=flag_type(KEY_PATH),
        metavar="FILE",
        help=f"the sending key: hex, or a keystore JSON (default: ${KEY_ENV_VAR})",
    )
    parser.add_argument(
        "--password-file", type=flag_type(KEY_PATH), metavar="FILE", help="the keystore's password"
    )
