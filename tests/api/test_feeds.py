"""The paid-data routes of two real daemons on one embedded chain: a seller on its own
Mosquitto, a buyer with MQTT switched off (a buyer needs no broker of its own).

Every route answers as documented, and every bad input is refused clearly, before
any money moves: an unknown feed, seconds outside the feed's bounds, half of a pair of
credentials, a node's own client name, a name another buyer holds (the seller's
reason), a seller that does not answer, a node buying its own feed."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import pytest
from aiomqtt.exceptions import MqttCodeError

from m2mpay.access.broker import TopicAccess
from m2mpay.access.dynsec import DynsecBroker
from m2mpay.access.mosquitto import BrokerAddress, ManagedMosquitto
from m2mpay.bench.daemons import NodeProcess
from m2mpay.client import NodeClient
from m2mpay.client.feeds import FeedView
from m2mpay.errors import M2MPayError
from tests.api.conftest import funded_channel

PRICE_PER_HOUR = 3600 * 10**12
UNKNOWN = "0x" + "ab" * 32


@dataclass
class Pair:
    seller: NodeProcess
    buyer: NodeProcess
    shop: httpx.Client  # the seller's API, with its token
    api: httpx.Client  # the buyer's, with its token
    channel: str  # the buyer's funded channel to the seller


def _client(node: NodeProcess) -> httpx.Client:
    token = node.ready["api_token"]
    return httpx.Client(base_url=node.url, headers={"Authorization": f"Bearer {token}"}, timeout=60)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    base = tmp_path_factory.mktemp("feeds")
    chain = ["--chain-dir", str(base / "chain")]
    seller = NodeProcess(base / "seller", *chain)
    buyer = NodeProcess(base / "buyer", *chain, "--no-mqtt")
    try:
        seller.start()
        buyer.start()
        with _client(seller) as shop, _client(buyer) as api:
            yield Pair(seller, buyer, shop, api, funded_channel(api, seller, deposit=10**18))
    finally:
        buyer.stop()
        seller.stop()


def _error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code, error
    return error


def _publish(pair: Pair, device: str, **terms: Any) -> dict[str, Any]:
    body = {"device_id": device, "price_per_hour": str(PRICE_PER_HOUR), **terms}
    published = pair.shop.post("/v1/feeds", json=body)
    assert published.status_code == 201, published.text
    answer: dict[str, Any] = published.json()
    return answer


def _paid(pair: Pair) -> int:
    """All the buyer has paid, on every channel."""
    channels = pair.api.get("/v1/channels").json()["channels"]
    return sum(int(c["sent_total"]) for c in channels)


def _buy(pair: Pair, feed_id: str, seconds: int, **extra: Any) -> httpx.Response:
    body = {"seller": pair.seller.url, "feed_id": feed_id, "seconds": seconds, **extra}
    return pair.api.post("/v1/grants", json=body)


def test_feeds_are_published_listed_publicly_and_retired(pair: Pair) -> None:
    published = _publish(pair, "meter-a", min_seconds=10, max_seconds=120)
    feed, device = published["feed"], published["device"]
    assert feed["live_topic"] == "m2m/meter-a/live"
    assert feed["free_topic"] == "m2m/meter-a/1m"
    assert feed["price_per_second"] == str(PRICE_PER_HOUR // 3600)
    assert feed["offer"]["offer_id"] == feed["feed_id"]
    assert feed["broker"] == pair.seller.ready["mqtt"]
    assert device["username"] == "m2mpay-meter-a"
    assert f"{device['host']}:{device['port']}" == feed["broker"]
    # Public reads, without the token; the device's password is in no later answer.
    with httpx.Client(base_url=pair.seller.url) as anyone:
        listed = anyone.get("/v1/feeds")
        shown = anyone.get(f"/v1/feeds/{feed['feed_id']}")
        assert anyone.post("/v1/feeds", json={}).status_code == 401
    assert listed.status_code == 200
    assert feed["feed_id"] in [f["feed_id"] for f in listed.json()["feeds"]]
    assert shown.json() == feed
    assert device["password"] not in listed.text
    assert device["password"] not in (pair.seller.data_dir / "feeds.json").read_text()
    # The feed is also an offer of the storefront, sold by the second.
    offers = pair.shop.get("/v1/offers").json()["offers"]
    assert any(o["offer_id"] == feed["feed_id"] and o["unit"] == "s" for o in offers)

    assert pair.shop.delete(f"/v1/feeds/{feed['feed_id']}").status_code == 204
    _error(pair.shop.get(f"/v1/feeds/{feed['feed_id']}"), 404, "unknown_feed")
    _error(pair.shop.delete(f"/v1/feeds/{feed['feed_id']}"), 404, "unknown_feed")
    # Retired, the device may be sold again, with new credentials.
    again = _publish(pair, "meter-a")
    assert again["feed"]["feed_id"] != feed["feed_id"]
    assert again["device"]["password"] != device["password"]


async def _through_the_sdk(buyer: str, token: str, seller: str) -> list[FeedView]:
    async with NodeClient(buyer, token) as node:
        return list((await node.storefront(seller)).feeds)


def test_a_sellers_storefront_is_read_through_the_buyers_node(pair: Pair) -> None:
    """`POST /v1/storefront`'s feeds: what the web app shows, the seller's own list; a
    URL refused naming `seller`, an absent or silent seller said, the token always."""
    _publish(pair, "meter-shop")
    own = pair.shop.get("/v1/feeds").json()
    through = pair.api.post("/v1/storefront", json={"seller": pair.seller.url})
    assert through.status_code == 200, through.text
    assert through.json()["feeds"] == own["feeds"]
    assert "meter-shop" in [f["device_id"] for f in own["feeds"]]
    for bad in ("ftp://x", "http://", "not a url", "http://a b"):
        refused = pair.api.post("/v1/storefront", json={"seller": bad})
        assert _error(refused, 422, refused.json()["error"]["code"])["field"] == "seller"
    nothing = pair.api.post("/v1/storefront", json={"seller": pair.seller.url + "/x"})
    assert _error(nothing, 404, "unknown_storefront")["field"] == "seller"
    silent = pair.api.post("/v1/storefront", json={"seller": "http://127.0.0.1:1"})
    assert _error(silent, 409, "seller_unreachable")["field"] == "seller"
    anonymous = httpx.post(
        f"{pair.buyer.url}/v1/storefront", json={"seller": pair.seller.url}, timeout=30
    )
    assert anonymous.status_code == 401
    # The SDK's method, the same list.
    token = str(pair.buyer.ready["api_token"])
    listed = asyncio.run(_through_the_sdk(pair.buyer.url, token, pair.seller.url))
    assert [f.feed_id for f in listed] == [f["feed_id"] for f in own["feeds"]]
    [mine] = [f for f in own["feeds"] if f["device_id"] == "meter-shop"]
    assert pair.shop.delete(f"/v1/feeds/{mine['feed_id']}").status_code == 204


def test_bad_feeds_are_refused(pair: Pair) -> None:
    shop = pair.shop
    _publish(pair, "meter-b")
    body = {"device_id": "meter-b", "price_per_hour": "3600"}
    _error(shop.post("/v1/feeds", json=body), 409, "feed_exists")
    for device in ("a/b", "+", "#", "$SYS", "", "x" * 58):
        refused = _error(
            shop.post("/v1/feeds", json={**body, "device_id": device}), 422, "invalid_input"
        )
        assert refused["field"] == "device_id"
    refused = _error(
        shop.post("/v1/feeds", json={**body, "device_id": "m", "min_seconds": 9, "max_seconds": 8}),
        422,
        "invalid_input",
    )
    assert refused["field"] == "min_seconds"
    _error(shop.post("/v1/feeds", json={**body, "price_per_hour": "0"}), 422, "invalid_input")
    _error(shop.get(f"/v1/feeds/{UNKNOWN}"), 404, "unknown_feed")
    # A node without a broker sells no data.
    _error(pair.api.post("/v1/feeds", json=body), 409, "no_broker")
    assert pair.api.get("/v1/feeds").json() == {"feeds": []}


def test_a_grant_is_bought_listed_on_both_sides_and_extended(pair: Pair) -> None:
    feed = _publish(pair, "meter-c", min_seconds=5, max_seconds=600)["feed"]
    bought = _buy(pair, feed["feed_id"], 30)
    assert bought.status_code == 201, bought.text
    answer = bought.json()
    grant, password = answer["grant"], answer["password"]
    assert answer["readable"] is True
    assert f"{answer['host']}:{answer['port']}" == feed["broker"]
    assert grant["role"] == "buyer"
    assert grant["seconds"] == 30
    assert grant["live_topic"] == feed["live_topic"]
    assert grant["username"] == answer["username"]
    assert grant["seller_url"] == pair.seller.url
    assert grant["asset"] == feed["asset"]  # what the amounts it shows are in
    session = grant["session_id"]

    listed = pair.api.get("/v1/grants")
    assert [g["session_id"] for g in listed.json()["grants"]] == [session]
    assert password not in listed.text
    assert pair.api.get(f"/v1/grants/{session}").json()["seconds"] == 30
    sold = pair.shop.get(f"/v1/grants/{session}")
    assert sold.status_code == 200, sold.text
    assert sold.json()["role"] == "seller"
    assert sold.json()["peer"] == pair.buyer.ready["address"]
    assert sold.json()["username"] == answer["username"]
    assert sold.json()["asset"] == feed["asset"]
    assert password not in pair.shop.get("/v1/grants").text
    for where in (pair.buyer, pair.seller):
        assert password not in where.stderr()
        assert password not in (where.data_dir / "feeds.json").read_text()

    extended = pair.api.post(f"/v1/grants/{session}/extend", json={"seconds": 20})
    assert extended.status_code == 200, extended.text
    assert extended.json()["seconds"] == 50
    _error(
        pair.api.post(f"/v1/grants/{session}/extend", json={"seconds": 600}),
        422,
        "above_max_seconds",
    )
    _error(pair.api.post(f"/v1/grants/{UNKNOWN}/extend", json={"seconds": 1}), 404, "unknown_grant")
    _error(pair.api.get(f"/v1/grants/{UNKNOWN}"), 404, "unknown_grant")


def test_bad_purchases_are_refused_before_any_payment(pair: Pair) -> None:
    feed = _publish(pair, "meter-d", min_seconds=10, max_seconds=60)["feed"]
    feed_id = feed["feed_id"]
    paid_before = _paid(pair)

    _error(_buy(pair, UNKNOWN, 30), 404, "unknown_feed")
    assert _error(_buy(pair, feed_id, 9), 422, "below_min_seconds")["field"] == "seconds"
    assert _error(_buy(pair, feed_id, 61), 422, "above_max_seconds")["field"] == "seconds"
    half = _error(_buy(pair, feed_id, 30, username="reader-one"), 422, "invalid_input")
    assert half["field"] == "password"
    _error(_buy(pair, feed_id, 30, username="m2mpay-admin", password="p" * 20), 422, "bad_username")
    _error(_buy(pair, feed_id, 30, password="short", username="reader-one"), 422, "invalid_input")
    short = _error(_buy(pair, feed_id, 30, deposit="1"), 422, "invalid_input")
    assert short["field"] == "deposit"  # a new channel that could not pay for it
    # A URL the pattern lets through but no HTTP client parses (found by schemathesis).
    unparsable = {"seller": "https://X:(?yK", "feed_id": feed_id, "seconds": 30}
    assert _error(pair.api.post("/v1/grants", json=unparsable), 422, "invalid_input")["field"] == (
        "seller"
    )
    gone = {"seller": "http://127.0.0.1:9", "feed_id": feed_id, "seconds": 30}
    _error(pair.api.post("/v1/grants", json=gone), 409, "seller_unreachable")
    own = {"seller": pair.seller.url, "feed_id": feed_id, "seconds": 30}
    _error(pair.shop.post("/v1/grants", json=own), 422, "invalid_input")
    assert _paid(pair) == paid_before

    # A name another purchase holds: the seller says so, and is paid nothing for it.
    # (The first purchase's channel is busy with a session: each opens one.)
    first = _buy(pair, feed_id, 30, username="reader-two", password="q" * 24, deposit=str(10**18))
    assert first.status_code == 201, first.text
    paid = _paid(pair)
    taken = _error(
        _buy(pair, feed_id, 30, username="reader-two", password="r" * 24, deposit=str(10**18)),
        409,
        "refused_by_seller",
    )
    assert "that client name is taken" in taken["message"]
    assert _paid(pair) == paid
    # A retired feed is sold no more.
    assert pair.shop.delete(f"/v1/feeds/{feed_id}").status_code == 204
    _error(_buy(pair, feed_id, 30), 404, "unknown_feed")


def test_the_feed_book_is_kept_in_the_data_dir(pair: Pair, tmp_path: Path) -> None:
    """What `feeds.json` holds: the feeds on sale with their offers, no password."""
    text = (pair.seller.data_dir / "feeds.json").read_text()
    for feed in pair.shop.get("/v1/feeds").json()["feeds"]:
        assert feed["feed_id"][2:] in text or feed["device_id"] in text
    assert "password" not in text
    del tmp_path


def test_a_node_given_a_broker_sells_on_it_and_leaves_it_running(tmp_path: Path) -> None:
    """`--mqtt-url` and `--mqtt-admin-file`: the node starts no Mosquitto of its own,
    sells its feeds on the broker it was given, and stops without stopping it."""
    given = ManagedMosquitto(tmp_path / "theirs")
    given.start()
    try:
        address = given.address
        node = NodeProcess(
            tmp_path / "node",
            "--mqtt-url", f"mqtt://{address.host}:{address.port}",
            "--mqtt-admin-file", str(given.admin_file),
        )  # fmt: skip
        try:
            ready = node.start()
            assert ready["mqtt"] == f"{address.host}:{address.port}"
            assert not (node.data_dir / "mqtt").exists()
            with _client(node) as api:
                body = {"device_id": "their-plug", "price_per_hour": "3600"}
                published = api.post("/v1/feeds", json=body)
            assert published.status_code == 201, published.text
            assert published.json()["feed"]["broker"] == ready["mqtt"]
        finally:
            assert node.stop() == 0
        # Its grants outlive a node that dies, and it says so (ours would not).
        assert "is not the node's own" in node.stderr()
        assert given.pid is not None
        os.kill(given.pid, 0)  # still running: not the node's to stop
    finally:
        given.stop()


@pytest.mark.parametrize(
    ("options", "said"),
    [
        (["--mqtt-url", "mqtt://127.0.0.1:1883"], "--mqtt-url needs its administrator"),
        (["--mqtt-admin-file", "admin.json"], "--mqtt-admin-file goes with --mqtt-url"),
    ],
)
def test_a_broker_half_given_is_refused_in_one_line(
    tmp_path: Path, options: list[str], said: str
) -> None:
    node = NodeProcess(tmp_path / "node", *options)
    with pytest.raises(M2MPayError, match=said):
        node.start()


def _until(check: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"still not {what}"
        time.sleep(0.05)


def test_a_feed_is_sold_by_the_message_and_read_with_mosquitto_sub(pair: Pair) -> None:
    published = _publish(pair, "meter-m", price_per_message="5000")
    per_message, device = published["per_message"], published["device"]
    assert per_message["unit"] == "message"
    assert per_message["price_per_message"] == "5000"
    assert per_message["offer"]["unit"] == "message"
    assert published["feed"]["unit"] == "s"
    listed = [f["feed_id"] for f in pair.shop.get("/v1/feeds").json()["feeds"]]
    assert per_message["feed_id"] in listed
    # By the message: messages, not seconds.
    wrong = _error(_buy(pair, per_message["feed_id"], 30), 422, "invalid_input")
    assert wrong["field"] == "messages"
    body = {"seller": pair.seller.url, "feed_id": per_message["feed_id"], "messages": 4}
    bought = pair.api.post("/v1/grants", json={**body, "deposit": str(10**18)})
    assert bought.status_code == 201, bought.text
    answer = bought.json()
    grant = answer["grant"]
    assert grant["unit"] == "message"
    assert grant["messages"] == 4
    assert answer["client_id"] == answer["username"]
    topic = grant["live_topic"]
    assert topic.startswith("m2m/meter-m/live/")
    session = grant["session_id"]
    _until(
        lambda: pair.shop.get(f"/v1/grants/{session}").json()["phase"] == "live",
        "relaying",
    )
    host, port = answer["host"], str(answer["port"])
    reader = subprocess.Popen(
        ["mosquitto_sub", "-h", host, "-p", port, "-u", answer["username"],
         "-P", answer["password"], "-i", answer["client_id"], "-c", "-q", "1",
         "-t", topic, "-W", "6"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        # The device publishes ten messages at a time until the purchase has its four.
        while pair.api.get(f"/v1/grants/{session}").json()["phase"] != "stopped":
            subprocess.run(
                ["mosquitto_pub", "-h", host, "-p", port, "-u", device["username"],
                 "-P", device["password"], "-t", "m2m/meter-m/live", "-q", "1", "-l"],
                input="".join(f'{{"n": {n}}}\n' for n in range(10)),
                text=True, timeout=30, check=True,
            )  # fmt: skip
        out, _ = reader.communicate(timeout=30)
    finally:
        reader.kill()
    assert len(out.splitlines()) == 4  # exactly what was paid, no more
    sold = pair.shop.get(f"/v1/grants/{session}").json()
    assert sold["messages"] == 4
    assert sold["paid"] == str(4 * 5000)
    assert pair.api.get(f"/v1/grants/{session}").json()["paid"] == str(4 * 5000)


def test_a_grant_that_ended_while_the_seller_was_down_is_revoked_at_its_restart(
    pair: Pair,
) -> None:
    """Last in the module but one (the last kills the seller): it restarts the seller."""
    feed = _publish(pair, "meter-e", min_seconds=2, max_seconds=60)["feed"]
    bought = _buy(pair, feed["feed_id"], 2, deposit=str(10**18))
    assert bought.status_code == 201, bought.text
    answer = bought.json()
    session = answer["grant"]["session_id"]
    shown = pair.shop.get(f"/v1/grants/{session}")
    assert shown.status_code == 200, shown.text
    assert shown.json()["phase"] == "live"
    # The seller permits seconds as they are paid: a second still unpaid at the stop is
    # paid after the restart and read then (no paid second is lost to a restart), so
    # stop only once both are permitted.
    _until(lambda: pair.shop.get(f"/v1/grants/{session}").json()["seconds"] == 2, "all permitted")
    sold = pair.shop.get(f"/v1/grants/{session}").json()
    assert sold["phase"] == "live"
    assert pair.seller.stop() == 0
    # The paid time ends while the seller is down.
    time.sleep(max(0.0, sold["paid_until_ms"] / 1000 - time.time()) + 0.5)
    pair.seller.start()
    after = pair.shop.get(f"/v1/grants/{session}").json()
    assert after["phase"] in ("lapsed", "ended"), after
    assert after["paid_until_ms"] == sold["paid_until_ms"]  # no second more, none lost
    # Taken back before the node serves: its broker, asked as its administrator, lets
    # the buyer's client read nothing (the client itself goes once its session ends,
    # which may be under way now: a reader connecting then is cut off, not refused).
    host, port = answer["host"], int(answer["port"])
    held = _accesses(pair.seller, host, port).get(answer["username"], frozenset())
    assert not any(access.read for access in held), held
    _until(lambda: pair.shop.get(f"/v1/grants/{session}").json()["phase"] == "ended", "ended")
    read = subprocess.run(
        ["mosquitto_sub", "-V", "mqttv5", "-h", host, "-p", str(port), "-u", answer["username"],
         "-P", answer["password"], "-t", feed["live_topic"], "-C", "1", "-W", "5"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert read.stdout == ""
    assert "not authori" in read.stderr.lower(), read.stderr  # Mosquitto says "authorized"
    # Its feed is still for sale, under the same id.
    assert pair.shop.get(f"/v1/feeds/{feed['feed_id']}").status_code == 200


def _accesses(node: NodeProcess, host: str, port: int) -> dict[str, frozenset[TopicAccess]]:
    """What the node's own broker lets each client do, asked as its administrator."""
    admin = json.loads((node.data_dir / "mqtt" / "admin.json").read_text())
    address = BrokerAddress(host, port, admin["username"], admin["password"])

    async def ask() -> dict[str, frozenset[TopicAccess]]:
        async with DynsecBroker(address) as broker:
            return await broker.accesses()

    return asyncio.run(ask())


