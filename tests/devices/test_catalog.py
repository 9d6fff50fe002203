"""Every device `m2mpay device run` can start, on a real bus in process: it registers
its service with the catalog's defaults (or its owner's settings), meters a session up
to what the bus permits, and its progress says so."""

from __future__ import annotations

import asyncio

import pytest

from m2mpay.crypto import PrivateKey
from m2mpay.devices.catalog import RUNNABLE_DEVICES
from m2mpay.devices.progress import DeviceProgress, line
from m2mpay.devices.runner import DeviceSettings, build_device, bus_url
from m2mpay.devices.simulated import Simulation
from m2mpay.errors import M2MPayError
from tests.bus.conftest import SERVER_KEY, BusFactory, make_bus  # noqa: F401 (a fixture)
from tests.node.conftest import UNIT
from tests.waiting import eventually

SESSION = bytes(range(32))
PERMIT = 10


@pytest.mark.parametrize("name", list(RUNNABLE_DEVICES))
async def test_each_runnable_device_registers_its_defaults_and_meters_a_session(
    name: str,
    make_bus: BusFactory,  # noqa: F811 (the fixture imported above)
) -> None:
    model = RUNNABLE_DEVICES[name]
    host = await make_bus()
    simulation = Simulation(step_s=0.01, speed=3600.0)
    settings = DeviceSettings(model, name, speed=3600.0).checked()
    asset = SERVER_KEY.address  # any token address: the bus only passes it on
    device = build_device(
        settings,
        PrivateKey.generate(),
        url=host.url,
        server=SERVER_KEY.address,
        asset=asset,
        simulation=simulation,
    )
    events: list[dict[str, object]] = []
    device.listener = DeviceProgress(events.append, {model.service: model.unit}, every_s=0)
    try:
        async with device:
            await device.connected.wait()
            [service] = host.bus.device(device.address).services
            assert (service.name, service.unit, service.price) == (
                model.service,
                model.unit,
                model.price,
            )
            assert service.kind.value == model.kind
            assert service.asset == asset
            supply = host.bus.supply_for(device.address, model.service, SESSION)
            readings: list[int] = []
            await supply.start(readings.append, 0)
            supply.permit(PERMIT)
            await eventually(lambda: device.delivered(SESSION, model.service) == PERMIT)
            await eventually(lambda: readings[-1:] == [PERMIT])
            await supply.stop()
            await eventually(lambda: any(e["event"] == "session_stopped" for e in events))
    finally:
        await simulation.close()
    said = [e["event"] for e in events]
    assert said[0] == "registered"
    assert said.index("session_started") < said.index("delivered") < said.index("session_stopped")
    stopped = next(e for e in events if e["event"] == "session_stopped")
    assert (stopped["units"], stopped["unit"]) == (PERMIT, model.unit)
    assert line(stopped).endswith(f"stopped: {PERMIT} {model.unit} delivered")
    # Never more than permitted, whatever the device's curve.
    assert device.delivered(SESSION, model.service) == PERMIT


async def test_an_owner_sets_the_unit_price_and_curve(make_bus: BusFactory) -> None:  # noqa: F811
    host = await make_bus()
    simulation = Simulation(step_s=0.01, speed=3600.0)
    settings = DeviceSettings(
        RUNNABLE_DEVICES["charger"], "pole 7", price=UNIT // 10, unit="kWh", curve="constant",
        power_w=50_000.0, speed=3600.0,
    ).checked()  # fmt: skip
    device = build_device(
        settings,
        PrivateKey.generate(),
        url=host.url,
        server=SERVER_KEY.address,
        asset=SERVER_KEY.address,
        simulation=simulation,
    )
    try:
        async with device:
            await device.connected.wait()
            record = host.bus.device(device.address)
            assert record.name == "pole 7"
            [service] = record.services
            assert (service.unit, service.price) == ("kWh", UNIT // 10)
            supply = host.bus.supply_for(device.address, "charge", SESSION)
            await supply.start(lambda _: None, 0)
            supply.permit(2)  # 2 kWh: 2,000 Wh through the meter
            await eventually(lambda: device.delivered(SESSION, "charge") == 2)
            await supply.stop()
    finally:
        await simulation.close()


def test_settings_that_cannot_be_are_one_line_errors() -> None:
    lamp = RUNNABLE_DEVICES["lamp"]
    with pytest.raises(M2MPayError, match="a lamp meters in s, not Wh"):
        DeviceSettings(lamp, "lamp", unit="Wh").checked()
    with pytest.raises(M2MPayError, match="the speed must be above 0"):
        DeviceSettings(lamp, "lamp", speed=0).checked()
    with pytest.raises(M2MPayError, match="must start with http:// or https://"):
        bus_url("127.0.0.1:8402")
    assert bus_url("http://127.0.0.1:8402/") == "ws://127.0.0.1:8402/v1/devices/ws"
    assert bus_url("https://node.example") == "wss://node.example/v1/devices/ws"


async def test_a_lost_bus_and_a_bus_of_another_node_are_said_once_each(
    make_bus: BusFactory,  # noqa: F811
) -> None:
    host = await make_bus()
    simulation = Simulation()
    settings = DeviceSettings(RUNNABLE_DEVICES["lamp"], "lamp").checked()
    devices = [
        build_device(settings, PrivateKey.generate(), url=host.url, server=server,
                     asset=SERVER_KEY.address, simulation=simulation)
        for server in (SERVER_KEY.address, PrivateKey.generate().address)
    ]  # fmt: skip
    events: list[dict[str, object]] = []  # of the device of this node
    elsewhere: list[dict[str, object]] = []  # of the device pinned to another node
    for device, heard in zip(devices, (events, elsewhere), strict=True):
        device.reconnect_s = 0.05
        device.listener = DeviceProgress(heard.append, {"light": "s"})
    try:
        async with devices[0], devices[1]:
            await devices[0].connected.wait()
            await eventually(lambda: any(e["event"] == "refused" for e in elsewhere))
            await host.stop()  # the node goes away
            await eventually(lambda: any(e.get("was_registered") for e in events))
            await asyncio.sleep(0.5)  # ten tries more, each failing the same way
    finally:
        await simulation.close()
    assert not any(e["event"] == "registered" for e in elsewhere)
    refused = [e for e in elsewhere if e["event"] == "refused"]
    assert len(refused) == 1
    assert line(refused[0]).startswith("refused the bus: it speaks for ")
    lost = [e for e in events if e["event"] == "disconnected" and e["was_registered"]]
    assert len(lost) == 1
    assert line(lost[0]).startswith("lost the node's bus: ")
    unreachable = [e for e in events if e["event"] == "disconnected" and not e["was_registered"]]
    assert len({str(e["reason"]) for e in unreachable}) == len(unreachable)  # each reason once
