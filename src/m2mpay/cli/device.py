"""`m2mpay device list|show|telemetry`: devices on a node's device bus."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from m2mpay.cli.common import (
    DEFAULT_DATA_DIR,
    DataDirOption,
    DevicePriceOption,
    console,
    stop_on_signals,
)
from m2mpay.cli.remote import (
    ADDRESS_LENGTH,
    AssetOption,
    Remote,
    id_of,
    kv_table,
    on_named,
    remote_command,
    short,
)
from m2mpay.cli.units import Units, local_time
from m2mpay.client import DeviceView, NodeClient, TelemetryRecord
from m2mpay.crypto import Address
from m2mpay.devices.catalog import RUNNABLE_DEVICES, Curve

if TYPE_CHECKING:  # the runner brings the bus and the chain: loaded when a device runs
    from m2mpay.devices.runner import DeviceSettings

__all__ = ["device_app", "device_id_of"]

device_app = typer.Typer(help="Devices connected to a node's device bus.", no_args_is_help=True)

DeviceArg = Annotated[
    str, typer.Argument(help="The device id (its address), or a unique prefix of it as listed.")
]


async def device_id_of(node: NodeClient, given: str) -> str:
    """The full id of the device `given` names (its address, or a prefix of it)."""
    return await id_of(
        given, "device", node.devices, key=lambda d: d.device_id, length=ADDRESS_LENGTH
    )


def _asset(given: object) -> Address | None:
    """A service's asset as the device gave it: an address, or none (the node's token)."""
    return Address(str(given)) if given else None


def _services(device: DeviceView, units: Units) -> str:
    return (
        ", ".join(
            f"{s.name} ({units.price(s.price, s.unit, _asset(s.asset))})" for s in device.services
        )
        or "—"
    )


def _row(device: DeviceView, units: Units) -> list[str]:
    return [
        short(device.device_id),
        "yes" if device.online else "no",
        escape(device.name),
        escape(device.state),
        escape(_services(device, units)),
    ]


def _show(device: DeviceView, units: Units) -> None:
    kv_table(
        f"device {device.device_id}",
        [
            ("name", device.name),
            ("online", device.online),
            ("state", device.state),
            ("services", _services(device, units)),
            ("registered", local_time(device.registered_ms)),
            ("last seen", local_time(device.last_seen_ms)),
        ],
    )


def _record_row(record: TelemetryRecord, _: Units) -> list[str]:
    return [str(record.seq), local_time(record.at_ms), escape(json.dumps(dict(record.data)))]


@remote_command(device_app, "list")
def list_devices(remote: Remote) -> None:
    """Every device the node knows, online or not."""

    remote.answer_list(
        "device", lambda node: node.devices(), _row, keep="id online", fold="name state services"
    )


@remote_command(device_app, "show")
def show(device: DeviceArg, *, remote: Remote) -> None:
    """One device: its services and state."""

    remote.answer_in_units(on_named(device, device_id_of, lambda node, d: node.device(d)), _show)


@remote_command(device_app, "telemetry")
def telemetry(
    device: DeviceArg,
    after: Annotated[int, typer.Option(min=0, help="Records after this sequence number.")] = 0,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many.")] = 20,
    *,
    remote: Remote,
) -> None:
    """A device's telemetry records, oldest first."""

    remote.answer_list(
        "record",
        on_named(device, device_id_of, lambda node, d: node.telemetry(d, after=after, limit=limit)),
        _record_row,
        title=f"telemetry of {short(device, 14)}",
        empty=f"no telemetry from {escape(device)} after {after}",
        keep="seq measured_at",
        fold="data",
    )


def _model(name: str) -> str:
    if name not in RUNNABLE_DEVICES:
        raise typer.BadParameter(f"{name!r} is not one of {', '.join(RUNNABLE_DEVICES)}")
    return name


ModelArg = Annotated[
    str,
    typer.Argument(
        parser=_model,
        metavar="|".join(RUNNABLE_DEVICES),
        help="Which simulated device: "
        + "; ".join(f"{name}: {model.summary}" for name, model in RUNNABLE_DEVICES.items()),
        show_default=False,
    ),
]


def _people(key_source: str, units: Units) -> Callable[[dict[str, Any]], None]:
    """The device's events as lines for people, and what to do next once registered."""
    from m2mpay.devices.progress import line

    hinted = False

    def price_of(service: Mapping[str, Any]) -> str:
        asset = service.get("asset")
        return units.price(int(service["price"]), str(service["unit"]), _asset(asset))

    def say(event: dict[str, Any]) -> None:
        nonlocal hinted
        # Unwrapped: an address cut across two lines cannot be pasted back.
        console.print(line(event, price_of), highlight=False, soft_wrap=True)
        if event["event"] == "starting":
            console.print(f"  its key: {key_source}; Ctrl-C stops it", soft_wrap=True)
        if event["event"] == "registered" and not hinted:
            hinted = True
            prefix = event["device"][:10]
            console.print(f"  sell it: m2mpay offer publish --device {prefix} --window 20")

    return say


def _programs(event: dict[str, Any]) -> None:
    typer.echo(json.dumps(event))


