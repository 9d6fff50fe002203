"""A real `m2mpay watcher serve` process, reached over plain HTTP, for tests that throw
generated requests at it (schemathesis, the body fuzzers).

Synchronous on purpose: those tests drive blocking HTTP clients, and a child process
with its log in a file needs no event loop to keep its pipes drained.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from typer.testing import CliRunner

from m2mpay.chain import dev_keys
from m2mpay.cli import app
from m2mpay.crypto import Address
from m2mpay.crypto.eip712 import balance_proof_digest, channel_domain, watch_registration_digest
from m2mpay.watcher.core import ChannelParams

__all__ = ["Registration", "ServedWatcher", "channel", "served_watcher"]


def channel(nonce: int) -> ChannelParams:
    """A channel between two dev keys, a and b, told apart by `nonce` (never opened)."""
    a, b = dev_keys()[1].address, dev_keys()[2].address
    return ChannelParams(a, b, a, 60, nonce)


@dataclass(frozen=True)
class Registration:
    """Party b's registration of a channel (not opened on chain) and its token."""

    params: ChannelParams
    token: str

    @property
    def channel_id(self) -> str:
        return "0x" + self.params.id.hex()

    @property
    def proof_path(self) -> str:
        return f"/v1/channels/{self.channel_id}/proofs/{self.params.b.checksum}"


@dataclass(frozen=True)
class ServedWatcher:
    url: str
    pid: int
    address: Address
    hub: Address
    chain_id: int
    log: Path

    def registration_body(self, params: ChannelParams) -> dict[str, Any]:
        """Party b's signed registration of `params`."""
        party = dev_keys()[2]
        issued_at = int(time.time())
        digest = watch_registration_digest(
            channel_domain(self.chain_id, self.hub),
            params.id,
            party.address,
            self.address,
            issued_at,
        )
        return {
            "channel": {
                "a": params.a.checksum,
                "b": params.b.checksum,
                "token": params.token.checksum,
                "challenge_period": params.challenge_period,
                "nonce": str(params.nonce),
            },
            "party": party.address.checksum,
            "issued_at": issued_at,
            "signature": "0x" + bytes(party.sign_digest(digest)).hex(),
        }

    def register(self, nonce: int) -> Registration:
        """Party b registers `channel(nonce)`."""
        params = channel(nonce)
        answer = httpx.post(
            f"{self.url}/v1/registrations", json=self.registration_body(params), timeout=30
        )
        assert answer.status_code == 201, answer.text
        return Registration(params, answer.json()["token"])

    def proof_body(self, params: ChannelParams, transferred: int) -> dict[str, str]:
        """A proof party a signed for party b: newer than any held if `transferred` is."""
        digest = balance_proof_digest(
            channel_domain(self.chain_id, self.hub), params.id, transferred
        )
        signature = dev_keys()[1].sign_digest(digest)
        return {"transferred": str(transferred), "signature": "0x" + bytes(signature).hex()}

    def resident_peak_bytes(self) -> int:
        """The process's peak resident memory so far (VmHWM)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmHWM in /proc status")


@contextlib.contextmanager
def served_watcher(data_dir: Path) -> Iterator[ServedWatcher]:
    """Deploy the contracts in `data_dir`, serve a watcher on them, stop it by its PID."""
    deployed = CliRunner().invoke(app, ["ledger", "deploy", "--data-dir", str(data_dir), "--json"])
    assert deployed.exit_code == 0, deployed.output
    log = data_dir / "watcher.log"
    argv = [sys.executable, "-m", "m2mpay.cli.watcher", "serve", "--json", "--port", "0"]
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [*argv, "--data-dir", str(data_dir)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line, "the watcher exited:\n" + log.read_text()
        ready = json.loads(line)
        yield ServedWatcher(
            url=ready["url"],
            pid=process.pid,
            address=Address(ready["address"]),
            hub=Address(ready["hub"]),
            chain_id=int(ready["chain"].split(":")[1]),
            log=log,
        )
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
