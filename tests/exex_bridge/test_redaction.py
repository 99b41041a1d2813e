"""Endpoint URLs are shown without what can be a credential."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exex_bridge.redaction import shown_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("nats://127.0.0.1:4222", "nats://127.0.0.1:4222"),
        ("nats://alice:s3cret@nats.internal:4222", "nats://nats.internal:4222"),
        ("https://eth.example/v2/KEY123?apikey=KEY456#x", "https://eth.example"),
        ("nats://a:p@h1:4222, nats://h2:4223", "nats://h1:4222,nats://h2:4223"),
        ("http://[::1]:8545", "http://[::1]:8545"),
        ("not a url", "<unparsable URL>"),
        ("http://h:99999", "<unparsable URL>"),
        ("nats://000,:000,@nats.internal:4222", "nats://nats.internal:4222"),
    ],
)
def test_shown_url(url: str, shown: str) -> None:
    assert shown_url(url) == shown


@given(user=st.text(min_size=1, max_size=12), password=st.text(min_size=4, max_size=20))
def test_the_user_and_password_never_show(user: str, password: str) -> None:
    shown = shown_url(f"nats://{user}:{password}@nats.internal:4222")
    assert password not in shown or password in "nats://nats.internal:4222<unparsable URL>"
