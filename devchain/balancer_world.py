"""The real Balancer V2 Vault on anvil, with weighted pools of two factory generations.

Everything comes from `@balancer-labs/v2-deployments` (the compiled creation code the
deployments were made with): the Authorizer and Vault (20210418-authorizer/-vault), the
first weighted pool factories (20210418-weighted-pool: `WeightedPoolFactory`,
`WeightedPool2TokensFactory`), the weighted pool v2 factory (20220908) with the protocol
fee provider it needs (20220725), the weighted pool v3 factory (20230206, from its
hardhat artifact), and `BalancerQueries` (20220721), the Vault's own
quoting contract. Tokens are v2-core's ERC20, with decimals patched where a pool wants
6 or 8 (`devchain.tokens`), so scaling factors are exercised.

`BalancerWorld` sends joins, exits, swaps and fee changes as the deployer (the pools'
owner) and reads the Vault's view of every pool (`getPoolTokens`).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any, Final

from eth_abi.abi import decode, encode
from eth_utils.crypto import keccak
from web3 import Web3

from devchain.abi import encode_deploy
from devchain.artifacts import node_modules_dir
from devchain.deploy import checksum
from devchain.errors import ArtifactError, DeploymentError
from devchain.rpc import TxRequest, execute_block, nonce_at, rpc_call
from devchain.tokens import patch_decimals
from exex_bridge.messages import Protocol
from exex_bridge.whitelist import Token, WhitelistedPool

__all__ = [
    "BalancerPool",
    "BalancerWorld",
    "create_rate_provider_pool",
    "create_weighted_pool",
    "deploy_balancer_world",
    "pool_tokens",
    "vault_swaps",
]

_TASKS: Final = "@balancer-labs/v2-deployments/dist/tasks"
_DEPLOY_GAS: Final = 15_000_000
_OP_GAS: Final = 1_500_000
_MAX_UINT256: Final = 2**256 - 1
_SWAP_GIVEN_IN: Final = 0
_SWAP_GIVEN_OUT: Final = 1
_JOIN_INIT: Final = 0
_JOIN_EXACT_TOKENS_IN: Final = 1
_EXIT_EXACT_BPT_IN: Final = 1
_SINGLE_SWAP: Final = "(bytes32,uint8,address,address,uint256,bytes)"
_FUNDS: Final = "(address,bool,address,bool)"
POOL_CREATED: Final = bytes(keccak(text="PoolCreated(address)"))
VAULT_SWAP: Final = bytes(keccak(text="Swap(bytes32,address,address,uint256,uint256)"))


def vault_swaps(receipts: list[dict[str, Any]], vault: str) -> dict[bytes, tuple[int, int]]:
    """(amount in, amount out) of the Vault's `Swap` event by pool id, from receipts."""
    out: dict[bytes, tuple[int, int]] = {}
    for receipt in receipts:
        for log in receipt["logs"]:
            topics = [bytes.fromhex(t[2:]) for t in log["topics"]]
            if log["address"].lower() == vault.lower() and topics[0] == VAULT_SWAP:
                amount_in, amount_out = decode(
                    ["uint256", "uint256"], bytes.fromhex(log["data"][2:])
                )
                out[topics[1]] = (int(amount_in), int(amount_out))
    return out


@functools.cache
def _creation_code(task: str, name: str) -> bytes:
    path = node_modules_dir() / _TASKS / task / "bytecode" / f"{name}.json"
    try:
        raw = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError) as exc:
        raise ArtifactError(name, path, str(exc)) from None
    return bytes.fromhex(str(raw["creationCode"]).removeprefix("0x"))


@functools.cache
def _artifact_code(task: str, name: str) -> bytes:
    """Creation code from a task's hardhat artifact (tasks that ship no bytecode/ file)."""
    path = node_modules_dir() / _TASKS / task / "artifact" / f"{name}.json"
    try:
        raw = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError) as exc:
        raise ArtifactError(name, path, str(exc)) from None
    if raw.get("linkReferences"):
        raise ArtifactError(name, path, "needs library linking")
    return bytes.fromhex(str(raw["bytecode"]).removeprefix("0x"))


def _selector(signature: str) -> bytes:
    return bytes(keccak(text=signature))[:4]


