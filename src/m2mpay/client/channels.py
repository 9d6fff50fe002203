"""Payment channels: open, list, show, pay, close."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from m2mpay.client.base import ApiBase, address_text, given, items_of, path_id
from m2mpay.client.codec import Amount, decode
from m2mpay.crypto import Address

__all__ = ["ChannelApi", "ChannelView", "PaymentMade"]


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
        }
        if asset is not None:
            body["asset"] = address_text(asset)
        return decode(ChannelView, await self._call("POST", "/v1/channels", body=body))

    async def channels(self) -> list[ChannelView]:
        raw = await self._call("GET", "/v1/channels")
        return [decode(ChannelView, c, "channels[]") for c in items_of(raw, "channels")]

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

    async def close_channel(self, channel_id: str | bytes) -> ChannelView:
        """Close cooperatively (unilaterally if the peer does not answer)."""
        raw = await self._call("POST", f"/v1/channels/{path_id(channel_id)}/close")
        return decode(ChannelView, raw)
