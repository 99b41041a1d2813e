"""The node's answers to a send, told apart by their text (geth, reth and anvil wordings)."""

from __future__ import annotations

import pytest

from executor.chain import ChainClient
from executor.errors import ChainRpcError
from executor.lane_sender import SendErrorKind, classify_send_error
from exex_bridge.rpc import EndpointLimits, RpcClient, RpcLoopThread, endpoints_from
from tests.rpc_proxy import closed_port_url


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


def test_pooled_writes_lost_are_ambiguous_and_refused_by_a_breaker_are_rejected() -> None:
    """Through the RPC pool, against a port nothing listens on: the first write's fate is
    unknown (ambiguous: looked up, never resent); once the endpoint's breaker is open a
    write is not sent at all (rejected: its nonce is reused, no gap)."""
    limits = EndpointLimits(failure_threshold=1, cooldown_s=600.0, timeout_s=5.0)
    client = RpcClient(endpoints_from(closed_port_url(), limits), retries=0)
    with RpcLoopThread(client) as pool:
        chain = ChainClient("unused", pool=pool)
        kinds = []
        for _ in range(2):
            with pytest.raises(ChainRpcError) as raised:
                chain.send_raw(b"\x02")
            kinds.append(classify_send_error(raised.value))
        with pytest.raises(ChainRpcError) as read:
            chain.block_number()
    assert kinds == [SendErrorKind.AMBIGUOUS, SendErrorKind.REJECTED]
    assert read.value.transport  # a read nobody answered: as an unreachable node
