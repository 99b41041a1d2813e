"""The relay signature header: EIP-191 over the hex keccak of the exact body bytes."""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils.crypto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from executor.channels.auth import (
    AUTH_KEY_ENV_VAR,
    load_auth_key,
    recover_signer,
    signature_header,
)
from executor.errors import SigningKeyError
from executor.keys import SigningKey

SECRETS = st.binary(min_size=32, max_size=32).filter(
    lambda s: (
        0 < int.from_bytes(s) < 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    )
)


@settings(max_examples=60, deadline=None)
@given(secret=SECRETS, body=st.binary(max_size=512))
def test_the_header_verifies_for_any_body(secret: bytes, body: bytes) -> None:
    key = SigningKey(secret)
    header = signature_header(body, key)
    assert header.startswith(key.address_hex + ":0x")
    assert recover_signer(body, header) == key.address
    # the signature eth-account's personal_sign makes of the same text
    text = "0x" + keccak(body).hex()
    reference = Account.sign_message(encode_defunct(text=text), private_key=secret)
    assert header.partition(":")[2].removeprefix("0x") == reference.signature.hex().removeprefix(
        "0x"
    )


@settings(max_examples=60, deadline=None)
@given(
    secret=SECRETS,
    body=st.binary(min_size=1, max_size=512),
    position=st.integers(min_value=0),
    flip=st.integers(min_value=1, max_value=255),
)
def test_a_one_byte_change_of_the_body_fails(
    secret: bytes, body: bytes, position: int, flip: int
) -> None:
    key = SigningKey(secret)
    header = signature_header(body, key)
    at = position % len(body)
    changed = body[:at] + bytes([body[at] ^ flip]) + body[at + 1 :]
    assert recover_signer(changed, header) is None


@settings(max_examples=30, deadline=None)
@given(signer=SECRETS, claimed=SECRETS, body=st.binary(max_size=64))
def test_a_header_claiming_another_address_fails(
    signer: bytes, claimed: bytes, body: bytes
) -> None:
    real, other = SigningKey(signer), SigningKey(claimed)
    signature = signature_header(body, real).partition(":")[2]
    forged = f"{other.address_hex}:{signature}"
    assert recover_signer(body, forged) == (real.address if real.address == other.address else None)


@pytest.mark.parametrize(
    "header", ["", "0x12", "nonsense:0x00", "0x" + "11" * 20 + ":0x" + "22" * 64, ":"]
)
def test_malformed_headers_recover_nothing(header: str) -> None:
    assert recover_signer(b"{}", header) is None


def test_the_auth_key_from_a_file_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = bytes(range(1, 33))
    path = tmp_path / "auth.key"
    path.write_text(secret.hex())
    assert load_auth_key(path).address == SigningKey(secret).address
    monkeypatch.setenv(AUTH_KEY_ENV_VAR, "0x" + secret.hex())
    assert load_auth_key(None).address == SigningKey(secret).address
    monkeypatch.delenv(AUTH_KEY_ENV_VAR)
    with pytest.raises(SigningKeyError, match=AUTH_KEY_ENV_VAR) as caught:
        load_auth_key(None)
    assert secret.hex() not in str(caught.value)