def _call_data(signature: str, types: list[str], args: list[Any]) -> bytes:
    return _selector(signature) + encode(types, args)


def _eth_call(w3: Web3, to: str, data: bytes, block: int | str = "latest") -> bytes:
    tag = hex(block) if isinstance(block, int) else block
    raw = rpc_call(w3, "eth_call", [{"to": to, "data": "0x" + data.hex()}, tag])
    return bytes.fromhex(str(raw).removeprefix("0x"))


@dataclass(frozen=True, kw_only=True)
class BalancerPool:
    """A weighted pool as deployed: `version` is "v1" (20210418), "v2" (20220908) or "v3"
    (20230206, the same math as v2)."""

    address: str
    pool_id: bytes
    version: str
    factory: str
    tokens: tuple[str, ...]  # the Vault's order (sorted by address)
    decimals: tuple[int, ...]
    weights: tuple[int, ...]


def pool_tokens(
    w3: Web3, vault: str, pool_id: bytes, block: int | str = "latest"
) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """`Vault.getPoolTokens(poolId)`: tokens and balances at `block`."""
    data = _call_data("getPoolTokens(bytes32)", ["bytes32"], [pool_id])
    tokens, balances, _ = decode(
        ["address[]", "uint256[]", "uint256"], _eth_call(w3, vault, data, block)
    )
    return tuple(checksum(t) for t in tokens), tuple(int(b) for b in balances)


