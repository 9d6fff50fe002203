"""One embedded chain per data dir, shared by every local process that opens it.

The first process to open a data dir hosts the chain: it holds an exclusive lock
on `chain.lock`, runs the EVM in process and serves JSON-RPC on a loopback port
written to `chain.rpc`. Any other process opening the same data dir finds the
lock taken and talks to the host with the plain `RpcLedger`. When the host
exits, the lock goes with it and the next process to open the dir hosts.

The port is chosen once and kept in `chain.port`: a host that restarts serves on
the same URL, so the processes that used it find their chain again.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import IO, Final
from urllib.parse import urlparse

from m2mpay.chain.devkeys import dev_keys
from m2mpay.chain.embedded import EmbeddedLedger
from m2mpay.chain.ledger import Ledger
from m2mpay.chain.rpc import RpcLedger
from m2mpay.chain.rpc_server import EmbeddedLedgerServer
from m2mpay.errors import LedgerError, LedgerUnavailable

__all__ = ["HostedEmbeddedLedger", "connect_ledger", "ledger_session", "served_url"]

log = logging.getLogger("m2mpay.chain")

_LOCK_FILE: Final = "chain.lock"
_URL_FILE: Final = "chain.rpc"
_PORT_FILE: Final = "chain.port"


def served_url(ledger: Ledger) -> str | None:
    """The JSON-RPC URL of the embedded chain `ledger` serves to other processes, if it
    hosts one (a dev chain: nothing secret in it); None for any other ledger."""
    if not isinstance(ledger, HostedEmbeddedLedger):
        return None
    try:
        return ledger.rpc_url
    except LedgerUnavailable:
        return None


class HostedEmbeddedLedger(EmbeddedLedger):
    """An `EmbeddedLedger` that also serves its chain to other processes on the data dir."""

    def __init__(self, data_dir: Path, lock: IO[bytes], **kwargs: object) -> None:
        super().__init__(data_dir, **kwargs)  # type: ignore[arg-type]
        self._lock = lock
        self._server: EmbeddedLedgerServer | None = None

    @property
    def rpc_url(self) -> str:
        if self._server is None:
            raise LedgerUnavailable("the chain is not being served")
        try:
            return self._server.url
        except LedgerError:
            raise LedgerUnavailable("the chain is not being served yet") from None

    @property
    def description(self) -> str:
        try:
            served = f", JSON-RPC {self.rpc_url}"
        except LedgerUnavailable:
            served = ""
        return f"embedded py-evm (data dir {self.data_dir}{served})"

    async def start(self) -> None:
        await super().start()
        assert self.data_dir is not None
        kept = _kept_port(self.data_dir / _PORT_FILE)
        self._server = server = EmbeddedLedgerServer(self, port=kept)
        try:
            url = await server.start()
        except OSError:
            await server.stop()
            if not kept:
                raise
            # Another program took the port meanwhile: serve elsewhere, and say so.
            log.warning("the chain's port %d is taken; serving on another", kept)
            self._server = server = EmbeddedLedgerServer(self)
            url = await server.start()
        _write(self.data_dir / _PORT_FILE, str(urlparse(url).port))
        _write(self.data_dir / _URL_FILE, url)

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop()
            self._server = None
        if self.data_dir is not None:
            (self.data_dir / _URL_FILE).unlink(missing_ok=True)
        await super().stop()
        self._lock.close()


def _kept_port(path: Path) -> int:
    try:
        port = int(path.read_text().strip())
    except (OSError, ValueError):
        return 0
    return port if 0 < port < 65536 else 0


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def _try_lock(data_dir: Path) -> IO[bytes] | None:
    data_dir.mkdir(parents=True, exist_ok=True)
    handle = open(data_dir / _LOCK_FILE, "a+b")  # noqa: SIM115 (held for the host's lifetime)
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    handle.truncate(0)
    handle.write(str(os.getpid()).encode())
    handle.flush()
    return handle


async def _host_url(data_dir: Path, timeout: float) -> str:
    """The URL the host wrote; it may still be starting, so wait for it a little."""
    deadline = time.monotonic() + timeout
    path = data_dir / _URL_FILE
    while True:
        if path.exists():
            return path.read_text().strip()
        if time.monotonic() >= deadline:
            raise LedgerUnavailable(
                f"{data_dir} is held by another process that serves no chain (no {_URL_FILE})"
            )
        await asyncio.sleep(0.05)


async def connect_ledger(
    *,
    data_dir: Path | None = None,
    rpc_url: str | None = None,
    wait_for_host: float = 10.0,
) -> Ledger:
    """A started ledger: the node at `rpc_url`, or the embedded chain of `data_dir`
    (hosted here, or reached through the process that hosts it), or a fresh
    in-memory chain when neither is given."""
    ledger: Ledger
    if rpc_url:
        ledger = RpcLedger(rpc_url, dev_keys=dev_keys())
    elif data_dir is None:
        ledger = EmbeddedLedger()
    else:
        lock = _try_lock(data_dir)
        if lock is not None:
            ledger = HostedEmbeddedLedger(data_dir, lock)
        else:
            ledger = RpcLedger(await _host_url(data_dir, wait_for_host), dev_keys=dev_keys())
    await ledger.start()
    return ledger


@asynccontextmanager
async def ledger_session(
    *, data_dir: Path | None = None, rpc_url: str | None = None
) -> AsyncIterator[Ledger]:
    """`connect_ledger` as an async context manager that stops the ledger on exit."""
    ledger = await connect_ledger(data_dir=data_dir, rpc_url=rpc_url)
    try:
        yield ledger
    finally:
        await ledger.stop()
