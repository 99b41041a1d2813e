"""The Liquidity ExEx wire: messages, codec, framing, sources (the socket, a relayed
JetStream stream), the JetStream relay, recordings, whitelist; the producers of the wire
live in `exex_bridge.producers` (imported on their own: they need web3)."""

from exex_bridge.codec import decode_frames, decode_message, encode_frame, encode_message
from exex_bridge.connection_state import ConnectionState
from exex_bridge.errors import (
    BridgeError,
    CodecError,
    FrameTooLargeError,
    NatsUnavailableError,
    NotASocketError,
    RecordingFormatError,
    RelayStreamError,
    SocketOwnershipError,
    SocketUnavailableError,
    TruncatedStreamError,
    WhitelistError,
)
from exex_bridge.frame_relay import FrameRelay
from exex_bridge.framing import DEFAULT_MAX_FRAME, LENGTH_PREFIX, FrameSplitter, frame
from exex_bridge.jetstream_source import JetStreamSource
from exex_bridge.recording import (
    RecordingMetadata,
    RecordingReader,
    RecordingWriter,
    open_recording,
)
from exex_bridge.socket_source import Disconnection, SocketSource, SocketSourceStats
from exex_bridge.whitelist import (
    Token,
    Whitelist,
    WhitelistedPool,
    load_whitelist_file,
    parse_pools_document,
    parse_remove_document,
)
from exex_bridge.whitelist_feed import WhitelistFeed

__all__ = [
    "DEFAULT_MAX_FRAME",
    "LENGTH_PREFIX",
    "BridgeError",
    "CodecError",
    "ConnectionState",
    "Disconnection",
    "FrameRelay",
    "FrameSplitter",
    "FrameTooLargeError",
    "JetStreamSource",
    "NatsUnavailableError",
    "NotASocketError",
    "RecordingFormatError",
    "RecordingMetadata",
    "RecordingReader",
    "RecordingWriter",
    "RelayStreamError",
    "SocketOwnershipError",
    "SocketSource",
    "SocketSourceStats",
    "SocketUnavailableError",
    "Token",
    "TruncatedStreamError",
    "Whitelist",
    "WhitelistError",
    "WhitelistFeed",
    "WhitelistedPool",
    "decode_frames",
    "decode_message",
    "encode_frame",
    "encode_message",
    "frame",
    "load_whitelist_file",
    "parse_pools_document",
    "parse_remove_document",
    "open_recording",
]
