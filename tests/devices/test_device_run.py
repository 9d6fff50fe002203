"""`m2mpay device run` as a newcomer uses it: a real `m2mpay node` process sells what a
charger run from the shell (a process of its own) delivers; the offer takes its unit and
price from the device; a buyer's node completes a session on it; devices are named by
prefixes of their ids; and the runner's errors are one line."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from m2mpay.bench.daemons import NodeProcess
from m2mpay.cli import app
from m2mpay.cli.units import decimal_amount, local_time
from m2mpay.devices.catalog import RUNNABLE_DEVICES

UNIT = 10**18
CHARGER_PRICE = RUNNABLE_DEVICES["charger"].price
runner = CliRunner()

Event = dict[str, Any]


def _cli(node: NodeProcess, *args: str, token: str | None = None) -> Result:
    env = {"M2MPAY_URL": node.url, "M2MPAY_TOKEN": token or node.ready["api_token"]}
    return runner.invoke(app, list(args), env=env)


def _json(node: NodeProcess, *args: str) -> Any:
    result = _cli(node, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@dataclass
class DeviceProcess:
    """`m2mpay device run KIND --json` against a node; its events as it prints them."""

    process: subprocess.Popen[str]
    log: Path
    events: list[Event] = field(default_factory=list)
    _changed: threading.Condition = field(default_factory=threading.Condition)
    _reader: threading.Thread | None = None

    @classmethod
    def start(cls, node: NodeProcess, kind: str, data_dir: Path, *extra: str) -> DeviceProcess:
        log = data_dir.parent / f"device-{kind}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "M2MPAY_URL": node.url, "M2MPAY_TOKEN": node.ready["api_token"]}
        env.pop("M2MPAY_DEVICE_KEY", None)
        with log.open("w") as err:
            process = subprocess.Popen(
                [sys.executable, "-m", "m2mpay", "device", "run", kind, "--json",
                 "--data-dir", str(data_dir), *extra],
                stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL, text=True, env=env,
            )  # fmt: skip
        device = cls(process, log)
        device._reader = threading.Thread(target=device._read, daemon=True)
        device._reader.start()
        return device

    def _read(self) -> None:
        assert self.process.stdout is not None
        for text in self.process.stdout:
            with self._changed:
                self.events.append(json.loads(text))
                self._changed.notify_all()

    def wait_for(self, name: str, match: Callable[[Event], bool] = lambda _: True) -> Event:
        deadline = time.monotonic() + 60
        with self._changed:
            while True:
                for event in self.events:
                    if event["event"] == name and match(event):
                        return event
                left = deadline - time.monotonic()
                if left <= 0 or self.process.poll() is not None:
                    pytest.fail(f"no {name} event: {self.events} {self.log.read_text()}")
                self._changed.wait(min(left, 0.5))

    def interrupt(self) -> int:
        """Ctrl-C, as its owner stops it; the exit code."""
        self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=30)
        finally:
            self.end()

    def end(self) -> None:
        """Killed if still running; its output read to the end and closed."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        if self._reader is not None:
            self._reader.join(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NodeProcess, NodeProcess]]:
    """A seller's and a buyer's node on one embedded chain (the seller hosts it)."""
    root = tmp_path_factory.mktemp("nodes")
    chain = ("--chain-dir", str(root / "chain"))
    with contextlib.ExitStack() as running:
        seller, buyer = (NodeProcess(root / name, *chain) for name in ("seller", "buyer"))
        for node in (seller, buyer):
            running.callback(node.stop)  # the buyer first: the seller hosts the chain
            node.start()
        yield seller, buyer


@pytest.fixture(scope="module")
def charger(
    nodes: tuple[NodeProcess, NodeProcess], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DeviceProcess]:
    seller, _ = nodes
    device = DeviceProcess.start(
        seller, "charger", tmp_path_factory.mktemp("charger"), "--speed", "600"
    )
    try:
        device.wait_for("registered")
        yield device
    finally:
        device.end()


def test_a_charger_run_from_the_shell_sells_a_session_under_an_offer_of_its_defaults(
    nodes: tuple[NodeProcess, NodeProcess], charger: DeviceProcess
) -> None:
    seller, buyer = nodes
    registered = charger.wait_for("registered")
    device = registered["device"]
    assert registered["node"] == seller.ready["address"]  # pinned to the node asked
    assert registered["services"][0]["name"] == "charge"

    # Only the device and the window: kind, unit, price and asset are the charger's.
    offer = _json(seller, "offer", "publish", "--device", device[:10], "--window", "20")
    assert (offer["kind"], offer["unit"], offer["price"]) == ("energy", "Wh", str(CHARGER_PRICE))
    assert offer["asset"] == seller.ready["token_contract"]

    _json(buyer, "wallet", "faucet")
    bought = _cli(
        buyer,
        "session", "start", offer["offer_id"][:12], "--seller", seller.url,
        "--deposit", str(UNIT), "--target-units", "100", "--follow", "--interval", "0.1",
    )  # fmt: skip
    assert bought.exit_code == 0, bought.output
    assert "target reached" in bought.stdout
    (session,) = _json(buyer, "session", "list")["sessions"]
    assert session["forward"] == {
        "units": 100,
        "value": str(100 * CHARGER_PRICE),
        "paid": str(100 * CHARGER_PRICE),
    }

    def countersigned() -> bool:
        shown = _json(seller, "session", "show", session["session_id"][:12])
        return bool(shown["countersigned"]) and shown["forward"] == session["forward"]

    deadline = time.monotonic() + 30
    while not countersigned():
        assert time.monotonic() < deadline, "the seller never countersigned"
        time.sleep(0.1)

    # The device said the session began, what it delivered and that it stopped.
    def same(event: Event) -> bool:
        return bool(event["session"] == session["session_id"])

    assert charger.wait_for("session_started", same)["service"] == "charge"
    stopped = charger.wait_for("session_stopped", same)
    assert (stopped["units"], stopped["unit"]) == (100, "Wh")
    told = [e["units"] for e in charger.events if e["event"] == "delivered" and same(e)]
    assert told == sorted(told)
    assert all(0 < units <= 100 for units in told)

    assert charger.interrupt() == 0  # Ctrl-C: a clean stop
    assert charger.events[-1] == {"event": "stopped", "device": device}
    assert "Traceback" not in charger.log.read_text()


