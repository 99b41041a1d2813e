"""How each kind of setting value is read: from a flag's text and from a TOML value.

One kind per meaning (a positive integer, a TCP port, a socket owner…), used by the
command-line flags, the environment and the configuration file alike, so an option
accepts the same values and reports the same error wherever it is given. A kind raises
`SettingValueError` naming what it expected and what it got.
"""

from __future__ import annotations

import json
import math
import pwd
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Generic, Literal, TypeVar, final

T = TypeVar("T")

ANY_OWNER: Final = "any"
LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR")
_ADDRESS: Final = re.compile(r"^0x[0-9a-fA-F]{40}$")
_HEX_KEY: Final = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")

SocketOwner = int | Literal["any"]


class SettingValueError(ValueError):
    """A value a kind does not accept; `expected` says what it wanted."""

    def __init__(self, expected: str, got: object, reason: str | None = None) -> None:
        self.expected, self.got, self.reason = expected, got, reason
        shown = json.dumps(got, ensure_ascii=False) if isinstance(got, str) else repr(got)
        detail = reason or f"expected {expected}, got {shown}"
        super().__init__(detail)


@final
@dataclass(frozen=True, slots=True)
class Kind(Generic[T]):
    """`from_text` reads a flag or an environment variable, `from_file` a TOML value;
    both accept the same values. A `repeatable` kind is given any number of times."""

    expected: str
    from_text: Callable[[str], T]
    from_file: Callable[[object], T]
    repeatable: bool = False


