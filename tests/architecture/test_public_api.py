"""Each floor's public API, pinned: a name added to or dropped from a package's `__all__`
is a decision, made here on purpose, not by accident."""

from __future__ import annotations

import importlib

import pytest

PUBLIC_API = {
    "exex_bridge": {
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
    },
    "arena": {
        "AlreadySubscribedError",
        "ArenaEngine",
        "ArenaError",
        "ArenaMetrics",
        "AssemblerPhase",
        "BlockAssembler",
        "CheckpointError",
        "LossCause",
        "Pipeline",
        "PipelineConfig",
        "PoolStatus",
        "Settled",
        "SpillError",
        "StaleReason",
        "StateFileError",
        "StateUnavailableError",
        "SyncLoss",
        "SyncState",
        "SyncStatus",
        "TickMapError",
        "UnknownPoolError",
        "Violation",
        "load_state",
        "open_pipeline",
        "read_state_file",
        "write_state_file",
    },
    "pathfinder": {
        "CallbackSink",
        "JsonlSink",
        "MathError",
        "NatsSink",
        "Opportunity",
        "OpportunitySink",
        "PathRecalculator",
        "PathfinderConfig",
        "PathfinderError",
        "SinkError",
        "opportunities_subject",
    },
    "executor": {
        "HOP_BYTES",
        "MAX_HOPS",
        "AttemptStatus",
        "ChainRpcError",
        "ContractError",
        "ExecutorError",
        "ExecutorSettings",
        "Hop",
        "HopKind",
        "JournalEntry",
        "JournalWriter",
        "OpportunityExecutor",
        "PathEncodingError",
        "RouteError",
        "SigningKeyError",
        "decode_path",
        "encode_path",
        "read_journal",
    },
    "sidecar": {"ArenaSettings", "ConfigError", "DirectoryError", "SidecarError", "load_settings"},
    "exex_bridge.rpc": {
        "BlockingRpc",
        "BreakerState",
        "CircuitBreaker",
        "Endpoint",
        "EndpointFailedError",
        "EndpointLimits",
        "JsonRpcProvider",
        "RpcAnswerError",
        "RpcClient",
        "RpcError",
        "RpcLoopThread",
        "RpcMetrics",
        "RpcUnavailableError",
        "RpcWriteUnconfirmedError",
        "TokenBucket",
        "endpoints_from",
        "ranked",
    },
}


@pytest.mark.parametrize("package", sorted(PUBLIC_API))
def test_the_public_api_is_what_was_decided(package: str) -> None:
    module = importlib.import_module(package)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{package} has no __all__"
    assert len(exported) == len(set(exported)), "a name is exported twice"
    assert set(exported) == PUBLIC_API[package]


@pytest.mark.parametrize("package", sorted(PUBLIC_API))
def test_every_exported_name_exists(package: str) -> None:
    module = importlib.import_module(package)
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert missing == []