def test_devices_are_named_by_unique_prefixes_of_their_ids(
    nodes: tuple[NodeProcess, NodeProcess], tmp_path: Path
) -> None:
    seller, _ = nodes
    lamps = [
        DeviceProcess.start(seller, "lamp", tmp_path / f"lamp{i}", "--name", f"lamp{i}")
        for i in (1, 2)
    ]
    try:
        ids = [lamp.wait_for("registered")["device"] for lamp in lamps]
        known = len(_json(seller, "device", "list")["devices"])
        prefix = next(
            ids[0][:n] for n in range(4, 42) if not ids[1].lower().startswith(ids[0][:n].lower())
        )
        shown = _json(seller, "device", "show", prefix.lower())
        assert shown["device_id"] == ids[0]
        # For people: the lamp's price in the node's token with its symbol, a local time.
        model = RUNNABLE_DEVICES["lamp"]
        in_words = _cli(seller, "device", "show", prefix)
        assert in_words.exit_code == 0, in_words.output
        assert f"light ({decimal_amount(model.price, 18)} M2M/s)" in in_words.stdout
        assert local_time(shown["registered_ms"]) in in_words.stdout
        assert str(shown["registered_ms"]) not in in_words.stdout
        assert _json(seller, "device", "telemetry", prefix)["records"] is not None

        ambiguous = _cli(seller, "device", "show", "0x")
        assert ambiguous.exit_code == 1
        assert f"{known} devices start with 0x" in ambiguous.stderr
        assert len(ambiguous.stderr.strip().splitlines()) == 1
        unknown = _cli(seller, "device", "show", "0xzz")
        assert unknown.exit_code == 1
        assert f"no device starts with 0xzz, of the node's {known}" in unknown.stderr
        refused = _cli(seller, "offer", "publish", "--device", "0x", "--window", "5")
        assert refused.exit_code == 1
        assert f"{known} devices start with 0x" in refused.stderr

        # The lamp's one service, its unit and price, by a prefix of its id alone.
        offer = _json(seller, "offer", "publish", "--device", prefix, "--window", "5")
        price = RUNNABLE_DEVICES["lamp"].price
        assert (offer["kind"], offer["unit"], offer["price"]) == ("actuation", "s", str(price))
        no_such = _cli(seller, "offer", "publish", "--device", f"{prefix}/heat", "--window", "5")
        assert no_such.exit_code == 1
        assert f"device {ids[0][:10]} has no service 'heat' (it registered: light)" in " ".join(
            no_such.stderr.split()
        )
    finally:
        for lamp in lamps:
            assert lamp.interrupt() == 0


def test_the_runner_says_in_one_line_when_the_node_is_away_or_the_token_is_wrong(
    nodes: tuple[NodeProcess, NodeProcess], tmp_path: Path
) -> None:
    seller, _ = nodes
    away = runner.invoke(
        app,
        ["device", "run", "charger", "--data-dir", str(tmp_path)],
        env={"M2MPAY_URL": "http://127.0.0.1:9", "M2MPAY_TOKEN": ""},
    )
    assert away.exit_code == 1
    assert "cannot reach the node at http://127.0.0.1:9" in away.stderr
    wrong = _cli(seller, "device", "run", "charger", "--data-dir", str(tmp_path), token="m2m_no")
    assert wrong.exit_code == 1
    assert "unauthorized" in wrong.stderr
    for result in (away, wrong):
        assert "Traceback" not in result.output
    unknown = runner.invoke(app, ["device", "run", "toaster"])
    assert unknown.exit_code == 2
    # Rich's error panel wraps the message at the terminal's width: read it unwrapped.
    unwrapped = " ".join(unknown.output.replace("│", " ").split())
    assert "'toaster' is not one of charger, turbine, inverter, lamp, plug" in unwrapped
    assert "{charger|turbine|inverter|lamp|plug}" in unknown.output
    bad_unit = _cli(seller, "device", "run", "lamp", "--unit", "Wh", "--data-dir", str(tmp_path))
    assert bad_unit.exit_code == 1
    assert "a lamp meters in s, not Wh" in bad_unit.stderr
