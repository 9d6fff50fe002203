"""A node process's HTTP 402 paywall in the channel scheme (`bench.peer --paywall ASSET`)
and its buyer's side (`{"cmd": "commit"}`), for the torture phase `paywall.channel`.

The paywall answers every path with a small body at `PAYWALL_PRICE` a request, paid
only in `batch-settlement` on channels with this node; the commitment is taken by the
node's channel engine and durable before the body leaves.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any, Final

from m2mpay.access.channel_scheme import ChannelScheme
from m2mpay.access.paywall import Paywall
from m2mpay.access.pricing import Price, PriceList
from m2mpay.asgi import AsgiServer
from m2mpay.crypto import Address
from m2mpay.node import Node

__all__ = ["PAYWALL_BODY", "PAYWALL_PRICE", "commitment_json", "start_paywall"]

PAYWALL_PRICE: Final = 10**15
PAYWALL_BODY: Final = b"paid reading\n"


async def _reading(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    headers = [(b"content-length", str(len(PAYWALL_BODY)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": PAYWALL_BODY})


async def start_paywall(node: Node, asset: Address) -> AsgiServer:
    prices = PriceList.everything(Price(PAYWALL_PRICE, asset))
    server = AsgiServer(
        Paywall(_reading, prices, [ChannelScheme(node, asset)]), name="channel paywall"
    )
    await server.start()
    return server


async def commitment_json(node: Node, command: dict[str, Any]) -> dict[str, Any]:
    """The `batch-settlement` payload of a commitment of `amount` on `channel`."""
    made = await node.commit(bytes.fromhex(command["channel"][2:]), int(command["amount"]))
    return {
        "channelId": "0x" + made.channel_id.hex(),
        "hub": made.hub.checksum,
        "payer": node.address.checksum,
        "total": str(made.total),
        "seq": made.seq,
        "signature": "0x" + made.signature.hex(),
    }
