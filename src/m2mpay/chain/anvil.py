"""Start and stop an Anvil node (npm `@foundry-rs/anvil-linux-amd64`) on a free loopback port."""

from __future__ import annotations

import atexit
import ctypes
import json
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Final

from m2mpay.chain.devkeys import DEV_MNEMONIC
from m2mpay.errors import LedgerUnavailable
from m2mpay.lifecycle import Process, find_program
from m2mpay.ports import free_port

__all__ = ["ANVIL_CHAIN_ID", "AnvilNode", "find_anvil"]

ANVIL_CHAIN_ID: Final = 31337
_REPO_ROOT: Final = Path(__file__).resolve().parents[3]


def find_anvil() -> Path:
    """The anvil binary: $M2MPAY_ANVIL, the project's node_modules, or PATH."""
    found = find_program("anvil", "M2MPAY_ANVIL", _REPO_ROOT / "node_modules" / ".bin" / "anvil")
    if found is None:
        raise LedgerUnavailable(
            "anvil not found: run `npm ci` in the project (package @foundry-rs/anvil-linux-amd64) "
            "or set M2MPAY_ANVIL"
        )
    return found


def _die_with_parent() -> None:
    # Runs in the child before exec: if the test runner or CLI is killed, the
    # kernel stops anvil too instead of leaving it holding a port.
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class AnvilNode(Process):
    """An Anvil process of our own, stopped by PID.

    It mines a block per transaction at once (automine) or, with `block_time`, a block
    every that many seconds as a real chain does; it funds the dev accounts
    of `DEV_MNEMONIC`, and runs the same hardfork as the embedded ledger. With
    `state`, its chain is written to that file when it stops and read back when it
    starts, and a restart keeps its port: the same node, back after an outage.
    """

    def __init__(
        self,
        *,
        chain_id: int = ANVIL_CHAIN_ID,
        hardfork: str = "prague",
        startup_timeout: float = 20.0,
        binary: Path | None = None,
        state: Path | None = None,
        block_time: float | None = None,
    ) -> None:
        if block_time is not None and block_time <= 0:
            raise ValueError("an Anvil's block time is more than 0 s")
        self._block_time = block_time
        self._binary = binary
        self._state = state
        self._kept_port: int | None = None
        self._chain_id = chain_id
        self._hardfork = hardfork
        self._startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._port: int | None = None

    @property
    def url(self) -> str:
        if self._port is None:
            raise LedgerUnavailable("anvil is not running")
        return f"http://127.0.0.1:{self._port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self) -> None:
        binary = self._binary or find_anvil()
        last_error = ""
        for _ in range(3):  # another process may grab the free port first
            port = self._kept_port or free_port()
            state = ["--state", str(self._state)] if self._state is not None else []
            if self._block_time is not None:
                state += ["--block-time", str(self._block_time)]
            process = subprocess.Popen(
                [
                    str(binary),
                    *state,
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--chain-id",
                    str(self._chain_id),
                    "--hardfork",
                    self._hardfork,
                    "--mnemonic",
                    DEV_MNEMONIC,
                    "--silent",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 (no locks taken in it)
            )
            if self._wait_ready(process, port):
                self._process, self._port = process, port
                if self._state is not None:
                    self._kept_port = port
                atexit.register(self.stop)
                return
            last_error = self._terminate(process)
        raise LedgerUnavailable(f"anvil did not start: {last_error.strip()[-500:]}")

    def _wait_ready(self, process: subprocess.Popen[bytes], port: int) -> bool:
        deadline = time.monotonic() + self._startup_timeout
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []})
        while time.monotonic() < deadline:
            if process.poll() is not None:
                return False
            try:
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}",
                    body.encode(),
                    {"Content-Type": "application/json"},
                )
                with urllib.request.urlopen(request, timeout=1) as response:
                    if json.loads(response.read()).get("result"):
                        return True
            except OSError:
                time.sleep(0.02)
        return False

    def _terminate(self, process: subprocess.Popen[bytes]) -> str:
        if process.poll() is None:
            process.terminate()
            try:
                # With a state file it writes its chain before it exits: let it finish.
                process.wait(timeout=5 if self._state is None else 60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stderr is None:
            return ""
        with process.stderr:
            return process.stderr.read().decode(errors="replace")

    def stop(self) -> None:
        if self._process is not None:
            self._terminate(self._process)
            self._process = None
            self._port = None
            atexit.unregister(self.stop)