@dataclass
class BalancerWorld:
    w3: Web3
    deployer: str
    authorizer: str
    vault: str
    queries: str
    factories: dict[str, str]
    tokens: dict[str, str]  # symbol -> address
    pools: list[BalancerPool]

    def _tx(self, to: str | None, data: bytes, gas: int, label: str) -> TxRequest:
        return TxRequest(sender=self.deployer, to=to, data=data, gas=gas, label=label)

    def execute(self, txs: list[TxRequest]) -> tuple[int, list[dict[str, Any]]]:
        nonce = nonce_at(self.w3, self.deployer)
        numbered = [
            TxRequest(
                sender=t.sender, to=t.to, data=t.data, gas=t.gas, nonce=nonce + k, label=t.label
            )
            for k, t in enumerate(txs)
        ]
        return execute_block(self.w3, numbered)

    def balances(self, pool: BalancerPool, block: int | str = "latest") -> tuple[int, ...]:
        return pool_tokens(self.w3, self.vault, pool.pool_id, block)[1]

    def swap_fee(self, pool: BalancerPool, block: int | str = "latest") -> int:
        raw = _eth_call(self.w3, pool.address, _selector("getSwapFeePercentage()"), block)
        return int(decode(["uint256"], raw)[0])

    def _funds(self) -> tuple[str, bool, str, bool]:
        return (self.deployer, False, self.deployer, False)

    def swap_tx(self, pool: BalancerPool, i: int, j: int, amount_in: int) -> TxRequest:
        single = (pool.pool_id, _SWAP_GIVEN_IN, pool.tokens[i], pool.tokens[j], amount_in, b"")
        data = _call_data(
            "swap((bytes32,uint8,address,address,uint256,bytes),"
            "(address,bool,address,bool),uint256,uint256)",
            [_SINGLE_SWAP, _FUNDS, "uint256", "uint256"],
            [single, self._funds(), 0, _MAX_UINT256],
        )
        return self._tx(self.vault, data, _OP_GAS, f"swap {pool.version} {i}->{j}")

    def query_swap(
        self, pool: BalancerPool, i: int, j: int, amount: int, *, given_out: bool = False
    ) -> int:
        """`BalancerQueries.querySwap` at the latest block: the amount out for `amount` in,
        or (`given_out`) the amount in for `amount` out."""
        kind = _SWAP_GIVEN_OUT if given_out else _SWAP_GIVEN_IN
        single = (pool.pool_id, kind, pool.tokens[i], pool.tokens[j], amount, b"")
        data = _call_data(
            "querySwap((bytes32,uint8,address,address,uint256,bytes),(address,bool,address,bool))",
            [_SINGLE_SWAP, _FUNDS],
            [single, self._funds()],
        )
        return int(decode(["uint256"], _eth_call(self.w3, self.queries, data))[0])

    def _join_or_exit(self, pool: BalancerPool, join: bool, user_data: bytes) -> TxRequest:
        limits = [_MAX_UINT256 if join else 0] * len(pool.tokens)
        request = (list(pool.tokens), limits, user_data, False)
        if join:
            signature = "joinPool(bytes32,address,address,(address[],uint256[],bytes,bool))"
        else:
            signature = "exitPool(bytes32,address,address,(address[],uint256[],bytes,bool))"
        data = _call_data(
            signature,
            ["bytes32", "address", "address", "(address[],uint256[],bytes,bool)"],
            [pool.pool_id, self.deployer, self.deployer, request],
        )
        return self._tx(self.vault, data, _OP_GAS, ("join " if join else "exit ") + pool.version)

    def init_tx(self, pool: BalancerPool, amounts: list[int]) -> TxRequest:
        return self._join_or_exit(
            pool, True, encode(["uint256", "uint256[]"], [_JOIN_INIT, amounts])
        )

    def join_tx(self, pool: BalancerPool, amounts: list[int]) -> TxRequest:
        user_data = encode(["uint256", "uint256[]", "uint256"], [_JOIN_EXACT_TOKENS_IN, amounts, 0])
        return self._join_or_exit(pool, True, user_data)

    def exit_tx(self, pool: BalancerPool, bpt_in: int) -> TxRequest:
        return self._join_or_exit(
            pool, False, encode(["uint256", "uint256"], [_EXIT_EXACT_BPT_IN, bpt_in])
        )

    def bpt_balance(self, pool: BalancerPool, block: int | str = "latest") -> int:
        data = _call_data("balanceOf(address)", ["address"], [self.deployer])
        return int(decode(["uint256"], _eth_call(self.w3, pool.address, data, block))[0])

    def set_protocol_swap_fee(self, fee: int) -> None:
        """Makes the Vault's ProtocolFeesCollector charge `fee` (1e18) of swap fees: the
        deployer (the Authorizer's admin) grants itself the action, then sets it."""
        raw = _eth_call(self.w3, self.vault, _selector("getProtocolFeesCollector()"))
        collector = checksum(decode(["address"], raw)[0])
        setter = _selector("setSwapFeePercentage(uint256)")
        raw = _eth_call(self.w3, collector, _call_data("getActionId(bytes4)", ["bytes4"], [setter]))
        action = bytes(decode(["bytes32"], raw)[0])
        grant = _call_data(
            "grantRole(bytes32,address)", ["bytes32", "address"], [action, self.deployer]
        )
        self.execute(
            [
                self._tx(self.authorizer, grant, _OP_GAS, "grant protocol fee setter"),
                self._tx(collector, setter + encode(["uint256"], [fee]), _OP_GAS, "protocol fee"),
            ]
        )

    def whitelist_document(self, chain: str = "ethereum") -> dict[str, Any]:
        """The pools as a `whitelist.pools.{chain}.full` document (with `pool_id`)."""

        def token(address: str, decimals: int) -> dict[str, Any]:
            return {"address": address.lower(), "decimals": decimals}

        pools = [
            {
                "address": pool.address.lower(),
                "protocol": "balancer_v2_weighted",
                "pool_id": "0x" + pool.pool_id.hex(),
                "token0": token(pool.tokens[0], pool.decimals[0]),
                "token1": token(pool.tokens[1], pool.decimals[1]),
                "extra_tokens": [
                    token(t, d) for t, d in zip(pool.tokens[2:], pool.decimals[2:], strict=True)
                ],
                "factory": pool.factory.lower(),
            }
            for pool in self.pools
        ]
        return {"chain": chain, "snapshot_id": 1, "pools": pools}

    def whitelisted(self) -> list[WhitelistedPool]:
        """The pools as whitelist entries (keyed by pool id; token0/1: the first two)."""
        out = []
        for pool in self.pools:
            first, second = (
                Token(address=bytes.fromhex(t[2:]), decimals=d)
                for t, d in zip(pool.tokens[:2], pool.decimals[:2], strict=True)
            )
            out.append(
                WhitelistedPool(
                    key=pool.pool_id,
                    address=bytes.fromhex(pool.address[2:]),
                    protocol=Protocol.BALANCER_V2_WEIGHTED,
                    token0=first,
                    token1=second,
                )
            )
        return out

    def fee_tx(self, pool: BalancerPool, fee: int) -> TxRequest:
        data = _call_data("setSwapFeePercentage(uint256)", ["uint256"], [fee])
        return self._tx(pool.address, data, _OP_GAS, f"fee {pool.version}")


