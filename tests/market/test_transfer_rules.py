"""The rules of a purchase by plain transfer: whole units at the offer's price, the
offer's minimum and maximum, and the change kept or credited as the terms say."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from m2mpay.crypto import Address
from m2mpay.market.transfer_sales import (
    Change,
    TransferTerms,
    purchase_id,
    sell,
    terms_problem,
)

DEVICE = Address("0x" + "11" * 20)
TOKEN = Address("0x" + "22" * 20)


def _terms(
    price: int = 10,
    minimum: int = 0,
    maximum: int = 0,
    underpay: Change = Change.KEEP,
    overpay: Change = Change.KEEP,
) -> TransferTerms:
    return TransferTerms(
        b"\x01" * 32, DEVICE, "light", TOKEN, price, minimum, maximum, 3, underpay, overpay, 0
    )


changes = st.sampled_from(list(Change))


@given(
    amount=st.integers(0, 2**256 - 1),
    credit=st.integers(0, 2**128),
    price=st.integers(1, 2**128),
    minimum=st.integers(0, 1000),
    extra=st.integers(0, 1000),
    bounded=st.booleans(),
    underpay=changes,
    overpay=changes,
)
def test_units_times_price_plus_change_is_the_amount_and_nothing_is_negative(
    amount: int,
    credit: int,
    price: int,
    minimum: int,
    extra: int,
    bounded: bool,
    underpay: Change,
    overpay: Change,
) -> None:
    maximum = minimum + extra if bounded else 0
    terms = _terms(price, minimum, maximum, underpay, overpay)
    sale = sell(amount, credit, terms)
    assert sale.units * price + sale.kept + sale.credit == amount + credit
    assert sale.paid == sale.units * price
    assert min(sale.units, sale.kept, sale.credit) >= 0
    assert sale.kept == 0 or sale.credit == 0  # the change goes one way
    if maximum:
        assert sale.units <= maximum
    if sale.units:
        assert sale.units >= minimum
        # the most whole units the total buys within the maximum
        assert (amount + credit - sale.paid) < price or sale.units == maximum


def test_an_exact_amount_buys_its_units_with_no_change() -> None:
    sale = sell(30, 0, _terms())
    assert (sale.units, sale.paid, sale.kept, sale.credit) == (3, 30, 0, 0)


def test_underpayment_is_kept_or_credited_and_a_credit_tops_up_the_next_transfer() -> None:
    assert sell(15, 0, _terms(minimum=2)).kept == 15
    held = sell(15, 0, _terms(minimum=2, underpay=Change.CREDIT))
    assert (held.units, held.credit) == (0, 15)
    topped = sell(7, held.credit, _terms(minimum=2, underpay=Change.CREDIT))
    assert (topped.units, topped.kept) == (2, 2)


def test_overpayment_beyond_the_maximum_is_kept_or_credited() -> None:
    assert sell(57, 0, _terms(maximum=4)) == sell(57, 0, _terms(maximum=4))
    kept = sell(57, 0, _terms(maximum=4))
    assert (kept.units, kept.kept, kept.credit) == (4, 17, 0)
    credited = sell(57, 0, _terms(maximum=4, overpay=Change.CREDIT))
    assert (credited.units, credited.kept, credited.credit) == (4, 0, 17)


def test_terms_that_cannot_be_sold_under_are_named() -> None:
    assert terms_problem(_terms(price=0)) == "the price must be positive"
    assert terms_problem(_terms(minimum=5, maximum=2)) == "the minimum cannot exceed the maximum"
    assert terms_problem(_terms()) is None
    in_coin = TransferTerms(
        b"\x01" * 32, DEVICE, "light", Address(bytes(20)), 10, 0, 0, 3, Change.KEEP, Change.KEEP, 0
    )
    assert terms_problem(in_coin) == (
        "a transfer of the chain's coin leaves no log to follow: sell a token"
    )


def test_a_transfer_is_known_by_its_transaction_and_position_not_its_block() -> None:
    tx = b"\xab" * 32
    assert purchase_id(1337, TOKEN, tx, 0) == purchase_id(1337, TOKEN, tx, 0)
    assert purchase_id(1337, TOKEN, tx, 0) != purchase_id(1337, TOKEN, tx, 1)
    assert purchase_id(1337, TOKEN, tx, 0) != purchase_id(1, TOKEN, tx, 0)
