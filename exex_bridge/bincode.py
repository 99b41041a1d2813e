"""bincode 1.x (legacy config) primitives and the alloy types, as composable wire types.

A `WireType` reads one value from a `Reader` and appends one value to a `bytearray`.
Every length is checked against the bytes left before anything is allocated, so a frame
can never make the decoder allocate more than the frame itself.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import Any, Final, Protocol

from exex_bridge.errors import CodecError

_U32 = struct.Struct("<I")
_I32 = struct.Struct("<i")
_U64 = struct.Struct("<Q")
_I64 = struct.Struct("<q")

U64_MAX: Final = (1 << 64) - 1
U128_MAX: Final = (1 << 128) - 1
I128_MIN: Final = -(1 << 127)
I128_MAX: Final = (1 << 127) - 1
U256_MAX: Final = (1 << 256) - 1
I256_MIN: Final = -(1 << 255)
I256_MAX: Final = (1 << 255) - 1


class Reader:
    """A cursor over one frame's payload that knows where it is (for errors)."""

    __slots__ = ("buf", "end", "path", "pos", "stream_seq")

    def __init__(self, buf: bytes | memoryview, pos: int = 0, end: int | None = None) -> None:
        self.buf = buf
        self.pos = pos
        self.end = len(buf) if end is None else end
        self.path: list[str] = []
        self.stream_seq: int | None = None

    def fail(self, reason: str, at: int | None = None) -> CodecError:
        return CodecError(
            reason,
            offset=self.pos if at is None else at,
            path="".join(self.path) or "<frame>",
            stream_seq=self.stream_seq,
        )

    def take(self, n: int) -> bytes:
        if n > self.end - self.pos:
            raise self.fail(f"needs {n} bytes, {self.end - self.pos} left")
        start = self.pos
        self.pos = start + n
        return bytes(self.buf[start : start + n])

    def unpack(self, fmt: struct.Struct) -> Any:
        if fmt.size > self.end - self.pos:
            raise self.fail(f"needs {fmt.size} bytes, {self.end - self.pos} left")
        value = fmt.unpack_from(self.buf, self.pos)[0]
        self.pos += fmt.size
        return value

    def length(self, min_element_size: int) -> int:
        """A u64 element count, bounded by what the remaining bytes can hold."""
        start = self.pos
        n: int = self.unpack(_U64)
        if n * max(min_element_size, 1) > self.end - self.pos:
            raise self.fail(f"length {n} exceeds the {self.end - self.pos} bytes left", start)
        return n


class WireType(Protocol):
    min_size: int

    def read(self, r: Reader) -> Any: ...

    def write(self, out: bytearray, value: Any) -> None: ...


def _range_error(what: str, value: object) -> CodecError:
    return CodecError(f"{what} out of range: {value!r}", offset=0, path="<encode>")


class _Fixed:
    def __init__(self, fmt: struct.Struct, lo: int, hi: int, name: str) -> None:
        self.fmt, self.lo, self.hi, self.name = fmt, lo, hi, name
        self.min_size = fmt.size

    def read(self, r: Reader) -> int:
        value: int = r.unpack(self.fmt)
        return value

    def write(self, out: bytearray, value: int) -> None:
        if not self.lo <= value <= self.hi:
            raise _range_error(self.name, value)
        out += self.fmt.pack(value)


class _U8:
    min_size = 1

    def read(self, r: Reader) -> int:
        return r.take(1)[0]

    def write(self, out: bytearray, value: int) -> None:
        if not 0 <= value <= 0xFF:
            raise _range_error("u8", value)
        out.append(value)


class _Bool:
    min_size = 1

    def read(self, r: Reader) -> bool:
        at = r.pos
        b = r.take(1)[0]
        if b > 1:
            raise r.fail(f"bool byte is {b}, not 0 or 1", at)
        return b == 1

    def write(self, out: bytearray, value: bool) -> None:
        out.append(1 if value else 0)


