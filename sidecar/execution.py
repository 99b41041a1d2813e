"""The executor from the typed settings: `arena execute`'s settings and the sink
`arena run` attaches when `[executor] enabled` is true.

`executor_settings` checks what the executor needs (a node, a contract, a whitelist, a
journal) and names the setting that is missing; `open_executor_sink` loads the key,
checks the node and the contract (synchronous RPC, before the stream is read) and puts
the executor on its own thread (`executor.worker.ExecutorThread`).
"""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry

from executor.errors import ExecutorError
from executor.session import OpportunityExecutor
from executor.settings import GWEI, ExecutorSettings
from executor.worker import ExecutorThread
from exex_bridge.rpc import RpcMetrics
from sidecar.errors import ConfigError
from sidecar.executor_section import DEFAULT_JOURNAL_NAME
from sidecar.settings import RUN, ArenaSettings


class ExecutorStartError(ConfigError):
    """The executor cannot start as configured (the key, the node, the contract)."""

    def __init__(self, reason: str) -> None:
        super().__init__("executor", None, reason)


def _required(flag: str, key: str) -> ConfigError:
    return ConfigError(flag, None, f"required (or [executor] {key} in the --config file)")


def _hex(address: bytes | None) -> str | None:
    return None if address is None else "0x" + address.hex()


def _path(path: Path | None) -> str | None:
    return None if path is None else str(path)


def _journal(settings: ArenaSettings, command: str) -> Path:
    journal = settings.executor.journal
    if journal is not None:
        return journal
    if command == RUN:
        return settings.engine.data_dir / DEFAULT_JOURNAL_NAME
    raise _required("--journal", "journal")


def executor_settings(settings: ArenaSettings, command: str) -> ExecutorSettings:
    """The executor's settings for `command` (ConfigError naming what is missing)."""
    section = settings.executor
    # either may list several endpoints: the executor reads from all of them (its own
    # pool) and sends to the first only (`executor.chain_pool`)
    rpc_url = section.rpc_url or settings.rpc.url
    if rpc_url is None:
        raise ConfigError("--rpc", None, "required (or [executor] rpc_url, or [rpc] url)")
    contract = _hex(section.contract)
    if contract is None:
        raise _required("--executor", "contract")
    whitelist = settings.state.whitelist
    if whitelist is None:
        raise ConfigError("--whitelist", None, "required (or [state] whitelist)")
    if section.channel == "bundle" and not section.relays:
        raise ConfigError("--relay", None, "required by --channel bundle (or [executor] relays)")
    return ExecutorSettings(
        rpc_url=rpc_url,
        executor=contract,
        whitelist=str(whitelist),
        journal=str(_journal(settings, command)),
        key_file=None if section.key_file is None else str(section.key_file),
        password_file=None if section.password_file is None else str(section.password_file),
        live=section.live,
        priority_fee_per_gas=section.priority_fee_gwei * GWEI,
        gas_margin_percent=section.gas_margin_percent,
        deadline_blocks=section.deadline_blocks,
        min_net_profit=section.min_net_profit,
        max_amount_in=dict(section.max_amount_in),
        coinbase_share_bps=section.coinbase_share_bps,
        wrapped_native=_hex(section.wrapped_native),
        receipt_timeout_s=section.receipt_timeout,
        priority_share_bps=section.priority_share_bps,
        max_fee_per_gas=section.max_fee_gwei * GWEI,
        max_gas_cost=section.max_gas_cost,
        max_coinbase_share_bps=section.max_coinbase_share_bps,
        nats_url=section.nats_url,
        lane_dir=_path(section.lane_dir),
        lane_bucket=section.lane_bucket,
        lane_lease_s=section.lane_lease,
        lane_fallback_local=section.lane_fallback_local,
        kill_file=_path(section.kill_file),
        kill_subject=section.kill_subject,
        max_reverted=section.max_reverted,
        max_gas_spent=section.max_gas_spent,
        loss_window_blocks=section.loss_window_blocks,
        channel=section.channel,
        relays=section.relays,
        relay_auth_key_file=_path(section.relay_auth_key_file),
        bundle_blocks=section.bundle_blocks,
        confirm_depth=section.confirm_depth,
        drop_after_blocks=section.drop_after_blocks,
    )


def open_executor_sink(
    settings: ArenaSettings,
    registry: CollectorRegistry | None = None,
    rpc_metrics: RpcMetrics | None = None,
) -> ExecutorThread:
    """The executor `arena run` hands every batch of opportunities to. `rpc_metrics`: the
    arena's `arena_rpc_*` families, which the executor's endpoints join as client
    `executor` (else new ones in `registry`)."""
    wanted = executor_settings(settings, RUN)
    try:
        executor = OpportunityExecutor.open(wanted, registry, rpc_metrics=rpc_metrics)
    except (ExecutorError, OSError) as exc:
        raise ExecutorStartError(str(exc)) from None
    return ExecutorThread(
        executor,
        settings.executor.queue_batches,
        registry=registry,
        grace_s=settings.service.stop_grace,
    )
