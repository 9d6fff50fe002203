"""Library values to API bodies and back: ints to integer strings, bytes to 0x-hex."""

from __future__ import annotations

from m2mpay.api.errors import ApiError
from m2mpay.api.models import (
    ChannelView,
    FlowView,
    OfferView,
    ReceiptView,
    SessionView,
)
from m2mpay.crypto import Address
from m2mpay.node import ChannelInfo
from m2mpay.stream import FlowTotals, Leader, Offer, ServiceKind, SessionInfo, SignedReceipt

__all__ = [
    "channel_view",
    "hex32",
    "offer_from_view",
    "offer_view",
    "parse_hex32",
    "session_view",
]


def hex32(value: bytes) -> str:
    return "0x" + value.hex()


def parse_hex32(text: str, field: str) -> bytes:
    body = text[2:] if text[:2] in ("0x", "0X") else text
    try:
        value = bytes.fromhex(body)
    except ValueError:
        value = b""
    if len(value) != 32:
        raise ApiError(422, "invalid_input", f"{field} must be 32 bytes of 0x-hex", field)
    return value


def channel_view(info: ChannelInfo) -> ChannelView:
    final = info.final_balance_mine
    return ChannelView(
        channel_id=info.id_hex,
        peer=info.peer.checksum,
        phase=info.phase.value,
        asset=info.asset.checksum,
        challenge_period=info.challenge_period,
        deposit_mine=str(info.deposit_mine),
        deposit_peer=str(info.deposit_peer),
        balance_mine=str(info.balance_mine),
        balance_peer=str(info.balance_peer),
        sent_total=str(info.sent_total),
        received_total=str(info.received_total),
        in_flight=info.in_flight,
        payments_sent=info.payments_sent,
        payments_received=info.payments_received,
        final_balance_mine=None if final is None else str(final),
    )


def offer_view(offer: Offer) -> OfferView:
    return OfferView(
        offer_id=hex32(offer.offer_id),
        seller=offer.seller.checksum,
        kind=offer.kind.value,
        unit=offer.unit,
        price=str(offer.price),
        asset=offer.asset.checksum,
        min_units=offer.min_units,
        max_units=offer.max_units,
        window=offer.window,
        leader=offer.leader.value,
        batch=offer.batch,
        reverse_price=str(offer.reverse_price),
        valid_until_ms=offer.valid_until_ms,
    )


def offer_from_view(view: OfferView) -> Offer:
    return Offer(
        offer_id=parse_hex32(view.offer_id, "offer.offer_id"),
        seller=Address(view.seller),
        kind=ServiceKind(view.kind),
        unit=view.unit,
        price=int(view.price),
        asset=Address(view.asset),
        min_units=view.min_units,
        max_units=view.max_units,
        window=view.window,
        leader=Leader(view.leader),
        batch=view.batch,
        reverse_price=int(view.reverse_price),
        valid_until_ms=view.valid_until_ms,
    )


def _flow(totals: FlowTotals) -> FlowView:
    return FlowView(units=totals.units, value=str(totals.value), paid=str(totals.paid))


def _receipt(receipt: SignedReceipt | None) -> ReceiptView | None:
    if receipt is None:
        return None
    return ReceiptView(
        session_id=hex32(receipt.session_id),
        channel_id=hex32(receipt.channel_id),
        forward=_flow(receipt.forward),
        backward=_flow(receipt.backward),
        started_ms=receipt.started_ms,
        stopped_ms=receipt.stopped_ms,
        signature="0x" + bytes(receipt.signature).hex(),
    )


def session_view(info: SessionInfo) -> SessionView:
    return SessionView(
        session_id=info.id_hex,
        offer_id=hex32(info.offer.offer_id),
        channel_id=hex32(info.channel_id),
        peer=info.peer.checksum,
        role="seller" if info.we_sell else "buyer",
        phase=info.phase.value,
        price=str(info.price),
        reversed=info.reversed,
        unit=info.offer.unit,
        window=info.offer.window,
        asset=info.offer.asset.checksum,
        forward=_flow(info.forward),
        backward=_flow(info.backward),
        started_ms=info.started_ms,
        stopped_ms=info.stopped_ms,
        stop_reason=info.stop_reason,
        countersigned=info.countersigned,
        receipt=_receipt(info.receipt),
        peer_receipt=_receipt(info.peer_receipt),
        supplies=None if info.supplies is None else hex32(info.supplies),
    )
