"""What the session manager reads from and does to its node's channels: the channel a
purchase runs on, what the session machine must know of a buyer's request (the
channel the request names, as this node holds it), what a session's channel shows
paid, and paying up to a session's total."""

from __future__ import annotations

import contextlib
from collections.abc import Container

from m2mpay.channel.state import Phase
from m2mpay.crypto import Address
from m2mpay.errors import ChannelError, StreamError
from m2mpay.node import Node
from m2mpay.node.info import ChannelInfo
from m2mpay.stream.inputs import ChannelTotals, PayFailed, RequestReceived
from m2mpay.stream.messages import SessionRequest
from m2mpay.stream.offer import Offer
from m2mpay.stream.outputs import PayUpTo
from m2mpay.stream.state import SessionState

__all__ = ["channel_for", "channel_totals", "pay_up_to", "request_received", "still_opening"]


async def channel_for(
    node: Node,
    offer: Offer,
    channel_id: bytes | None,
    deposit: int,
    endpoint: str | None,
    *,
    busy: Container[bytes],
) -> ChannelInfo:
    """The channel a purchase under `offer` runs on: `channel_id`, else a free open one
    with the seller in the offer's asset, else (with `deposit`) a new one. `busy`
    holds the channels another session runs on."""
    if channel_id is not None:
        channel = node.channel(channel_id)
        if channel.peer != offer.seller or channel.asset != offer.asset:
            raise StreamError(
                "unknown_channel", "the channel is not with the seller in the offer's asset"
            )
        if channel.phase is not Phase.OPEN:
            raise StreamError("unknown_channel", f"the channel is {channel.phase.value}")
        if channel.channel_id in busy:
            raise StreamError("channel_busy", "another session runs on this channel")
        return channel
    for channel in node.channels():
        if (
            channel.peer == offer.seller
            and channel.asset == offer.asset
            and channel.phase is Phase.OPEN
            and channel.channel_id not in busy
        ):
            return channel
    if not deposit:
        raise StreamError(
            "no_channel",
            "no free open channel with the seller; pass `deposit` to open one",
        )
    return await node.open_channel(offer.seller, offer.asset, deposit, endpoint=endpoint)


def still_opening(node: Node, channel_id: bytes) -> bool:
    """Whether the channel is one this node is still opening (a buyer may see it open
    on chain before we do)."""
    try:
        phase = node.channel(channel_id).phase
    except ChannelError:
        return False
    return phase in (Phase.PROPOSED, Phase.ACCEPTED)


def request_received(
    node: Node,
    peer: Address,
    request: SessionRequest,
    offer: Offer | None,
    *,
    busy: bool,
    now_ms: int,
    supply_problem: str = "",
) -> RequestReceived:
    """The input a buyer's request makes, with the open channel it names (if any)."""
    channel: ChannelInfo | None = None
    with contextlib.suppress(ChannelError):
        channel = node.channel(request.channel_id)
    if channel is not None and channel.phase is not Phase.OPEN:
        channel = None
    return RequestReceived(
        peer,
        request,
        offer,
        channel.peer if channel is not None else None,
        channel.asset if channel is not None else None,
        channel.sent_total if channel is not None else 0,
        channel.received_total if channel is not None else 0,
        busy,
        now_ms,
        supply_problem,
    )


def channel_totals(node: Node, state: SessionState, now_ms: int) -> ChannelTotals | None:
    """What the session's channel shows paid each way now (None for a channel the node
    does not know)."""
    try:
        channel = node.channel(state.channel_id)
    except ChannelError:
        return None
    return ChannelTotals(state.session_id, channel.sent_total, channel.received_total, now_ms)


def pay_up_to(node: Node, state: SessionState, output: PayUpTo, now_ms: int) -> PayFailed | None:
    """Pay what the channel lacks of the session's total (so a repeat pays nothing
    twice); the input that tells the machine if the node refused."""
    base = state.seller_base if output.reversed else state.buyer_base
    try:
        channel = node.channel(output.channel_id)
        amount = base + output.total - channel.sent_total
        if amount > 0:
            node.pay_nowait(output.channel_id, amount)
    except ChannelError as exc:
        sent = 0
        with contextlib.suppress(ChannelError):
            sent = node.channel(output.channel_id).sent_total
        return PayFailed(output.session_id, str(exc)[:500], sent, now_ms)
    return None