# (symbol, decimals); pools name tokens by symbol
_TOKENS: Final = (("BWETH", 18), ("BUSDC", 6), ("BWBTC", 8), ("BDAI", 18))
# (factory key, symbols, weights in percent, swap fee 1e18)
_POOLS: Final = (
    ("v1", ("BWETH", "BUSDC", "BWBTC"), (50, 30, 20), 3 * 10**15),
    ("v1_2tokens", ("BWETH", "BDAI"), (80, 20), 10**16),
    ("v2", ("BWETH", "BUSDC"), (50, 50), 25 * 10**14),
    ("v2", ("BUSDC", "BWBTC", "BDAI", "BWETH"), (40, 20, 20, 20), 10**15),
    ("v3", ("BWETH", "BWBTC"), (80, 20), 2 * 10**15),
)
_SUPPLY_UNITS: Final = 10**12


def _deploy(world_w3: Web3, deployer: str, code: bytes, label: str) -> str:
    nonce = nonce_at(world_w3, deployer)
    tx = TxRequest(sender=deployer, to=None, data=code, gas=_DEPLOY_GAS, nonce=nonce, label=label)
    _, mined = execute_block(world_w3, [tx])
    return checksum(mined[0]["contractAddress"])


def _args(types: list[str], args: list[Any]) -> bytes:
    return encode(types, args)


def deploy_balancer_world(w3: Web3, deployer: str | None = None) -> BalancerWorld:
    """Deploys the Vault, the factories, `BalancerQueries`, tokens and the pools of
    `_POOLS`, each initialised and with the Vault approved for every token."""
    owner = deployer or checksum(w3.eth.accounts[0])
    tokens: dict[str, str] = {}
    for symbol, decimals in _TOKENS:
        address = _deploy(w3, owner, encode_deploy("ERC20", _SUPPLY_UNITS * 10**18), symbol)
        patch_decimals(w3, address, decimals)
        tokens[symbol] = address
    authorizer = _deploy(
        w3,
        owner,
        _creation_code("20210418-authorizer", "Authorizer") + _args(["address"], [owner]),
        "authorizer",
    )
    vault = _deploy(
        w3,
        owner,
        _creation_code("20210418-vault", "Vault")
        + _args(["address", "address", "uint256", "uint256"], [authorizer, tokens["BWETH"], 0, 0]),
        "vault",
    )
    on_vault = _args(["address"], [vault])
    factories = {
        "v1": _deploy(
            w3,
            owner,
            _creation_code("20210418-weighted-pool", "WeightedPoolFactory") + on_vault,
            "v1 factory",
        ),
        "v1_2tokens": _deploy(
            w3,
            owner,
            _creation_code("20210418-weighted-pool", "WeightedPool2TokensFactory") + on_vault,
            "v1 2-token factory",
        ),
    }
    provider = _deploy(
        w3,
        owner,
        _creation_code(
            "20220725-protocol-fee-percentages-provider", "ProtocolFeePercentagesProvider"
        )
        + _args(["address", "uint256", "uint256"], [vault, 5 * 10**17, 5 * 10**17]),
        "fee provider",
    )
    factories["v2"] = _deploy(
        w3,
        owner,
        _creation_code("20220908-weighted-pool-v2", "WeightedPoolFactory")
        + _args(["address", "address"], [vault, provider]),
        "v2 factory",
    )
    factories["v3"] = _deploy(
        w3,
        owner,
        _artifact_code("20230206-weighted-pool-v3", "WeightedPoolFactory")
        + _args(
            ["address", "address", "string", "string"],
            [vault, provider, '{"name":"WeightedPoolFactory","version":3}', '{"version":3}'],
        ),
        "v3 factory",
    )
    queries = _deploy(
        w3,
        owner,
        _creation_code("20220721-balancer-queries", "BalancerQueries") + on_vault,
        "queries",
    )
    world = BalancerWorld(w3, owner, authorizer, vault, queries, factories, tokens, [])
    approve = _call_data("approve(address,uint256)", ["address", "uint256"], [vault, _MAX_UINT256])
    world.execute([world._tx(t, approve, 100_000, "approve vault") for t in tokens.values()])
    for key, symbols, percents, fee in _POOLS:
        world.pools.append(_create_pool(world, key, symbols, percents, fee))
    return world