def _refused(result: Any) -> bool:
    """Whether a SUBACK refused the subscription (0x80 or above)."""
    [code] = result
    failure = getattr(code, "is_failure", None)
    return bool(failure) if failure is not None else int(code) >= 0x80


async def _reads_one(answer: dict[str, Any], topic: str, publish: Any) -> bool:
    """Whether the buyer's client of `answer` may subscribe to `topic` and receive what
    `publish()` then publishes; False if its login or its subscription is refused."""
    client = aiomqtt.Client(
        answer["host"], int(answer["port"]), username=answer["username"],
        password=answer["password"], identifier=answer["username"], clean_session=False,
    )  # fmt: skip
    try:
        async with client:
            if _refused(await client.subscribe(topic, qos=1)):
                return False
            publish()
            async with asyncio.timeout(30):
                async for _ in client.messages:
                    return True
    except MqttCodeError:
        return False  # not authorised: the client is gone
    return False


async def _read_until_cut_off(reader: aiomqtt.Client) -> None:
    async with asyncio.timeout(30):
        async for _ in reader.messages:
            pass


def _sigkill(node: NodeProcess) -> None:
    assert node.process is not None
    node.process.kill()
    node.process.wait()
    if node.process.stdout is not None:
        node.process.stdout.close()
    node.process = None


