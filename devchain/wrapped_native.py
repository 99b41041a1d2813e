"""A wrapped native token on the dev chain, in two mispriced V2 pairs.

The deployment's tokens are plain ERC20s (none can unwrap), so a coinbase payment needs
this: `TestWrappedNative` (ours, compiled by the pinned solc), deposited by the trader,
paired on the real V2 factory with the deployment's WETH (1:1) and with USDC at a price
`premium_bps` above WETH's, so that TWETH → USDC → WETH → TWETH is profitable.
"""

from __future__ import annotations

import dataclasses
from typing import Final

from web3 import Web3

from devchain.abi import call, encode_call
from devchain.deploy import Deployment, Pool, Token
from devchain.rpc import TxRequest, execute_block, nonce_at
from devchain.solidity import load_devchain_artifact

ETHER: Final = 10**18
_GAS: Final = 3_000_000


def add_wrapped_native_pairs(
    w3: Web3, deployment: Deployment, depth_ether: int = 100, premium_bps: int = 500
) -> tuple[Deployment, Token]:
    """Deploys TWETH and its two pairs; returns the deployment with them, and TWETH."""
    trader = deployment.trader
    nonce = nonce_at(w3, trader)

    def tx(to: str | None, data: bytes, value: int = 0, label: str = "") -> TxRequest:
        nonlocal nonce
        nonce += 1
        return TxRequest(
            sender=trader, to=to, data=data, gas=_GAS, nonce=nonce - 1, value=value, label=label
        )

    code = bytes.fromhex(str(load_devchain_artifact("TestWrappedNative")["bytecode"])[2:])
    _, (receipt,) = execute_block(w3, [tx(None, code, label="deploy TWETH")])
    wrapped = Web3.to_checksum_address(str(receipt["contractAddress"]))
    weth, usdc = deployment.token("WETH"), deployment.token("USDC")
    twin = Token(symbol="TWETH", address=wrapped, decimals=18)
    amount = depth_ether * ETHER
    usdc_price = 2000 * (10_000 + premium_bps) // 10_000  # the spec prices WETH at 2000
    pairs = [(weth, amount), (usdc, depth_ether * usdc_price * 10**usdc.decimals)]
    factory = deployment.v2_factory
    execute_block(
        w3,
        [tx(wrapped, b"", value=2 * amount, label="wrap")]
        + [
            tx(factory, encode_call("UniswapV2Factory", "createPair", wrapped, t.address))
            for t, _ in pairs
        ],
    )
    pools = []
    for token, other_amount in pairs:
        (pair,) = call(w3, factory, "UniswapV2Factory", "getPair", wrapped, token.address)
        execute_block(
            w3,
            [
                tx(wrapped, encode_call("ERC20", "transfer", pair, amount)),
                tx(token.address, encode_call("ERC20", "transfer", pair, other_amount)),
                tx(pair, encode_call("UniswapV2Pair", "mint", trader)),
            ],
        )
        low, high = sorted((twin, token), key=lambda t: t.address.lower())
        pools.append(
            Pool(address=pair, protocol="v2", token0=low, token1=high, fee=3000, tick_spacing=None)
        )
    extended = dataclasses.replace(
        deployment, tokens=(*deployment.tokens, twin), pools=(*deployment.pools, *pools)
    )
    return extended, twin
