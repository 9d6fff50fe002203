"""`m2mpay key new`: a new secp256k1 key in an encrypted keystore (v3, scrypt).

By default the key goes where `m2mpay node` looks for its own, `DATA_DIR/keystore/`,
so a node started on that data dir runs with it. The private key is never printed
unless `--show-private-key` asks for it, and an existing keystore is never replaced.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from m2mpay.cli.common import (
    DEFAULT_DATA_DIR,
    DataDirOption,
    JsonOption,
    PassphraseFileOption,
    console,
)
from m2mpay.cli.explain import CliProblem
from m2mpay.crypto import PrivateKey
from m2mpay.crypto.keystore import KEYSTORE_DIR, find_keystore, read_passphrase, save_keystore

__all__ = ["key_app", "passphrase"]

key_app = typer.Typer(help="Keys in encrypted keystores.", no_args_is_help=True)


@key_app.callback()
def _keys() -> None:
    """Keys in encrypted keystores (`key new`), kept a group for the commands to come."""


def passphrase(file: Path | None, *, confirm: bool) -> str:
    """The keystore passphrase from `file`, $M2MPAY_PASSPHRASE or, on a terminal, a prompt."""
    given = read_passphrase(file)
    if given is not None:
        return given
    if not sys.stdin.isatty():
        raise typer.BadParameter(
            "no passphrase: use --passphrase-file or $M2MPAY_PASSPHRASE (no terminal to ask on)"
        )
    answer: str = typer.prompt("keystore passphrase", hide_input=True, confirmation_prompt=confirm)
    return answer


@key_app.command("new")
def new(
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir",
            help="Keep the keystore in this directory instead of DATA_DIR/keystore "
            "(for a device's key, say).",
        ),
    ] = None,
    passphrase_file: PassphraseFileOption = None,
    show_private_key: Annotated[
        bool,
        typer.Option(
            "--show-private-key",
            help="Also print the private key in hex: anyone who sees it can spend its funds.",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Make a new key, save it encrypted and print its address."""
    where = directory or data_dir / KEYSTORE_DIR
    existing = find_keystore(where)
    if existing is not None:
        raise CliProblem(
            f"{where} already holds a keystore ({existing.name}); it is never replaced",
            "move it away first if you mean to, or give another --data-dir or --dir",
        )
    key = PrivateKey.generate()
    path = save_keystore(where, key, passphrase(passphrase_file, confirm=True))
    made: dict[str, str] = {"address": key.address.checksum, "keystore": str(path)}
    if show_private_key:
        made["private_key"] = "0x" + key.secret.hex()
    if as_json:
        typer.echo(json.dumps(made))
        return
    lines = [f"new key [bold]{made['address']}[/]", f"  saved encrypted in {path}"]
    if show_private_key:
        lines.append(f"  private key (keep it secret): {made['private_key']}")
    if directory is None:
        lines.append(f"  `m2mpay node --data-dir {data_dir}` runs with it")
    for line in lines:
        console.print(line, soft_wrap=True)  # paths stay whole, to be copied
