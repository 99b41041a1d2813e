"""The JetStream stream a relay fills and arenas consume: its name, subject, message ids
and headers, and how it is created.

One stream per chain, `EXEX_{CHAIN}`, on the subject `exex.{chain}.frames`; each message
is a batch of consecutive socket frames, byte for byte with their length prefixes
(`frame_batch`). A frame's position is `{epoch}:{stream_seq}` (`MessageId`): `epoch`
counts the producer sessions the relay has seen (a producer restart starts its
`stream_seq` again at 1, and the new epoch keeps the positions distinct); a frame without
a `stream_seq` (Ping, Pong, UpdateWhitelist) is `{epoch}:{last stream_seq}.{n}`. The
message id (`Nats-Msg-Id`, JetStream's deduplication key) names the batch's first and
last frame, `{epoch}:{first}-{last}` (`BatchId`; a batch never spans two epochs). The
message that begins an epoch above 0 carries `Exex-Restart`, so a consumer sees the
restart where a socket client would have seen it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

import nats.errors
import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig

from exex_bridge.errors import RelayStreamError

RESTART_HEADER: Final = "Exex-Restart"
MSG_ID_HEADER: Final = "Nats-Msg-Id"
EXPECTED_LAST_HEADER: Final = "Nats-Expected-Last-Msg-Id"
_CHAIN: Final = re.compile(r"[A-Za-z0-9_-]+")


def check_chain(chain: str) -> str:
    """A chain name usable as one subject token and in a stream name."""
    if not _CHAIN.fullmatch(chain):
        raise RelayStreamError(
            f"EXEX_{chain}", f"chain name {chain!r} must be letters, digits, '_' or '-'"
        )
    return chain


def stream_name(chain: str) -> str:
    return f"EXEX_{check_chain(chain).upper().replace('-', '_')}"


def frames_subject(chain: str) -> str:
    return f"exex.{check_chain(chain)}.frames"


def default_durable(chain: str) -> str:
    return f"arena-{check_chain(chain)}"


@dataclass(frozen=True, slots=True)
class MessageId:
    """`epoch:seq` for a sequenced frame, `epoch:seq.n` for the n-th unsequenced frame
    after it."""

    epoch: int
    seq: int
    extra: int = 0

    def __str__(self) -> str:
        base = f"{self.epoch}:{self.seq}"
        return base if not self.extra else f"{base}.{self.extra}"

    @classmethod
    def parse(cls, text: str) -> MessageId | None:
        epoch, sep, rest = text.partition(":")
        seq, _, extra = rest.partition(".")
        try:
            return cls(int(epoch), int(seq), int(extra) if extra else 0) if sep else None
        except ValueError:
            return None


@dataclass(frozen=True, slots=True)
class BatchId:
    """The message id of a batch: its first and last frame's positions, one epoch."""

    first: MessageId
    last: MessageId

    def __str__(self) -> str:
        last = self.last
        tail = str(last.seq) if not last.extra else f"{last.seq}.{last.extra}"
        return f"{self.first}-{tail}"

    @classmethod
    def parse(cls, text: str) -> BatchId | None:
        """Also reads a single position (`{epoch}:{seq}`) as a batch of that frame."""
        head, dash, tail = text.partition("-")
        first = MessageId.parse(head)
        if first is None:
            return None
        if not dash:
            return cls(first, first)
        last = MessageId.parse(f"{first.epoch}:{tail}")
        return None if last is None else cls(first, last)


@dataclass(frozen=True, slots=True)
class Retention:
    """How long and how much of the stream JetStream keeps (oldest dropped first), and
    the window in which a repeated message id is dropped."""

    max_age: float
    max_bytes: int
    duplicate_window: float


async def ensure_stream(js: JetStreamContext, chain: str, retention: Retention) -> str:
    """Create the chain's stream, or bring an existing one to `retention`; its name."""
    name = stream_name(chain)
    config = StreamConfig(
        name=name,
        subjects=[frames_subject(chain)],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        max_age=retention.max_age,
        max_bytes=retention.max_bytes,
        duplicate_window=retention.duplicate_window,
    )
    try:
        try:
            await js.stream_info(name)
        except nats.js.errors.NotFoundError:
            await js.add_stream(config)
        else:
            await js.update_stream(config)
    except nats.js.errors.APIError as exc:
        raise RelayStreamError(name, f"cannot be set up: {exc.description}") from exc
    except (nats.errors.TimeoutError, nats.js.errors.ServiceUnavailableError) as exc:
        raise RelayStreamError(
            name, f"JetStream did not answer ({exc!r}); is it enabled (-js)?"
        ) from exc
    return name
