"""The committed contract artifacts are what the pinned compiler makes of the sources:
recompiled here with the same settings and compared byte for byte."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from devchain.solidity import (
    COMPILER_VERSION,
    compile_contract,
    contract_sources,
    render_artifact,
)
from executor.interface import custom_errors, executor_artifact

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("contract", contract_sources(), ids=lambda c: c.name)
def test_recompiling_gives_the_committed_artifact(contract: object) -> None:
    from devchain.solidity import ContractSource

    assert isinstance(contract, ContractSource)
    committed = contract.artifact.read_text()
    assert render_artifact(compile_contract(contract)) == committed
    document = json.loads(committed)
    assert document["source_sha256"] == hashlib.sha256(contract.source.read_bytes()).hexdigest()
    assert document["compiler"] == COMPILER_VERSION
    assert document["settings"]["evmVersion"] == "cancun"


def test_the_compiler_is_pinned_exactly() -> None:
    version = COMPILER_VERSION.split("+")[0]
    package = json.loads((ROOT / "package.json").read_text())
    assert package["devDependencies"]["solc"] == version
    lock = json.loads((ROOT / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/solc"]["version"] == version


def test_the_packaged_artifact_names_every_guard() -> None:
    artifact = executor_artifact()
    assert artifact.contract == "ArenaExecutor"
    names = {name for name, _ in custom_errors().values()}
    assert {
        "NotOwner",
        "DeadlinePassed",
        "Reentered",
        "UnexpectedCallback",
        "UnexpectedAmount",
        "InsufficientProfit",
        "PaymentNeedsWrappedNative",
        "BadPathLength",
        "BadHopFlags",
        "NativeCurrencyHop",
        "FirstHopCannotFlash",
    } <= names
    functions = {e["name"] for e in artifact.abi if e.get("type") == "function"}
    assert functions == {
        "execute",
        "withdraw",
        "owner",
        "wrappedNative",
        "uniswapV3SwapCallback",
        "uniswapV2Call",
        "unlockCallback",
    }
    assert not any("approve" in f for f in functions)
