"""The executor contract as the Python side sees it: its committed artifact, the calldata
of `execute`, the decoding of its result and of its custom errors.

The artifact (`executor/contract/ArenaExecutor.json`) is built from
`ArenaExecutor.sol` by the pinned solc (`scripts/build_contracts.py`).
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any, Final

import msgspec
from eth_abi.abi import decode, encode
from eth_utils.crypto import keccak

from executor.errors import ContractError

ARTIFACT_NAME: Final = "ArenaExecutor.json"
EXECUTE_SIGNATURE: Final = "execute(bytes,uint256,uint256,uint256,uint256)"
EXECUTE_SELECTOR: Final = keccak(text=EXECUTE_SIGNATURE)[:4]
WITHDRAW_SELECTOR: Final = keccak(text="withdraw(address,address,uint256)")[:4]
_ERROR_STRING: Final = keccak(text="Error(string)")[:4]
_PANIC: Final = keccak(text="Panic(uint256)")[:4]
_WORD: Final = 32


class ContractArtifact(msgspec.Struct, frozen=True, kw_only=True):
    contract: str
    compiler: str
    source: str
    source_sha256: str
    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str
    settings: dict[str, Any]


@functools.cache
def executor_artifact() -> ContractArtifact:
    text = resources.files("executor").joinpath("contract", ARTIFACT_NAME).read_text()
    return msgspec.convert(json.loads(text), ContractArtifact)


def _types(entry: dict[str, Any]) -> list[str]:
    return [str(p["type"]) for p in entry["inputs"]]


@functools.cache
def custom_errors() -> dict[bytes, tuple[str, tuple[str, ...]]]:
    """Selector -> (name, argument types) of every custom error in the ABI."""
    found = {}
    for entry in executor_artifact().abi:
        if entry.get("type") == "error":
            types = tuple(_types(entry))
            selector = keccak(text=f"{entry['name']}({','.join(types)})")[:4]
            found[selector] = (str(entry["name"]), types)
    return found


def deployment_data(wrapped_native: bytes) -> bytes:
    """Creation code with the constructor argument (the wrapped native token, or zero)."""
    if len(wrapped_native) != 20:
        raise ContractError("deploy", f"wrapped native address is {len(wrapped_native)} bytes")
    return bytes.fromhex(executor_artifact().bytecode[2:]) + encode(["address"], [wrapped_native])


def encode_execute(
    path: bytes, amount_in: int, min_profit: int, coinbase_payment: int, deadline_block: int
) -> bytes:
    """Calldata of `execute`: head (offset + four words), then the path, zero-padded.

    Encoded by hand (the layout is fixed) to keep the signing path short; a test compares
    it with eth_abi's encoding.
    """
    padded = len(path) + (-len(path) % _WORD)
    head = (5 * _WORD).to_bytes(_WORD, "big")
    for value in (amount_in, min_profit, coinbase_payment, deadline_block):
        if not 0 <= value < 1 << 256:
            raise ContractError("execute", f"argument {value} does not fit uint256")
        head += value.to_bytes(_WORD, "big")
    return EXECUTE_SELECTOR + head + len(path).to_bytes(_WORD, "big") + path.ljust(padded, b"\x00")


def decode_profit(result: bytes) -> int:
    """`execute`'s return value: the start token's balance growth."""
    (profit,) = decode(["uint256"], result)
    return int(profit)


def encode_withdraw(token: bytes, to: bytes, amount: int) -> bytes:
    return WITHDRAW_SELECTOR + encode(["address", "address", "uint256"], [token, to, amount])


def describe_revert(data: bytes) -> str:
    """A revert's data as `Name(arg, …)`: the contract's custom errors, Error(string),
    Panic(code); anything else as hex."""
    selector, body = data[:4], data[4:]
    known = custom_errors().get(selector)
    try:
        if known is not None:
            name, types = known
            args = decode(list(types), body) if types else ()
            return f"{name}({', '.join(_show(a) for a in args)})"
        if selector == _ERROR_STRING:
            return f"Error({decode(['string'], body)[0]!r})"
        if selector == _PANIC:
            return f"Panic({decode(['uint256'], body)[0]:#x})"
    except Exception:
        pass
    return "revert 0x" + data.hex() if data else "revert without data"


def revert_name(description: str) -> str:
    """The error's name in a `describe_revert` text (`InsufficientProfit(…)` → the name)."""
    return description.split("(", 1)[0]


def _show(value: object) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return str(value)
