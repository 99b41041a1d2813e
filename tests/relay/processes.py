"""`arena` subcommands as real subprocesses for the relay tests: stderr collected line by
line (a test waits for a line), metrics scraped, SIGTERM or SIGKILL on demand."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import urllib.request
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from arena.pipeline import PipelineConfig, open_pipeline
from arena.state_file import write_state_file

ROOT = Path(__file__).resolve().parents[2]


class ArenaProcess:
    """`python -m sidecar.cli ARGS`; `lines` holds its stderr so far."""

    def __init__(self, *args: str | Path) -> None:
        self.args = [str(a) for a in args]
        self.lines: list[str] = []
        self._changed = asyncio.Event()
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> ArenaProcess:
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "sidecar.cli",
            *self.args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=ROOT,
        )
        self._reader = asyncio.create_task(self._read())
        return self

    @property
    def proc(self) -> asyncio.subprocess.Process:
        if self._proc is None:
            raise RuntimeError("not started")
        return self._proc

    async def _read(self) -> None:
        stream = self.proc.stderr
        while stream is not None and (line := await stream.readline()):
            self.lines.append(line.decode(errors="replace").rstrip("\n"))
            self._changed.set()
            self._changed = asyncio.Event()

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    async def wait_for(self, needle: str) -> str:
        """The first stderr line containing `needle` (fails if the process ends first)."""
        seen = 0
        while True:
            for line in self.lines[seen:]:
                if needle in line:
                    return line
            seen = len(self.lines)
            if self._reader is not None and self._reader.done():
                raise AssertionError(f"{needle!r} never logged:\n{self.log}")
            await self._changed.wait()

    async def metrics_url(self) -> str:
        line = await self.wait_for("serving metrics at http://")
        return line.rsplit(" ", 1)[1]

    async def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
        code = await self.proc.wait()
        if self._reader is not None:
            await self._reader
        return code

    async def finish(self) -> tuple[int, str]:
        """Wait for the process to end by itself: (exit status, stdout)."""
        stdout = self.proc.stdout
        out = await stdout.read() if stdout is not None else b""
        await self.proc.wait()
        if self._reader is not None:
            await self._reader
        return self.proc.returncode or 0, out.decode()


def scrape(url: str) -> dict[str, float]:
    """Every sample without labels (and `name{reason=...}` with), by name."""
    with urllib.request.urlopen(url, timeout=10) as response:
        text: str = response.read().decode()
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            found[sample.name + (f"{{{labels}}}" if labels else "")] = float(sample.value)
    return found


async def scrape_until(url: str, name: str, value: float) -> dict[str, float]:
    """Scrape until `name` reaches `value` (each round waits on the HTTP answer)."""
    while True:
        samples = await asyncio.to_thread(scrape, url)
        if samples.get(name, -1.0) >= value:
            return samples
        await asyncio.sleep(0.05)  # a polling interval, not a wait for an outcome


def straight_replay(frames: list[bytes], whitelist: Path, initial: Path, out: Path) -> Any:
    """The frames fed in one pass to a fresh pipeline; the state file it writes."""
    with open_pipeline(PipelineConfig(whitelist=whitelist, initial_state=initial)) as pipeline:
        for payload in frames:
            pipeline.feed_frame(payload)
        write_state_file(pipeline.engine, out)
    return json.loads(out.read_bytes())
