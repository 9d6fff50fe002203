"""Compiled contract artifacts: built reproducibly from the Vyper sources in `contracts/`.

`contracts/build/<Name>.json` holds the ABI, the init and runtime bytecode, the
SHA-256 of the source and the exact compiler settings. `check_artifacts` compiles
the sources again and reports any difference, so a source edited without a
rebuild (or an artifact edited by hand) fails the test suite.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

from m2mpay.chain.abi import ContractInterface
from m2mpay.errors import ArtifactMismatch, ContractError

__all__ = [
    "COMPILER_SETTINGS",
    "CONTRACT_NAMES",
    "ContractArtifact",
    "build_artifacts",
    "check_artifacts",
    "compile_contract",
    "contracts_dir",
    "load_artifact",
]

CONTRACT_NAMES: Final = (
    "Token",
    "ChannelHub",
    "TelemetryAnchor",
    "TokenFactory",
    "MeteredEscrow",
    "ServiceRegistry",
    "Exchange",
)
COMPILER_SETTINGS: Final = {
    "name": "vyper",
    "version": "0.4.3",
    "evmVersion": "prague",
    "optimize": "gas",
}


def contracts_dir() -> Path:
    """Where sources and artifacts live: $M2MPAY_CONTRACTS_DIR or the project's `contracts/`."""
    explicit = os.environ.get("M2MPAY_CONTRACTS_DIR")
    if explicit:
        return Path(explicit)
    return Path(__file__).resolve().parents[3] / "contracts"


@dataclass(frozen=True)
class ContractArtifact:
    name: str
    abi: list[dict[str, Any]]
    bytecode: bytes
    runtime_bytecode: bytes
    source_sha256: str
    compiler: dict[str, str]

    @property
    def interface(self) -> ContractInterface:
        return _interface(self.name, json.dumps(self.abi, sort_keys=True))

    def to_json(self) -> str:
        return (
            json.dumps(
                {
                    "contractName": self.name,
                    "compiler": self.compiler,
                    "sourceSha256": self.source_sha256,
                    "abi": self.abi,
                    "bytecode": "0x" + self.bytecode.hex(),
                    "runtimeBytecode": "0x" + self.runtime_bytecode.hex(),
                },
                indent=2,
                sort_keys=True,
            )
            + "\n"
        )

    @classmethod
    def from_json(cls, text: str) -> ContractArtifact:
        raw = json.loads(text)
        return cls(
            name=raw["contractName"],
            abi=raw["abi"],
            bytecode=bytes.fromhex(raw["bytecode"].removeprefix("0x")),
            runtime_bytecode=bytes.fromhex(raw["runtimeBytecode"].removeprefix("0x")),
            source_sha256=raw["sourceSha256"],
            compiler=raw["compiler"],
        )


@lru_cache(maxsize=32)
def _interface(name: str, abi_json: str) -> ContractInterface:
    return ContractInterface(json.loads(abi_json))


def _source_path(name: str) -> Path:
    return contracts_dir() / f"{name}.vy"


def _artifact_path(name: str) -> Path:
    return contracts_dir() / "build" / f"{name}.json"


@lru_cache(maxsize=32)
def load_artifact(name: str) -> ContractArtifact:
    """The committed artifact of contract `name`."""
    path = _artifact_path(name)
    try:
        return ContractArtifact.from_json(path.read_text())
    except FileNotFoundError:
        raise ContractError(f"no artifact at {path}: run `m2mpay contracts build`") from None


_compiled: dict[tuple[str, str], ContractArtifact] = {}


def compile_contract(name: str) -> ContractArtifact:
    """Compile `contracts/<name>.vy` with the pinned Vyper and settings.

    Compiles are remembered by source hash: checking twice compiles once.
    """
    try:
        import vyper
        from vyper.compiler.settings import OptimizationLevel, Settings
    except ImportError:
        raise ContractError(
            "compiling needs the vyper package (pip install vyper==0.4.3)"
        ) from None
    if vyper.__version__.split("+")[0] != COMPILER_SETTINGS["version"]:
        raise ContractError(
            f"artifacts are built with vyper {COMPILER_SETTINGS['version']}, "
            f"this is {vyper.__version__}"
        )
    path = _source_path(name)
    source = path.read_text()
    source_sha256 = hashlib.sha256(source.encode()).hexdigest()
    if (name, source_sha256) in _compiled:
        return _compiled[(name, source_sha256)]
    settings = Settings(evm_version=COMPILER_SETTINGS["evmVersion"], optimize=OptimizationLevel.GAS)
    out = vyper.compile_code(
        source,
        contract_path=path.name,
        output_formats=["abi", "bytecode", "bytecode_runtime"],
        settings=settings,
    )
    artifact = ContractArtifact(
        name=name,
        abi=out["abi"],
        bytecode=bytes.fromhex(out["bytecode"].removeprefix("0x")),
        runtime_bytecode=bytes.fromhex(out["bytecode_runtime"].removeprefix("0x")),
        source_sha256=source_sha256,
        compiler=dict(COMPILER_SETTINGS),
    )
    _compiled[(name, source_sha256)] = artifact
    return artifact


def build_artifacts(names: tuple[str, ...] = CONTRACT_NAMES) -> list[Path]:
    """Compile every contract and write its artifact; returns the files written."""
    written = []
    for name in names:
        path = _artifact_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(compile_contract(name).to_json())
        written.append(path)
    load_artifact.cache_clear()
    return written


def check_artifacts(names: tuple[str, ...] = CONTRACT_NAMES) -> None:
    """Raise `ArtifactMismatch` naming every artifact that differs from a fresh compile."""
    problems = []
    for name in names:
        fresh = compile_contract(name)
        try:
            committed = ContractArtifact.from_json(_artifact_path(name).read_text())
        except FileNotFoundError:
            problems.append(f"{name}: no artifact")
            continue
        for label, ours, theirs in (
            ("source hash", committed.source_sha256, fresh.source_sha256),
            ("ABI", committed.abi, fresh.abi),
            ("bytecode", committed.bytecode, fresh.bytecode),
            ("runtime bytecode", committed.runtime_bytecode, fresh.runtime_bytecode),
            ("compiler settings", committed.compiler, fresh.compiler),
        ):
            if ours != theirs:
                problems.append(f"{name}: {label} differs from a fresh compile")
    if problems:
        raise ArtifactMismatch(
            "; ".join(problems) + " (run `m2mpay contracts build` and commit the result)"
        )
