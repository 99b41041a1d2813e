"""A local bundle relay over the dev chain: the JSON-RPC contract of the public relays
(`eth_callBundle`, `eth_sendBundle`, `eth_cancelBundle`), served over real HTTP on
127.0.0.1, for tests and demos — no real relay is reachable from here.

What it does as the real relays do:
- every request must carry `X-Flashbots-Signature: <address>:<signature>`; the address
  is recovered from the EIP-191 signature of the hex keccak of the exact body, and a
  missing header or a mismatch is refused with HTTP 403 and a JSON-RPC error (code
  -32600, "missing X-Flashbots-Signature header" / "error in signature check <address>");
- `eth_callBundle` simulates the bundle in order on the tip (snapshot, send, mine, read
  the receipts and the revert data, revert the snapshot) and answers per transaction
  `gasUsed`, and `error` + `revert` for a reverted one;
- `eth_sendBundle` keeps the bundle for its `blockNumber`; `eth_cancelBundle` forgets
  every bundle with that `replacementUuid`;
- a bundle lands atomically at its target block or not at all: `build_block` (what the
  block builder does when that block is due) snapshots, sends the bundle's transactions,
  mines, and keeps the block only if each transaction is in it, in the bundle's order,
  and succeeded (or is listed in `revertingTxHashes`); otherwise it reverts the snapshot
  and tries the next bundle for that block.

Its limits (a stand-in, not a builder): blocks are built only when `build_block` is
called (or the `relay_buildBlock` method, for a relay run as a process: `python -m
devchain.bundle_relay --rpc URL --port N`); at most one bundle lands per block, and the
node's own pending transactions are mined around it in the node's order (a failed try
reverts the snapshot, which also empties the node's pool); simulation is on the tip only
(`stateBlockNumber` must be the latest block or "latest"); no bundle merging, no
priority auction, no `minTimestamp`/`maxTimestamp`; the node must have automatic mining
off. Relays on the same node share one lock, so their snapshots never interleave.
"""

from __future__ import annotations

import argparse
import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final, Self, final

from eth_utils.crypto import keccak

from executor.chain import ChainClient
from executor.channels.auth import SIGNATURE_HEADER, recover_signer
from executor.errors import ChainRpcError

log = logging.getLogger(__name__)

INVALID_REQUEST: Final = -32600
METHOD_NOT_FOUND: Final = -32601
SERVER_ERROR: Final = -32000
_NODE_LOCKS: dict[str, threading.RLock] = {}
_NODE_LOCKS_GUARD = threading.Lock()


def node_lock(url: str) -> threading.RLock:
    with _NODE_LOCKS_GUARD:
        return _NODE_LOCKS.setdefault(url, threading.RLock())


