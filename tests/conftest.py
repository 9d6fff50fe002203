"""Shared fixtures: both real ledgers, a private Anvil node, deployed contracts."""

from __future__ import annotations

import contextlib
import os
import pwd
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from m2mpay.chain import (
    AnvilNode,
    ChannelHub,
    Closing,
    EmbeddedLedger,
    Ledger,
    OnchainChannel,
    Receipt,
    RpcLedger,
    TokenContract,
    deploy_contracts,
    dev_keys,
)
from m2mpay.chain.events import ChannelClosing
from m2mpay.chain.rpc_server import EmbeddedLedgerServer
from m2mpay.crypto import PrivateKey

UNIT = 10**18
MOSQUITTO = "/usr/sbin/mosquitto"
LEDGER_KINDS = ("embedded", "anvil", "embedded-rpc")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Modules holding a `slow` test run first. `make test` spreads modules over workers
    (pytest-xdist, --dist loadscope) in this order: a minutes-long module picked up last
    would leave one worker running alone at the end while the other sits idle."""
    slow_modules = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_modules)  # a stable sort


@pytest.fixture(scope="session")
def anvil_node() -> Iterator[AnvilNode]:
    """One Anvil process for the session, started here and stopped by PID."""
    node = AnvilNode()
    node.start()
    yield node
    node.stop()


@pytest.fixture(params=LEDGER_KINDS)
async def ledger(request: pytest.FixtureRequest) -> AsyncIterator[Ledger]:
    """Each real `Ledger`, fresh: an in-memory chain; a client of the session Anvil; or a
    client of an embedded chain served over JSON-RPC, as a second process on a data dir
    sees it."""
    if request.param == "embedded":
        async with EmbeddedLedger() as embedded:
            yield embedded
    elif request.param == "anvil":
        node: AnvilNode = request.getfixturevalue("anvil_node")
        async with RpcLedger(node.url, dev_keys=dev_keys()) as client:
            yield client
    else:
        async with EmbeddedLedger() as host:
            server = EmbeddedLedgerServer(host)
            url = await server.start()
            try:
                async with RpcLedger(url, dev_keys=dev_keys()) as client:
                    yield client
            finally:
                await server.stop()


@dataclass
class World:
    """Deployed contracts and funded parties on one ledger."""

    ledger: Ledger
    hub: ChannelHub
    token: TokenContract
    owner: PrivateKey
    alice: PrivateKey
    bob: PrivateKey
    carol: PrivateKey  # a third party: watcher, host or attacker

    async def channel(
        self,
        deposit_a: int = 10 * UNIT,
        *,
        period: int = 100,
        nonce: int | None = None,
        token: bool = True,
    ) -> OnchainChannel:
        """Open a channel alice → bob funded by alice (approve + open)."""
        from m2mpay.chain import NATIVE_TOKEN

        channel = OnchainChannel(
            self.alice.address,
            self.bob.address,
            self.token.address if token else NATIVE_TOKEN,
            period,
            nonce if nonce is not None else _next_nonce(),
            deposit_a=deposit_a,
        )
        if token:
            await self.token.approve(self.alice, self.hub.address, deposit_a)
        await self.hub.open(self.alice, channel)
        return channel

    async def fund_b(self, channel: OnchainChannel, amount: int) -> OnchainChannel:
        await self.token.approve(self.bob, self.hub.address, amount)
        await self.hub.deposit(self.bob, channel, self.bob.address, amount)
        return channel.with_deposit(self.bob.address, amount)

    async def closing_of(self, receipt: Receipt) -> Closing:
        events = await self.hub.events(receipt.block_number, receipt.block_number)
        event = next(e for e in events if isinstance(e, ChannelClosing))
        return Closing(event.deadline, event.transferred_a, event.transferred_b)


_nonce_counter = iter(range(1, 10**9))


def _next_nonce() -> int:
    return next(_nonce_counter)


@pytest.fixture
async def world(ledger: Ledger) -> World:
    owner, alice, bob, carol = ledger.dev_accounts()[:4]
    _, hub, token = await deploy_contracts(
        ledger, owner, mint={k.address: 1_000 * UNIT for k in (alice, bob, carol)}
    )
    return World(ledger, hub, token, owner, alice, bob, carol)


@dataclass(frozen=True)
class Broker:
    host: str
    port: int
    log: Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"mosquitto exited with {process.returncode}: {log.read_text()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.02)
    raise RuntimeError(f"mosquitto did not listen on {port} within 10 s: {log.read_text()}")


@contextlib.contextmanager
def run_mosquitto(workdir: Path, settings: str) -> Iterator[Broker]:
    """A Mosquitto of our own with `settings` (config lines) on a free loopback port,
    logging to `workdir`, stopped by PID when the block ends.

    Started as root, Mosquitto drops to its own user unless told which one to be, and
    that user could read and write nothing of ours (the log, a password file).
    """
    port = _free_port()
    log = workdir / "mosquitto.log"
    config = workdir / "mosquitto.conf"
    config.write_text(
        f"listener {port} 127.0.0.1\n"
        f"user {pwd.getpwuid(os.geteuid()).pw_name}\n"
        "persistence false\n"
        f"log_dest file {log}\n"
        "log_type error\nlog_type warning\nlog_type notice\n" + settings
    )
    process = subprocess.Popen(
        [MOSQUITTO, "-c", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=workdir,
    )
    try:
        _wait_listening(port, process, log)
        yield Broker("127.0.0.1", port, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """A Mosquitto of our own on a free loopback port, stopped by PID at the end.

    The queue limits are lifted because the conformance suite streams 10,000
    QoS-1 frames to one subscriber: Mosquitto's default (1000 queued messages)
    would drop the rest, which the transport reports as a broken link.
    `set_tcp_nodelay` stops Nagle's algorithm from delaying each delivery by
    ~40 ms (Mosquitto leaves it on by default).
    """
    with run_mosquitto(
        tmp_path_factory.mktemp("mosquitto"),
        "allow_anonymous true\n"
        "max_queued_messages 0\n"
        "max_inflight_messages 0\n"
        "message_size_limit 0\n"
        "set_tcp_nodelay true\n",
    ) as broker:
        yield broker
