"""Channels: open, list, show, pay, top up, close."""

from __future__ import annotations

from fastapi import APIRouter

from m2mpay.api.auth import GuardedRoutes
from m2mpay.api.errors import ApiError
from m2mpay.api.gateway import Gateway
from m2mpay.api.models import (
    ChannelList,
    ChannelOpen,
    ChannelTopUp,
    ChannelView,
    CommitmentMade,
    Hex32Path,
    PaymentMade,
    PaymentRequest,
)
from m2mpay.api.routes_info import require_funds
from m2mpay.api.views import channel_view, parse_hex32
from m2mpay.channel.state import Phase
from m2mpay.crypto import ZERO_ADDRESS, Address
from m2mpay.errors import AuthenticationFailed, WrongChain
from m2mpay.node import PaymentWait

__all__ = ["channel_routes", "make_payment"]

CommitmentRequest = PaymentRequest  # an amount; `wait` means nothing here


async def make_payment(gw: Gateway, channel: bytes, body: PaymentRequest) -> PaymentMade:
    # Never answer for a payment a crash could still lose: durable at least.
    wait = PaymentWait.ACKNOWLEDGED if body.wait else PaymentWait.DURABLE
    handle = await gw.node.pay(channel, int(body.amount), wait=wait)
    acknowledged = handle.acknowledged
    return PaymentMade(
        channel_id="0x" + channel.hex(),
        amount=str(handle.amount),
        sent_total=str(handle.total),
        seq=handle.seq,
        acknowledged=acknowledged.done() and acknowledged.exception() is None,
    )


def channel_routes(gw: Gateway) -> APIRouter:
    routes = GuardedRoutes(gw.credentials, "channels")

    @routes.write(
        "/v1/channels",
        ChannelView,
        status_code=201,
        summary="Open a channel with a peer and fund it on chain",
    )
    async def open_channel(body: ChannelOpen) -> ChannelView:
        peer = Address(body.peer)
        if peer == ZERO_ADDRESS:
            raise ApiError(422, "invalid_input", "peer: the zero address is nobody", "peer")
        if peer == gw.node.address:
            raise ApiError(422, "invalid_input", "peer: this node cannot pay itself", "peer")
        asset = Address(body.asset) if body.asset else gw.deployment.token
        await require_funds(gw, asset, int(body.deposit), "deposit")
        try:
            info = await gw.node.open_channel(
                peer,
                asset,
                int(body.deposit),
                peer_deposit=int(body.peer_deposit),
                challenge_period=body.challenge_period,
                endpoint=body.endpoint,
            )
        except WrongChain as exc:
            raise ApiError(409, exc.code, str(exc), "peer") from None
        except AuthenticationFailed as exc:
            where = body.endpoint or "its known endpoint"
            raise ApiError(
                409, "peer_mismatch", f"peer: the node at {where} is not {peer}: {exc}", "peer"
            ) from None
        return channel_view(info)

    @routes.read("/v1/channels", ChannelList)
    async def list_channels() -> ChannelList:
        return ChannelList(channels=[channel_view(c) for c in gw.node.channels()])

    @routes.read("/v1/channels/{channel_id}", ChannelView)
    async def show_channel(channel_id: Hex32Path) -> ChannelView:
        return channel_view(gw.node.channel(parse_hex32(channel_id, "channel_id")))

    @routes.write(
        "/v1/channels/{channel_id}/payments",
        PaymentMade,
        status_code=201,
        summary="Pay the peer; by default answers once the payee holds it durably",
    )
    async def pay(channel_id: Hex32Path, body: PaymentRequest) -> PaymentMade:
        # Served by the fast path in front of the app (m2mpay.api.fast); kept here
        # for the schema and for the app on its own.
        return await make_payment(gw, parse_hex32(channel_id, "channel_id"), body)

    @routes.write(
        "/v1/channels/{channel_id}/commitments",
        CommitmentMade,
        status_code=201,
        summary="Sign a payment for the caller to deliver (an HTTP 402 commitment)",
    )
    async def commit(channel_id: Hex32Path, body: CommitmentRequest) -> CommitmentMade:
        # Signed and durable here, never sent: the caller hands it to the payee.
        channel = parse_hex32(channel_id, "channel_id")
        message = await gw.node.commit(channel, int(body.amount))
        return CommitmentMade(
            channel_id="0x" + channel.hex(),
            chain_id=message.chain_id,
            hub=message.hub.checksum,
            payer=gw.node.address.checksum,
            amount=str(message.amount),
            total=str(message.total),
            seq=message.seq,
            signature="0x" + message.signature.hex(),
        )

    @routes.write(
        "/v1/channels/{channel_id}/deposits",
        ChannelView,
        status_code=201,
        summary="Top up: add to this node's deposit on chain",
        description="Answers once the chain shows the larger deposit. Only an open channel "
        "takes one (409 `channel_not_open`).",
    )
    async def top_up(channel_id: Hex32Path, body: ChannelTopUp) -> ChannelView:
        channel = parse_hex32(channel_id, "channel_id")
        # The machine refuses a deposit outside the open phase without an answer the
        # node waits for: refused here, at once, rather than after the node's timeout.
        known = gw.node.channel(channel)
        if known.phase is not Phase.OPEN:
            raise ApiError(
                409,
                "channel_not_open",
                f"the channel is {known.phase.value}, not open",
                "channel_id",
            )
        await require_funds(gw, known.asset, int(body.amount), "amount")
        return channel_view(await gw.node.top_up(channel, int(body.amount)))

    @routes.write(
        "/v1/channels/{channel_id}/close",
        ChannelView,
        summary="Close cooperatively (unilaterally if the peer does not answer)",
    )
    async def close(channel_id: Hex32Path) -> ChannelView:
        return channel_view(await gw.node.close(parse_hex32(channel_id, "channel_id")))

    return routes.router
