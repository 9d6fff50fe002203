"""`m2mpay data` as two owners use it: a seller's node publishes a plug's feed and the
plug runs with the command it printed; a buyer's node buys seconds of it, and the
`mosquitto_sub` command it printed, run as printed, reads live messages; a reader
without an account reads the average and nothing live; the plug publishes nowhere
but on its own topics; the seller's node restarts with its feed and its grant.

Real processes throughout: two `m2mpay node` daemons on one embedded chain, each with
its own Mosquitto, the plug (`m2mpay device run plug`), and Debian's `mosquitto_sub`
and `mosquitto_pub`."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from m2mpay.bench.daemons import NodeProcess
from tests.api.conftest import funded_channel
from tests.cli.conftest import cli

DEVICE = "plug-kitchen"
PRICE_PER_HOUR = 3600 * 10**12  # 10**12 a second
TOKENS: dict[Path, str] = {}  # each node's API token, printed on its first start only


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NodeProcess, NodeProcess]]:
    """A seller and a buyer on one embedded chain (the seller hosts it)."""
    base = tmp_path_factory.mktemp("data")
    chain = ["--chain-dir", str(base / "chain")]
    seller = NodeProcess(base / "seller", *chain)
    buyer = NodeProcess(base / "buyer", *chain)
    try:
        for node in (seller, buyer):
            TOKENS[node.data_dir] = node.start()["api_token"]
        yield seller, buyer
    finally:
        buyer.stop()
        seller.stop()


def _as(node: NodeProcess, token: str, *args: str) -> Any:
    result = cli(*args, M2MPAY_URL=node.url, M2MPAY_TOKEN=token)
    assert result.exit_code == 0, result.output
    return result


def _line(output: str, start: str) -> str:
    [found] = [line for line in output.splitlines() if line.startswith(start)]
    return found


def _broker(node: NodeProcess) -> tuple[str, str]:
    host, _, port = str(node.ready["mqtt"]).rpartition(":")
    return host, port


def _sub(*args: str, count: int = 1, wait_s: int = 30) -> subprocess.CompletedProcess[str]:
    """`mosquitto_sub` (MQTT 5, so that a refusal is said) reading `count` messages, or
    giving up after `wait_s` seconds."""
    return subprocess.run(
        ["mosquitto_sub", "-V", "mqttv5", *args, "-C", str(count), "-W", str(wait_s)],
        capture_output=True, text=True, timeout=wait_s + 30, check=False,
    )  # fmt: skip


def _publish(seller: NodeProcess, token: str, password_file: Path) -> tuple[list[str], str]:
    """`data publish`: the plug's command as printed, and its password (saved, not printed)."""
    published = _as(
        seller, token, "data", "publish", DEVICE,
        "--price-per-hour", str(PRICE_PER_HOUR), "--min", "5", "--max", "600",
        "--save-password", str(password_file),
    )  # fmt: skip
    assert password_file.stat().st_mode & 0o077 == 0
    plug_password = password_file.read_text().strip()
    assert plug_password not in published.output
    words = shlex.split(_line(published.output, "m2mpay device run plug"))
    assert words[words.index("--username") + 1] == f"m2mpay-{DEVICE}"
    return words, plug_password


def _read_free_not_live(host: str, port: str) -> None:
    """A reader without an account: the average, and nothing of the live topic."""
    average = _sub("-h", host, "-p", port, "-t", f"m2m/{DEVICE}/1m")
    assert average.returncode == 0, average.stderr
    assert json.loads(average.stdout)["window_s"] == 60
    live = _sub("-h", host, "-p", port, "-t", f"m2m/{DEVICE}/live")
    assert "denied" in live.stderr
    assert live.stdout == ""


def _buy_and_read(seller: NodeProcess, buyer: NodeProcess, token: str, feed_id: str) -> str:
    """`data buy` by a prefix of the feed's id, then its `mosquitto_sub` command run as
    printed; the buyer's password."""
    with httpx.Client(
        base_url=buyer.url, headers={"Authorization": f"Bearer {token}"}, timeout=60
    ) as api:
        funded_channel(api, seller, deposit=10**18)
    bought = _as(buyer, token, "data", "buy", seller.url, feed_id[:12], "--minutes", "5")
    command = shlex.split(_line(bought.output, "mosquitto_sub "))
    read = subprocess.run(
        [*command, "-C", "3", "-W", "30"], capture_output=True, text=True, timeout=60, check=False
    )
    assert read.returncode == 0, read.stderr
    messages = read.stdout.splitlines()
    assert len(messages) == 3
    for message in messages:
        topic, body = message.split(" ", 1)
        assert topic == f"m2m/{DEVICE}/live"
        assert set(json.loads(body)) == {"watts", "at_ms"}
    return command[command.index("-P") + 1]


