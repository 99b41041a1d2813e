"""The sending key: read from a key file (hex, or an encrypted keystore JSON with a
password file) or from an environment variable — never from a command-line value.

`SigningKey` shows only its address: its repr, str and every error message leave the
key out, so no log line, journal entry or traceback can print it.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Final, final

from eth_account import Account
from eth_keys.datatypes import PrivateKey

from executor.errors import SigningKeyError

KEY_ENV_VAR: Final = "ARENA_EXECUTOR_KEY"
_HEX_KEY: Final = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")


@final
class SigningKey:
    """A secp256k1 key that signs transaction hashes; only its address is shown."""

    __slots__ = ("_key", "address")

    def __init__(self, secret: bytes) -> None:
        if len(secret) != 32:
            raise SigningKeyError("<bytes>", "a key is 32 bytes")
        try:
            self._key = PrivateKey(secret)
        except Exception:
            raise SigningKeyError("<bytes>", "not a valid secp256k1 key") from None
        self.address: bytes = self._key.public_key.to_canonical_address()

    @property
    def address_hex(self) -> str:
        return "0x" + self.address.hex()

    def sign_hash(self, digest: bytes) -> tuple[int, int, int]:
        """(y parity, r, s) of a 32-byte message hash."""
        signature = self._key.sign_msg_hash(digest)
        return signature.v, signature.r, signature.s

    def __repr__(self) -> str:
        return f"SigningKey({self.address_hex})"

    __str__ = __repr__

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a SigningKey is not serialisable")


def _parse_hex(text: str, source: str) -> SigningKey:
    stripped = text.strip()
    if not _HEX_KEY.match(stripped):
        raise SigningKeyError(source, "expected 64 hex digits (optionally 0x-prefixed)")
    return SigningKey(bytes.fromhex(stripped.removeprefix("0x")))


def load_key_file(path: str | Path, password_file: str | Path | None = None) -> SigningKey:
    """A hex key file, or a keystore JSON (then `password_file` holds its password)."""
    source = str(path)
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise SigningKeyError(source, "no such file") from None
    except OSError as exc:
        raise SigningKeyError(source, f"cannot read it ({exc.strerror})") from None
    if not text.lstrip().startswith("{"):
        return _parse_hex(text, source)
    if password_file is None:
        raise SigningKeyError(source, "an encrypted keystore needs --password-file")
    try:
        password = Path(password_file).read_text().rstrip("\r\n")
    except OSError as exc:
        raise SigningKeyError(str(password_file), f"cannot read it ({exc.strerror})") from None
    try:
        secret = Account.decrypt(json.loads(text), password)
    except (ValueError, KeyError, TypeError):
        raise SigningKeyError(source, "cannot decrypt the keystore (wrong password?)") from None
    return SigningKey(bytes(secret))


def load_key_from_env(variable: str = KEY_ENV_VAR) -> SigningKey:
    value = os.environ.get(variable)
    if not value:
        raise SigningKeyError(f"${variable}", "the variable is not set")
    return _parse_hex(value, f"${variable}")


def load_signing_key(
    key_file: str | Path | None, password_file: str | Path | None = None
) -> SigningKey:
    """From `key_file` when given, else from $ARENA_EXECUTOR_KEY."""
    if key_file is not None:
        return load_key_file(key_file, password_file)
    return load_key_from_env()
