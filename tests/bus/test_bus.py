"""The device bus over a real WebSocket under uvicorn: login by signed challenge,
registration, commands with acknowledgments and redelivery, meter readings and
telemetry, and clear errors for everything a device may get wrong."""

from __future__ import annotations

import json

import pytest

from m2mpay.bench.bus_device import ASSET, PRICE
from m2mpay.bus.events import (
    CommandAcknowledged,
    DeviceConnected,
    DeviceDisconnected,
    DeviceRegistered,
    TelemetryStored,
)
from m2mpay.bus.machine import CLOSE_POLICY, CLOSE_REPLACED
from m2mpay.bus.server import BusConfig
from m2mpay.crypto import PrivateKey
from m2mpay.errors import DeviceError
from m2mpay.stream import ServiceKind
from tests.bus.conftest import (
    SERVER_KEY,
    BusFactory,
    DeviceFactory,
)
from tests.waiting import eventually

LAMP = PrivateKey(bytes([1]) * 32)
OTHER = PrivateKey(bytes([2]) * 32)


async def test_a_device_logs_in_with_its_key_and_registers(
    make_bus: BusFactory, connect_device: DeviceFactory
) -> None:
    host = await make_bus()
    device = await connect_device(host.url, LAMP)
    assert device.challenge["server"] == SERVER_KEY.address.checksum
    assert device.challenge["protocol"] == "m2mpay-device/1"
    welcome = await device.login()
    assert welcome == {
        "type": "welcome",
        "device": LAMP.address.checksum,
        "telemetry_seq": 0,
        "pending": 0,
        "services": [],
    }
    assert (await device.register())["services"] == ["light"]
    info = host.bus.device(LAMP.address.checksum)
    assert info.connected
    assert info.name == "hall lamp"
    (light,) = info.services
    assert (light.name, light.unit, light.price, light.asset, light.kind) == (
        "light",
        "s",
        PRICE,
        ASSET,
        ServiceKind.ACTUATION,
    )
    assert [type(e) for e in host.events] == [DeviceConnected, DeviceRegistered]
    assert info.to_dict()["services"][0]["price"] == str(PRICE)
    await device.close()
    await eventually(lambda: not host.bus.device(LAMP.address).connected)
    assert isinstance(host.events[-1], DeviceDisconnected)


async def test_a_signature_by_another_key_is_refused(
    make_bus: BusFactory, connect_device: DeviceFactory
) -> None:
    host = await make_bus()
    device = await connect_device(host.url, LAMP)
    await device.send(device.login_message(signer=OTHER))  # claims LAMP, signed by OTHER
    error = await device.expect("error")
    assert (error["code"], error["ref"]) == ("bad_signature", "login")
    assert await device.closed() == CLOSE_POLICY
    assert host.bus.devices() == []
    assert host.events == []


async def test_a_login_replayed_on_another_connection_is_refused(
    make_bus: BusFactory, connect_device: DeviceFactory
) -> None:
    host = await make_bus()
    first = await connect_device(host.url, LAMP)
    captured = first.login_message()
    await first.send(captured)
    await first.expect("welcome")
    await first.close()
    # An eavesdropper replays the login it saw: the new connection has a new challenge.
    second = await connect_device(host.url, LAMP)
    await second.send(captured)
    error = await second.expect("error")
    assert error["code"] == "wrong_challenge"
    assert await second.closed() == CLOSE_POLICY
    # Signed over the new challenge but presented with the old one: still refused.
    third = await connect_device(host.url, LAMP)
    forged = third.login_message() | {"challenge": captured["challenge"]}
    await third.send(forged)
    assert (await third.expect("error"))["code"] == "wrong_challenge"


async def test_a_login_without_the_challenge_is_refused(
    make_bus: BusFactory, connect_device: DeviceFactory
) -> None:
    host = await make_bus()
    device = await connect_device(host.url, LAMP)
    login = device.login_message()
    del login["challenge"]
    await device.send(login)
    error = await device.expect("error")
    assert error["code"] == "invalid_message"
    assert "challenge" in error["message"]
    assert await device.closed() == CLOSE_POLICY


