"""Loading of the Uniswap test vectors stored under tests/data/uniswap/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "uniswap"


def load_vectors(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA_DIR / name).read_text())
    source = data["source"]
    if not (source["repository"] and source["commit"] and source["paths"]):
        raise ValueError(f"{name} does not name its source")
    return data