class _Int128:
    min_size = 16

    def __init__(self, signed: bool) -> None:
        self.signed = signed
        self.lo, self.hi = (I128_MIN, I128_MAX) if signed else (0, U128_MAX)

    def read(self, r: Reader) -> int:
        return int.from_bytes(r.take(16), "little", signed=self.signed)

    def write(self, out: bytearray, value: int) -> None:
        if not self.lo <= value <= self.hi:
            raise _range_error("i128" if self.signed else "u128", value)
        out += value.to_bytes(16, "little", signed=self.signed)


class _U256:
    """alloy `U256`: u64 length 32, then 32 bytes big-endian."""

    min_size = 40

    def read(self, r: Reader) -> int:
        at = r.pos
        n = r.unpack(_U64)
        if n != 32:
            raise r.fail(f"U256 length is {n}, not 32", at)
        return int.from_bytes(r.take(32), "big")

    def write(self, out: bytearray, value: int) -> None:
        if not 0 <= value <= U256_MAX:
            raise _range_error("U256", value)
        out += _U64.pack(32)
        out += value.to_bytes(32, "big")


class _I256:
    """alloy `I256`: u64 length n, a sign byte (1 = non-negative), the magnitude LE trimmed.

    Only the canonical form is accepted: no trailing zero magnitude byte, no negative zero.
    """

    min_size = 9

    def read(self, r: Reader) -> int:
        at = r.pos
        n = r.unpack(_U64)
        if not 1 <= n <= 33:
            raise r.fail(f"I256 length is {n}, not 1..=33", at)
        raw = r.take(n)
        sign, magnitude_bytes = raw[0], raw[1:]
        if sign > 1:
            raise r.fail(f"I256 sign byte is {sign}, not 0 or 1", at + 8)
        if magnitude_bytes and magnitude_bytes[-1] == 0:
            raise r.fail("I256 magnitude has a trailing zero byte (not canonical)", at + 8)
        magnitude = int.from_bytes(magnitude_bytes, "little")
        if sign == 1:
            if magnitude > I256_MAX:
                raise r.fail("I256 magnitude exceeds 2^255 - 1", at + 8)
            return magnitude
        if magnitude == 0:
            raise r.fail("I256 negative zero (not canonical)", at + 8)
        if magnitude > -I256_MIN:
            raise r.fail("I256 magnitude exceeds 2^255", at + 8)
        return -magnitude

    def write(self, out: bytearray, value: int) -> None:
        if not I256_MIN <= value <= I256_MAX:
            raise _range_error("I256", value)
        magnitude = abs(value)
        body = magnitude.to_bytes((magnitude.bit_length() + 7) // 8, "little")
        out += _U64.pack(1 + len(body))
        out.append(1 if value >= 0 else 0)
        out += body


class _Address:
    """alloy `Address`: u64 length 20, then the 20 bytes."""

    min_size = 28

    def read(self, r: Reader) -> bytes:
        at = r.pos
        n = r.unpack(_U64)
        if n != 20:
            raise r.fail(f"Address length is {n}, not 20", at)
        return r.take(20)

    def write(self, out: bytearray, value: bytes) -> None:
        if len(value) != 20:
            raise _range_error("Address length", len(value))
        out += _U64.pack(20)
        out += value


class _RawBytes:
    """`[u8; N]`: N raw bytes, no length."""

    def __init__(self, n: int) -> None:
        self.min_size = n

    def read(self, r: Reader) -> bytes:
        return r.take(self.min_size)

    def write(self, out: bytearray, value: bytes) -> None:
        if len(value) != self.min_size:
            raise _range_error(f"[u8; {self.min_size}] length", len(value))
        out += value


class Vec:
    """`Vec<T>`: u64 count, then the elements; read as a tuple."""

    min_size = 8

    def __init__(self, item: WireType) -> None:
        self.item = item

    def read(self, r: Reader) -> tuple[Any, ...]:
        n = r.length(self.item.min_size)
        return tuple(self.item.read(r) for _ in range(n))

    def write(self, out: bytearray, value: Sequence[Any]) -> None:
        out += _U64.pack(len(value))
        for v in value:
            self.item.write(out, v)


class Array:
    """`[T; N]`: exactly N elements, no length; read as a tuple."""

    def __init__(self, item: WireType, n: int) -> None:
        self.item, self.n = item, n
        self.min_size = item.min_size * n

    def read(self, r: Reader) -> tuple[Any, ...]:
        return tuple(self.item.read(r) for _ in range(self.n))

    def write(self, out: bytearray, value: Sequence[Any]) -> None:
        if len(value) != self.n:
            raise _range_error(f"array of {self.n}", len(value))
        for v in value:
            self.item.write(out, v)


class Option:
    """`Option<T>`: tag 0 = None, 1 = Some followed by T."""

    min_size = 1

    def __init__(self, item: WireType) -> None:
        self.item = item

    def read(self, r: Reader) -> Any:
        at = r.pos
        tag = r.take(1)[0]
        if tag == 0:
            return None
        if tag == 1:
            return self.item.read(r)
        raise r.fail(f"Option tag is {tag}, not 0 or 1", at)

    def write(self, out: bytearray, value: Any) -> None:
        if value is None:
            out.append(0)
        else:
            out.append(1)
            self.item.write(out, value)


class Struct:
    """A struct: its fields in declaration order, built into `cls(**fields)`."""

    def __init__(self, cls: Callable[..., Any], fields: Sequence[tuple[str, WireType]]) -> None:
        self.cls = cls
        self.fields = tuple(fields)
        self.min_size = sum(t.min_size for _, t in self.fields)

    def read(self, r: Reader) -> Any:
        values: dict[str, Any] = {}
        for name, wire in self.fields:
            r.path.append("." + name)
            values[name] = wire.read(r)
            r.path.pop()
        return self.cls(**values)

    def write(self, out: bytearray, value: Any) -> None:
        for name, wire in self.fields:
            wire.write(out, getattr(value, name))


class Enum:
    """A Rust enum: u32 variant index, then the variant's fields.

    `variants` pairs each wire class with its layout; the index is the position.
    """

    min_size = 4

    def __init__(self, name: str, variants: Sequence[tuple[type[Any], WireType]]) -> None:
        self.name = name
        self.variants = tuple(variants)
        self.index_of = {cls: i for i, (cls, _) in enumerate(self.variants)}

    def read(self, r: Reader) -> Any:
        at = r.pos
        index = r.unpack(_U32)
        if index >= len(self.variants):
            raise r.fail(f"{self.name} variant index {index} is unknown", at)
        cls, layout = self.variants[index]
        r.path.append(f"::{cls.__name__}")
        value = layout.read(r)
        r.path.pop()
        return value

    def write(self, out: bytearray, value: Any) -> None:
        index = self.index_of.get(type(value))
        if index is None:
            raise _range_error(f"{self.name} variant", type(value).__name__)
        out += _U32.pack(index)
        self.variants[index][1].write(out, value)


class IntEnumType:
    """A fieldless Rust enum mapped to a Python IntEnum."""

    min_size = 4

    def __init__(self, cls: Callable[[int], Any], count: int, name: str) -> None:
        self.cls, self.count, self.name = cls, count, name

    def read(self, r: Reader) -> Any:
        at = r.pos
        index = r.unpack(_U32)
        if index >= self.count:
            raise r.fail(f"{self.name} variant index {index} is unknown", at)
        return self.cls(index)

    def write(self, out: bytearray, value: int) -> None:
        if not 0 <= int(value) < self.count:
            raise _range_error(self.name, value)
        out += _U32.pack(int(value))


U8: Final = _U8()
BOOL: Final = _Bool()
U32: Final = _Fixed(_U32, 0, 0xFFFFFFFF, "u32")
I32: Final = _Fixed(_I32, -(1 << 31), (1 << 31) - 1, "i32")
U64: Final = _Fixed(_U64, 0, U64_MAX, "u64")
I64: Final = _Fixed(_I64, -(1 << 63), (1 << 63) - 1, "i64")
U128: Final = _Int128(signed=False)
I128: Final = _Int128(signed=True)
U256: Final = _U256()
I256: Final = _I256()
ADDRESS: Final = _Address()
BYTES32: Final = _RawBytes(32)
