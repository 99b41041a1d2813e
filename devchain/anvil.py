"""A real anvil node on 127.0.0.1 for tests, demos and recordings."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Final, Self, final

from web3 import HTTPProvider, Web3

from devchain.errors import AnvilNotFoundError, AnvilStartError

log = logging.getLogger(__name__)

ANVIL_ENV_VAR: Final = "ARENA_ANVIL"
ANVIL_RELATIVE_PATH: Final = Path("node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil")
DEFAULT_MNEMONIC: Final = "test test test test test test test test test test test junk"
_LISTENING = re.compile(r"Listening on (?P<host>[0-9.]+):(?P<port>\d+)")
_STOP_TIMEOUT_S: Final = 10.0


def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]


def find_anvil_binary(root: Path | None = None) -> Path:
    """`$ARENA_ANVIL` if set, else the npm package's binary under the repository root."""
    env = os.environ.get(ANVIL_ENV_VAR)
    candidate = Path(env) if env else (root or repo_root()) / ANVIL_RELATIVE_PATH
    if not (candidate.is_file() and os.access(candidate, os.X_OK)):
        raise AnvilNotFoundError(candidate)
    return candidate


@dataclass(frozen=True, kw_only=True)
class AnvilConfig:
    chain_id: int = 31337
    mnemonic: str = DEFAULT_MNEMONIC
    accounts: int = 10
    balance_eth: int = 10_000
    genesis_timestamp: int = 1_700_000_000
    # Seconds added per mined block (anvil_setBlockTimestampInterval), so block timestamps
    # depend only on the block count, never on the wall clock.
    timestamp_interval: int | None = 12
    gas_limit: int = 60_000_000
    # None: mine only on demand (evm_mine / anvil_mine); a number: interval mining.
    block_time: int | None = None
    # fifo keeps execution order equal to submission order across senders.
    order: str = "fifo"
    startup_timeout_s: float = 30.0
    extra_args: tuple[str, ...] = field(default_factory=tuple)

    def arguments(self) -> list[str]:
        args = [
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--chain-id",
            str(self.chain_id),
            "--mnemonic",
            self.mnemonic,
            "--accounts",
            str(self.accounts),
            "--balance",
            str(self.balance_eth),
            "--timestamp",
            str(self.genesis_timestamp),
            "--gas-limit",
            str(self.gas_limit),
            "--order",
            self.order,
        ]
        if self.block_time is None:
            args.append("--no-mining")
        else:
            args += ["--block-time", str(self.block_time)]
        return [*args, *self.extra_args]


@final
class AnvilNode:
    """One anvil process. Use as a (sync or async) context manager, or start()/stop()."""

    def __init__(self, config: AnvilConfig | None = None, binary: Path | None = None) -> None:
        self.config = config or AnvilConfig()
        self._binary = binary
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._ready = threading.Event()
        self._port: int | None = None
        self._output_tail: list[str] = []

    @property
    def port(self) -> int:
        if self._port is None:
            raise AnvilStartError("anvil is not running", self._output_tail)
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def web3(self, timeout_s: float = 60.0) -> Web3:
        return Web3(HTTPProvider(self.url, request_kwargs={"timeout": timeout_s}))

    def start(self) -> None:
        if self._process is not None:
            raise AnvilStartError("anvil already started", self._output_tail)
        binary = self._binary or find_anvil_binary()
        self._process = subprocess.Popen(
            [str(binary), *self.config.arguments()],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        stdout = self._process.stdout
        if stdout is None:  # pragma: no cover - Popen with PIPE always has it
            raise AnvilStartError("anvil has no stdout pipe", [])
        self._reader = threading.Thread(
            target=self._read_output, args=(stdout,), name="anvil-stdout", daemon=True
        )
        self._reader.start()
        if not self._ready.wait(self.config.startup_timeout_s) or self._port is None:
            self.stop()
            raise AnvilStartError(
                f"anvil not listening within {self.config.startup_timeout_s}s",
                self._output_tail,
            )
        self._configure()
        log.info("anvil listening on %s (pid %d)", self.url, self._process.pid)

    def _configure(self) -> None:
        from devchain.rpc import rpc_call

        w3 = self.web3()
        if self.config.timestamp_interval is not None:
            rpc_call(w3, "anvil_setBlockTimestampInterval", [self.config.timestamp_interval])

    def _read_output(self, stdout: IO[str]) -> None:
        # Drains anvil's output for its whole life: a full pipe would block the node.
        for line in stdout:
            text = line.rstrip()
            self._output_tail = [*self._output_tail[-40:], text]
            if not self._ready.is_set():
                match = _LISTENING.search(text)
                if match:
                    self._port = int(match["port"])
                    self._ready.set()
            else:
                log.debug("anvil: %s", text)
        self._ready.set()  # EOF: wake a waiting start() so it fails fast

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._reader is not None:
            self._reader.join(_STOP_TIMEOUT_S)
        if process.stdout is not None:
            process.stdout.close()
        self._port = None
        self._ready.clear()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)
