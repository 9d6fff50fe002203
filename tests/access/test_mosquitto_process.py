"""The node's own Mosquitto as a process: started, kept across restarts, stopped by PID."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest

from m2mpay.access.broker import TopicAccess
from m2mpay.access.dynsec import DynsecBroker
from m2mpay.access.dynsec_file import withdraw_reads
from m2mpay.access.mosquitto import BrokerAddress, ManagedMosquitto
from m2mpay.access.tether import TETHERED
from m2mpay.errors import AccessError


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[ManagedMosquitto]:
    managed = ManagedMosquitto(tmp_path)
    managed.start()
    try:
        yield managed
    finally:
        managed.stop()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ")[-1]
    except OSError:
        return False
    return not state.startswith("Z")


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), 0.5):
            return True
    except OSError:
        return False


def test_start_listens_and_keeps_the_admin_credentials_private(
    broker: ManagedMosquitto,
) -> None:
    assert _listening(broker.port)
    assert broker.pid is not None
    assert _alive(broker.pid)
    assert int(broker.pid_file.read_text()) == broker.pid
    assert stat.S_IMODE(broker.admin_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(broker.directory.stat().st_mode) == 0o700
    kept = json.loads(broker.admin_file.read_text())
    assert broker.address.admin_username == kept["username"]
    assert len(kept["password"]) >= 32
    assert kept["password"] not in repr(broker.address)
    assert kept["password"] not in broker.config.read_text()
    assert f"listener {broker.port} 127.0.0.1" in broker.config.read_text()


async def test_a_restart_keeps_the_port_the_clients_and_their_grants(tmp_path: Path) -> None:
    first = ManagedMosquitto(tmp_path)
    first.start()
    try:
        async with DynsecBroker(first.address) as admin:
            await admin.prepare()
            await admin.add_client("keeper", "its password")
            await admin.allow("keeper", TopicAccess("m2m/plug/live", read=True, write=False))
        port = first.port
    finally:
        first.stop()
    assert not _listening(port)

    again = ManagedMosquitto(tmp_path)
    again.start()
    try:
        assert again.port == port
        async with DynsecBroker(again.address) as admin:
            assert "keeper" in await admin.clients()
            assert await admin.access_of("keeper") == {
                TopicAccess("m2m/plug/live", read=True, write=False)
            }
        async with aiomqtt.Client("127.0.0.1", port, username="keeper", password="its password"):
            pass
    finally:
        again.stop()


async def test_the_nodes_broker_starts_again_with_no_client_reading(tmp_path: Path) -> None:
    """What a client may read is the keeper's to give back after a restart (a grant may
    have ended meanwhile); what a device may write, and the public topics, stay."""
    first = ManagedMosquitto(tmp_path, before_start=withdraw_reads)
    first.start()
    try:
        async with DynsecBroker(first.address) as admin:
            await admin.prepare()
            await admin.set_public(["m2m/+/1m"])
            await admin.add_client("reader", "its password")
            await admin.allow("reader", TopicAccess("m2m/plug/live", read=True, write=False))
            await admin.add_client("m2mpay-plug", "the plug's")
            await admin.allow("m2mpay-plug", TopicAccess("m2m/plug/live", read=False, write=True))
    finally:
        first.stop()

    again = ManagedMosquitto(tmp_path, before_start=withdraw_reads)
    again.start()
    try:
        async with DynsecBroker(again.address) as admin:
            assert await admin.clients() == {"reader", "m2mpay-plug"}
            assert await admin.access_of("reader") == frozenset()
            assert await admin.access_of("m2mpay-plug") == {
                TopicAccess("m2m/plug/live", read=False, write=True)
            }
            assert await admin.public() == {"m2m/+/1m"}
    finally:
        again.stop()
    assert withdraw_reads(tmp_path / "nothing.json") == 0


def test_stop_ends_the_process_by_pid(broker: ManagedMosquitto) -> None:
    pid, port = broker.pid, broker.port
    assert pid is not None
    broker.stop()
    assert not _alive(pid)
    assert not _listening(port)
    assert not broker.pid_file.exists()
    broker.stop()  # stopping a stopped broker does nothing


def test_an_instance_left_by_a_crash_is_stopped_before_a_new_one_starts(tmp_path: Path) -> None:
    crashed = ManagedMosquitto(tmp_path)
    crashed.start()
    old_pid = crashed.pid
    assert old_pid is not None
    # The node died without stopping it: a new node on the same data dir finds it.
    again = ManagedMosquitto(tmp_path)
    try:
        again.start()
        assert not _alive(old_pid)
        assert again.pid != old_pid
        assert again.pid is not None
        assert _alive(again.pid)
        assert again.port == crashed.port
    finally:
        again.stop()
        crashed.stop()


def test_a_stale_pid_file_naming_another_process_leaves_it_alone(tmp_path: Path) -> None:
    stranger = subprocess.Popen(["sleep", "60"])
    try:
        managed = ManagedMosquitto(tmp_path)
        managed.directory.mkdir(parents=True)
        managed.pid_file.write_text(f"{stranger.pid}\n")
        managed.start()
        try:
            assert stranger.poll() is None
            assert managed.pid is not None
            assert int(managed.pid_file.read_text()) == managed.pid
        finally:
            managed.stop()
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


def test_a_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        managed = ManagedMosquitto(tmp_path, port=port)
        with pytest.raises(AccessError) as refused:
            managed.start()
    assert refused.value.code == "port_in_use"
    assert str(port) in refused.value.message
    assert managed.pid is None
    assert not managed.pid_file.exists()


def test_a_broker_that_exits_at_once_reports_its_log(tmp_path: Path) -> None:
    managed = ManagedMosquitto(tmp_path)
    managed.directory.mkdir(parents=True)
    managed.dynsec.write_text("this is not JSON")
    try:
        with pytest.raises(AccessError) as failed:
            managed.start()
    finally:
        managed.stop()
    assert failed.value.code == "broker_failed"
    assert "dynsec.json" in failed.value.message
    assert managed.pid is None
    assert not managed.pid_file.exists()


def test_a_broker_address_is_parsed_from_its_url() -> None:
    address = BrokerAddress.parse("mqtt://broker.example:1884", "admin", "secret")
    assert (address.host, address.port, address.url) == (
        "broker.example",
        1884,
        "mqtt://broker.example:1884",
    )
    assert BrokerAddress.parse("mqtt://10.0.0.2", "admin", "secret").port == 1883
    assert "secret" not in repr(address)
    for url in ("http://broker:1883", "mqtt://:1883", "mqtt://broker:port", "mqtt://b:1/x"):
        with pytest.raises(AccessError) as refused:
            BrokerAddress.parse(url, "admin", "secret")
        assert refused.value.code == "bad_broker_url"
    with pytest.raises(AccessError):
        BrokerAddress.parse("mqtt://broker:1883", "admin", "")


def test_a_dynsec_file_without_its_admin_credentials_is_a_clear_error(tmp_path: Path) -> None:
    first = ManagedMosquitto(tmp_path)
    first.start()
    first.stop()
    first.admin_file.unlink()
    with pytest.raises(AccessError) as lost:
        ManagedMosquitto(tmp_path).start()
    assert lost.value.code == "broker_failed"
    assert "admin.json" in lost.value.message


def test_the_broker_may_hold_a_thousand_subscribers(broker: ManagedMosquitto) -> None:
    assert broker.pid is not None
    limits = Path(f"/proc/{broker.pid}/limits").read_text()
    soft = next(line for line in limits.splitlines() if line.startswith("Max open files"))
    assert int(soft.split()[3]) > 1_100
    assert "max_queued_messages 1000" in broker.config.read_text()


# A node in a process of its own: it starts its broker from a thread that then ends
# (as `asyncio.to_thread` does), says the broker's PID and waits to be killed.
_NODE = """
import sys, threading
from pathlib import Path
from m2mpay.access.mosquitto import ManagedMosquitto
broker = ManagedMosquitto(Path(sys.argv[1]))
starting = threading.Thread(target=broker.start)
starting.start()
starting.join()
while Path(f"/proc/self/task/{starting.native_id}").exists():
    pass  # the thread's end is the kernel's moment for a child tethered to it
