"""Pool whitelists: the NATS control-plane JSON (`whitelist.pools.{chain}.full|add|remove`).

The same `.full` document stored in a file is the offline whitelist. A pool entry with an
unknown protocol or an unparseable address is skipped and logged, never defaulted; the
rest of the document still applies.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, Final

import msgspec

from exex_bridge.errors import WhitelistError
from exex_bridge.messages import Protocol

log = logging.getLogger(__name__)

PROTOCOL_NAMES: Final[dict[str, Protocol]] = {
    "v2": Protocol.UNISWAP_V2,
    "uniswap_v2": Protocol.UNISWAP_V2,
    "v3": Protocol.UNISWAP_V3,
    "uniswap_v3": Protocol.UNISWAP_V3,
    "v4": Protocol.UNISWAP_V4,
    "uniswap_v4": Protocol.UNISWAP_V4,
    "ekubo": Protocol.EKUBO,
    "curve_stable": Protocol.CURVE_STABLE,
    "curve_twocrypto": Protocol.CURVE_TWO_CRYPTO,
    "curve_tricrypto": Protocol.CURVE_TRICRYPTO,
    "balancer_v2_weighted": Protocol.BALANCER_V2_WEIGHTED,
    "fluid": Protocol.FLUID,
}
# The short names used when this project writes whitelists and state files.
PROTOCOL_SHORT: Final[dict[Protocol, str]] = {
    Protocol.UNISWAP_V2: "v2",
    Protocol.UNISWAP_V3: "v3",
    Protocol.UNISWAP_V4: "v4",
    Protocol.EKUBO: "ekubo",
    Protocol.CURVE_STABLE: "curve_stable",
    Protocol.CURVE_TWO_CRYPTO: "curve_twocrypto",
    Protocol.CURVE_TRICRYPTO: "curve_tricrypto",
    Protocol.BALANCER_V2_WEIGHTED: "balancer_v2_weighted",
    Protocol.FLUID: "fluid",
}

_TICKED: Final = frozenset({Protocol.UNISWAP_V3, Protocol.UNISWAP_V4})
_V4: Final = Protocol.UNISWAP_V4
# Pools the stream names by a 32-byte id (a Balancer pool id starts with its address).
_KEYED_BY_ID: Final = frozenset({_V4, Protocol.BALANCER_V2_WEIGHTED})

# A V4 pool's fee with this flag is dynamic: its hooks set the LP fee (LPFeeLibrary).
V4_DYNAMIC_FEE_FLAG: Final = 0x800000
# The mainnet PoolManager: where a V4 pool lives when its entry names no `factory`
# (as the producer does).
V4_MAINNET_POOL_MANAGER: Final = bytes.fromhex("000000000004444c5dc75cb358380d2e3de08a90")

_HEX20 = re.compile(r"^0x[0-9a-fA-F]{40}$")
_HEX32 = re.compile(r"^0x[0-9a-fA-F]{64}$")


class TokenJson(msgspec.Struct, frozen=True, kw_only=True):
    address: str
    decimals: int
    symbol: str | None = None


class PoolJson(msgspec.Struct, frozen=True, kw_only=True):
    address: str
    protocol: str
    token0: TokenJson
    token1: TokenJson
    fee: int | None = None
    tick_spacing: int | None = None
    pool_id: str | None = None
    factory: str | None = None
    extra_tokens: list[TokenJson] | None = None
    additional_data: dict[str, Any] | None = None


class FullOrAddJson(msgspec.Struct, frozen=True, kw_only=True):
    chain: str = "ethereum"
    snapshot_id: int | None = None
    pools: list[msgspec.Raw]


class RemoveJson(msgspec.Struct, frozen=True, kw_only=True):
    chain: str | None = None
    pool_addresses: list[str]


class Token(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    address: bytes
    decimals: int
    symbol: str | None = None


class WhitelistedPool(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One usable pool. `key` is what the stream identifies it by: the address, or a
    V4 pool's 32-byte id."""

    key: bytes
    address: bytes
    protocol: Protocol
    token0: Token
    token1: Token
    fee: int | None = None
    tick_spacing: int | None = None
    # V4 only: the PoolManager holding the pool (`factory`, default mainnet's) and the
    # pool key's hooks address (`additional_data.hooks`, default none).
    pool_manager: bytes | None = None
    hooks: bytes | None = None

    @property
    def key_hex(self) -> str:
        return "0x" + self.key.hex()


class Whitelist(msgspec.Struct, frozen=True, kw_only=True):
    chain: str
    snapshot_id: int | None
    pools: tuple[WhitelistedPool, ...]
    skipped: int


def _token(raw: TokenJson, where: str, tokens: dict[TokenJson, Token] | None) -> Token:
    """`tokens`: the tokens of a document parsed so far (a mainnet whitelist names a few
    thousand tokens in 250 000 pools); each is validated and built once, then shared."""
    if tokens is not None:
        known = tokens.get(raw)
        if known is not None:
            return known
    token = _new_token(raw, where)
    if tokens is not None:
        tokens[raw] = token
    return token


def _new_token(raw: TokenJson, where: str) -> Token:
    if not _HEX20.match(raw.address):
        raise ValueError(f"{where}: token address {raw.address!r} is not 20-byte hex")
    if not 0 <= raw.decimals <= 255:
        raise ValueError(f"{where}: token decimals {raw.decimals} out of range")
    return Token(address=bytes.fromhex(raw.address[2:]), decimals=raw.decimals, symbol=raw.symbol)


