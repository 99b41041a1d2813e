"""Endpoint URLs as logs may show them: no user, password, query or fragment.

RPC and NATS URLs can carry credentials (`nats://user:pass@host:4222`,
`https://host/v2/API_KEY?key=…`); every log line and message that names an endpoint
goes through `shown_url`.
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import urlsplit

# a comma separates two URLs only where the next one starts (a password may hold commas)
_NEXT_URL: Final = re.compile(r",\s*(?=[A-Za-z][A-Za-z0-9+.-]*://)")


def split_urls(urls: str) -> list[str]:
    """The URLs of a comma-separated list (`ARENA_RPC_URL=https://a,https://b`)."""
    return [part.strip() for part in _NEXT_URL.split(urls) if part.strip()]


def shown_url(url: str) -> str:
    """`scheme://host:port` of each comma-separated URL (paths may hold API keys)."""
    return ",".join(_shown_one(part.strip()) for part in _NEXT_URL.split(url))


def _shown_one(url: str) -> str:
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<unparsable URL>"
    if not parts.scheme or not host:
        return "<unparsable URL>"
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port is None else f"{host}:{port}"
    return f"{parts.scheme}://{netloc}"
