"""ABI encoding against the loaded artifacts, without web3 contract objects (fast, typed)."""

from __future__ import annotations

import functools
from typing import Any, cast

from eth_abi.abi import decode, encode
from eth_utils.crypto import keccak
from web3 import Web3

from devchain.artifacts import ArtifactName, abi_of, load_artifact, node_modules_dir
from devchain.errors import ArtifactError
from devchain.rpc import rpc_call


def _type_of(param: dict[str, Any]) -> str:
    kind = cast(str, param["type"])
    if kind.startswith("tuple"):
        inner = ",".join(_type_of(c) for c in param["components"])
        return f"({inner}){kind.removeprefix('tuple')}"
    return kind


@functools.cache
def _function(artifact: ArtifactName, fn: str) -> tuple[bytes, tuple[str, ...], tuple[str, ...]]:
    matches = [e for e in abi_of(artifact) if e.get("type") == "function" and e["name"] == fn]
    if len(matches) != 1:
        raise ArtifactError(artifact, node_modules_dir(), f"{len(matches)} functions named {fn}")
    entry = matches[0]
    inputs = tuple(_type_of(p) for p in entry["inputs"])
    outputs = tuple(_type_of(p) for p in entry["outputs"])
    selector = keccak(text=f"{fn}({','.join(inputs)})")[:4]
    return selector, inputs, outputs


def encode_call(artifact: ArtifactName, fn: str, *args: Any) -> bytes:
    selector, inputs, _ = _function(artifact, fn)
    return selector + encode(list(inputs), list(args))


def decode_result(artifact: ArtifactName, fn: str, data: bytes) -> tuple[Any, ...]:
    _, _, outputs = _function(artifact, fn)
    return tuple(decode(list(outputs), data))


def encode_deploy(artifact: ArtifactName, *args: Any) -> bytes:
    found = load_artifact(artifact)
    ctor = [e for e in found.abi if e.get("type") == "constructor"]
    types = [_type_of(p) for p in ctor[0]["inputs"]] if ctor else []
    return found.bytecode + (encode(types, list(args)) if types else b"")


def call(
    w3: Web3, to: str, artifact: ArtifactName, fn: str, *args: Any, block: int | str = "latest"
) -> tuple[Any, ...]:
    tag = hex(block) if isinstance(block, int) else block
    data = encode_call(artifact, fn, *args)
    raw = rpc_call(w3, "eth_call", [{"to": to, "data": "0x" + data.hex()}, tag])
    return decode_result(artifact, fn, bytes.fromhex(str(raw).removeprefix("0x")))
