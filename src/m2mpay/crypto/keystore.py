"""Keys at rest: Ethereum keystore v3 files (scrypt, AES-128-CTR), through eth-account.

A node keeps its key in `<data dir>/keystore/<address>.json`, encrypted with a
passphrase that comes from a file, an environment variable or a prompt, never
from a command line argument (which other users of the machine can read).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Final

from eth_account import Account

from m2mpay.crypto.keys import PrivateKey
from m2mpay.errors import CryptoError, WrongPassphrase

__all__ = [
    "KEYSTORE_DIR",
    "find_keystore",
    "load_keystore",
    "read_passphrase",
    "save_keystore",
]

KEYSTORE_DIR: Final = "keystore"
PASSPHRASE_ENV: Final = "M2MPAY_PASSPHRASE"


def save_keystore(directory: Path, key: PrivateKey, passphrase: str) -> Path:
    """Write `key` encrypted under `passphrase`, readable by its owner only."""
    if not passphrase:
        raise CryptoError("a keystore needs a non-empty passphrase")
    encrypted = Account.encrypt(key.secret, passphrase)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / f"{key.address.checksum}.json"
    tmp = path.with_suffix(".tmp")
    # Created with owner-only permissions from the first byte, then moved into place.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(encrypted, out)
    tmp.replace(path)
    return path


def load_keystore(path: Path, passphrase: str) -> PrivateKey:
    """Decrypt a keystore v3 file; a wrong passphrase or a damaged file is a `CryptoError`."""
    try:
        data: Any = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CryptoError(f"cannot read keystore {path}: {exc}") from None
    try:
        secret = bytes(Account.decrypt(data, passphrase))
    except ValueError as exc:  # eth-keyfile says "MAC mismatch" for a wrong passphrase
        raise WrongPassphrase(path, str(exc)) from None
    except (KeyError, TypeError) as exc:
        raise CryptoError(f"keystore {path} is not a v3 keystore: {exc}") from None
    return PrivateKey(secret)


def find_keystore(directory: Path) -> Path | None:
    """The one keystore file in `directory`, if any; several are ambiguous."""
    if not directory.is_dir():
        return None
    found = sorted(directory.glob("0x*.json"))
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise CryptoError(f"{directory} holds several keystores ({names}); keep one")
    return found[0] if found else None


def read_passphrase(file: Path | None = None, *, env: str = PASSPHRASE_ENV) -> str | None:
    """The passphrase from `file` (first line) or the environment; None if neither has it."""
    if file is not None:
        try:
            text = file.read_text().splitlines()
        except OSError as exc:
            raise CryptoError(f"cannot read the passphrase file {file}: {exc}") from None
        if not text or not text[0]:
            raise CryptoError(f"the passphrase file {file} is empty")
        return text[0]
    return os.environ.get(env) or None
