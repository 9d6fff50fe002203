"""Compiled artifacts are reproducible from the Vyper sources, and drift is caught."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from m2mpay.chain.artifacts import CONTRACT_NAMES, check_artifacts, contracts_dir, load_artifact
from m2mpay.errors import ArtifactMismatch


def test_committed_artifacts_match_a_fresh_compile() -> None:
    check_artifacts()


def test_an_edited_source_without_rebuild_is_caught(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = tmp_path / "contracts"
    shutil.copytree(contracts_dir(), copy)
    source = copy / "ChannelHub.vy"
    source.write_text(
        source.read_text().replace(
            "MAX_CHALLENGE_PERIOD: constant(uint256) = 31536000",
            "MAX_CHALLENGE_PERIOD: constant(uint256) = 31536001",
        )
    )
    monkeypatch.setenv("M2MPAY_CONTRACTS_DIR", str(copy))
    with pytest.raises(ArtifactMismatch, match="ChannelHub: source hash differs"):
        check_artifacts()


def test_an_edited_anchor_source_is_caught(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert "TelemetryAnchor" in CONTRACT_NAMES
    copy = tmp_path / "contracts"
    shutil.copytree(contracts_dir(), copy)
    source = copy / "TelemetryAnchor.vy"
    source.write_text(source.read_text().replace('"empty batch"', '"no records"'))
    monkeypatch.setenv("M2MPAY_CONTRACTS_DIR", str(copy))
    with pytest.raises(ArtifactMismatch, match="TelemetryAnchor: source hash differs"):
        check_artifacts()


def test_a_hand_edited_artifact_is_caught(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    copy = tmp_path / "contracts"
    shutil.copytree(contracts_dir(), copy)
    artifact = copy / "build" / "Token.json"
    text = artifact.read_text()
    # Flip one byte of the runtime code near its end.
    marker = '"runtimeBytecode": "0x'
    start = text.index(marker) + len(marker)
    end = text.index('"', start)
    code = text[start:end]
    flipped = code[:-10] + ("0" if code[-10] != "0" else "1") + code[-9:]
    artifact.write_text(text[:start] + flipped + text[end:])
    monkeypatch.setenv("M2MPAY_CONTRACTS_DIR", str(copy))
    with pytest.raises(ArtifactMismatch, match="Token: runtime bytecode differs"):
        check_artifacts()


@pytest.mark.parametrize("name", CONTRACT_NAMES)
def test_artifacts_carry_compiler_settings(name: str) -> None:
    artifact = load_artifact(name)
    assert artifact.compiler["version"] == "0.4.3"
    assert artifact.compiler["evmVersion"] == "prague"
    assert artifact.bytecode
    assert artifact.runtime_bytecode
    # EIP-170: deployable runtime code is at most 24,576 bytes.
    assert len(artifact.runtime_bytecode) <= 24_576
