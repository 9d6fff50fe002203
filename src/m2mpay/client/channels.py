"""Payment channels: open, list, show, pay, top up, close."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from m2mpay.client.base import ApiBase, address_text, decode_items, given, path_id
from m2mpay.client.codec import Amount, decode
from m2mpay.crypto import Address

__all__ = ["ChannelApi", "ChannelView", "CommitmentMade", "PaymentMade"]


@dataclass(frozen=True, slots=True)
class ChannelView:
    channel_id: str  # 0x-hex
    peer: Address
    phase: str  # opening, open, closing, closed, …
    asset: Address
    challenge_period: int  # seconds
    deposit_mine: Amount
    deposit_peer: Amount
    balance_mine: Amount
    balance_peer: Amount
    sent_total: Amount
    received_total: Amount
    in_flight: int  # payments sent and not yet acknowledged
    payments_sent: int  # balance proofs signed on this channel
    payments_received: int
    final_balance_mine: Amount | None  # what we got on chain, once closed


@dataclass(frozen=True, slots=True)
class PaymentMade:
    channel_id: str
    amount: Amount
    sent_total: Amount  # all we have paid on this channel, this payment included
    seq: int
    acknowledged: bool  # the payee holds it durably


@dataclass(frozen=True, slots=True)
class CommitmentMade:
    """A balance proof our node signed for us to deliver (an x402 payment)."""

    channel_id: str
    chain_id: int
    hub: Address
    payer: Address
    amount: Amount
    total: Amount  # the running total signed
    seq: int
    signature: str  # 0x-hex, 65 bytes


class ChannelApi(ApiBase):
    async def open_channel(
        self,
        peer: Address | str,
        deposit: int,
        *,
        endpoint: str | None = None,
        asset: Address | str | None = None,
        peer_deposit: int = 0,
        challenge_period: int | None = None,
    ) -> ChannelView:
        """Open a channel with `peer` (reached at its wire `endpoint` unless already
        connected) and fund it with `deposit` of `asset` (default: the deployment's
        token); answers once the channel is open on chain."""
        body: dict[str, Any] = {
            "peer": address_text(peer),
            "deposit": str(deposit),
            "peer_deposit": str(peer_deposit),
            **given(endpoint=endpoint, challenge_period=challenge_period),
            **given(asset=asset),
        }
        return decode(ChannelView, await self._call("POST", "/v1/channels", body=body))

    async def channels(self) -> list[ChannelView]:
        return decode_items(ChannelView, await self._call("GET", "/v1/channels"), "channels")

    async def channel(self, channel_id: str | bytes) -> ChannelView:
        return decode(ChannelView, await self._call("GET", f"/v1/channels/{path_id(channel_id)}"))

    async def pay(self, channel_id: str | bytes, amount: int, *, wait: bool = True) -> PaymentMade:
        """Pay `amount` to the peer; with `wait`, answers once the payee holds it durably."""
        raw = await self._call(
            "POST",
            f"/v1/channels/{path_id(channel_id)}/payments",
            body={"amount": str(amount), "wait": wait},
        )
        return decode(PaymentMade, raw)

    async def commit(self, channel_id: str | bytes, amount: int) -> CommitmentMade:
        """Have our node sign a running total `amount` higher for us to deliver to the
        payee ourselves (it is not sent over the wire); durable in our node first."""
        raw = await self._call(
            "POST", f"/v1/channels/{path_id(channel_id)}/commitments", body={"amount": str(amount)}
        )
        return decode(CommitmentMade, raw)

    async def top_up(self, channel_id: str | bytes, amount: int) -> ChannelView:
        """Add `amount` to this node's deposit; answers once the chain shows it."""
        raw = await self._call(
            "POST", f"/v1/channels/{path_id(channel_id)}/deposits", body={"amount": str(amount)}
        )
        return decode(ChannelView, raw)

    async def close_channel(self, channel_id: str | bytes) -> ChannelView:
        """Close cooperatively (unilaterally if the peer does not answer)."""
        raw = await self._call("POST", f"/v1/channels/{path_id(channel_id)}/close")
        return decode(ChannelView, raw)