async def test_nothing_but_a_login_is_taken_before_login(
    make_bus: BusFactory, connect_device: DeviceFactory
) -> None:
    host = await make_bus()
    device = await connect_device(host.url, LAMP)
    service = {"name": "light", "unit": "s", "price": "5", "asset": str(ASSET)}
    await device.send({"type": "device_register", "services": [service]})
    error = await device.expect("error")
    assert (error["code"], error["ref"]) == ("not_logged_in", "login")
    assert await device.closed() == CLOSE_POLICY
    device = await connect_device(host.url, LAMP)
    await device.send(
        {
            "type": "telemetry",
            "seq": 1,
            "at_ms": 1,
            "data": {"x": 1},
        }
    )
    assert (await device.expect("error"))["code"] == "not_logged_in"
    assert host.bus.devices() == []


async def test_garbage_before_login_ends_the_connection(
    make_bus: BusFactory, connect_device: DeviceFactory
) -> None:
    host = await make_bus()
    device = await connect_device(host.url, LAMP)
    await device.send("{not json")
    error = await device.expect("error")
    assert error["code"] == "invalid_json"
    assert await device.closed() == CLOSE_POLICY


async def test_the_challenge_expires(make_bus: BusFactory, connect_device: DeviceFactory) -> None:
    host = await make_bus(config=BusConfig(challenge_ttl_s=0.2))
    device = await connect_device(host.url, LAMP)
    error = await device.expect("error")  # the device said nothing in time
    assert error["code"] == "challenge_expired"
    assert await device.closed() == CLOSE_POLICY


async def test_only_allowed_devices_may_log_in(
    make_bus: BusFactory, connect_device: DeviceFactory
) -> None:
    host = await make_bus(config=BusConfig(allowed=frozenset({LAMP.address})))
    stranger = await connect_device(host.url, OTHER)
    await stranger.send(stranger.login_message())
    assert (await stranger.expect("error"))["code"] == "not_allowed"
    lamp = await connect_device(host.url, LAMP)
    await lamp.login()


async def test_bad_messages_after_login_get_clear_errors_and_change_nothing(
    make_bus: BusFactory, connect_device: DeviceFactory
) -> None:
    host = await make_bus()
    device = await connect_device(host.url, LAMP)
    await device.login()
    await device.register()
    before = host.bus.device(LAMP.address)
    events = len(host.events)
    cases: list[tuple[object, str, str]] = [
        ("garbage", "invalid_json", ""),
        ("[1, 2]", "invalid_message", "object"),
        (json.dumps({"services": []}), "invalid_message", "type"),
        (json.dumps({"type": "reboot"}), "unknown_type", "device_register"),
        (
            {
                "type": "device_register",
                "services": [{"name": "light", "unit": "s", "price": "0", "asset": str(ASSET)}],
            },
            "invalid_message",
            "services.0.price",
        ),
        (
            {
                "type": "device_register",
                "services": [{"name": "light", "unit": "s", "price": 5, "asset": str(ASSET)}],
            },
            "invalid_message",
            "services.0.price",
        ),
        (
            {
                "type": "device_register",
                "services": [
                    {"name": "light", "unit": "s", "price": "5", "asset": str(ASSET)},
                    {"name": "light", "unit": "s", "price": "6", "asset": str(ASSET)},
                ],
            },
            "invalid_message",
            "unique",
        ),
        ({"type": "telemetry", "seq": 0, "at_ms": 1, "data": {}}, "invalid_message", "seq"),
        ({"type": "telemetry", "seq": 1, "at_ms": 1, "data": {"x": "y" * 9000}}, "invalid", ""),
        ({"type": "command_ack", "id": "0x12"}, "invalid_message", "id"),
        ({"type": "device_status", "state": "ok", "extra": 1}, "invalid_message", "extra"),
        (device.login_message(), "already_logged_in", ""),
        ("x" * 70_000, "too_large", ""),
    ]
    for message, code, mentions in cases:
        await device.send(message if isinstance(message, str) else json.dumps(message))
        error = await device.expect("error")
        assert error["code"].startswith(code), (message, error)
        assert mentions in error["message"], (message, error)
    # Still connected, still registered as before, nothing stored, nothing told.
    assert host.bus.device(LAMP.address) == before
    assert len(host.events) == events
    assert await host.bus.telemetry(LAMP.address) == []
    await device.send({"type": "telemetry", "seq": 1, "at_ms": 5, "data": {"ok": True}})
    assert (await device.expect("telemetry_ack"))["seq"] == 1