async def test_a_seller_killed_takes_its_broker_along_and_its_restart_keeps_what_is_paid(
    pair: Pair,
) -> None:
    """Fail closed: a seller SIGKILLed leaves no broker serving grants it can no longer
    revoke; once back, the grant still paid reads again, the one that ended does not.
    Last in the module: it kills the seller."""
    published = _publish(pair, "meter-k", min_seconds=2, max_seconds=600)
    feed, device = published["feed"], published["device"]
    topic = feed["live_topic"]
    paid, ending = (
        _buy(pair, feed["feed_id"], seconds, deposit=str(10**18)).json() for seconds in (300, 2)
    )
    ends_ms = pair.shop.get(f"/v1/grants/{ending['grant']['session_id']}").json()["paid_until_ms"]

    def publish() -> None:
        subprocess.run(
            ["mosquitto_pub", "-h", device["host"], "-p", str(device["port"]),
             "-u", device["username"], "-P", device["password"], "-t", topic, "-q", "1",
             "-m", '{"watts": 1.0}'],
            timeout=30, check=True,
        )  # fmt: skip

    assert await _reads_one(paid, topic, publish)
    broker_pid = int((pair.seller.data_dir / "mqtt" / "mosquitto.pid").read_text())
    reader = aiomqtt.Client(
        paid["host"], int(paid["port"]), username=paid["username"],
        password=paid["password"], identifier=paid["username"], clean_session=False,
    )  # fmt: skip
    async with reader:
        await reader.subscribe(topic, qos=1)
        _sigkill(pair.seller)
        # The reader is cut off: its broker went with the node.
        with pytest.raises(aiomqtt.MqttError):
            await _read_until_cut_off(reader)
    _until(lambda: not _alive(broker_pid), "the broker gone with its node")

    await asyncio.sleep(max(0.0, ends_ms / 1000 - time.time()) + 0.2)  # ends while down
    pair.seller.start()
    assert await _reads_one(paid, topic, publish)
    assert not await _reads_one(ending, topic, publish)


def _alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie nobody reaped has ended)."""
    try:
        return not Path(f"/proc/{pid}/stat").read_text().split(") ")[-1].startswith("Z")
    except OSError:
        return False
