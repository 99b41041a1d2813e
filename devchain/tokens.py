"""Test tokens with other decimals than 18, made from v2-core's ERC20 by a checked patch.

The installed packages hold one deployable ERC20 (v2-core's test token) whose `decimals`
is the constant 18. Its runtime code answers `decimals()` through a getter that is
`JUMPDEST PUSH1 0x12 DUP2 JUMP`; the patch follows the selector dispatch to that getter,
checks the exact bytes, and swaps the pushed constant with `anvil_setCode`. Nothing else
in the token reads `decimals`.
"""

from __future__ import annotations

from typing import Final

from web3 import Web3

from devchain.abi import call
from devchain.errors import DeploymentError
from devchain.rpc import rpc_call

_DECIMALS_SELECTOR: Final = bytes.fromhex("313ce567")
_PUSH1: Final = 0x60
_PUSH2: Final = 0x61
_PUSH4: Final = 0x63
_JUMPDEST: Final = 0x5B
_DUP2: Final = 0x81


def _instructions(code: bytes) -> list[tuple[int, int, bytes]]:
    out, pc = [], 0
    while pc < len(code):
        op = code[pc]
        width = op - 0x5F if 0x60 <= op <= 0x7F else 0
        out.append((pc, op, code[pc + 1 : pc + 1 + width]))
        pc += 1 + width
    return out


def decimals_operand_offset(code: bytes) -> int:
    """Byte offset of the constant that `decimals()` returns, checked against the pattern."""
    ops = _instructions(code)
    for k, (_, op, arg) in enumerate(ops[:-3]):
        if op == _PUSH4 and arg == _DECIMALS_SELECTOR and ops[k + 2][1] == _PUSH2:
            entry = int.from_bytes(ops[k + 2][2], "big")
            # entry: JUMPDEST PUSH2 <return> PUSH2 <getter> JUMP
            if code[entry] == _JUMPDEST and code[entry + 1] == _PUSH2 and code[entry + 4] == _PUSH2:
                getter = int.from_bytes(code[entry + 5 : entry + 7], "big")
                if (
                    code[getter : getter + 2] == bytes([_JUMPDEST, _PUSH1])
                    and code[getter + 3] == _DUP2
                ):
                    return getter + 2
    raise DeploymentError("ERC20 runtime code does not have the expected decimals() getter")


def patch_decimals(w3: Web3, token: str, decimals: int) -> None:
    if not 0 <= decimals <= 255:
        raise DeploymentError(f"decimals {decimals} out of range")
    (current,) = call(w3, token, "ERC20", "decimals")
    if current == decimals:
        return
    code = bytearray(bytes.fromhex(str(rpc_call(w3, "eth_getCode", [token, "latest"]))[2:]))
    code[decimals_operand_offset(bytes(code))] = decimals
    rpc_call(w3, "anvil_setCode", [token, "0x" + code.hex()])
    (patched,) = call(w3, token, "ERC20", "decimals")
    if patched != decimals:
        raise DeploymentError(f"decimals patch of {token} reads back {patched}")
