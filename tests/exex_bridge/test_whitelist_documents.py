"""Whitelist documents: every skipped entry is logged with its file and `pools[i]`."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from exex_bridge.errors import WhitelistError
from exex_bridge.whitelist import load_whitelist_file

TOKEN_A = {"address": "0x" + "aa" * 20, "decimals": 18, "symbol": "WETH"}
TOKEN_B = {"address": "0x" + "bb" * 20, "decimals": 6, "symbol": "USDC"}
GOOD = {"address": "0x" + "01" * 20, "protocol": "v2", "token0": TOKEN_A, "token1": TOKEN_B}


def write(tmp_path: Path, pools: list[object]) -> Path:
    path = tmp_path / "pools.json"
    path.write_text(json.dumps({"chain": "ethereum", "pools": pools}))
    return path


@pytest.mark.parametrize(
    ("entry", "said"),
    [
        ({k: v for k, v in GOOD.items() if k != "token1"}, "token1"),
        ({**GOOD, "protocol": "v9"}, "unknown protocol"),
        ({**GOOD, "address": "0x12"}, "not 20-byte hex"),
        ({**GOOD, "protocol": "v3"}, "needs fee and tick_spacing"),
        ({**GOOD, "token0": {**TOKEN_A, "decimals": "x"}}, "decimals"),
        ("not an object", "Expected `object`"),
        ({**GOOD, "token1": {**TOKEN_A, "symbol": "WETH2"}}, "token0 and token1 are the same"),
    ],
)
def test_a_skipped_entry_names_the_file_and_its_index(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, entry: object, said: str
) -> None:
    path = write(tmp_path, [GOOD, entry])
    with caplog.at_level(logging.WARNING, logger="exex_bridge.whitelist"):
        whitelist = load_whitelist_file(path)
    assert (len(whitelist.pools), whitelist.skipped) == (1, 1)
    (record,) = [r for r in caplog.records if "skipped" in r.getMessage()]
    assert f"{path} pools[1]" in record.getMessage()
    assert said in record.getMessage()


def test_an_unreadable_document_is_an_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "pools.json"
    path.write_text('{"chain": "ethereum"}')
    with pytest.raises(WhitelistError, match=r"pools\.json"):
        load_whitelist_file(path)
