"""`NodeChannels`: pays x402's `batch-settlement` requirements from the payer's own node.

The payer's node (reached over its HTTP API with `NodeClient`) holds the channel and
the key: it signs the next running total (`POST /v1/channels/{id}/commitments`), durable
in its log, and the payer carries it to the seller in `PAYMENT-SIGNATURE`. A channel
pays when it is open with the requirement's payee, in its asset, on its hub, with
balance enough; with `open_deposit`, a payer with none opens one from the 402's
`extra.channelOpen` hint (never below the seller's `minDeposit`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from m2mpay.client.node import NodeClient
from m2mpay.client.x402 import OfferedPayment
from m2mpay.crypto import Address
from m2mpay.errors import CryptoError, M2MPayError

__all__ = ["NodeChannels"]


@dataclass
class NodeChannels:
    """`X402Payer(channels=NodeChannels(node))`: commitments signed by `node`."""

    node: NodeClient
    open_deposit: int = 0  # 0: never open a channel, only use one we have
    _known: dict[tuple[Address, Address], str] = field(default_factory=dict)

    async def commitment(self, offer: OfferedPayment) -> dict[str, Any] | None:
        hint = offer.extra.get("channelOpen")
        hub = offer.extra.get("hub")
        if not isinstance(hub, str) or offer.extra.get("binding") != "m2mpay-channel":
            return None
        key = (offer.pay_to, offer.asset)
        channel = self._known.get(key) or await self._find(offer)
        if channel is None and isinstance(hint, dict):
            channel = await self._open(offer, hint)
        if channel is None:
            return None
        try:
            made = await self.node.commit(channel, offer.amount)
        except M2MPayError:
            self._known.pop(key, None)  # spent, closed or gone: look again next time
            return None
        if made.hub.checksum.lower() != hub.lower():
            return None  # our node's channels live on another hub than the seller's
        self._known[key] = channel
        return {
            "channelId": made.channel_id,
            "hub": made.hub.checksum,
            "payer": made.payer.checksum,
            "total": str(made.total),
            "seq": made.seq,
            "signature": made.signature,
        }

    async def _find(self, offer: OfferedPayment) -> str | None:
        for view in await self.node.channels():
            if (
                view.phase == "open"
                and view.peer == offer.pay_to
                and view.asset == offer.asset
                and view.balance_mine >= offer.amount
            ):
                return view.channel_id
        return None

    async def _open(self, offer: OfferedPayment, hint: dict[str, Any]) -> str | None:
        endpoint, least = hint.get("endpoint"), hint.get("minDeposit", "0")
        if not self.open_deposit or not isinstance(endpoint, str) or not isinstance(least, str):
            return None
        if not least.isdigit() or self.open_deposit < max(int(least), offer.amount):
            return None
        try:
            if Address(str(hint.get("peer"))) != offer.pay_to:
                return None
        except CryptoError:
            return None
        view = await self.node.open_channel(
            offer.pay_to, self.open_deposit, endpoint=endpoint, asset=offer.asset
        )
        return view.channel_id
