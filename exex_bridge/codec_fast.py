"""Compiled layouts for every fixed-size frame of the stream.

`compile_layouts(CONTROL_MESSAGE)` walks the wire types that `codec.py` declares once and
expands every combination of variants made only of fixed-width fields (enum variants and
`Option` cases are expanded; `Vec`, `I256` and the opaque whitelist are not compilable)
into one `struct` format and one generated function. That function unpacks the whole
payload in one call, checks every tag, length, enum index and bool, and builds the message
in a single expression. It returns None when any check fails; the reference decoder then
decides, and reports the precise error.

The functions are generated source (as `dataclasses` and `collections.namedtuple` do)
because the budget is 2 µs per frame including framing (DESIGN.md), the reference decoder
takes about 10 µs for a V3Swap, and hand-written per-layout closures took about 2 µs;
generated code takes under 1 µs (benchmarks/bench_decode.py). Layouts are grouped by
payload size, hot variants first; later candidates of a size look at their tag bytes
before unpacking. Pool ids are interned in a bounded cache: a stream names the same hot
pools again and again.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

from exex_bridge import bincode as b
from exex_bridge import messages as m

FastDecode = Callable[[Any, int], Any]  # (buffer, offset of the payload) -> message | None

_INTERN_MAX: Final = 1 << 16
_ADDRESS_IDS: dict[bytes, m.PoolAddress] = {}
_V4_IDS: dict[bytes, m.V4PoolId] = {}


def _pool_address(raw: bytes) -> m.PoolAddress:
    pid = _ADDRESS_IDS.get(raw)
    if pid is None:
        if len(_ADDRESS_IDS) >= _INTERN_MAX:
            _ADDRESS_IDS.clear()
        pid = _ADDRESS_IDS[raw] = m.PoolAddress(value=raw)
    return pid


def _v4_pool_id(raw: bytes) -> m.V4PoolId:
    pid = _V4_IDS.get(raw)
    if pid is None:
        if len(_V4_IDS) >= _INTERN_MAX:
            _V4_IDS.clear()
        pid = _V4_IDS[raw] = m.V4PoolId(value=raw)
    return pid


# class -> (the cache's bound `get`, the function that fills it), as generated-code names
_INTERNED: Final[dict[type[Any], tuple[str, str]]] = {
    m.PoolAddress: ("_address_ids_get", "_pool_address"),
    m.V4PoolId: ("_v4_ids_get", "_v4_pool_id"),
}

# What a real stream carries most, in order (V4 pools are named by pool id, the rest by
# address); within a size, the candidates are tried in this order.
_HOT: Final[tuple[frozenset[type[Any]], ...]] = tuple(
    frozenset(classes)
    for classes in (
        (m.V3Swap, m.PoolAddress),
        (m.V2Sync, m.PoolAddress),
        (m.V3Liquidity, m.PoolAddress),
        (m.BeginBlock,),
        (m.EndBlock,),
        (m.V4Swap, m.V4PoolId),
        (m.V4Liquidity, m.V4PoolId),
    )
)


@dataclass(frozen=True)
class _Frag:
    """A compiled piece of a layout: struct codes, conditions, and the value's expression."""

    fmt: str
    checks: tuple[str, ...]
    tags: tuple[tuple[int, int], ...]  # (byte offset, expected low byte) of exact u32 tags
    expr: str
    classes: frozenset[Any]


_Walk = Iterator[tuple[_Frag, int, int]]  # (fragment, next variable number, next offset)


