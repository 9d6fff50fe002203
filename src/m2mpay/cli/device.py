"""`m2mpay device list|show|telemetry`: devices on a node's device bus."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape

from m2mpay.cli.remote import Remote, kv_table, remote_command, short
from m2mpay.client import DeviceView, TelemetryRecord

__all__ = ["device_app"]

device_app = typer.Typer(help="Devices connected to a node's device bus.", no_args_is_help=True)

DeviceArg = Annotated[str, typer.Argument(help="The device id (its address).")]


def _services(device: DeviceView) -> str:
    return ", ".join(f"{s.name} ({s.price}/{s.unit})" for s in device.services) or "—"


def _row(device: DeviceView) -> list[str]:
    return [
        short(device.device_id),
        "yes" if device.online else "no",
        escape(device.name),
        escape(device.state),
        escape(_services(device)),
    ]


def _show(device: DeviceView) -> None:
    kv_table(
        f"device {device.device_id}",
        [
            ("name", device.name),
            ("online", device.online),
            ("state", device.state),
            ("services", _services(device)),
            ("last seen", device.last_seen_ms),
        ],
    )


def _record_row(record: TelemetryRecord) -> list[str]:
    return [str(record.seq), str(record.at_ms), escape(json.dumps(dict(record.data)))]


@remote_command(device_app, "list")
def list_devices(remote: Remote) -> None:
    """Every device the node knows, online or not."""

    remote.answer_list(
        "device", lambda node: node.devices(), _row, keep="id online", fold="name state services"
    )


@remote_command(device_app, "show")
def show(device: DeviceArg, *, remote: Remote) -> None:
    """One device: its services and state."""

    remote.answer(lambda node: node.device(device), _show)


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
        lambda node: node.telemetry(device, after=after, limit=limit),
        _record_row,
        title=f"telemetry of {short(device, 14)}",
        empty=f"no telemetry from {escape(device)} after {after}",
        keep="seq at_ms",
        fold="data",
    )
