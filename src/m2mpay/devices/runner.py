"""`m2mpay device run`: a simulated device from `m2mpay.devices.catalog`, built with its
owner's settings, joined to a node's device bus until told to stop.

The node is asked first over its API (`/v1/info`, public): who it is, so that the
device talks to that node's bus only (pinned), and its token, the default asset of
the device's prices. A token given is tried at once (`/v1/devices`), so a wrong one
is said before the device runs, not at the owner's next command. The device then
reconnects by itself whenever the bus goes away; what happens is told through
`DeviceProgress`.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

from m2mpay.access.sealed import Credentials
from m2mpay.client import NodeClient
from m2mpay.crypto import Address, PrivateKey
from m2mpay.crypto.keystore import load_keystore, read_passphrase
from m2mpay.devices.bus_client import BusClient
from m2mpay.devices.catalog import Curve, DeviceModel
from m2mpay.devices.lamp import Lamp
from m2mpay.devices.metered import MeteredDevice, MeteredService
from m2mpay.devices.plug import PlugSettings, run_plug
from m2mpay.devices.progress import DeviceProgress
from m2mpay.devices.simulated import (
    EnergyMeter,
    Simulation,
    power_curve,
)
from m2mpay.errors import AccessError, ApiConflict, CryptoError, M2MPayError

__all__ = [
    "DeviceSettings",
    "PlugJoin",
    "build_device",
    "bus_url",
    "device_key",
    "run_device",
    "run_plug_device",
]

DEVICE_KEY_ENV: Final = "M2MPAY_DEVICE_KEY"
DEVICE_PASSPHRASE_ENV: Final = "M2MPAY_DEVICE_PASSPHRASE"
BUS_PATH: Final = "/v1/devices/ws"


@dataclass(frozen=True, slots=True)
class DeviceSettings:
    """A device of `model` as its owner runs it; None takes the model's default."""

    model: DeviceModel
    name: str
    price: int | None = None
    unit: str | None = None
    curve: Curve | None = None
    power_w: float | None = None
    battery_wh: float = 60_000.0  # the charging curve's battery, each session a fresh one
    start_soc: float = 0.2  # and how full it arrives
    speed: float = 1.0  # simulated seconds per real second

    def checked(self) -> DeviceSettings:
        """These settings with the model's defaults filled in; a mistake is one line."""
        unit = self.unit or self.model.unit
        if unit not in self.model.units:
            raise M2MPayError(
                f"a {self.name} meters in {' or '.join(self.model.units)}, not {unit}"
            )
        if self.speed <= 0:
            raise M2MPayError("the speed must be above 0")
        if not 0 <= self.start_soc < 1:
            raise M2MPayError("the battery's start charge must be from 0 to below 1")
        return replace(
            self,
            price=self.price or self.model.price,
            unit=unit,
            curve=self.curve or self.model.curve,
            power_w=self.power_w or self.model.power_w,
        )


def bus_url(api_url: str) -> str:
    """The device bus of the node whose API is at `api_url`."""
    base = api_url.rstrip("/")
    for http, ws in (("https://", "wss://"), ("http://", "ws://")):
        if base.startswith(http):
            return ws + base[len(http) :] + BUS_PATH
    raise M2MPayError(f"the node's URL must start with http:// or https://, not {api_url}")


def build_device(
    settings: DeviceSettings,
    key: PrivateKey,
    *,
    url: str,
    server: Address,
    asset: Address,
    simulation: Simulation,
) -> BusClient:
    """The device of `settings` (checked) on the bus at `url`, pinned to `server`."""
    model, price = settings.model, settings.price or settings.model.price
    if model.program == "lamp":
        return Lamp(
            url,
            key,
            price=price,
            asset=asset,
            name=settings.name,
            speed=settings.speed,
            server=server,
        )
    unit = settings.unit or model.unit
    wh_per_unit = model.units[unit]
    curve = power_curve(
        settings.curve or "constant",
        settings.power_w or 0.0,
        battery_wh=settings.battery_wh,
        start_soc=settings.start_soc,
    )

    def meter(_session: bytes) -> EnergyMeter:
        return EnergyMeter(simulation, curve, wh_per_unit=wh_per_unit)

    service = MeteredService(model.service, unit, price, asset, meter, kind=model.kind)
    return MeteredDevice(url, key, [service], name=settings.name, server=server)


