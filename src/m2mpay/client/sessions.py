"""Offers (a node's storefront) and metered sessions bought under them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from m2mpay.client.base import ApiBase, decode_items, given, given_amounts, path_id
from m2mpay.client.codec import Amount, decode, encode
from m2mpay.crypto import Address

__all__ = [
    "FlowView",
    "Leader",
    "OfferView",
    "ReceiptView",
    "ServiceKind",
    "SessionApi",
    "SessionView",
]

ServiceKind = Literal["energy", "actuation", "data"]
Leader = Literal["deliverer", "payer"]


@dataclass(frozen=True, slots=True)
class OfferView:
    """A seller's offer as its node publishes it; a buyer hands it back unchanged."""

    offer_id: str
    seller: Address
    kind: ServiceKind
    unit: str  # Wh, s, message…
    price: Amount  # per unit
    asset: Address
    min_units: int
    max_units: int  # 0: no limit
    window: int  # credit window, in units
    leader: Leader
    batch: int  # units per report and payment
    reverse_price: Amount  # per unit fed back; 0: not offered
    valid_until_ms: int


@dataclass(frozen=True, slots=True)
class FlowView:
    """One direction of a session: units delivered, what they are worth, what was paid."""

    units: int
    value: Amount
    paid: Amount


@dataclass(frozen=True, slots=True)
class ReceiptView:
    session_id: str
    channel_id: str
    forward: FlowView
    backward: FlowView
    started_ms: int
    stopped_ms: int
    signature: str  # 0x-hex, 65 bytes


@dataclass(frozen=True, slots=True)
class SessionView:
    session_id: str
    offer_id: str
    channel_id: str
    peer: Address
    role: Literal["seller", "buyer"]
    phase: str
    price: Amount  # per unit, now
    reversed: bool  # the buyer feeds back (and is paid)
    unit: str
    window: int  # the offer's credit window, in units
    asset: Address
    forward: FlowView
    backward: FlowView
    started_ms: int
    stopped_ms: int  # 0 while running
    stop_reason: str
    countersigned: bool  # both receipts signed
    receipt: ReceiptView | None
    peer_receipt: ReceiptView | None
    supplies: str | None = None  # a reseller's purchase: the sale it supplies

    @property
    def stopped(self) -> bool:
        return self.stopped_ms > 0


class SessionApi(ApiBase):
    # -- offers

    async def offers(self) -> list[OfferView]:
        """The node's storefront (public: no token needed)."""
        return decode_items(OfferView, await self._call("GET", "/v1/offers"), "offers")

    async def publish_offer(
        self,
        *,
        kind: ServiceKind,
        unit: str,
        price: int,
        window: int,
        device: str,
        batch: int = 1,
        leader: Leader = "deliverer",
        asset: Address | str | None = None,
        min_units: int = 0,
        max_units: int = 0,
        reverse_price: int = 0,
        valid_for_s: int = 86_400,
    ) -> OfferView:
        """Sell the service of a registered device (`device` is `device-id/service`)."""
        body: dict[str, Any] = {
            "kind": kind,
            "unit": unit,
            "price": str(price),
            "window": window,
            "batch": batch,
            "leader": leader,
            "min_units": min_units,
            "max_units": max_units,
            "reverse_price": str(reverse_price),
            "valid_for_s": valid_for_s,
            "device": device,
            **given(asset=asset),
        }
        return decode(OfferView, await self._call("POST", "/v1/offers", body=body))

    async def withdraw_offer(self, offer_id: str | bytes) -> None:
        await self._call("DELETE", f"/v1/offers/{path_id(offer_id)}")

    # -- sessions

    async def start_session(
        self,
        offer: OfferView,
        *,
        endpoint: str | None = None,
        channel_id: str | bytes | None = None,
        deposit: int = 0,
        budget: int = 0,
        target_units: int = 0,
        limit_price: int | None = None,
        allow_reverse: bool = False,
        feed_back_device: str | None = None,
    ) -> SessionView:
        """Buy under `offer` (as the seller's node published it; `endpoint` is the
        seller's wire if not connected). Without `channel_id` a free open channel with
        the seller is used, or one is opened with `deposit`. Stops by itself at
        `budget` (0: no limit) or `target_units` (0: no target). With `allow_reverse`
        the seller may reverse the flow; then the device on this node's bus named by
        `feed_back_device` (`device-id/service`) delivers, and the seller pays.
        Answers once the seller runs the session."""
        body: dict[str, Any] = {
            "offer": encode(offer),
            "deposit": str(deposit),
            "budget": str(budget),
            "target_units": target_units,
            "allow_reverse": allow_reverse,
            **given(
                endpoint=endpoint,
                feed_back_device=feed_back_device,
                channel_id=None if channel_id is None else path_id(channel_id),
            ),
            **given_amounts(limit_price=limit_price),
        }
        return decode(SessionView, await self._call("POST", "/v1/sessions", body=body))

    async def sessions(self) -> list[SessionView]:
        return decode_items(SessionView, await self._call("GET", "/v1/sessions"), "sessions")

    async def session(self, session_id: str | bytes) -> SessionView:
        return decode(SessionView, await self._call("GET", f"/v1/sessions/{path_id(session_id)}"))

    async def receipt(self, session_id: str | bytes) -> ReceiptView:
        """Our signed receipt; `ApiNotFound` until the session has stopped."""
        raw = await self._call("GET", f"/v1/sessions/{path_id(session_id)}/receipt")
        return decode(ReceiptView, raw)

    async def stop_session(
        self,
        session_id: str | bytes,
        *,
        reason: str = "stopped through the API",
        wait: bool = True,
    ) -> SessionView:
        """Stop; with `wait`, answers once the receipt is signed."""
        raw = await self._call(
            "POST",
            f"/v1/sessions/{path_id(session_id)}/stop",
            body={"reason": reason, "wait": wait},
        )
        return decode(SessionView, raw)

    async def set_price(self, session_id: str | bytes, price: int) -> SessionView:
        """A seller's price signal for the units not yet delivered."""
        raw = await self._call(
            "POST", f"/v1/sessions/{path_id(session_id)}/price", body={"price": str(price)}
        )
        return decode(SessionView, raw)

    async def reverse(self, session_id: str | bytes, reversed: bool = True) -> SessionView:
        """Switch the direction of supply (and of payment); `False` switches back."""
        raw = await self._call(
            "POST", f"/v1/sessions/{path_id(session_id)}/reverse", body={"reversed": reversed}
        )
        return decode(SessionView, raw)
