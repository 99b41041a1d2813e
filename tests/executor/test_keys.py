"""Keys come from files or the environment; nothing shows them."""

from __future__ import annotations

import json
import logging
import pickle
from pathlib import Path

import pytest
from eth_account import Account

from executor.errors import SigningKeyError
from executor.keys import KEY_ENV_VAR, SigningKey, load_key_file, load_signing_key

SECRET = bytes.fromhex("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
ADDRESS = Account.from_key(SECRET).address.lower()


def test_a_hex_key_file_with_or_without_prefix(tmp_path: Path) -> None:
    for text in (SECRET.hex(), "0x" + SECRET.hex() + "\n"):
        path = tmp_path / "k"
        path.write_text(text)
        assert load_key_file(path).address_hex == ADDRESS


def test_an_encrypted_keystore_with_its_password_file(tmp_path: Path) -> None:
    keystore = Account.encrypt(SECRET, "correct horse", iterations=2)
    (tmp_path / "k.json").write_text(json.dumps(keystore))
    (tmp_path / "pw").write_text("correct horse\n")
    (tmp_path / "bad").write_text("wrong")
    key = load_key_file(tmp_path / "k.json", tmp_path / "pw")
    assert key.address_hex == ADDRESS
    with pytest.raises(SigningKeyError, match="wrong password"):
        load_key_file(tmp_path / "k.json", tmp_path / "bad")
    with pytest.raises(SigningKeyError, match="password-file"):
        load_key_file(tmp_path / "k.json")


def test_the_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV_VAR, "0x" + SECRET.hex())
    assert load_signing_key(None).address_hex == ADDRESS
    monkeypatch.delenv(KEY_ENV_VAR)
    with pytest.raises(SigningKeyError, match="not set"):
        load_signing_key(None)


def test_mistakes_name_the_source_never_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.write_text(SECRET.hex()[:-2] + "zz")
    with pytest.raises(SigningKeyError) as err:
        load_key_file(bad)
    assert str(bad) in str(err.value) and SECRET.hex()[:20] not in str(err.value)
    with pytest.raises(SigningKeyError, match="no such file"):
        load_key_file(tmp_path / "absent")


def test_nothing_prints_or_pickles_the_key(caplog: pytest.LogCaptureFixture) -> None:
    key = SigningKey(SECRET)
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("test").info("key %s %r", key, key)
    shown = caplog.text + repr(key) + str(key) + f"{key}"
    assert SECRET.hex() not in shown and ADDRESS in shown
    with pytest.raises(TypeError):
        pickle.dumps(key)