def device_key(
    *, key_file: Path | None, keystore: Path | None, passphrase_file: Path | None, made_in: Path
) -> tuple[PrivateKey, str]:
    """The device's key and where it came from: a keystore (v3), a file of hex, the hex
    in $M2MPAY_DEVICE_KEY, else the file `made_in`, made on first run so that the
    device keeps its id (the node knows it by it) from run to run."""
    if keystore is not None:
        passphrase = read_passphrase(passphrase_file, env=DEVICE_PASSPHRASE_ENV)
        if passphrase is None:
            raise M2MPayError(
                f"the keystore needs its passphrase: --passphrase-file or ${DEVICE_PASSPHRASE_ENV}"
            )
        return load_keystore(keystore, passphrase), f"keystore {keystore}"
    if key_file is None and os.environ.get(DEVICE_KEY_ENV):
        return _hex_key(os.environ[DEVICE_KEY_ENV], f"${DEVICE_KEY_ENV}"), f"${DEVICE_KEY_ENV}"
    path = key_file or made_in
    if key_file is None and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = PrivateKey.generate()
        # Owner-only from the first byte: the key is the device's identity and its signature.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(key.secret.hex() + "\n")
        return key, f"new key file {path}"
    try:
        text = path.read_text()
    except OSError as exc:
        raise M2MPayError(f"cannot read the device's key file {path}: {exc.strerror}") from None
    return _hex_key(text, f"the key file {path}"), f"key file {path}"


def _hex_key(text: str, where: str) -> PrivateKey:
    try:
        return PrivateKey.from_hex(text.strip())
    except CryptoError:
        raise M2MPayError(f"{where} holds no private key (64 hex digits)") from None


async def run_device(
    node: NodeClient,
    settings: DeviceSettings,
    key: PrivateKey,
    say: Callable[[dict[str, Any]], None],
    stop: asyncio.Event,
    *,
    asset: Address | None = None,
    check_token: bool = True,
) -> None:
    """Run the device of `settings` on `node`'s bus until `stop` is set; `asset` is
    the prices' token (None: the node's)."""
    settings = settings.checked()
    info = await node.info()
    if check_token:
        await node.devices()
    url = bus_url(node.url)
    simulation = Simulation(speed=settings.speed)
    device = build_device(
        settings,
        key,
        url=url,
        server=info.address,
        asset=asset or info.contracts.token,
        simulation=simulation,
    )
    device.listener = DeviceProgress(say, {settings.model.service: settings.unit or ""})
    say(
        {
            "event": "starting",
            "device": key.address.checksum,
            "name": settings.name,
            "node": info.address.checksum,
            "bus": url,
        }
    )
    try:
        async with device:
            await stop.wait()
    finally:
        await simulation.close()
    say({"event": "stopped", "device": key.address.checksum})


@dataclass(frozen=True, slots=True)
class PlugJoin:
    """The broker and credentials a plug was given (`m2mpay data publish` prints them)."""

    broker: str  # host:port
    username: str
    password: str = field(repr=False)

    @classmethod
    def read(cls, broker: str, username: str, password_file: Path) -> PlugJoin:
        try:
            password = password_file.read_text().strip()
        except OSError as exc:
            raise M2MPayError(f"cannot read {password_file}: {exc.strerror}") from None
        return cls(broker, username, password)


def _host_port(broker: str) -> tuple[str, int]:
    host, _, port = broker.rpartition(":")
    if not host or not (port.isascii() and port.isdigit()) or not 1 <= int(port) <= 65535:
        raise M2MPayError(f"the broker is host:port, not {broker!r}")
    return host.strip("[]"), int(port)


async def run_plug_device(
    node: NodeClient | None,
    settings: DeviceSettings,
    say: Callable[[dict[str, Any]], None],
    stop: asyncio.Event,
    *,
    joined: PlugJoin | None = None,
) -> None:
    """Run a smart plug until `stop` is set: on the broker and with the credentials
    it was given (`joined`), or else on `node`, which sells its feed at `settings`'
    price an hour and answers the plug's credentials (said as a `published` event,
    without the password)."""
    settings = settings.checked()
    if joined is None:
        if node is None:
            raise M2MPayError("a plug needs the node (--url, --token) or its --broker")
        try:
            published = await node.publish_feed(
                settings.name, price_per_hour=settings.price or settings.model.price
            )
        except ApiConflict as exc:
            if exc.code != "feed_exists":
                raise
            raise M2MPayError(
                f"the feed of {settings.name} is on sale already: run the plug with the "
                "--broker, --username and --password-file it was given, or retire the feed "
                "(m2mpay data retire) and run this again"
            ) from None
        client = published.device
        joined = PlugJoin(f"{client.host}:{client.port}", client.username, client.password)
        say(
            {
                "event": "published",
                "device": settings.name,
                "feed": published.feed.feed_id,
                "price_per_hour": str(published.feed.price_per_hour),
                "broker": joined.broker,
                "username": joined.username,
            }
        )
    host, port = _host_port(joined.broker)
    try:
        credentials = Credentials(joined.username, joined.password)
    except AccessError as exc:
        raise M2MPayError(f"the plug's credentials: {exc.message}") from None
    plug = PlugSettings(
        settings.name,
        host,
        port,
        credentials,
        curve=settings.curve or settings.model.curve,
        power_w=settings.power_w or settings.model.power_w,
    )
    await run_plug(plug, say, stop)