async def test_a_second_login_replaces_the_first_connection(
    make_bus: BusFactory, connect_device: DeviceFactory
) -> None:
    host = await make_bus()
    first = await connect_device(host.url, LAMP)
    await first.login()
    second = await connect_device(host.url, LAMP)
    await second.login()
    assert await first.closed() == CLOSE_REPLACED
    assert host.bus.is_connected(LAMP.address)


async def test_commands_are_acked_and_redelivered_until_then(
    make_bus: BusFactory, connect_device: DeviceFactory
) -> None:
    host = await make_bus()
    device = await connect_device(host.url, LAMP)
    await device.login()
    await device.register()
    supply = host.bus.supply_for(LAMP.address, "light", bytes(range(32)))
    readings: list[int] = []
    await supply.start(readings.append, 0)
    supply.permit(5)
    command = await device.expect("command")
    assert command == {
        "type": "command",
        "id": command["id"],
        "session": "0x" + bytes(range(32)).hex(),
        "service": "light",
        "action": "on",
        "until_units": 5,
        "units": 5,
        "seconds": 5,
    }
    # The device goes away before acknowledging: the command waits for it.
    await device.close()
    device = await connect_device(host.url, LAMP)
    welcome = await device.login()
    assert welcome["pending"] == 1
    assert welcome["services"] == ["light"]
    again = await device.expect("command")
    assert again == command
    await device.send({"type": "command_ack", "id": command["id"], "ok": True})
    await eventually(lambda: any(isinstance(e, CommandAcknowledged) for e in host.events))
    assert await host.bus.pending_commands(LAMP.address) == []
    await device.close()
    device = await connect_device(host.url, LAMP)
    assert (await device.login())["pending"] == 0


async def test_a_newer_command_replaces_an_unacked_one(
    make_bus: BusFactory, connect_device: DeviceFactory
) -> None:
    host = await make_bus()
    device = await connect_device(host.url, LAMP)
    await device.login()
    await device.register()
    await device.close()
    supply = host.bus.supply_for(LAMP.address, "light")
    await supply.start(lambda _: None, 0)
    supply.permit(3)
    supply.permit(7)
    supply.permit(7)  # the same permit again is no new command
    await host.bus.drain()
    device = await connect_device(host.url, LAMP)
    assert (await device.login())["pending"] == 1
    command = await device.expect("command")
    assert (command["action"], command["until_units"], command["units"]) == ("on", 7, 4)
    # The session stops: the permit drops to what was delivered, then the session ends.
    supply.permit(0)
    stop = await device.expect("command")
    assert (stop["action"], stop["until_units"]) == ("off", 0)
    await supply.stop()
    end = await device.expect("command")
    assert (end["action"], end["until_units"]) == ("end", 0)


async def test_pending_commands_survive_a_restart_of_the_bus(
    make_bus: BusFactory, connect_device: DeviceFactory
) -> None:
    host = await make_bus()
    device = await connect_device(host.url, LAMP)
    await device.login()
    await device.register()
    await device.close()
    supply = host.bus.supply_for(LAMP.address, "light")
    await supply.start(lambda _: None, 0)
    supply.permit(9)
    await host.bus.drain()
    await host.stop()

    restarted = await make_bus()  # the same SQLite file
    assert restarted.bus.device(LAMP.address).services[0].name == "light"
    device = await connect_device(restarted.url, LAMP)
    assert (await device.login())["pending"] == 1
    command = await device.expect("command")
    assert command["until_units"] == 9