def _integer_text(expected: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            return int(text.strip())
        except ValueError:
            raise SettingValueError(expected, text) from None

    return parse


def _integer_value(expected: str) -> Callable[[object], int]:
    def parse(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SettingValueError(expected, value)
        return value

    return parse


def _integer(
    expected: str, low: int, high: int | None = None, above: str | None = None
) -> Kind[int]:
    """`above`, if given, is what a value above `high` is told was expected instead."""
    text, file = _integer_text(expected), _integer_value(expected)

    def checked(n: int, got: object) -> int:
        if n < low:
            raise SettingValueError(expected, got)
        if high is not None and n > high:
            raise SettingValueError(above or expected, got)
        return n

    return Kind(
        expected,
        lambda s: checked(text(s), s),
        lambda v: checked(file(v), v),
    )


POSITIVE_INT: Final = _integer("a positive integer", 1)
NON_NEGATIVE_INT: Final = _integer("a non-negative integer", 0)
PORT: Final = _integer("a TCP port (0 to 65535)", 0, 65535)
# The ring is preallocated: 512 records of 60 bytes per block, some 2 GB at the bound.
RING_DEPTH: Final = _integer("a positive integer", 1, 65536, "at most 65536 blocks")


def _seconds(n: float, got: object) -> float:
    if not (math.isfinite(n) and n > 0):
        raise SettingValueError("a positive number of seconds", got)
    return n


def _seconds_text(text: str) -> float:
    try:
        n = float(text)
    except ValueError:
        raise SettingValueError("a positive number of seconds", text) from None
    return _seconds(n, text)


def _seconds_value(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SettingValueError("a positive number of seconds", value)
    return _seconds(float(value), value)


SECONDS: Final = Kind("a positive number of seconds", _seconds_text, _seconds_value)


def _text_value(expected: str, check: Callable[[str], T]) -> Kind[T]:
    def from_file(value: object) -> T:
        if not isinstance(value, str):
            raise SettingValueError(expected, value)
        return check(value)

    return Kind(expected, check, from_file)


def _non_empty(expected: str) -> Callable[[str], str]:
    def check(text: str) -> str:
        if not text.strip() or "\x00" in text:
            raise SettingValueError(expected, text)
        return text

    return check


TEXT: Final = _text_value("a non-empty string", _non_empty("a non-empty string"))
PATH: Final = _text_value("a path", lambda s: Path(_non_empty("a path")(s)).expanduser())


def _url(text: str) -> str:
    scheme, sep, rest = text.partition("://")
    if not sep or not scheme or not rest or any(c.isspace() for c in text):
        # The value may carry a password: never echoed back.
        raise SettingValueError("a URL", "…", "expected a URL such as scheme://host:port")
    return text


URL: Final = _text_value("a URL", _url)


def _log_level(text: str) -> str:
    level = text.upper()
    if level not in LOG_LEVELS:
        raise SettingValueError(f"one of {', '.join(LOG_LEVELS)}", text)
    return level


LOG_LEVEL: Final = _text_value("a log level", _log_level)
CHANNELS: Final = ("mempool", "bundle")


def _channel(text: str) -> str:
    if text not in CHANNELS:
        raise SettingValueError(f"one of {', '.join(CHANNELS)}", text)
    return text


CHANNEL: Final = _text_value("a channel", _channel)


def _address(text: str) -> bytes:
    if not _ADDRESS.match(text):
        raise SettingValueError(_ADDRESS_EXPECTED, text, f"not {_ADDRESS_EXPECTED}: {text!r}")
    return bytes.fromhex(text[2:])


_ADDRESS_EXPECTED: Final = "a 0x-prefixed 20-byte hex address"
ADDRESS: Final = _text_value(_ADDRESS_EXPECTED, _address)


def _key_path(text: str) -> Path:
    """A path to a file holding a secret (a key, a keystore's password). The value is
    never echoed, and one that looks like a key itself is refused."""
    stripped = text.strip()
    if _HEX_KEY.match(stripped) or stripped.startswith("{"):
        raise SettingValueError(
            "a path", "…", "expected the path of a key file, not a key (the value is not shown)"
        )
    if not stripped or "\x00" in text:
        raise SettingValueError("a path", "…", "expected a path (the value is not shown)")
    return Path(text).expanduser()


KEY_PATH: Final = _text_value("a path", _key_path)


def _wei_text(text: str) -> int:
    body = text.strip().replace("_", "")
    if not (body.isascii() and body.isdigit()):
        raise SettingValueError(_WEI_EXPECTED, text)
    return int(body)


def _wei_value(value: object) -> int:
    """An integer, or a string of digits for amounts beyond TOML's 64-bit integers."""
    if isinstance(value, str):
        return _wei_text(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SettingValueError(_WEI_EXPECTED, value)
    return value


_WEI_EXPECTED: Final = "a non-negative integer amount (a string of digits beyond 2^63)"
AMOUNT: Final = Kind(_WEI_EXPECTED, _wei_text, _wei_value)
BASIS_POINTS: Final = _integer("basis points (0 to 10000)", 0, 10_000)


def socket_owner(text: str) -> SocketOwner:
    """A uid, a user name of this system (service users such as `systemd-network` too),
    or `any` (no ownership check)."""
    if text == ANY_OWNER:
        return ANY_OWNER
    if text.isdigit():
        return int(text)
    try:
        return pwd.getpwnam(text).pw_uid
    except (KeyError, ValueError):
        raise SettingValueError(
            "a uid, a user name or any", text, f"unknown user {text!r}"
        ) from None


def _owner_value(value: object) -> SocketOwner:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise SettingValueError("a uid, a user name or any", value)
    if isinstance(value, int):
        if value < 0:
            raise SettingValueError("a uid, a user name or any", value)
        return value
    return socket_owner(value)


SOCKET_OWNER: Final = Kind("a uid, a user name or any", socket_owner, _owner_value, True)


def _flag_text(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise SettingValueError("true or false", text)


def _flag_value(value: object) -> bool:
    if not isinstance(value, bool):
        raise SettingValueError("true or false", value)
    return value


SWITCH: Final = Kind("true or false", _flag_text, _flag_value)


def repeated(kind: Kind[T]) -> Kind[T]:
    """The same kind, given any number of times (a flag repeated, a TOML array)."""
    return Kind(kind.expected, kind.from_text, kind.from_file, repeatable=True)


BASE_TOKEN: Final = repeated(ADDRESS)
RELAY_URL: Final = repeated(URL)


TokenCap = tuple[str, int]


def _token_cap(text: str) -> TokenCap:
    token, sep, amount = text.partition("=")
    if not sep:
        raise SettingValueError("TOKEN=AMOUNT", text)
    address = _address(token.strip())
    return "0x" + address.hex(), _wei_text(amount)


TOKEN_CAP: Final = repeated(_text_value("TOKEN=AMOUNT", _token_cap))
