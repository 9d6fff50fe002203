"""`m2mpay device list|show|telemetry`: devices on a node's device bus."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape

from m2mpay.cli.common import JsonOption, console
from m2mpay.cli.remote import TokenOption, UrlOption, call, emit, kv_table, short, table
from m2mpay.client import DEFAULT_URL, DeviceView, NodeClient

__all__ = ["device_app"]

device_app = typer.Typer(help="Devices connected to a node's device bus.", no_args_is_help=True)

DeviceArg = Annotated[str, typer.Argument(help="The device id (its address).")]


def _services(device: DeviceView) -> str:
    return ", ".join(f"{s.name} ({s.price}/{s.unit})" for s in device.services) or "—"


@device_app.command("list")
def list_devices(
    url: UrlOption = DEFAULT_URL, token: TokenOption = None, as_json: JsonOption = False
) -> None:
    """Every device the node knows, online or not."""

    async def work(node: NodeClient) -> None:
        devices = await node.devices()
        if as_json:
            emit({"devices": devices})
            return
        if not devices:
            console.print("no devices")
            return
        shown = table(f"{len(devices)} device(s)", keep="id online", fold="name state services")
        for d in devices:
            shown.add_row(
                short(d.device_id),
                "yes" if d.online else "no",
                escape(d.name),
                escape(d.state),
                escape(_services(d)),
            )
        console.print(shown)

    call(url, token, work, as_json=as_json)


@device_app.command("show")
def show(
    device: DeviceArg,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """One device: its services and state."""

    async def work(node: NodeClient) -> None:
        view = await node.device(device)
        if as_json:
            emit(view)
            return
        kv_table(
            f"device {view.device_id}",
            [
                ("name", view.name),
                ("online", view.online),
                ("state", view.state),
                ("services", _services(view)),
                ("last seen", view.last_seen_ms),
            ],
        )

    call(url, token, work, as_json=as_json)


@device_app.command("telemetry")
def telemetry(
    device: DeviceArg,
    after: Annotated[int, typer.Option(min=0, help="Records after this sequence number.")] = 0,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many.")] = 20,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """A device's telemetry records, oldest first."""

    async def work(node: NodeClient) -> None:
        records = await node.telemetry(device, after=after, limit=limit)
        if as_json:
            emit({"records": records})
            return
        if not records:
            console.print(f"no telemetry from {escape(device)} after {after}")
            return
        shown = table(f"telemetry of {short(device, 14)}", keep="seq at_ms", fold="data")
        for r in records:
            shown.add_row(str(r.seq), str(r.at_ms), escape(json.dumps(dict(r.data))))
        console.print(shown)

    call(url, token, work, as_json=as_json)
