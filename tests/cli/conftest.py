"""A real `m2mpay node` process whose key `m2mpay key new` made, shared by the module's
tests (a node takes seconds to start), and helpers to run the real command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from m2mpay.bench.daemons import NodeProcess
from m2mpay.cli import app

__all__ = ["PASSPHRASE", "cli", "m2mpay", "made_key", "running_node"]

PASSPHRASE = "correct horse"  # NodeProcess's
runner = CliRunner()


def cli(*args: str, **env: str | None) -> Result:
    """`m2mpay <args>` in this process; `env` set (None: unset) for it. Errors are boxed
    at the terminal's width: a wide one keeps a message with a long path on one line."""
    return runner.invoke(app, list(args), env={"M2MPAY_TOKEN": None, "COLUMNS": "400", **env})


def m2mpay(*args: str, passphrase: str = PASSPHRASE) -> subprocess.CompletedProcess[str]:
    """`m2mpay <args>` as its own process, as people run it."""
    env = {**os.environ, "M2MPAY_PASSPHRASE": passphrase}
    return subprocess.run(
        [sys.executable, "-m", "m2mpay", *args],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=False,
    )


def made_key(data_dir: Path, *extra: str) -> dict[str, str]:
    """`m2mpay key new --json` into `data_dir`: its address and keystore."""
    made = cli("key", "new", "--data-dir", str(data_dir), "--json", *extra,
               M2MPAY_PASSPHRASE=PASSPHRASE)  # fmt: skip
    assert made.exit_code == 0, made.output
    answer: dict[str, str] = json.loads(made.stdout)
    return answer


@pytest.fixture(scope="module")
def running_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    data_dir = tmp_path_factory.mktemp("cli") / "node"
    key = made_key(data_dir)
    node = NodeProcess(data_dir)
    try:
        node.start()
        assert node.ready["address"] == key["address"]
        assert node.ready["new_key"] is False
        yield node
    finally:
        node.stop()