class RelayRequestError(Exception):
    def __init__(self, code: int, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(message)


@dataclass(frozen=True, kw_only=True)
class Bundle:
    txs: tuple[bytes, ...]
    block: int
    replacement_uuid: str | None
    reverting: frozenset[str]
    signer: str

    @property
    def tx_hashes(self) -> tuple[str, ...]:
        return tuple("0x" + keccak(raw).hex() for raw in self.txs)

    @property
    def bundle_hash(self) -> str:
        return "0x" + keccak(b"".join(keccak(raw) for raw in self.txs)).hex()


@dataclass(frozen=True, kw_only=True)
class BuiltBlock:
    number: int
    bundle_hash: str | None  # the bundle that landed, if any
    tx_hashes: tuple[str, ...] = ()


@dataclass(kw_only=True)
class RelayLog:
    """What the relay saw: accepted requests by method, refused signatures."""

    calls: dict[str, int] = field(default_factory=dict)
    rejected_signatures: int = 0
    signers: set[str] = field(default_factory=set)


def _hex_bytes(value: object, what: str) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise RelayRequestError(INVALID_REQUEST, f"{what}: expected 0x-prefixed hex")
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        raise RelayRequestError(INVALID_REQUEST, f"{what}: not hex") from None


def _block_number(value: object, what: str) -> int:
    if not isinstance(value, str):
        raise RelayRequestError(INVALID_REQUEST, f"{what}: expected a hex block number")
    try:
        return int(value, 16)
    except ValueError:
        raise RelayRequestError(INVALID_REQUEST, f"{what}: not a hex number") from None


def _only_param(params: object) -> dict[str, Any]:
    if not isinstance(params, list) or len(params) != 1 or not isinstance(params[0], dict):
        raise RelayRequestError(INVALID_REQUEST, "params: expected one object")
    return params[0]


@final
class BundleRelay:
    """The relay on `node_url`'s chain; `start` serves it on 127.0.0.1 (`url`)."""

    def __init__(self, node_url: str, port: int = 0) -> None:
        self.node = ChainClient(node_url)
        self.lock = node_lock(node_url)
        self.bundles: list[Bundle] = []
        self.log = RelayLog()
        self.landed: list[BuiltBlock] = []
        self._changed = threading.Condition()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="bundle-relay")

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def serve_forever(self) -> None:
        """Serves on the calling thread (a relay run as a process)."""
        self._server.serve_forever()

    def start(self) -> Self:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread.is_alive():
            self._thread.join()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def wait_for_bundles(self, count: int, timeout_s: float) -> bool:
        """True once at least `count` bundles are held (False after the timeout)."""
        with self._changed:
            return self._changed.wait_for(lambda: len(self.bundles) >= count, timeout_s)

    # JSON-RPC methods -------------------------------------------------------------

    def dispatch(self, method: str, params: object, signer: str) -> object:
        self.log.calls[method] = self.log.calls.get(method, 0) + 1
        self.log.signers.add(signer)
        match method:
            case "eth_callBundle":
                return self.call_bundle(_only_param(params))
            case "eth_sendBundle":
                return self.send_bundle(_only_param(params), signer)
            case "eth_cancelBundle":
                self.cancel_bundle(_only_param(params))
                return None
            case "relay_buildBlock":
                built = self.build_block()
                return {"blockNumber": hex(built.number), "bundleHash": built.bundle_hash}
            case _:
                raise RelayRequestError(METHOD_NOT_FOUND, f"the method {method} does not exist")

    def send_bundle(self, param: dict[str, Any], signer: str) -> dict[str, str]:
        txs = param.get("txs")
        if not isinstance(txs, list) or not txs:
            raise RelayRequestError(INVALID_REQUEST, "txs: expected a non-empty list")
        uuid = param.get("replacementUuid")
        bundle = Bundle(
            txs=tuple(_hex_bytes(tx, "txs") for tx in txs),
            block=_block_number(param.get("blockNumber"), "blockNumber"),
            replacement_uuid=str(uuid) if uuid is not None else None,
            reverting=frozenset(str(h).lower() for h in param.get("revertingTxHashes", [])),
            signer=signer,
        )
        with self._changed:
            if bundle.replacement_uuid is not None:  # a newer bundle replaces the older
                self.bundles = [
                    b
                    for b in self.bundles
                    if (b.replacement_uuid, b.block) != (bundle.replacement_uuid, bundle.block)
                ]
            self.bundles.append(bundle)
            self._changed.notify_all()
        return {"bundleHash": bundle.bundle_hash}

    def cancel_bundle(self, param: dict[str, Any]) -> None:
        uuid = param.get("replacementUuid")
        if not isinstance(uuid, str):
            raise RelayRequestError(INVALID_REQUEST, "replacementUuid: expected a string")
        with self._changed:
            self.bundles = [b for b in self.bundles if b.replacement_uuid != uuid]
            self._changed.notify_all()

    def call_bundle(self, param: dict[str, Any]) -> dict[str, Any]:
        txs = param.get("txs")
        if not isinstance(txs, list) or not txs:
            raise RelayRequestError(INVALID_REQUEST, "txs: expected a non-empty list")
        raws = [_hex_bytes(tx, "txs") for tx in txs]
        with self.lock, self._snapshot() as _:
            head = self.node.block_number()
            state = param.get("stateBlockNumber", "latest")
            if state != "latest" and _block_number(state, "stateBlockNumber") != head:
                raise RelayRequestError(
                    INVALID_REQUEST, f"stateBlockNumber must be the latest block ({head})"
                )
            hashes = [self._send(raw) for raw in raws]
            self.node.request("evm_mine", [])
            results = [self._simulated(h, raw) for h, raw in zip(hashes, raws, strict=True)]
        gas = sum(int(r["gasUsed"], 16) for r in results)
        return {
            "bundleHash": "0x" + keccak(b"".join(keccak(raw) for raw in raws)).hex(),
            "results": results,
            "stateBlockNumber": head,
            "totalGasUsed": gas,
        }

    def _send(self, raw: bytes) -> str:
        try:
            return self.node.send_raw(raw)
        except ChainRpcError as exc:
            raise RelayRequestError(SERVER_ERROR, f"transaction rejected: {exc.reason}") from None

    def _simulated(self, tx_hash: str, raw: bytes) -> dict[str, Any]:
        receipt = self.node.receipt(tx_hash)
        if receipt is None:
            raise RelayRequestError(SERVER_ERROR, f"{tx_hash} was not mined in the simulation")
        result: dict[str, Any] = {
            "txHash": tx_hash,
            "gasUsed": receipt["gasUsed"],
            "fromAddress": receipt["from"],
            "toAddress": receipt.get("to"),
        }
        if receipt.get("status") != "0x1":
            trace = self.node.request("debug_traceTransaction", [tx_hash, {"tracer": "callTracer"}])
            result["error"] = "execution reverted"
            result["revert"] = str(trace.get("output", "0x"))
        return result

    @contextmanager
    def _snapshot(self) -> Iterator[str]:
        snapshot = str(self.node.request("evm_snapshot", []))
        try:
            yield snapshot
        finally:
            self.node.request("evm_revert", [snapshot])

    # Block building ----------------------------------------------------------------

    def build_block(self) -> BuiltBlock:
        """Mines the next block, with the first bundle for it that lands whole."""
        with self.lock:
            target = self.node.block_number() + 1
            with self._changed:
                candidates = [b for b in self.bundles if b.block == target]
            built = None
            for bundle in candidates:
                built = self._try_bundle(bundle, target)
                if built is not None:
                    break
            if built is None:
                self.node.request("evm_mine", [])
                built = BuiltBlock(number=target, bundle_hash=None)
            else:
                self.landed.append(built)
        with self._changed:
            self.bundles = [b for b in self.bundles if b.block > target]
            self._changed.notify_all()
        return built

    def _try_bundle(self, bundle: Bundle, target: int) -> BuiltBlock | None:
        snapshot = str(self.node.request("evm_snapshot", []))
        try:
            hashes = [self.node.send_raw(raw) for raw in bundle.txs]
            self.node.request("evm_mine", [])
            receipts = [self.node.receipt(h) for h in hashes]
        except ChainRpcError as exc:
            log.info("relay: bundle %s not landed: %s", bundle.bundle_hash, exc)
            self.node.request("evm_revert", [snapshot])
            return None
        if not _landed_whole(receipts, hashes, target, bundle.reverting):
            log.info(
                "relay: bundle %s reverted at block %d: not landed", bundle.bundle_hash, target
            )
            self.node.request("evm_revert", [snapshot])
            return None
        return BuiltBlock(number=target, bundle_hash=bundle.bundle_hash, tx_hashes=tuple(hashes))