async def test_meter_readings_reach_the_session_but_never_pass_the_permit(
    make_bus: BusFactory, connect_device: DeviceFactory
) -> None:
    host = await make_bus()
    device = await connect_device(host.url, LAMP)
    await device.login()
    await device.register()
    session = bytes([9]) * 32
    supply = host.bus.supply_for(LAMP.address, "light", session)
    readings: list[int] = []
    await supply.start(readings.append, 0)
    supply.permit(5)
    await device.expect("command")

    def status(delivered: int) -> dict[str, object]:
        meter = {"session": "0x" + session.hex(), "service": "light", "delivered": delivered}
        return {"type": "device_status", "state": "on", "sessions": [meter | {"active": True}]}

    for delivered in (2, 1, 4, 99):  # a reading that goes back is ignored; one too high capped
        await device.send(status(delivered))
    await eventually(lambda: readings[-1:] == [5])
    assert readings == [2, 4, 5]
    assert supply.delivered == 5
    assert host.bus.device(LAMP.address).state == "on"


async def test_a_reading_before_the_session_resumes_is_kept_for_it(
    make_bus: BusFactory, connect_device: DeviceFactory
) -> None:
    host = await make_bus()
    device = await connect_device(host.url, LAMP)
    await device.login()
    await device.register()
    session = bytes([4]) * 32
    meter = {"session": "0x" + session.hex(), "service": "light", "delivered": 3, "active": False}
    await device.send({"type": "device_status", "sessions": [meter]})
    await device.send({"type": "telemetry", "seq": 1, "at_ms": 1, "data": {}})
    await device.expect("telemetry_ack")  # the status before it was handled
    supply = host.bus.supply_for(LAMP.address, "light", session)
    readings: list[int] = []
    await supply.start(readings.append, 2)
    assert readings == []  # more than the session knows it allowed, so far
    supply.permit(4)  # what the session allowed before the restart
    await eventually(lambda: readings == [3])


async def test_telemetry_is_stored_acknowledged_and_never_twice(
    make_bus: BusFactory, connect_device: DeviceFactory
) -> None:
    host = await make_bus()
    device = await connect_device(host.url, LAMP)
    await device.login()
    for seq in (1, 2):
        await device.send(
            {"type": "telemetry", "seq": seq, "at_ms": 1000 * seq, "data": {"lux": 100 + seq}}
        )
        assert await device.expect("telemetry_ack") == {
            "type": "telemetry_ack",
            "seq": seq,
            "duplicate": False,
        }
    await device.send({"type": "telemetry", "seq": 2, "at_ms": 2000, "data": {"lux": 102}})
    assert (await device.expect("telemetry_ack"))["duplicate"] is True
    await device.register()  # telemetry needs no registration, queries do
    records = await host.bus.telemetry(LAMP.address)
    assert [(r["seq"], r["at_ms"], r["data"]) for r in records] == [
        (1, 1000, {"lux": 101}),
        (2, 2000, {"lux": 102}),
    ]
    assert [r["seq"] for r in await host.bus.telemetry(LAMP.address, 1500)] == [2]
    assert [e.seq for e in host.events if isinstance(e, TelemetryStored)] == [1, 2]
    await device.close()
    device = await connect_device(host.url, LAMP)
    assert (await device.login())["telemetry_seq"] == 2  # a restarted device goes on from here


async def test_supplies_are_only_for_registered_services(
    make_bus: BusFactory, connect_device: DeviceFactory
) -> None:
    host = await make_bus()
    with pytest.raises(DeviceError, match="unknown_device"):
        host.bus.supply_factory(LAMP.address.checksum, "light")
    with pytest.raises(DeviceError, match="unknown_device"):
        host.bus.device("not an address")
    device = await connect_device(host.url, LAMP)
    await device.login()
    await device.register()
    with pytest.raises(DeviceError, match="unknown_service"):
        host.bus.supply_factory(LAMP.address.checksum, "heat")
    assert host.bus.supply_factory(LAMP.address.checksum, "light") is not None
