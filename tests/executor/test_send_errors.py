"""The node's answers to a send, told apart by their text (geth, reth and anvil wordings)."""

from __future__ import annotations

import pytest

from executor.errors import ChainRpcError
from executor.lane_sender import SendErrorKind, classify_send_error


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("nonce too low", SendErrorKind.NONCE_TOO_LOW),
        ("nonce too low: next nonce 5, tx nonce 3", SendErrorKind.NONCE_TOO_LOW),
        ("already known", SendErrorKind.ALREADY_KNOWN),
        ("transaction already imported", SendErrorKind.ALREADY_KNOWN),
        ("replacement transaction underpriced", SendErrorKind.REPLACEMENT_UNDERPRICED),
        ("insufficient funds for gas * price + value", SendErrorKind.REJECTED),
        ("max fee per gas less than block base fee", SendErrorKind.REJECTED),
        ("transaction underpriced", SendErrorKind.REJECTED),
        ("intrinsic gas too low", SendErrorKind.REJECTED),
    ],
)
def test_an_answer_is_classified_by_its_text(message: str, kind: SendErrorKind) -> None:
    assert classify_send_error(ChainRpcError("eth_sendRawTransaction", message)) is kind


def test_no_answer_is_ambiguous_whatever_the_text() -> None:
    lost = ChainRpcError("eth_sendRawTransaction", "nonce too low", transport=True)
    assert classify_send_error(lost) is SendErrorKind.AMBIGUOUS
