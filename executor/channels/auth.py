"""Relay authentication: the `X-Flashbots-Signature: <address>:<signature>` header.

The signature is EIP-191 (`personal_sign`) over the text of the hex keccak of the exact
request body bytes ("0x" + 64 lowercase hex digits), made with an auth key that holds no
funds and is not the sending key. The key is read like the sending key — a key file, or
the environment variable ARENA_RELAY_AUTH_KEY — never from a flag; only its address is
ever shown.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from eth_keys.datatypes import Signature
from eth_keys.exceptions import BadSignature
from eth_utils.crypto import keccak

from executor.keys import SigningKey, load_key_file, load_key_from_env

SIGNATURE_HEADER: Final = "X-Flashbots-Signature"
AUTH_KEY_ENV_VAR: Final = "ARENA_RELAY_AUTH_KEY"
_EIP191_PREFIX: Final = b"\x19Ethereum Signed Message:\n"


def signed_text(body: bytes) -> bytes:
    """What is signed: the hex keccak of the body, as text."""
    return ("0x" + keccak(body).hex()).encode()


def personal_hash(message: bytes) -> bytes:
    """EIP-191 version 0x45: keccak("\\x19Ethereum Signed Message:\\n" + len + message)."""
    return keccak(_EIP191_PREFIX + str(len(message)).encode() + message)


def signature_header(body: bytes, key: SigningKey) -> str:
    """The header's value for `body`: `<address>:<0x r‖s‖v (v = 27/28)>`."""
    parity, r, s = key.sign_hash(personal_hash(signed_text(body)))
    signature = r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([27 + parity])
    return f"{key.address_hex}:0x{signature.hex()}"


def recover_signer(body: bytes, header: str) -> bytes | None:
    """The address that signed `body`, when the header's address is that signer; else
    None (malformed header, bad signature, or a claimed address that did not sign)."""
    claimed, _, signature_hex = header.partition(":")
    try:
        address = bytes.fromhex(claimed.removeprefix("0x"))
        raw = bytes.fromhex(signature_hex.removeprefix("0x"))
    except ValueError:
        return None
    if len(address) != 20 or len(raw) != 65 or raw[64] not in (0, 1, 27, 28):
        return None
    v = raw[64] - 27 if raw[64] >= 27 else raw[64]
    try:
        signature = Signature(vrs=(v, int.from_bytes(raw[:32]), int.from_bytes(raw[32:64])))
        public = signature.recover_public_key_from_msg_hash(personal_hash(signed_text(body)))
    except (BadSignature, ValueError):
        return None
    signer = public.to_canonical_address()
    return signer if signer == address else None


def load_auth_key(key_file: str | Path | None) -> SigningKey:
    """The relay auth key: from `key_file` (hex), else from $ARENA_RELAY_AUTH_KEY."""
    if key_file is not None:
        return load_key_file(key_file)
    return load_key_from_env(AUTH_KEY_ENV_VAR)
