"""Reproducible builds of our own Solidity contracts with the pinned npm `solc`.

Each contract is compiled alone by solc's JS API (`solc.compile`, standard JSON) with
fixed settings (optimizer on, fixed runs, EVM `cancun`, no metadata hash appended), and
its artifact — ABI, creation and runtime bytecode, compiler version, settings and the
source's SHA-256 — is written as sorted, indented JSON beside the source. The same inputs
give the same bytes: `tests/executor/test_contract_build.py` recompiles and compares.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from devchain.anvil import repo_root
from devchain.artifacts import node_modules_dir
from devchain.errors import ArtifactError

COMPILER_VERSION: Final = "0.8.30+commit.73712a01"
OPTIMIZER_RUNS: Final = 10_000
EVM_VERSION: Final = "cancun"
_COMPILE_TIMEOUT_S: Final = 300.0
# solc's JS API: standard JSON in on stdin, standard JSON out on stdout, nothing else.
_COMPILE_SCRIPT: Final = (
    "const solc = require(process.argv[1]);"
    "let input = '';"
    "process.stdin.on('data', (chunk) => { input += chunk; });"
    "process.stdin.on('end', () => { process.stdout.write(solc.compile(input)); });"
)


@dataclass(frozen=True)
class ContractSource:
    name: str
    source: Path  # the .sol file; the artifact is written beside it as <name>.json

    @property
    def artifact(self) -> Path:
        return self.source.with_suffix(".json")


def contract_sources(root: Path | None = None) -> tuple[ContractSource, ...]:
    base = root or repo_root()
    return (
        ContractSource("ArenaExecutor", base / "executor/contract/ArenaExecutor.sol"),
        ContractSource("TestWrappedNative", base / "devchain/contracts/TestWrappedNative.sol"),
        ContractSource("CallbackProbe", base / "devchain/contracts/CallbackProbe.sol"),
    )


def settings() -> dict[str, Any]:
    return {
        "optimizer": {"enabled": True, "runs": OPTIMIZER_RUNS},
        "evmVersion": EVM_VERSION,
        "metadata": {"bytecodeHash": "none", "appendCBOR": False},
        "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode"]}},
    }


def _solc() -> Path:
    path = node_modules_dir() / "solc" / "solc.js"
    if not path.is_file():
        raise ArtifactError("solc", path, "missing: run `npm ci` (package.json pins solc)")
    return path


def compiler_version() -> str:
    out = subprocess.run(
        ["node", str(_solc()), "--version"],
        capture_output=True,
        text=True,
        check=True,
        timeout=_COMPILE_TIMEOUT_S,
    )
    return out.stdout.strip().removesuffix(".Emscripten.clang")


def compile_contract(contract: ContractSource) -> dict[str, Any]:
    """The artifact document for `contract` (raises ArtifactError on compiler errors)."""
    text = contract.source.read_text()
    version = compiler_version()
    if version != COMPILER_VERSION:
        raise ArtifactError("solc", _solc(), f"version {version}, expected {COMPILER_VERSION}")
    request = {
        "language": "Solidity",
        "sources": {contract.source.name: {"content": text}},
        "settings": settings(),
    }
    done = subprocess.run(
        ["node", "-e", _COMPILE_SCRIPT, str(_solc().parent)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        check=True,
        timeout=_COMPILE_TIMEOUT_S,
    )
    output = json.loads(done.stdout)
    errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    if errors:
        message = "; ".join(str(e.get("formattedMessage", e)) for e in errors)
        raise ArtifactError(contract.name, contract.source, message)
    compiled = output["contracts"][contract.source.name][contract.name]
    return {
        "contract": contract.name,
        "compiler": COMPILER_VERSION,
        "settings": {k: v for k, v in settings().items() if k != "outputSelection"},
        "source": contract.source.name,
        "source_sha256": hashlib.sha256(text.encode()).hexdigest(),
        "abi": compiled["abi"],
        "bytecode": "0x" + compiled["evm"]["bytecode"]["object"],
        "deployed_bytecode": "0x" + compiled["evm"]["deployedBytecode"]["object"],
    }


def render_artifact(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=1, sort_keys=True) + "\n"


def build_all(root: Path | None = None) -> list[Path]:
    """Compile every contract and write its artifact; returns the paths written."""
    written = []
    for contract in contract_sources(root):
        contract.artifact.write_text(render_artifact(compile_contract(contract)))
        written.append(contract.artifact)
    return written


def load_devchain_artifact(name: str) -> dict[str, Any]:
    """A committed artifact of one of the devchain's own test contracts."""
    for contract in contract_sources():
        if contract.name == name:
            document: dict[str, Any] = json.loads(contract.artifact.read_text())
            return document
    raise ArtifactError(name, repo_root() / "devchain/contracts", "no such contract")
