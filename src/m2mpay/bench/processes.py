"""Running `m2mpay.bench.peer` nodes as child processes and talking to them."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections import deque
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson

from m2mpay.crypto import Address
from m2mpay.errors import M2MPayError

__all__ = ["ChildProcess", "PeerProcess", "flags", "running"]


def flags(**given: object) -> list[str]:
    """Command-line options for the values given (`chain_dir` → `--chain-dir`), in
    their order; those that are None are left to the child's defaults."""
    argv: list[str] = []
    for name, value in given.items():
        if value is not None:
            argv += ["--" + name.replace("_", "-"), str(value)]
    return argv


class ChildProcess:
    """A child process that answers on stdout and logs on stderr; the log's last
    `kept_lines` lines are kept for error reports."""

    def __init__(self, argv: list[str], *, kept_lines: int) -> None:
        self._argv = argv
        self._process: asyncio.subprocess.Process | None = None
        self._stderr: deque[str] = deque(maxlen=kept_lines)
        self._stderr_task: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    async def _spawn(self, *, stdin: int, limit: int = 2**16) -> None:
        self._process = await asyncio.create_subprocess_exec(
            *self._argv,
            stdin=stdin,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            limit=limit,
        )
        self._stderr_task = asyncio.ensure_future(self._drain_stderr(self._process))

    async def _drain_stderr(self, process: asyncio.subprocess.Process) -> None:
        # Keep the child's log readable for error reports, and never let a full
        # pipe block the child.
        assert process.stderr is not None
        while line := await process.stderr.readline():
            self._stderr.append(line.decode(errors="replace").rstrip())

    def stderr_tail(self) -> str:
        """The last lines the child wrote to stderr (its log)."""
        return "\n".join(self._stderr)

    async def _line(self, timeout: float) -> bytes:
        """The child's next line on stdout; empty once the child has exited, then
        reaped and its log read to the end (for the report)."""
        assert self._process is not None
        assert self._process.stdout is not None
        async with asyncio.timeout(timeout):
            line = await self._process.stdout.readline()
        if not line:
            await self._process.wait()
            if self._stderr_task is not None:
                await self._stderr_task
        return line

    async def kill(self) -> None:
        """SIGKILL: no chance to flush, snapshot or say goodbye."""
        if self._process is not None and self._process.returncode is None:
            os.kill(self._process.pid, signal.SIGKILL)
            await self._process.wait()


class PeerProcess(ChildProcess):
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
        feeds: Path | None = None,
        streams: Path | None = None,
        anchor: Address | None = None,
        host: str | None = None,
        host_address: Address | None = None,
        watcher: str | None = None,
        reconnect_max_delay: float | None = None,
        device_host: bool = False,
        paywall: Address | None = None,
        module: str = "m2mpay.bench.peer",
    ) -> None:
        """A node on the chain of `chain_dir` or `rpc_url` (with the hub at `hub`), or,
        with `host`, a device that reaches the chain only through that `DeviceHost`;
        `watcher` is "host" (the host's watcher, through the host) or a watcher's URL.
        With `device_host`, the process is the `DeviceHost` devices use (on `hub`).
        `module` runs another process of the same JSON-lines kind (`bench.bus_peer`).
        With `feeds` (and `sessions`) the node sells a feed (`bench.feed_seller`); with
        `streams` (and `sessions`) it writes its sales into provenance streams
        (`bench.stream_peer`), their heads anchored on `anchor` if given; with `paywall`
        (an asset) it serves an HTTP 402 paywall paid in channels (`bench.paywall_peer`)."""
        argv = [
            sys.executable, "-m", module,
            "--key", str(key), "--store", str(store), "--port", str(port),
        ]  # fmt: skip
        if module == "m2mpay.bench.peer":
            argv += ["--codec", codec, "--window", str(window)]
        argv += flags(
            hub=hub,
            host=host,
            host_address=host_address,
            watcher=watcher,
            chain_dir=chain_dir,
            rpc_url=rpc_url,
            sessions=sessions,
            feeds=feeds,
            streams=streams,
            anchor=anchor,
            paywall=paywall,
        )
        if device_host:
            argv.append("--device-host")
        argv += flags(reconnect_max_delay=reconnect_max_delay)
        super().__init__(argv, kept_lines=40)
        self.endpoint = ""
        self.address: Address | None = None
        self.paywall_url = ""  # with `paywall`: where its HTTP 402 paywall answers

    async def start(self, timeout: float = 60.0) -> None:
        self._stderr.clear()
        await self._spawn(stdin=asyncio.subprocess.PIPE, limit=2**24)
        try:
            ready = await self._read(timeout)
        except TimeoutError:
            await self.kill()
            raise M2MPayError(
                f"node process not ready after {timeout:g} s: {self.stderr_tail()}"
            ) from None
        self.endpoint = ready["ready"]
        self.address = Address(ready["address"])
        self.paywall_url = str(ready.get("paywall", ""))

    async def _read(self, timeout: float) -> dict[str, Any]:
        line = await self._line(timeout)
        if not line:
            raise M2MPayError(f"node process exited: {self.stderr_tail()}")
        answer: dict[str, Any] = orjson.loads(line)
        return answer

    def channel_to(self, asset: Address, deposit: int) -> dict[str, str]:
        """What an `open` (or `open_many`) command needs to open a channel to this node."""
        assert self.address is not None, "the node is not started"
        return {
            "peer": str(self.address),
            "endpoint": self.endpoint,
            "asset": str(asset),
            "deposit": str(deposit),
        }

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


@contextlib.asynccontextmanager
async def running(*processes: PeerProcess) -> AsyncIterator[None]:
    """`processes` started in order and stopped in the reverse order, however the block
    ends: a later one leans on the earlier ones (a payer dials its payee)."""
    async with contextlib.AsyncExitStack() as started:
        for process in processes:
            await process.start()
            started.push_async_callback(process.stop)
        yield
