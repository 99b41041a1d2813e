"""One bundle relay's JSON-RPC: `eth_callBundle`, `eth_sendBundle`, `eth_cancelBundle`.

Every request body is serialized once, and that exact byte string is both signed (the
`X-Flashbots-Signature` header) and sent. A refusal — an HTTP error status, a JSON-RPC
error, an unreadable answer — raises `RelayError` with the relay's URL as shown (no
credentials) and the relay's own message.
"""

from __future__ import annotations

import itertools
from typing import Any, Final, final

import msgspec
import requests

from executor.channels.auth import SIGNATURE_HEADER, signature_header
from executor.errors import RelayError
from executor.keys import SigningKey
from exex_bridge.redaction import shown_url

DEFAULT_TIMEOUT_S: Final = 10.0


def _error_text(answer: object) -> tuple[str, int | None]:
    """(message, code) of a JSON-RPC error object or a relay's bare `{"error": "..."}`."""
    if isinstance(answer, dict):
        error = answer.get("error")
        if isinstance(error, dict):
            code = error.get("code")
            return str(error.get("message", error)), code if isinstance(code, int) else None
        if error is not None:
            return str(error), None
    return str(answer), None


@final
class RelayClient:
    def __init__(self, url: str, auth: SigningKey, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.url = url
        self.name = shown_url(url)
        self.auth = auth
        self.timeout_s = timeout_s
        self._ids = itertools.count(1)
        self._session = requests.Session()

    def request(self, method: str, params: list[Any]) -> Any:
        body = msgspec.json.encode(
            {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        )
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature_header(body, self.auth),
        }
        try:
            response = self._session.post(
                self.url, data=body, headers=headers, timeout=self.timeout_s
            )
        except requests.RequestException as exc:
            # requests' messages repeat the URL, which can hold an API key.
            raise RelayError(self.name, method, f"unreachable ({type(exc).__name__})") from None
        try:
            answer = msgspec.json.decode(response.content)
        except msgspec.DecodeError:
            answer = response.text[:200]
        if response.status_code != 200:
            message, code = _error_text(answer)
            raise RelayError(self.name, method, message, code or response.status_code)
        if not isinstance(answer, dict) or ("error" in answer and answer["error"] is not None):
            message, code = _error_text(answer)
            raise RelayError(self.name, method, message, code)
        return answer.get("result")

    def call_bundle(self, txs: list[bytes], block: int, state_block: int) -> dict[str, Any]:
        """The relay's simulation of `txs` in order on top of `state_block`."""
        result = self.request(
            "eth_callBundle",
            [
                {
                    "txs": ["0x" + raw.hex() for raw in txs],
                    "blockNumber": hex(block),
                    "stateBlockNumber": hex(state_block),
                }
            ],
        )
        if not isinstance(result, dict):
            raise RelayError(self.name, "eth_callBundle", f"unexpected result {result!r:.200}")
        return result

    def send_bundle(self, txs: list[bytes], block: int, replacement_uuid: str) -> str:
        """Submits the bundle for `block`; its bundle hash."""
        result = self.request(
            "eth_sendBundle",
            [
                {
                    "txs": ["0x" + raw.hex() for raw in txs],
                    "blockNumber": hex(block),
                    "replacementUuid": replacement_uuid,
                }
            ],
        )
        if isinstance(result, dict):
            return str(result.get("bundleHash", ""))
        return str(result)

    def cancel_bundle(self, replacement_uuid: str) -> None:
        self.request("eth_cancelBundle", [{"replacementUuid": replacement_uuid}])

    def close(self) -> None:
        self._session.close()
