"""The kill switch: sending stops at once when a file exists or a message arrives on a
NATS subject, and stays stopped until the process restarts (a file removed meanwhile does
not resume it: a stop must be undone by a person, deliberately).

`engaged()` is asked before every transaction is sent; the file is looked at each time
(one `stat`), the subject's message sets a flag from the NATS thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Final, final

log = logging.getLogger(__name__)

DEFAULT_KILL_SUBJECT: Final = "arena.executor.kill"


@final
class KillSwitch:
    def __init__(
        self, file: Path | None = None, on_engage: Callable[[], None] | None = None
    ) -> None:
        self.file = file
        self.on_engage = on_engage
        self._reason: str | None = None
        self._lock = threading.Lock()

    def engage(self, reason: str) -> None:
        with self._lock:
            if self._reason is not None:
                return
            self._reason = reason
        log.error("kill switch engaged: %s; nothing more is sent", reason)
        if self.on_engage is not None:
            self.on_engage()

    def on_message(self, data: bytes) -> None:
        text = data.decode(errors="replace").strip()[:200]
        self.engage(f"kill message on NATS{': ' + text if text else ''}")

    def engaged(self) -> str | None:
        """Why sending is stopped, or None."""
        if self._reason is None and self.file is not None and self.file.exists():
            self.engage(f"kill file {self.file} exists")
        return self._reason
