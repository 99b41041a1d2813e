"""The channel the settings name: the public mempool, or bundle relays (whose requests
are signed with the relays' own auth key, never the sending key)."""

from __future__ import annotations

from executor.chain import ChainClient
from executor.channels.auth import load_auth_key
from executor.channels.bundle import BundleChannel
from executor.channels.mempool import MempoolChannel
from executor.channels.relay import RelayClient
from executor.channels.submission import Channel
from executor.errors import ContractError
from executor.outcome_metrics import OutcomeMetrics
from executor.settings import ExecutorSettings


def open_channel(
    settings: ExecutorSettings, chain: ChainClient, metrics: OutcomeMetrics
) -> Channel:
    """The channel the settings name; a bundle channel loads the relays' auth key."""
    if settings.channel == "mempool":
        return MempoolChannel(chain, metrics)
    if settings.channel != "bundle":
        raise ContractError("channel", f"{settings.channel!r} is neither mempool nor bundle")
    if not settings.relays:
        raise ContractError("channel", "the bundle channel needs at least one relay URL")
    auth = load_auth_key(settings.relay_auth_key_file)
    relays = [RelayClient(url, auth) for url in settings.relays]
    return BundleChannel(relays, settings.bundle_blocks, metrics)