def _landed_whole(
    receipts: list[dict[str, Any] | None], hashes: list[str], target: int, reverting: frozenset[str]
) -> bool:
    last_index = -1
    for receipt, tx_hash in zip(receipts, hashes, strict=True):
        if receipt is None or int(receipt["blockNumber"], 16) != target:
            return False
        if receipt.get("status") != "0x1" and tx_hash.lower() not in reverting:
            return False
        index = int(receipt["transactionIndex"], 16)
        if index <= last_index:
            return False
        last_index = index
    return True


def _error_body(request_id: object, code: int, message: str) -> bytes:
    error = {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}
    return json.dumps(error).encode()


def _handler_for(relay: BundleRelay) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            log.debug("relay: " + format, *args)

        def _answer(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            header = self.headers.get(SIGNATURE_HEADER)
            if not header:
                relay.log.rejected_signatures += 1
                message = f"missing {SIGNATURE_HEADER} header"
                self._answer(403, _error_body(None, INVALID_REQUEST, message))
                return
            signer = recover_signer(body, header)
            if signer is None:
                relay.log.rejected_signatures += 1
                claimed = header.partition(":")[0]
                message = f"error in signature check {claimed}"
                self._answer(403, _error_body(None, INVALID_REQUEST, message))
                return
            try:
                request = json.loads(body)
                request_id = request.get("id")
                method = str(request["method"])
            except (ValueError, KeyError, TypeError, AttributeError):
                self._answer(400, _error_body(None, INVALID_REQUEST, "invalid JSON-RPC request"))
                return
            try:
                result = relay.dispatch(method, request.get("params"), "0x" + signer.hex())
            except RelayRequestError as exc:
                self._answer(200, _error_body(request_id, exc.code, exc.message))
                return
            except ChainRpcError as exc:
                self._answer(200, _error_body(request_id, SERVER_ERROR, str(exc)))
                return
            answer = {"jsonrpc": "2.0", "id": request_id, "result": result}
            self._answer(200, json.dumps(answer).encode())

    return Handler


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m devchain.bundle_relay",
        description="A local bundle relay over a dev chain node (see the module's doc).",
    )
    parser.add_argument("--rpc", required=True, help="the dev chain node's HTTP URL")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any)")
    args = parser.parse_args(argv)
    relay = BundleRelay(args.rpc, args.port)
    print(f"relay on {relay.url}", flush=True)
    with suppress(KeyboardInterrupt):
        relay.serve_forever()


if __name__ == "__main__":
    main()
