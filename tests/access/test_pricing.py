"""What an HTTP resource costs and what a payment buys: per request, per byte of the
declared length, per second of a streamed answer; the first matching path pattern."""

from __future__ import annotations

import pytest

from m2mpay.access.pricing import Per, Price, PricedRoute, PriceList, Purchase
from m2mpay.crypto import Address

ASSET = Address(bytes([0x33]) * 20)


def test_a_purchase_is_one_request_the_declared_bytes_or_the_paid_seconds() -> None:
    assert Price(5, ASSET).purchase() == Purchase(5, Per.REQUEST, 1)
    assert Price(5, ASSET, Per.BYTE).purchase(1000) == Purchase(5000, Per.BYTE, 1000)
    assert Price(5, ASSET, Per.SECOND, seconds=30).purchase() == Purchase(150, Per.SECOND, 30)
    # An empty body still costs a byte: a payment of 0 would be no payment at all.
    assert Price(5, ASSET, Per.BYTE).purchase(0) == Purchase(5, Per.BYTE, 0)


def test_a_per_byte_price_needs_the_declared_length() -> None:
    with pytest.raises(ValueError, match="Content-Length"):
        Price(5, ASSET, Per.BYTE).purchase(None)
    with pytest.raises(ValueError, match="Content-Length"):
        Price(5, ASSET, Per.BYTE).purchase(-1)


@pytest.mark.parametrize(("amount", "seconds"), [(0, 60), (-1, 60), (1 << 256, 60), (1, 0)])
def test_a_price_is_positive_and_a_payment_buys_at_least_a_second(
    amount: int, seconds: int
) -> None:
    with pytest.raises(ValueError, match=r"a price is|a payment buys"):
        Price(amount, ASSET, Per.SECOND, seconds=seconds)


def test_the_first_matching_pattern_prices_a_path_and_others_are_free() -> None:
    cheap, dear = Price(1, ASSET), Price(9, ASSET)
    prices = PriceList([PricedRoute("/data/live*", dear), PricedRoute("/data/*", cheap)])
    assert prices.price_of("/data/live/kitchen") is dear
    assert prices.price_of("/data/today") is cheap
    assert prices.price_of("/health") is None
    assert PriceList.everything(cheap).price_of("/anything") is cheap