print(broker.pid, broker.port, flush=True)
sys.stdin.read()
"""


def _gone_within(pid: int, timeout: float) -> bool:
    """Whether `pid` is gone (or a zombie nobody reaped) before `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


async def _adds_a_client(admin: BrokerAddress) -> bool:
    async with DynsecBroker(admin) as broker:
        await broker.prepare()
        await broker.add_client("reader", "its password")
        return "reader" in await broker.clients()


def test_the_broker_outlives_the_thread_that_started_it_and_dies_with_its_node(
    tmp_path: Path,
) -> None:
    """Fail closed: a node SIGKILLed takes its broker (and the grants on it) along."""
    assert TETHERED  # Linux: the kernel's parent-death signal is there
    node = subprocess.Popen(
        [sys.executable, "-c", _NODE, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert node.stdout is not None
        pid, port = (int(word) for word in node.stdout.readline().split())
        # The thread that started it has ended; the broker still answers its admin.
        kept = json.loads(ManagedMosquitto(tmp_path).admin_file.read_text())
        admin = BrokerAddress("127.0.0.1", port, kept["username"], kept["password"])
        assert asyncio.run(_adds_a_client(admin))
        assert _alive(pid)
        node.send_signal(signal.SIGKILL)
        node.wait()
        assert _gone_within(pid, timeout=30), "the broker outlived its node"
        assert not _listening(port)
    finally:
        node.kill()
        node.wait()
    # The node's restart starts it anew, on the same port, its clients kept.
    again = ManagedMosquitto(tmp_path)
    again.start()
    try:
        assert again.port == port
        assert again.pid != pid
    finally:
        again.stop()
