"""The client's answer types: in step with the gateway's models, strict about what they
read, and tolerant of fields a newer node adds."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Union, get_args, get_origin

import pytest
from pydantic import BaseModel

import m2mpay.client as client_views
from m2mpay.api import (
    models,
    models_access,
    models_devices,
    models_escrow,
    models_market,
    models_registry,
    models_resales,
    models_streams,
    models_transfer_sales,
)
from m2mpay.client import (
    Amount,
    ChannelView,
    DeviceView,
    OfferView,
    TelemetryRecord,
    WalletView,
    decode,
    encode,
)
from m2mpay.crypto import Address
from m2mpay.errors import MalformedMessage

SELLER = "0x" + "11" * 20
TOKEN = Address("0x" + "22" * 20)


def _client_fields(cls: type[Any]) -> dict[str, tuple[bool, bool]]:
    """name → (carried as an integer string, may be null)."""
    hints = typing.get_type_hints(cls, include_extras=True)
    out = {}
    for item in dataclasses.fields(cls):
        kind = hints[item.name]
        union = get_origin(kind) in (Union, types.UnionType)
        options = get_args(kind) if union else (kind,)
        out[item.name] = (Amount in options, type(None) in options)
    return out


def _server_fields(model: type[BaseModel]) -> dict[str, tuple[bool, bool]]:
    out = {}
    for name, prop in model.model_json_schema()["properties"].items():
        options = prop.get("anyOf", [prop])
        out[name] = (
            any(o.get("pattern") == models.AMOUNT for o in options),
            any(o.get("type") == "null" for o in options),
        )
    return out


def test_every_answer_type_matches_the_gateway_model_of_the_same_name() -> None:
    checked = []
    for name in client_views.__all__:
        ours = getattr(client_views, name)
        theirs = (
            getattr(models, name, None)
            or getattr(models_devices, name, None)
            or getattr(models_resales, name, None)
            or getattr(models_access, name, None)
            or getattr(models_streams, name, None)
            or getattr(models_transfer_sales, name, None)
            or getattr(models_escrow, name, None)
            or getattr(models_market, name, None)
            or getattr(models_registry, name, None)
        )
        if not (isinstance(ours, type) and dataclasses.is_dataclass(ours)):
            continue
        if not (isinstance(theirs, type) and issubclass(theirs, BaseModel)):
            continue
        assert _client_fields(ours) == _server_fields(theirs), name
        checked.append(name)
    assert set(checked) >= {
        "BalanceView",
        "DeviceClientView",
        "FeedPublished",
        "FeedView",
        "GrantBought",
        "GrantView",
        "ChannelView",
        "ContractsView",
        "FlowView",
        "InfoView",
        "OfferView",
        "PaymentMade",
        "CommitmentMade",
        "ReceiptView",
        "ReconciliationView",
        "ResaleView",
        "SessionView",
        "TransferView",
        "WalletView",
        "AnchorCheckView",
        "StreamAnchorView",
        "StreamMessageList",
        "StreamMessageView",
        "StreamProblemView",
        "StreamSummary",
        "StreamVerification",
        "StreamView",
        "TransferPurchaseView",
        "TransferSaleList",
        "TransferTermsView",
        "LiquidityView",
        "PoolView",
        "QuoteView",
        "SwapView",
        "TokenDetail",
        "TokenView",
        "ListedServiceView",
        "OfferCheckView",
        "RatingView",
        "ScoreView",
        "StorefrontView",
    }


def _offer_json(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "offer_id": "0x" + "ab" * 32,
        "seller": SELLER,
        "kind": "energy",
        "unit": "Wh",
        "price": "1000000000000000",
        "asset": TOKEN.checksum,
        "min_units": 0,
        "max_units": 0,
        "window": 10,
        "leader": "deliverer",
        "batch": 2,
        "reverse_price": "0",
        "valid_until_ms": 1_900_000_000_000,
    }
    raw.update(changes)
    return raw


def test_an_offer_goes_back_to_the_node_as_it_came() -> None:
    raw = _offer_json()
    offer = decode(OfferView, raw)
    assert offer.price == 10**15
    assert offer.seller == Address(SELLER)
    assert encode(offer) == {**raw, "seller": Address(SELLER).checksum}


def test_fields_a_newer_node_adds_are_ignored() -> None:
    offer = decode(OfferView, _offer_json(colour="green"))
    assert not hasattr(offer, "colour")


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"price": 5}, "price should be an integer string"),
        ({"price": "-5"}, "price should be an integer string"),
        ({"price": "05"}, "price should be an integer string"),
        ({"window": "10"}, "window should be an integer"),
        ({"window": True}, "window should be an integer"),
        ({"seller": "0x12"}, "seller should be an address"),
        ({"kind": "magic"}, "kind should be"),
        ({"unit": None}, "unit should be a string, got None"),
    ],
)
def test_an_answer_of_the_wrong_type_is_malformed(change: dict[str, Any], says: str) -> None:
    with pytest.raises(MalformedMessage, match=says):
        decode(OfferView, _offer_json(**change))


def test_a_missing_field_is_named_with_its_path() -> None:
    raw = {"address": SELLER, "balances": [{"asset": TOKEN.checksum, "symbol": "M2M"}]}
    with pytest.raises(MalformedMessage, match=r"balances\[0\]\.on_chain"):
        decode(WalletView, raw)


def test_a_null_where_one_is_allowed() -> None:
    raw = {
        "channel_id": "0x" + "cd" * 32,
        "peer": SELLER,
        "phase": "open",
        "asset": TOKEN.checksum,
        "challenge_period": 3600,
        "deposit_mine": "10",
        "deposit_peer": "0",
        "balance_mine": "7",
        "balance_peer": "3",
        "sent_total": "3",
        "received_total": "0",
        "in_flight": 0,
        "payments_sent": 0,
        "payments_received": 0,
        "final_balance_mine": None,
    }
    channel = decode(ChannelView, raw)
    assert channel.final_balance_mine is None
    assert encode(channel)["final_balance_mine"] is None
    assert decode(ChannelView, {**raw, "final_balance_mine": "7"}).final_balance_mine == 7


def test_devices_read_the_bus_protocol_shapes() -> None:
    device = decode(
        DeviceView,
        {
            "device_id": SELLER,
            "name": "hall lamp",
            "online": True,
            "services": [{"name": "light", "unit": "s", "price": "1000", "asset": TOKEN.checksum}],
        },
    )
    assert device.services[0].price == 1000
    assert device.services[0].kind == "actuation"  # the bus protocol's default
    assert (device.state, device.last_seen_ms) == ("", 0)
    record = decode(TelemetryRecord, {"seq": 3, "at_ms": 1, "data": {"lux": 310}})
    assert record.data == {"lux": 310}
    with pytest.raises(MalformedMessage, match="data should be an object"):
        decode(TelemetryRecord, {"seq": 3, "at_ms": 1, "data": [1]})
