"""Options shared by `arena execute` and `arena executor` (not a subcommand)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Final

from executor.keys import KEY_ENV_VAR

_ADDRESS: Final = re.compile(r"^0x[0-9a-fA-F]{40}$")


def address(value: str) -> str:
    if not _ADDRESS.match(value):
        raise argparse.ArgumentTypeError(f"not a 0x-prefixed 20-byte hex address: {value!r}")
    return value.lower()


def token_cap(value: str) -> tuple[str, int]:
    token, sep, amount = value.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected TOKEN=AMOUNT, got {value!r}")
    try:
        cap = int(amount)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer amount: {amount!r}") from None
    if cap < 0:
        raise argparse.ArgumentTypeError(f"a cap is not negative: {cap}")
    return address(token), cap


def add_key_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--key-file",
        type=Path,
        metavar="FILE",
        help=f"the sending key: hex, or a keystore JSON (default: ${KEY_ENV_VAR})",
    )
    parser.add_argument(
        "--password-file", type=Path, metavar="FILE", help="the keystore's password"
    )