def _publish_as_plug(
    host: str, port: str, password: str, topic: str, username: str = f"m2mpay-{DEVICE}"
) -> str:
    """What `mosquitto_pub` (MQTT 5, which says a refusal) says publishing as the plug
    (or as `username`)."""
    sent = subprocess.run(
        ["mosquitto_pub", "-V", "mqttv5", "-h", host, "-p", port, "-u", username,
         "-P", password, "-t", topic, "-m", "{}", "-q", "1"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    return sent.stderr


def test_a_feed_sold_bought_and_read_with_the_printed_commands(
    nodes: tuple[NodeProcess, NodeProcess], tmp_path: Path
) -> None:
    seller, buyer = nodes
    seller_token, buyer_token = TOKENS[seller.data_dir], TOKENS[buyer.data_dir]
    assert seller.ready["mqtt"]  # every node runs its broker
    assert buyer.ready["mqtt"]
    words, plug_password = _publish(seller, seller_token, tmp_path / "plug.password")
    [feed] = json.loads(_as(seller, seller_token, "data", "feeds", "--json").stdout)["feeds"]
    assert feed["device_id"] == DEVICE
    assert feed["live_topic"] == f"m2m/{DEVICE}/live"
    # Anyone reads the storefront, from the buyer's side too.
    listed = _as(buyer, buyer_token, "data", "feeds", "--seller", seller.url)
    assert feed["feed_id"][:10] in listed.output

    host, port = _broker(seller)
    plug_log = tmp_path / "plug.log"
    with plug_log.open("w") as log:
        plug = subprocess.Popen(
            [sys.executable, "-m", *words], stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, env={**os.environ, "M2MPAY_TOKEN": ""},
        )  # fmt: skip
    try:
        _read_free_not_live(host, port)
        buyer_password = _buy_and_read(seller, buyer, buyer_token, feed["feed_id"])
        # The buyer's password was in that answer only.
        grants = _as(buyer, buyer_token, "data", "grants", "--json")
        assert buyer_password not in grants.stdout
        assert buyer_password not in (buyer.data_dir / "feeds.json").read_text()
        assert buyer_password not in buyer.stderr()
        [mine] = json.loads(grants.stdout)["grants"]
        assert mine["role"] == "buyer"
        assert mine["seconds"] == 300
        # The plug's credentials publish on its own topics only.
        assert "Not authorized" not in _publish_as_plug(
            host, port, plug_password, f"m2m/{DEVICE}/live"
        )
        assert "Not authorized" in _publish_as_plug(
            host, port, plug_password, "m2m/another-plug/live"
        )
        # A paying reader reads; it publishes nothing, not even on the topic it reads.
        assert "Not authorized" in _publish_as_plug(
            host, port, buyer_password, f"m2m/{DEVICE}/live", username=mine["username"]
        )
        # More seconds, by a prefix of the grant's id.
        extended = _as(
            buyer, buyer_token, "data", "extend", mine["session_id"][:12], "--seconds", "60",
            "--json",
        )  # fmt: skip
        assert json.loads(extended.stdout)["seconds"] == 360
        [grant] = json.loads(_as(seller, seller_token, "data", "grants", "--json").stdout)["grants"]
        assert grant["role"] == "seller"
        assert grant["username"] == mine["username"]
        assert grant["phase"] == "live"
    finally:
        plug.terminate()
        plug.wait(timeout=30)

    # The seller's node restarts: its feed is sold again under the same id, and the
    # grant is still live until its paid end.
    assert seller.stop() == 0
    seller.start()
    again = json.loads(_as(seller, seller_token, "data", "feeds", "--json").stdout)["feeds"]
    assert [f["feed_id"] for f in again] == [feed["feed_id"]]
    after = json.loads(_as(seller, seller_token, "data", "grants", "--json").stdout)["grants"]
    assert [(g["session_id"], g["phase"]) for g in after] == [(grant["session_id"], "live")]
    assert after[0]["paid_until_ms"] >= grant["paid_until_ms"]


def test_a_plug_run_against_the_node_publishes_its_own_feed(
    nodes: tuple[NodeProcess, NodeProcess], tmp_path: Path
) -> None:
    seller, _ = nodes
    env = {**os.environ, "M2MPAY_URL": seller.url, "M2MPAY_TOKEN": TOKENS[seller.data_dir]}
    argv = [
        sys.executable,
        "-m",
        "m2mpay",
        "device",
        "run",
        "plug",
        "--name",
        "plug-hall",
        "--json",
    ]
    log = tmp_path / "plug-hall.log"
    with log.open("w") as err:
        plug = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL, text=True, env=env
        )
    try:
        assert plug.stdout is not None
        published = json.loads(plug.stdout.readline())
        assert published["event"] == "published", log.read_text()
        assert published["username"] == "m2mpay-plug-hall"
        assert "password" not in published
        host, port = _broker(seller)
        average = _sub("-h", host, "-p", port, "-t", "m2m/plug-hall/1m")
        assert average.returncode == 0, log.read_text() + average.stderr
        # Its feed is on sale: a second plug of that name is told what to do instead.
        again = subprocess.run(
            argv, capture_output=True, text=True, env=env, timeout=60, check=False
        )
        assert again.returncode == 1
        assert "on sale already" in again.stderr
    finally:
        plug.terminate()
        plug.wait(timeout=30)
    feeds = json.loads(_as(seller, TOKENS[seller.data_dir], "data", "feeds", "--json").stdout)
    assert "plug-hall" in [f["device_id"] for f in feeds["feeds"]]


def test_a_feed_sold_by_the_message_is_read_with_the_printed_command(
    nodes: tuple[NodeProcess, NodeProcess], tmp_path: Path
) -> None:
    """`data publish --price-per-message`, `data buy --messages 3`: the printed
    `mosquitto_sub` reads exactly three messages while the device publishes more."""
    seller, buyer = nodes
    seller_token, buyer_token = TOKENS[seller.data_dir], TOKENS[buyer.data_dir]
    device_file = tmp_path / "meter.password"
    published = _as(
        seller, seller_token, "data", "publish", "meter-msg",
        "--price-per-hour", str(PRICE_PER_HOUR), "--price-per-message", "5000",
        "--save-password", str(device_file), "--json",
    )  # fmt: skip
    per_message = json.loads(published.stdout)["per_message"]
    assert per_message["unit"] == "message"
    listed = _as(buyer, buyer_token, "data", "feeds", "--seller", seller.url, "--json")
    shown = {f["feed_id"]: f for f in json.loads(listed.stdout)["feeds"]}
    assert shown[per_message["feed_id"]]["price_per_message"] == "5000"
    # Gas and tokens of its own, whichever test of the module ran before.
    _as(buyer, buyer_token, "wallet", "faucet")
    bought = _as(
        buyer, buyer_token, "data", "buy", seller.url, per_message["feed_id"][:12],
        "--messages", "3", "--deposit", str(10**18),
    )  # fmt: skip
    command = shlex.split(_line(bought.output, "mosquitto_sub "))
    assert command[command.index("-i") + 1] == command[command.index("-u") + 1]
    [mine] = [
        g
        for g in json.loads(_as(buyer, buyer_token, "data", "grants", "--json").stdout)["grants"]
        if g["unit"] == "message"
    ]
    assert mine["messages"] == 3
    host, port = _broker(seller)
    reader = subprocess.Popen(
        [*command, "-W", "8"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        phase = ""
        while phase != "stopped":
            sent = subprocess.run(
                ["mosquitto_pub", "-h", host, "-p", port, "-u", "m2mpay-meter-msg",
                 "-P", device_file.read_text().strip(), "-t", "m2m/meter-msg/live",
                 "-q", "1", "-l"],
                input="".join(f'{{"n": {n}}}\n' for n in range(10)),
                capture_output=True, text=True, timeout=30, check=False,
            )  # fmt: skip
            assert sent.returncode == 0, sent.stderr
            shown = _as(buyer, buyer_token, "data", "grants", "--json").stdout
            [now] = [
                g for g in json.loads(shown)["grants"] if g["session_id"] == mine["session_id"]
            ]
            phase = now["phase"]
        out, err = reader.communicate(timeout=30)
    finally:
        reader.kill()
    lines = out.splitlines()
    assert len(lines) == 3, err
    assert all(line.startswith(f"{mine['live_topic']} ") for line in lines)