def parse_pool(
    raw: PoolJson, where: str, tokens: dict[TokenJson, Token] | None = None
) -> WhitelistedPool:
    """Validate one pool entry; raises ValueError with the reason it must be skipped.
    `tokens` shares the tokens of one document between its pools."""
    protocol = PROTOCOL_NAMES.get(raw.protocol.lower())
    if protocol is None:
        raise ValueError(f"{where}: unknown protocol {raw.protocol!r}")
    if not _HEX20.match(raw.address):
        raise ValueError(f"{where}: address {raw.address!r} is not 20-byte hex")
    address = bytes.fromhex(raw.address[2:])
    key = address
    if protocol in _KEYED_BY_ID:
        if raw.pool_id is None or not _HEX32.match(raw.pool_id):
            raise ValueError(f"{where}: {raw.protocol} pool needs a 32-byte hex pool_id")
        key = bytes.fromhex(raw.pool_id[2:])
        if protocol is not _V4 and key[:20] != address:
            raise ValueError(f"{where}: Balancer pool_id does not start with its address")
    if protocol in _TICKED:
        if raw.fee is None or raw.tick_spacing is None:
            raise ValueError(f"{where}: {raw.protocol} pool needs fee and tick_spacing")
        dynamic = protocol is _V4 and raw.fee == V4_DYNAMIC_FEE_FLAG
        if not 0 < raw.tick_spacing < 16384 or not (0 <= raw.fee < 1_000_000 or dynamic):
            raise ValueError(f"{where}: fee {raw.fee} / tick_spacing {raw.tick_spacing} invalid")
    token0, token1 = _token(raw.token0, where, tokens), _token(raw.token1, where, tokens)
    if token0.address == token1.address:
        raise ValueError(f"{where}: token0 and token1 are the same token")
    pool_manager, hooks = _v4_contracts(raw, where) if protocol is _V4 else (None, None)
    return WhitelistedPool(
        key=key,
        address=address,
        protocol=protocol,
        token0=token0,
        token1=token1,
        fee=raw.fee,
        tick_spacing=raw.tick_spacing,
        pool_manager=pool_manager,
        hooks=hooks,
    )


def _v4_contracts(raw: PoolJson, where: str) -> tuple[bytes, bytes]:
    """A V4 entry's PoolManager (`factory`) and hooks (`additional_data.hooks`)."""
    manager = V4_MAINNET_POOL_MANAGER
    if raw.factory is not None:
        if not _HEX20.match(raw.factory):
            raise ValueError(f"{where}: factory {raw.factory!r} is not 20-byte hex")
        manager = bytes.fromhex(raw.factory[2:])
    hooks_text = (raw.additional_data or {}).get("hooks", "0x" + "00" * 20)
    if not isinstance(hooks_text, str) or not _HEX20.match(hooks_text):
        raise ValueError(f"{where}: additional_data.hooks {hooks_text!r} is not 20-byte hex")
    return manager, bytes.fromhex(hooks_text[2:])


_POOL_DECODER: Final = msgspec.json.Decoder(PoolJson)
_FULL_DECODER: Final = msgspec.json.Decoder(FullOrAddJson)
_REMOVE_DECODER: Final = msgspec.json.Decoder(RemoveJson)


def parse_pools_document(data: bytes | str, source: str = "<message>") -> Whitelist:
    """A `.full` or `.add` document. Bad entries are skipped and logged one by one."""
    try:
        doc = _FULL_DECODER.decode(data)
    except msgspec.DecodeError as exc:
        raise WhitelistError(source, str(exc)) from exc
    pools: list[WhitelistedPool] = []
    skipped = 0
    seen: set[bytes] = set()
    tokens: dict[TokenJson, Token] = {}
    for i, raw in enumerate(doc.pools):
        where = f"{source} pools[{i}]"
        try:
            pool = parse_pool(_POOL_DECODER.decode(raw), where, tokens)
        except msgspec.DecodeError as exc:  # says what, not where: add the place
            skipped += 1
            log.warning("whitelist entry skipped: %s: %s", where, exc)
            continue
        except ValueError as exc:  # parse_pool's reasons already name the place
            skipped += 1
            log.warning("whitelist entry skipped: %s", exc)
            continue
        if pool.key in seen:
            skipped += 1
            log.warning("whitelist entry skipped: %s: duplicate pool %s", where, pool.key_hex)
            continue
        seen.add(pool.key)
        pools.append(pool)
    return Whitelist(
        chain=doc.chain, snapshot_id=doc.snapshot_id, pools=tuple(pools), skipped=skipped
    )


def parse_remove_document(data: bytes | str, source: str = "<message>") -> list[bytes]:
    """A `.remove` document: the pool keys (address or V4 id) to remove."""
    try:
        doc = _REMOVE_DECODER.decode(data)
    except msgspec.DecodeError as exc:
        raise WhitelistError(source, str(exc)) from exc
    keys = []
    for i, text in enumerate(doc.pool_addresses):
        if _HEX20.match(text) or _HEX32.match(text):
            keys.append(bytes.fromhex(text[2:]))
        else:
            log.warning("whitelist removal skipped: %s pool_addresses[%d] = %r", source, i, text)
    return keys


def load_whitelist_file(path: str | Path) -> Whitelist:
    """The offline whitelist: a `.full` document in a file."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise WhitelistError(str(p), f"cannot read: {exc.strerror}") from exc
    return parse_pools_document(data, str(p))


def subject(chain: str, kind: str) -> str:
    """NATS subject of a whitelist document kind (`full`, `add`, `remove`)."""
    if kind not in ("full", "add", "remove"):
        raise ValueError(f"unknown whitelist subject kind {kind!r}")
    return f"whitelist.pools.{chain}.{kind}"


RESEED_SUBJECT: Final = "whitelist.reseed"


def snapshot_request_subject(chain: str) -> str:
    """Where a consumer starting up asks for the chain's `.full` snapshot (empty body)."""
    return f"whitelist.snapshot.request.{chain}"
