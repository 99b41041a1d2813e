"""Compile our Solidity contracts with the pinned solc and write their artifacts.

Usage: .venv/bin/python scripts/build_contracts.py   (after `npm ci`)
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devchain.solidity import build_all


def main() -> int:
    for path in build_all():
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
