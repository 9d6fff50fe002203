"""`m2mpay key new`: a key made into an encrypted keystore where the node finds it."""

from __future__ import annotations

import json
from pathlib import Path

from m2mpay.crypto.keystore import load_keystore
from tests.cli.conftest import PASSPHRASE, cli, made_key


def test_a_new_key_is_saved_encrypted_and_only_its_address_is_shown(tmp_path: Path) -> None:
    result = cli("key", "new", "--data-dir", str(tmp_path), M2MPAY_PASSPHRASE=PASSPHRASE)
    assert result.exit_code == 0, result.output
    [path] = (tmp_path / "keystore").glob("0x*.json")
    key = load_keystore(path, PASSPHRASE)
    assert key.address.checksum in result.stdout
    assert key.secret.hex() not in result.stdout
    assert json.loads(path.read_text())["crypto"]["kdf"] == "scrypt"
    assert path.stat().st_mode & 0o077 == 0
    assert f"m2mpay node --data-dir {tmp_path}" in result.stdout


def test_an_existing_keystore_is_never_replaced(tmp_path: Path) -> None:
    first = made_key(tmp_path)
    before = Path(first["keystore"]).read_bytes()
    again = cli("key", "new", "--data-dir", str(tmp_path), M2MPAY_PASSPHRASE=PASSPHRASE)
    assert again.exit_code == 1
    assert "already holds a keystore" in again.stderr
    assert [p.name for p in (tmp_path / "keystore").iterdir()] == [Path(first["keystore"]).name]
    assert Path(first["keystore"]).read_bytes() == before


def test_the_private_key_only_on_request_and_in_another_directory(tmp_path: Path) -> None:
    made = made_key(tmp_path, "--dir", str(tmp_path / "device"), "--show-private-key")
    key = load_keystore(Path(made["keystore"]), PASSPHRASE)
    assert Path(made["keystore"]).parent == tmp_path / "device"
    assert made["private_key"] == "0x" + key.secret.hex()
    assert made["address"] == key.address.checksum
    assert "private_key" not in made_key(tmp_path / "other")


def test_no_passphrase_and_no_terminal_is_refused(tmp_path: Path) -> None:
    result = cli("key", "new", "--data-dir", str(tmp_path), M2MPAY_PASSPHRASE=None)
    assert result.exit_code != 0
    assert "$M2MPAY_PASSPHRASE" in result.output
    assert not (tmp_path / "keystore").exists()
