"""Running `m2mpay.bench.peer` nodes as child processes and talking to them."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import deque
from pathlib import Path
from typing import Any

import orjson

from m2mpay.crypto import Address
from m2mpay.errors import M2MPayError

__all__ = ["PeerProcess"]


class PeerProcess:
    """One node process; `call` sends a command line and returns the answer."""

    def __init__(
        self,
        *,
        key: int,
        hub: Address | None = None,
        store: Path,
        chain_dir: Path | None = None,
        rpc_url: str | None = None,
        port: int = 0,
        codec: str = "cbor",
        window: int = 4096,
        sessions: Path | None = None,
        host: str | None = None,
        host_address: Address | None = None,
        watcher: str | None = None,
        reconnect_max_delay: float | None = None,
        device_host: bool = False,
        module: str = "m2mpay.bench.peer",
    ) -> None:
        """A node on the chain of `chain_dir` or `rpc_url` (with the hub at `hub`), or,
        with `host`, a device that reaches the chain only through that `DeviceHost`;
        `watcher` is "host" (the host's watcher, through the host) or a watcher's URL.
        With `device_host`, the process is the `DeviceHost` devices use (on `hub`).
        `module` runs another process of the same JSON-lines kind (`bench.bus_peer`)."""
        self._argv = [
            sys.executable, "-m", module,
            "--key", str(key), "--store", str(store), "--port", str(port),
        ]  # fmt: skip
        if module == "m2mpay.bench.peer":
            self._argv += ["--codec", codec, "--window", str(window)]
        if hub is not None:
            self._argv += ["--hub", str(hub)]
        if host is not None:
            self._argv += ["--host", host]
        if host_address is not None:
            self._argv += ["--host-address", str(host_address)]
        if watcher is not None:
            self._argv += ["--watcher", watcher]
        if chain_dir is not None:
            self._argv += ["--chain-dir", str(chain_dir)]
        if rpc_url is not None:
            self._argv += ["--rpc-url", rpc_url]
        if sessions is not None:
            self._argv += ["--sessions", str(sessions)]
        if device_host:
            self._argv.append("--device-host")
        if reconnect_max_delay is not None:
            self._argv += ["--reconnect-max-delay", str(reconnect_max_delay)]
        self._process: asyncio.subprocess.Process | None = None
        self._stderr: deque[str] = deque(maxlen=40)
        self._stderr_task: asyncio.Task[None] | None = None
        self.endpoint = ""
        self.address: Address | None = None

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    async def start(self, timeout: float = 60.0) -> None:
        self._process = await asyncio.create_subprocess_exec(
            *self._argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            limit=2**24,
        )
        self._stderr.clear()
        self._stderr_task = asyncio.ensure_future(self._drain_stderr(self._process))
        try:
            ready = await self._read(timeout)
        except TimeoutError:
            self._process.kill()
            await self._process.wait()
            raise M2MPayError(
                f"node process not ready after {timeout:g} s: {self.stderr_tail()}"
            ) from None
        self.endpoint = ready["ready"]
        self.address = Address(ready["address"])

    async def _drain_stderr(self, process: asyncio.subprocess.Process) -> None:
        # Keep the child's log readable for error reports, and never let a full
        # pipe block the child.
        assert process.stderr is not None
        while line := await process.stderr.readline():
            self._stderr.append(line.decode(errors="replace").rstrip())

    def stderr_tail(self) -> str:
        """The last lines the child wrote to stderr (its log)."""
        return "\n".join(self._stderr)

    async def _read(self, timeout: float) -> dict[str, Any]:
        assert self._process is not None
        assert self._process.stdout is not None
        async with asyncio.timeout(timeout):
            line = await self._process.stdout.readline()
        if not line:
            await self._process.wait()
            if self._stderr_task is not None:
                await self._stderr_task
            raise M2MPayError(f"node process exited: {self.stderr_tail()}")
        answer: dict[str, Any] = orjson.loads(line)
        return answer

    async def call(self, command: dict[str, Any], timeout: float = 300.0) -> dict[str, Any]:
        assert self._process is not None
        assert self._process.stdin is not None
        self._process.stdin.write(orjson.dumps(command) + b"\n")
        await self._process.stdin.drain()
        answer = await self._read(timeout)
        if "error" in answer:
            log = self.stderr_tail()
            raise M2MPayError(
                f"{command.get('cmd')}: {answer['error']}" + (f"\n{log}" if log else "")
            )
        return answer

    async def stop(self, timeout: float = 30.0) -> None:
        if self._process is None or self._process.returncode is not None:
            return
        try:
            await self.call({"cmd": "stop"}, timeout)
        except (M2MPayError, TimeoutError, ConnectionError):
            self._process.kill()
        await self._process.wait()

    async def kill(self) -> None:
        """SIGKILL: no chance to flush, snapshot or say goodbye."""
        if self._process is not None and self._process.returncode is None:
            os.kill(self._process.pid, signal.SIGKILL)
            await self._process.wait()