def _plug_people(event: dict[str, Any]) -> None:
    """A plug's events for people: one line each, its password never among them."""
    kind = event["event"]
    if kind == "published":
        said = (
            f"feed {event['feed'][:12]}… of {event['device']} on sale at "
            f"{event['price_per_hour']} an hour (smallest units), on {event['broker']} "
            f"as {event['username']}"
        )
    elif kind == "starting":
        said = (
            f"plug {event['device']} publishes {event['live']} (paid) and {event['free']} "
            f"(free) on {event['broker']}; Ctrl-C stops it"
        )
    elif kind == "connected":
        said = f"plug {event['device']} connected to {event['broker']}: publishing"
    elif kind == "disconnected":
        said = (
            f"plug {event['device']} lost {event['broker']} ({event['reason']}); "
            f"trying again in {event['retry_s']:g} s"
        )
    elif kind == "stopped":
        said = f"plug {event['device']} stopped"
    else:
        said = " ".join(f"{k}={v}" for k, v in event.items())
    console.print(escape(said), highlight=False, soft_wrap=True)


def _run_plug(
    settings: DeviceSettings,
    broker: str | None,
    username: str | None,
    password_file: Path | None,
    remote: Remote,
) -> None:
    from m2mpay.devices.runner import PlugJoin, run_plug_device

    given = (broker, username, password_file)
    if any(given) and not all(given):
        raise typer.BadParameter("a plug takes --broker, --username and --password-file together")
    joined = (
        PlugJoin.read(broker, username, password_file)
        if broker and username and password_file
        else None
    )
    say = _programs if remote.as_json else _plug_people

    async def work(node: NodeClient) -> None:
        await run_plug_device(
            None if joined else node, settings, say, stop_on_signals(), joined=joined
        )

    remote.call(work)


@remote_command(device_app, "run")
def run(
    device: ModelArg,
    name: Annotated[str | None, typer.Option(help="Its name on the bus (default: DEVICE).")] = None,
    price: DevicePriceOption = None,
    unit: Annotated[
        str | None, typer.Option(help="What it meters in: Wh or kWh; s for a lamp.")
    ] = None,
    curve: Annotated[
        Curve | None,
        typer.Option(
            help="Its power curve: constant, charging (a battery tapering from 80 %), wind "
            "(default: the device's).",
        ),
    ] = None,
    power: Annotated[
        float | None,
        typer.Option(min=1, help="Watts at the curve's peak (default: the device's)."),
    ] = None,
    battery_wh: Annotated[
        float, typer.Option(min=1, help="The charging curve's battery, in Wh.")
    ] = 60_000.0,
    start_soc: Annotated[
        float, typer.Option(min=0, max=0.99, help="How full that battery arrives (0–1).")
    ] = 0.2,
    speed: Annotated[
        float, typer.Option(min=0.01, help="Simulated seconds per real second.")
    ] = 1.0,
    asset: AssetOption = None,
    key_file: Annotated[
        Path | None,
        typer.Option(
            help="File of the device's private key as hex (default: $M2MPAY_DEVICE_KEY, "
            "else DATA_DIR/devices/NAME.key, made on first run)."
        ),
    ] = None,
    keystore: Annotated[
        Path | None, typer.Option(help="The device's key in a v3 keystore file instead.")
    ] = None,
    passphrase_file: Annotated[
        Path | None,
        typer.Option(help="The keystore's passphrase (or $M2MPAY_DEVICE_PASSPHRASE)."),
    ] = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    broker: Annotated[
        str | None,
        typer.Option(help="A plug: the broker it was given, host:port (else the node sells it)."),
    ] = None,
    username: Annotated[
        str | None, typer.Option(help="A plug: its MQTT username, with --broker.")
    ] = None,
    password_file: Annotated[
        Path | None, typer.Option(help="A plug: a file holding its MQTT password, with --broker.")
    ] = None,
    *,
    remote: Remote,
) -> None:
    """Run a simulated device until Ctrl-C: on the node's device bus, where it registers
    its service, serves the sessions sold under an offer of it, and says what it
    delivers; a plug publishes its live power over MQTT instead, its feed sold by the
    node (or on the --broker it was given, with its --username and --password-file)."""
    # Loaded here, not with the command line: the device brings the bus and the chain.
    from m2mpay.devices.runner import DeviceSettings, device_key, run_device

    settings = DeviceSettings(
        RUNNABLE_DEVICES[device],
        name or device,
        price=price,
        unit=unit,
        curve=curve,
        power_w=power,
        battery_wh=battery_wh,
        start_soc=start_soc,
        speed=speed,
    )

    if RUNNABLE_DEVICES[device].program == "plug":
        _run_plug(settings, broker, username, password_file, remote)
        return
    if broker or username or password_file:
        raise typer.BadParameter("--broker, --username and --password-file are a plug's")

    async def work(node: NodeClient) -> None:
        stop = stop_on_signals()
        key, source = device_key(
            key_file=key_file,
            keystore=keystore,
            passphrase_file=passphrase_file,
            made_in=data_dir / "devices" / f"{settings.name}.key",
        )
        units = await Units.load(node)
        say = _programs if remote.as_json else _people(source, units)
        chosen = units.asset(asset) if asset else None
        await run_device(
            node, settings, key, say, stop, asset=chosen, check_token=bool(remote.token)
        )

    remote.call(work)
