"""Where opportunities go: a Python callback, a JSONL file, a NATS subject.

A sink is called with each settled point's batch of opportunities, from the arena's own
thread, and must never hold the arena up. `NatsSink` therefore only enqueues: a worker
owns the nats-py connection and publishes each opportunity as JSON on
`arena.{chain}.opportunities`. The queue is bounded; when it is full the newest
opportunities are dropped and counted. Inside a service's event loop (`arena run`) the
worker is a task on that loop (`astart`/`aclose`); a synchronous caller (the replay
loop) gets a background thread with an event loop of its own (`start`/`close`).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Final, Protocol, Self, final

from nats.aio.client import Client as NatsClient
from nats.errors import Error as NatsError
from prometheus_client import CollectorRegistry, Counter, Gauge

from exex_bridge.backoff import Backoff
from exex_bridge.connection_state import ConnectionState
from exex_bridge.redaction import shown_url
from pathfinder.errors import PathfinderError
from pathfinder.opportunity import OPPORTUNITY_ENCODER, Opportunity

log = logging.getLogger(__name__)

DEFAULT_QUEUE_SIZE: Final = 10_000
DEFAULT_CLOSE_TIMEOUT: Final = 5.0


def opportunities_subject(chain: str) -> str:
    return f"arena.{chain}.opportunities"


class SinkError(PathfinderError):
    """A sink cannot be used as configured (`target` says which: a path or URL)."""

    def __init__(self, target: str, reason: str) -> None:
        self.target = target
        self.reason = reason
        super().__init__(f"opportunity sink {target}: {reason}")


class OpportunitySink(Protocol):
    name: str

    def __call__(self, opportunities: Sequence[Opportunity]) -> None: ...

    def close(self) -> None: ...


@final
class CallbackSink:
    """Hands each batch to a Python function (in the arena's thread: keep it quick)."""

    def __init__(self, fn: Callable[[Sequence[Opportunity]], object], name: str = "") -> None:
        self.fn = fn
        self.name = name or f"callback:{getattr(fn, '__qualname__', type(fn).__name__)}"

    def __call__(self, opportunities: Sequence[Opportunity]) -> None:
        self.fn(opportunities)

    def close(self) -> None:
        pass


@final
class JsonlSink:
    """Appends one JSON object per opportunity and line; flushed after every batch."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.name = f"jsonl:{self.path}"
        try:
            self._file: IO[bytes] = self.path.open("ab")
        except OSError as exc:
            raise SinkError(str(self.path), f"cannot open for appending: {exc.strerror}") from exc
        self.written = 0

    def __call__(self, opportunities: Sequence[Opportunity]) -> None:
        if not opportunities:
            return
        encode = OPPORTUNITY_ENCODER.encode
        self._file.write(b"".join(encode(o) + b"\n" for o in opportunities))
        self._file.flush()
        self.written += len(opportunities)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@final
class SinkMetrics:
    """`arena_path_sink_*` series, labelled by sink name; one set per registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.published = Counter(
            "arena_path_sink_published",
            "Opportunities a sink delivered",
            ["sink"],
            registry=registry,
        )
        self.dropped = Counter(
            "arena_path_sink_dropped",
            "Opportunities a sink dropped (queue full, not flushed at close, publish failed)",
            ["sink"],
            registry=registry,
        )
        self.connection_errors = Counter(
            "arena_path_sink_connection_errors",
            "Connection errors of a sink",
            ["sink"],
            registry=registry,
        )
        self.connected = Gauge(
            "arena_path_sink_connected", "1 while a sink is connected", ["sink"], registry=registry
        )


_METRICS: weakref.WeakKeyDictionary[CollectorRegistry, SinkMetrics] = weakref.WeakKeyDictionary()


def sink_metrics(registry: CollectorRegistry) -> SinkMetrics:
    found = _METRICS.get(registry)
    if found is None:
        found = _METRICS[registry] = SinkMetrics(registry)
    return found


_PUBLISHES_PER_YIELD: Final = 64  # a long queue never holds the shared loop for long


@final
class NatsSink:
    """Publishes opportunities to NATS from a worker; never blocks the caller.

    `await astart()` runs the worker as a task on the running loop, `await aclose()`
    stops it and awaits it. Without a loop, `start()` launches a background thread with
    its own loop (the first batch starts it too) and `close()` joins it. While the connection
    is down (nats-py reconnects with the capped, jittered `backoff`), opportunities wait
    in the bounded queue. `close()` publishes what is queued and flushes, within
    `timeout` seconds; whatever is left is counted as dropped. Counters: `published`,
    `dropped`, `connection_errors` (and `arena_path_sink_*` when given a registry).
    """

    def __init__(
        self,
        url: str,
        chain: str = "ethereum",
        *,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        connect_timeout: float = 2.0,
        backoff: Backoff | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        if queue_size < 1:
            raise ValueError(f"queue_size must be positive, got {queue_size}")
        self.url = url
        self.subject = opportunities_subject(chain)
        self.name = f"nats:{self.subject}"
        self.published = 0
        self.dropped = 0
        self.connection_errors = 0
        self._queue: queue.Queue[bytes] = queue.Queue(queue_size)
        self._connect_timeout = connect_timeout
        self._backoff = backoff or Backoff(initial=0.1, maximum=5.0)
        self._metrics = sink_metrics(registry) if registry is not None else None
        if self._metrics is not None:  # every series exists from the start, at 0
            for family in (
                self._metrics.published,
                self._metrics.dropped,
                self._metrics.connection_errors,
                self._metrics.connected,
            ):
                family.labels(sink=self.name)
        self._state = ConnectionState.NOT_STARTED
        self._state_changed = threading.Condition()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._task: asyncio.Task[None] | None = None  # the worker on the caller's loop
        self._loop_ready = threading.Event()
        # Owned by the background loop:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed: asyncio.Event | None = None
        self._worker: asyncio.Task[None] | None = None
        self._connected = False
        self._stopping = False
        self._error_logged = False

    # -- caller side (any thread) --------------------------------------------------------
    @property
    def state(self) -> ConnectionState:
        return self._state

    def wait_until(self, predicate: Callable[[NatsSink], bool], timeout: float) -> bool:
        """Block until `predicate(self)` holds (re-checked on every state change, publish,
        drop and error); False after `timeout` seconds."""
        with self._state_changed:
            return self._state_changed.wait_for(lambda: predicate(self), timeout)

    def _notify(self) -> None:
        with self._state_changed:
            self._state_changed.notify_all()

    @property
    def started(self) -> bool:
        return self._thread is not None or self._task is not None

    async def astart(self) -> None:
        """Start the worker as a task of the running loop (the service's)."""
        with self._lock:
            if self.started:
                return
            self._set_state(ConnectionState.CONNECTING)
            self._loop = asyncio.get_running_loop()
            self._changed = asyncio.Event()
            self._task = self._worker = asyncio.create_task(self._work(), name=self.name)

    def start(self) -> None:
        """Start the worker on a background thread with its own loop (no caller's loop)."""
        with self._lock:
            if self.started:
                return
            self._set_state(ConnectionState.CONNECTING)
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()
        self._loop_ready.wait()

    def __call__(self, opportunities: Sequence[Opportunity]) -> None:
        if not self.started:
            self.start()
        if self._state is ConnectionState.CLOSED:
            self._count_dropped(len(opportunities))
            return
        encode = OPPORTUNITY_ENCODER.encode
        for i, opportunity in enumerate(opportunities):
            try:
                self._queue.put_nowait(encode(opportunity))
            except queue.Full:
                self._count_dropped(len(opportunities) - i)
                break
        self._call_in_loop(self._wake)

    def close(self, timeout: float = DEFAULT_CLOSE_TIMEOUT) -> None:
        """Publish what is queued, flush, disconnect: at most about `timeout` seconds."""
        task = self._task
        if task is not None and not task.done():
            # Its loop is this thread's or gone: nothing can be awaited here.
            log.warning("%s: closed without aclose(); the queue is dropped", self.name)
            self._call_in_loop(self._cancel_worker)
        thread = self._thread
        if thread is not None and self._call_in_loop(self._begin_stop):
            thread.join(timeout)
            if thread.is_alive():
                log.warning("%s: not flushed within %.1fs; giving up", self.name, timeout)
                self._call_in_loop(self._cancel_worker)
                thread.join(timeout)
        self._count_dropped(self._drain_queue())
        self._set_state(ConnectionState.CLOSED)

    async def aclose(self, timeout: float = DEFAULT_CLOSE_TIMEOUT) -> None:
        """`close()` for a caller inside an event loop: the worker task is stopped and
        awaited (a thread worker is joined from a worker thread)."""
        task = self._task
        if task is None:
            await asyncio.to_thread(self.close, timeout)
            return
        if not task.done():
            self._begin_stop()
            try:
                await asyncio.wait_for(asyncio.shield(task), timeout)
            except TimeoutError:
                log.warning("%s: not flushed within %.1fs; giving up", self.name, timeout)
                task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self._loop = None
        self._count_dropped(self._drain_queue())
        self._set_state(ConnectionState.CLOSED)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _call_in_loop(self, fn: Callable[[], None]) -> bool:
        loop = self._loop
        if loop is None:
            return False
        try:
            loop.call_soon_threadsafe(fn)
        except RuntimeError:  # the loop has closed
            return False
        return True

    # -- background thread --------------------------------------------------------------
    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._main(loop))
        finally:
            self._loop = None
            loop.close()

    async def _main(self, loop: asyncio.AbstractEventLoop) -> None:
        self._changed = asyncio.Event()
        self._worker = asyncio.current_task()
        self._loop = loop
        self._loop_ready.set()
        await self._work()

    async def _work(self) -> None:
        nc = NatsClient()
        try:
            await self._connect(nc)
            self._on_connected()
            await self._publish_until_stopped(nc)
        except asyncio.CancelledError:
            log.info("%s stopped with %d opportunities queued", self.name, self._queue.qsize())
        except Exception as exc:  # the publisher thread must not die unseen
            self._note_connection_error(exc)
            log.exception("%s: publisher failed; opportunities are dropped from now", self.name)
        finally:
            await self._disconnect(nc)

    async def _connect(self, nc: NatsClient) -> None:
        await nc.connect(
            self.url,
            name=self.name,
            allow_reconnect=True,
            max_reconnect_attempts=-1,  # never give up; the delays are capped
            connect_timeout=self._connect_timeout,  # type: ignore[arg-type]
            reconnect_time_wait=self._backoff.maximum,  # type: ignore[arg-type]
            reconnect_to_server_handler=self._next_server,
            error_cb=self._on_error,
            disconnected_cb=self._on_disconnected,
            reconnected_cb=self._on_reconnected,
        )

    def _next_server(self, servers: list[Any], info: dict[str, Any]) -> tuple[Any, float]:
        return None, self._backoff.next_delay()  # None: nats-py takes the first server

    async def _publish_until_stopped(self, nc: NatsClient) -> None:
        changed = self._changed
        if changed is None:  # set by _main before this runs
            raise RuntimeError("sink loop not initialised")
        while True:
            changed.clear()
            sent = 0
            while self._connected:
                try:
                    payload = self._queue.get_nowait()
                except queue.Empty:
                    break
                await self._publish(nc, payload)
                sent += 1
                if sent % _PUBLISHES_PER_YIELD == 0:
                    await asyncio.sleep(0)  # let the loop's other tasks run
            if self._stopping and (self._queue.empty() or not self._connected):
                return
            await changed.wait()

    async def _publish(self, nc: NatsClient, payload: bytes) -> None:
        try:
            await nc.publish(self.subject, payload)
        except NatsError as exc:  # the connection closed under us
            self._count_dropped(1)
            self._note_connection_error(exc)
            return
        self.published += 1
        if self._metrics is not None:
            self._metrics.published.labels(sink=self.name).inc()
        self._notify()

    async def _disconnect(self, nc: NatsClient) -> None:
        try:
            if nc.is_connected:
                await asyncio.wait_for(nc.flush(), self._connect_timeout)
        except (NatsError, TimeoutError) as exc:
            self._note_connection_error(exc)
        finally:
            if not nc.is_closed:
                await nc.close()
            self._set_state(ConnectionState.CLOSED)

    def _wake(self) -> None:
        if self._changed is not None:
            self._changed.set()

    def _begin_stop(self) -> None:
        self._stopping = True
        if self._connected:
            self._wake()
        else:  # nothing can be delivered; do not wait for a connection
            self._cancel_worker()

    def _cancel_worker(self) -> None:
        if self._worker is not None:
            self._worker.cancel()

    # -- nats-py callbacks (background loop) -------------------------------------------
    def _on_connected(self) -> None:
        self._connected = True
        self._backoff.reset()
        self._error_logged = False
        self._set_state(ConnectionState.CONNECTED)
        self._wake()

    async def _on_error(self, exc: Exception) -> None:
        self._note_connection_error(exc)

    async def _on_disconnected(self) -> None:
        self._connected = False
        if self._state is ConnectionState.CONNECTED:
            self._set_state(ConnectionState.DISCONNECTED)
        self._wake()

    async def _on_reconnected(self) -> None:
        log.info("%s reconnected to %s", self.name, shown_url(self.url))
        self._on_connected()

    # -- bookkeeping --------------------------------------------------------------------
    def _note_connection_error(self, exc: BaseException) -> None:
        self.connection_errors += 1
        if self._metrics is not None:
            self._metrics.connection_errors.labels(sink=self.name).inc()
        if not self._error_logged:  # once per outage; the counter has the rest
            self._error_logged = True
            log.warning("%s: connection error with %s: %r", self.name, shown_url(self.url), exc)
        self._notify()

    def _count_dropped(self, n: int) -> None:
        if n <= 0:
            return
        with self._lock:
            self.dropped += n
        if self._metrics is not None:
            self._metrics.dropped.labels(sink=self.name).inc(n)
        self._notify()

    def _drain_queue(self) -> int:
        n = 0
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                return n
            n += 1

    def _set_state(self, state: ConnectionState) -> None:
        with self._state_changed:
            if self._state is ConnectionState.CLOSED and state is not ConnectionState.CLOSED:
                return
            self._state = state
            self._state_changed.notify_all()
        if self._metrics is not None:
            connected = state is ConnectionState.CONNECTED
            self._metrics.connected.labels(sink=self.name).set(int(connected))
