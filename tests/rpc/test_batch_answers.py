"""A batch's answers come back in the order of its requests, whatever order the node used;
an answer that misses a request or is not a batch counts against the endpoint."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exex_bridge.rpc import EndpointFailedError
from exex_bridge.rpc.client import _checked


def _requests(n: int) -> list[dict[str, Any]]:
    return [{"jsonrpc": "2.0", "id": 100 + i, "method": "eth_call", "params": []} for i in range(n)]


@given(data=st.data(), n=st.integers(1, 40))
def test_answers_in_any_order_are_put_back_in_request_order(data: st.DataObject, n: int) -> None:
    requests = _requests(n)
    answers = [{"jsonrpc": "2.0", "id": r["id"], "result": hex(r["id"])} for r in requests]
    shuffled = data.draw(st.permutations(answers))
    ordered = _checked("node", requests, list(shuffled), expected=n)
    assert [a["result"] for a in ordered] == [hex(r["id"]) for r in requests]


@given(data=st.data(), n=st.integers(1, 40))
def test_a_batch_answer_missing_a_request_fails_the_endpoint(data: st.DataObject, n: int) -> None:
    requests = _requests(n)
    answers = [{"jsonrpc": "2.0", "id": r["id"], "result": "0x"} for r in requests]
    del answers[data.draw(st.integers(0, n - 1))]
    with pytest.raises(EndpointFailedError, match="misses requests"):
        _checked("node", requests, answers, expected=n)


def test_a_refused_batch_or_a_mismatched_single_answer_fails_the_endpoint() -> None:
    with pytest.raises(EndpointFailedError, match="batch refused"):
        _checked("node", _requests(2), {"error": {"code": -32600}}, expected=2)
    with pytest.raises(EndpointFailedError, match="does not match"):
        _checked("node", _requests(1)[0], {"id": 7, "result": "0x"}, expected=None)