class _Compiler:
    def __init__(self) -> None:
        self.names: dict[str, Any] = {
            "_pool_address": _pool_address,
            "_v4_pool_id": _v4_pool_id,
            "_address_ids_get": _ADDRESS_IDS.get,
            "_v4_ids_get": _V4_IDS.get,
        }

    def bind(self, prefix: str, value: Any) -> str:
        name = f"_{prefix}_{len(self.names)}"
        self.names[name] = value
        return name

    def leaf(self, wire: Any, v: int, off: int) -> tuple[_Frag, int, int] | None:
        """Single-alternative wire types; None if `wire` is not one."""
        x, y = f"v{v}", f"v{v + 1}"
        empty: frozenset[Any] = frozenset()
        if isinstance(wire, b._Fixed):
            code = wire.fmt.format[-1]
            return _Frag(code, (), (), x, empty), v + 1, off + wire.fmt.size
        if isinstance(wire, b._U8):
            return _Frag("B", (), (), x, empty), v + 1, off + 1
        if isinstance(wire, b._Bool):
            return _Frag("B", (f"{x} <= 1",), (), f"{x} == 1", empty), v + 1, off + 1
        if isinstance(wire, b._Int128):
            # low u64 then high u64 (signed high half for i128): hi * 2**64 + lo
            code = "Qq" if wire.signed else "QQ"
            return _Frag(code, (), (), f"({y} << 64 | {x})", empty), v + 2, off + 16
        if isinstance(wire, b._U256):
            frag = _Frag("Q32s", (f"{x} == 32",), (), f"_from_bytes({y}, 'big')", empty)
            return frag, v + 2, off + 40
        if isinstance(wire, b._Address):
            return _Frag("Q20s", (f"{x} == 20",), (), y, empty), v + 2, off + 28
        if isinstance(wire, b._RawBytes):
            return _Frag(f"{wire.min_size}s", (), (), x, empty), v + 1, off + wire.min_size
        if isinstance(wire, b.IntEnumType):
            table = self.bind(wire.name, tuple(wire.cls(i) for i in range(wire.count)))
            frag = _Frag("I", (f"{x} < {wire.count}",), (), f"{table}[{x}]", empty)
            return frag, v + 1, off + 4
        return None

    def walk(self, wire: Any, v: int, off: int) -> _Walk:
        """Every compiled alternative of `wire` starting at variable `v`, byte `off`."""
        leaf = self.leaf(wire, v, off)
        if leaf is not None:
            yield leaf
        elif isinstance(wire, b.Struct):
            yield from self.struct(wire, v, off)
        elif isinstance(wire, b.Enum):
            for index, (_, layout) in enumerate(wire.variants):
                yield from self.tagged("I", index, layout, v, off)
        elif isinstance(wire, b.Option):
            none = _Frag("B", (f"v{v} == 0",), ((off, 0),), "None", frozenset())
            yield none, v + 1, off + 1
            yield from self.tagged("B", 1, wire.item, v, off)
        elif isinstance(wire, b.Array):
            for frags, v2, o2 in self.sequence([wire.item] * wire.n, v, off):
                yield _join(frags, "(" + "".join(f.expr + ", " for f in frags) + ")"), v2, o2
        # Vec, I256 and the opaque whitelist payload have no fixed layout: nothing to yield.

    def tagged(self, code: str, index: int, layout: Any, v: int, off: int) -> _Walk:
        tag = _Frag(code, (f"v{v} == {index}",), ((off, index & 0xFF),), "", frozenset())
        size = struct.calcsize("<" + code)
        for frag, v2, o2 in self.walk(layout, v + 1, off + size):
            yield _join([tag, frag], frag.expr), v2, o2

    def struct(self, wire: b.Struct, v: int, off: int) -> _Walk:
        names = [name for name, _ in wire.fields]
        for frags, v2, o2 in self.sequence([t for _, t in wire.fields], v, off):
            if wire.cls in _INTERNED:
                get, fill = _INTERNED[wire.cls]
                raw = frags[0].expr  # a variable name: evaluating it twice is free
                expr = f"({get}({raw}) or {fill}({raw}))"
            else:
                cls = self.bind(wire.cls.__name__, wire.cls)
                args = ", ".join(f"{n}={f.expr}" for n, f in zip(names, frags, strict=True))
                expr = f"{cls}({args})"
            joined = _join(frags, expr)
            yield (
                _Frag(joined.fmt, joined.checks, joined.tags, expr, joined.classes | {wire.cls}),
                v2,
                o2,
            )

    def sequence(
        self, wires: list[Any], v: int, off: int
    ) -> Iterator[tuple[list[_Frag], int, int]]:
        if not wires:
            yield [], v, off
            return
        for head, v1, o1 in self.walk(wires[0], v, off):
            for tail, v2, o2 in self.sequence(wires[1:], v1, o1):
                yield [head, *tail], v2, o2


def _join(frags: list[_Frag], expr: str) -> _Frag:
    return _Frag(
        "".join(f.fmt for f in frags),
        tuple(c for f in frags for c in f.checks),
        tuple(t for f in frags for t in f.tags),
        expr,
        frozenset().union(*(f.classes for f in frags)),
    )


def _rank(frag: _Frag) -> int:
    return next((i for i, hot in enumerate(_HOT) if hot <= frag.classes), len(_HOT))


def _function_source(name: str, frag: _Frag, nvars: int, unpack: str, prefilter: bool) -> str:
    variables = "".join(f"v{i}, " for i in range(nvars))
    checks = " and ".join(frag.checks) or "True"
    lines = [f"def {name}(buf, off):\n"]
    if prefilter and frag.tags:
        # A size's later candidates first look at their tags' low bytes: a mismatch is
        # rejected without unpacking. The first (hot) candidate skips this: it usually fits.
        tags = " or ".join(f"buf[off + {o}] != {t}" for o, t in frag.tags)
        lines.append(f"    if {tags}:\n        return None\n")
    lines.append(f"    ({variables}) = {unpack}(buf, off)\n")
    lines.append(f"    if not ({checks}):\n        return None\n")
    lines.append(f"    return {frag.expr}\n")
    return "".join(lines)


class Layouts(NamedTuple):
    """Payload size -> its hottest compiled decoder, and the other candidates in order."""

    first: dict[int, FastDecode]
    rest: dict[int, tuple[FastDecode, ...]]


def compile_layouts(root: b.Enum) -> Layouts:
    compiler = _Compiler()
    namespace = compiler.names
    namespace["_from_bytes"] = int.from_bytes
    by_size: dict[int, list[tuple[int, int, _Frag, int]]] = {}
    for frag, nvars, size in compiler.walk(root, 0, 0):
        if struct.calcsize("<" + frag.fmt) != size:
            raise RuntimeError(f"layout {frag.fmt} is not {size} bytes")  # a compiler bug
        entries = by_size.setdefault(size, [])
        entries.append((_rank(frag), len(entries), frag, nvars))
    layouts = Layouts({}, {})
    for size, entries in by_size.items():
        decoders: list[FastDecode] = []
        for i, (_, _, frag, nvars) in enumerate(sorted(entries, key=lambda e: e[:2])):
            name = f"_decode_{size}_{i}"
            unpack = compiler.bind("unpack", struct.Struct("<" + frag.fmt).unpack_from)
            exec(_function_source(name, frag, nvars, unpack, prefilter=i > 0), namespace)
            decoders.append(namespace[name])
        layouts.first[size] = decoders[0]
        layouts.rest[size] = tuple(decoders[1:])
    return layouts
