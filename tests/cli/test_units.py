"""Amounts and times as the CLI shows them to people: exact, never rounded."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from m2mpay.cli.units import Units, decimal_amount, local_time
from m2mpay.client import NATIVE
from m2mpay.crypto import Address
from m2mpay.errors import M2MPayError

TOKEN = Address("0x" + "ab" * 20)
OTHER = Address("0x" + "cd" * 20)
MAX_UINT256 = 2**256 - 1


@pytest.mark.parametrize(
    ("value", "decimals", "shown"),
    [
        (0, 18, "0"),
        (1, 18, "0.000000000000000001"),
        (250, 18, "0.00000000000000025"),
        (10**18, 18, "1"),
        (4943599999999999999, 18, "4.943599999999999999"),
        (4943600000000000000, 18, "4.9436"),
        (1_500_000, 6, "1.5"),
        (1, 6, "0.000001"),
        (123, 0, "123"),
        (0, 0, "0"),
        (-1500, 3, "-1.5"),
        (
            MAX_UINT256,
            18,
            "115792089237316195423570985008687907853269984665640564039457.584007913129639935",
        ),
        (MAX_UINT256, 0, str(MAX_UINT256)),
        (MAX_UINT256, 6, f"{MAX_UINT256 // 10**6}.{MAX_UINT256 % 10**6:06d}"),
    ],
)
def test_decimal_amount_is_exact(value: int, decimals: int, shown: str) -> None:
    assert decimal_amount(value, decimals) == shown


def test_every_digit_of_the_smallest_unit_survives() -> None:
    # What a float would lose: 2^256 − 1 and one wei more than a whole token.
    for value in (MAX_UINT256, 10**18 + 1, 2**53 + 1):
        whole, _, fraction = decimal_amount(value, 18).partition(".")
        assert int(whole + fraction.ljust(18, "0")) == value


def test_units_name_the_token_the_coin_and_an_unknown_token() -> None:
    units = Units(TOKEN, "M2M", 18)
    assert units.amount(4943600000000000000) == "4.9436 M2M"
    assert units.amount(1, TOKEN) == "0.000000000000000001 M2M"
    assert units.amount(10**18, NATIVE) == "1 ETH"
    assert units.amount(250, OTHER) == f"250 of {OTHER.checksum}"
    assert units.price(300_000_000_000_000, "Wh") == "0.0003 M2M/Wh"
    usdc = Units(TOKEN, "USDC", 6)
    assert usdc.amount(2_500_000) == "2.5 USDC"
    assert usdc.amount(0) == "0 USDC"
    assert Units(TOKEN, "PTS", 0).amount(42) == "42 PTS"


def test_units_name_the_factory_s_tokens_and_read_an_asset_by_symbol() -> None:
    watt = Address("0x" + "77" * 20)
    units = Units(TOKEN, "M2M", 18, {watt: ("WATT", 6), OTHER: ("LIGHT", 18)})
    assert units.amount(1_500_000, watt) == "1.5 WATT"
    assert units.price(250_000, "s", watt) == "0.25 WATT/s"
    assert units.number(10**18, OTHER) == "1"
    assert units.amount(7) == "0.000000000000000007 M2M"
    unknown = Address("0x" + "99" * 20)
    assert units.amount(5, unknown) == f"5 of {unknown.checksum}"
    assert [units.asset(t) for t in ("WATT", "M2M", "eth", watt.checksum)] == [
        watt,
        TOKEN,
        NATIVE,
        watt,
    ]
    with pytest.raises(M2MPayError, match="no asset 'NOPE'"):
        units.asset("NOPE")
    with pytest.raises(M2MPayError, match="2 tokens are 'M2M'"):
        Units(TOKEN, "M2M", 18, {watt: ("M2M", 6)}).asset("M2M")
    with pytest.raises(M2MPayError, match="0x12"):
        units.asset("0x12")


@pytest.fixture
def berlin() -> Iterator[None]:
    before = os.environ.get("TZ")
    os.environ["TZ"] = "Europe/Berlin"
    time.tzset()
    yield
    if before is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = before
    time.tzset()


@pytest.mark.usefixtures("berlin")
def test_local_time_in_the_machines_zone() -> None:
    # 2026-12-06 21:40:05.250 UTC is 22:40:05 in Berlin (CET, winter).
    assert local_time(1_796_593_205_250) == "2026-12-06 22:40:05 CET"
    # Summer time: the zone says which.
    assert local_time(1_782_942_005_000) == "2026-07-01 23:40:05 CEST"


def test_no_time_is_a_dash() -> None:
    assert local_time(0) == "—"


def test_device_run_says_prices_in_the_nodes_token(capsys: pytest.CaptureFixture[str]) -> None:
    from m2mpay.cli.device import _people
    from m2mpay.devices.progress import line

    registered = {
        "event": "registered",
        "device": OTHER.checksum,
        "node": TOKEN.checksum,
        "name": "charger",
        "services": [
            {"name": "charge", "unit": "Wh", "price": 300_000_000_000_000, "asset": ""},
            {"name": "coin", "unit": "Wh", "price": 10**15, "asset": NATIVE.checksum},
        ],
    }
    _people("a test", Units(TOKEN, "M2M", 18))(registered)
    said = capsys.readouterr().out
    assert "charge at 0.0003 M2M/Wh, coin at 0.001 ETH/Wh" in said
    # Without the node's units (its own tests, other callers): the smallest unit.
    assert "charge at 300000000000000 per Wh" in line(registered)
