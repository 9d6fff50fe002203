"""Vehicle to grid through the node API, in process: a car buys energy from a charger
and names its battery (a device on the car node's own bus) as what feeds back; the
charger reverses the session, the battery is commanded on over the bus, and what its
meter reads is billed to the charger at the offer's reverse price."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import httpx

from m2mpay.bench.bus_device import RawDevice
from m2mpay.crypto import PrivateKey
from tests.api.conftest import UNIT, Api, ApiFactory, Chain
from tests.bus.conftest import (  # noqa: F401 (fixtures)
    BusFactory,
    DeviceFactory,
    connect_device,
    make_bus,
)
from tests.waiting import eventually

PRICE = 1_000  # per Wh
REVERSE_PRICE = 500  # per Wh fed back


class Battery:
    """A car battery on the bus, by hand: it acknowledges each command and, while an
    `on` allows more, discharges a unit every few milliseconds and reports its meter."""

    def __init__(self, device: RawDevice) -> None:
        self.device = device
        self.commands: list[dict[str, Any]] = []
        self.delivered: dict[str, int] = {}
        self._until: dict[str, int] = {}
        self._tasks = [asyncio.ensure_future(self._listen()), asyncio.ensure_future(self._run())]

    @property
    def service(self) -> str:
        return f"{self.device.address.checksum}/discharge"

    async def _listen(self) -> None:
        while True:
            command = await self.device.recv(timeout=3600)
            if command.get("type") != "command":
                continue
            self.commands.append(command)
            session = command["session"]
            if command["action"] == "on":
                self._until[session] = command["until_units"]
            else:
                self._until.pop(session, None)
            await self.device.send({"type": "command_ack", "id": command["id"], "ok": True})

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(0.005)
            for session, until in list(self._until.items()):
                if self.delivered.get(session, 0) < until:
                    self.delivered[session] = self.delivered.get(session, 0) + 1
                    await self.device.send(self._status(session))

    def _status(self, session: str) -> dict[str, Any]:
        meter = {
            "session": session,
            "service": "discharge",
            "delivered": self.delivered[session],
            "active": True,
        }
        return {"type": "device_status", "state": "discharging", "sessions": [meter]}

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def _battery(chain: Chain, connect_device: DeviceFactory, url: str) -> Battery:  # noqa: F811
    device = await connect_device(url, PrivateKey.generate())
    await device.login()
    await device.send(
        {
            "type": "device_register",
            "name": "car battery",
            "services": [
                {
                    "name": "discharge",
                    "unit": "Wh",
                    "price": str(REVERSE_PRICE),
                    "asset": chain.token.address.checksum,
                    "kind": "energy",
                }
            ],
        }
    )
    await device.expect("registered")
    return Battery(device)


async def _session(api: Api, session_id: str) -> dict[str, Any]:
    response = await api.http.get(f"/v1/sessions/{session_id}")
    assert response.status_code == 200, response.text
    session: dict[str, Any] = response.json()
    return session


async def _until(api: Api, session_id: str, done: Any, timeout: float = 30) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while not done(session := await _session(api, session_id)):  # noqa: ASYNC110 (polls the API)
            await asyncio.sleep(0.02)
    return session


def _error(response: httpx.Response, status: int, code: str, field: str | None) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert (error["code"], error.get("field")) == (code, field)


async def test_the_car_feeds_the_grid_through_its_own_device_when_the_charger_reverses(
    chain: Chain,
    make_api: ApiFactory,
    make_bus: BusFactory,  # noqa: F811
    connect_device: DeviceFactory,  # noqa: F811
) -> None:
    charger = await make_api(1)
    car_bus = await make_bus(server_key=chain.keys[2], store="car-devices")
    car = await make_api(2, supplies=car_bus.bus.supply_factory)
    battery = await _battery(chain, connect_device, car_bus.url)
    try:
        published = await charger.http.post(
            "/v1/offers",
            json={
                "kind": "energy",
                "unit": "Wh",
                "price": str(PRICE),
                "window": 10,
                "batch": 2,
                "reverse_price": str(REVERSE_PRICE),
                "device": "meter/energy",
            },
        )
        assert published.status_code == 201, published.text
        offer = published.json()
        # The grid pays for what is fed back: the channel needs money on its side too.
        opened = await car.http.post(
            "/v1/channels",
            json={
                "peer": charger.address.checksum,
                "endpoint": charger.node.endpoint,
                "deposit": str(UNIT),
                "peer_deposit": str(UNIT),
            },
        )
        assert opened.status_code == 201, opened.text
        started = await car.http.post(
            "/v1/sessions",
            json={"offer": offer, "allow_reverse": True, "feed_back_device": battery.service},
        )
        assert started.status_code == 201, started.text
        session_id = started.json()["session_id"]
        await _until(car, session_id, lambda s: s["forward"]["units"] >= 6)
        assert battery.commands == []  # nothing fed back while the charger supplies

        reversed_ = await charger.http.post(
            f"/v1/sessions/{session_id}/reverse", json={"reversed": True}
        )
        assert reversed_.status_code == 200, reversed_.text
        assert reversed_.json()["reversed"] is True
        await _until(car, session_id, lambda s: s["backward"]["units"] >= 10)
        stopped = await car.http.post(f"/v1/sessions/{session_id}/stop", json={"reason": "leaving"})
        assert stopped.status_code == 200, stopped.text
        bought = stopped.json()
        sold = await _until(charger, session_id, lambda s: s["phase"] == "stopped")
        await car_bus.bus.drain()
        await eventually(lambda: [c["action"] for c in battery.commands[-1:]] == ["end"])
    finally:
        await battery.close()

    # The battery was switched on for the backward flow of this session only.
    ons = [c for c in battery.commands if c["action"] == "on"]
    assert ons
    assert {c["session"] for c in battery.commands} == {session_id}
    assert [c["until_units"] for c in ons] == sorted(c["until_units"] for c in ons)
    # Its meter readings were billed to the charger at the reverse price, and paid.
    units = bought["backward"]["units"]
    assert units >= 10
    assert units <= battery.delivered[session_id]
    assert bought["backward"]["value"] == str(units * REVERSE_PRICE)
    assert bought["backward"]["paid"] == bought["backward"]["value"]
    assert sold["backward"] == bought["backward"]
    assert bought["countersigned"] is True
    channel = (await car.http.get(f"/v1/channels/{bought['channel_id']}")).json()
    assert int(channel["received_total"]) >= units * REVERSE_PRICE


async def test_a_feed_back_device_is_checked_before_anything_is_bought(
    make_api: ApiFactory,
) -> None:
    charger, car = await make_api(1), await make_api(2)
    published = await charger.http.post(
        "/v1/offers",
        json={
            "kind": "energy",
            "unit": "Wh",
            "price": str(PRICE),
            "window": 10,
            "reverse_price": str(REVERSE_PRICE),
            "device": "meter/energy",
        },
    )
    offer = published.json()
    body = {"offer": offer, "endpoint": charger.node.endpoint, "deposit": str(UNIT)}
    _error(
        await car.http.post("/v1/sessions", json={**body, "feed_back_device": "meter/energy"}),
        422,
        "invalid_input",
        "allow_reverse",
    )
    for malformed in ("meter", "meter/", "/energy", "a/b/c"):
        _error(
            await car.http.post(
                "/v1/sessions",
                json={**body, "allow_reverse": True, "feed_back_device": malformed},
            ),
            422,
            "invalid_input",
            "feed_back_device",
        )
    unknown = await car.http.post(
        "/v1/sessions",
        json={**body, "allow_reverse": True, "feed_back_device": "battery/discharge"},
    )
    _error(unknown, 404, "unknown_device", "feed_back_device")
    assert car.node.channels() == []  # refused before a channel was opened
    assert (await car.http.get("/v1/sessions")).json()["sessions"] == []