def create_rate_provider_pool(world: BalancerWorld) -> BalancerPool:
    """A weighted pool v2 whose first token has a rate provider (another pool's `getRate`),
    not added to `world.pools`: the arena must exclude it."""
    provider = world.pools[0].address
    return _create_pool(world, "v2", ("BWETH", "BDAI"), (50, 50), 10**15, rate_provider=provider)


def _create_pool(
    world: BalancerWorld,
    key: str,
    symbols: tuple[str, ...],
    percents: tuple[int, ...],
    fee: int,
    *,
    rate_provider: str | None = None,
) -> BalancerPool:
    decimals_of = dict(_TOKENS)
    tokens = tuple((world.tokens[s], decimals_of[s]) for s in symbols)
    # worth about the same per token: 1e6 whole units of each, scaled by weight
    amounts = tuple(p * 10**4 * 10**d for p, (_, d) in zip(percents, tokens, strict=True))
    name = "-".join(symbols)
    return create_weighted_pool(
        world,
        key,
        tokens,
        percents=percents,
        fee=fee,
        amounts=amounts,
        name=name,
        rate_provider=rate_provider,
    )


def create_weighted_pool(
    world: BalancerWorld,
    key: str,
    tokens: tuple[tuple[str, int], ...],
    *,
    percents: tuple[int, ...],
    fee: int,
    amounts: tuple[int, ...],
    name: str = "pool",
    rate_provider: str | None = None,
) -> BalancerPool:
    """A weighted pool of factory `key` over `tokens` ((address, decimals), any ERC-20
    the deployer holds and has approved the Vault for), weights in percent, swap fee
    (1e18), initialised with `amounts` (raw units, in the order of `tokens`). Not added
    to `world.pools`."""
    entries = sorted(
        zip(tokens, percents, amounts, strict=True),
        key=lambda e: int(e[0][0], 16),
    )
    addresses = [e[0][0] for e in entries]
    weights = [e[1] * 10**16 for e in entries]
    if key == "v1":
        signature = "create(string,string,address[],uint256[],uint256,address)"
        types = ["string", "string", "address[]", "uint256[]", "uint256", "address"]
        args: list[Any] = [name, name, addresses, weights, fee, world.deployer]
    elif key == "v1_2tokens":
        signature = "create(string,string,address[],uint256[],uint256,bool,address)"
        types = ["string", "string", "address[]", "uint256[]", "uint256", "bool", "address"]
        args = [name, name, addresses, weights, fee, False, world.deployer]
    else:
        signature = "create(string,string,address[],uint256[],address[],uint256,address)"
        types = ["string", "string", "address[]", "uint256[]", "address[]", "uint256", "address"]
        providers = ["0x" + "00" * 20] * len(addresses)
        if rate_provider is not None:
            providers[0] = rate_provider
        args = [name, name, addresses, weights, providers, fee, world.deployer]
    factory = world.factories[key]
    _, mined = world.execute(
        [world._tx(factory, _call_data(signature, types, args), _DEPLOY_GAS, f"create {name}")]
    )
    created = [
        log for log in mined[0]["logs"] if bytes.fromhex(log["topics"][0][2:]) == POOL_CREATED
    ]
    if len(created) != 1:
        raise DeploymentError(f"factory {key} created {len(created)} pools")
    address = checksum("0x" + created[0]["topics"][1][-40:])
    pool_id = bytes(decode(["bytes32"], _eth_call(world.w3, address, _selector("getPoolId()")))[0])
    pool = BalancerPool(
        address=address,
        pool_id=pool_id,
        version="v1" if key.startswith("v1") else key,
        factory=factory,
        tokens=tuple(addresses),
        decimals=tuple(e[0][1] for e in entries),
        weights=tuple(weights),
    )
    world.execute([world.init_tx(pool, [e[2] for e in entries])])
    return pool
