"""Amounts and times as people read them, in the CLI's human output only.

The API and `--json` carry amounts as exact integers in the smallest unit and times as
epoch milliseconds; a table shows `4.9436 M2M` and `2026-12-06 22:40:05 CET` instead.

Amounts are never rounded: every digit of the smallest unit is kept (trailing zeros
trimmed), computed with integers, so `1` wei of an 18-decimal token reads
`0.000000000000000001 M2M` and 2^256 − 1 keeps all its digits. An amount of a token
the node does not name (neither its token nor the chain's coin) is shown as the raw
integer with the token's address, as its decimals are not known.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from m2mpay.client import NATIVE, InfoView
from m2mpay.crypto import Address

__all__ = ["NATIVE_DECIMALS", "Units", "decimal_amount", "local_time"]

NATIVE_DECIMALS: Final = 18  # ether and the coins of every EVM chain


def decimal_amount(value: int, decimals: int) -> str:
    """`value` smallest units as an exact decimal with `decimals` places, trailing
    zeros trimmed: `decimal_amount(1500, 3) == "1.5"`."""
    sign = "-" if value < 0 else ""
    whole, fraction = divmod(abs(value), 10**decimals)
    digits = str(fraction).rjust(decimals, "0").rstrip("0") if decimals else ""
    return f"{sign}{whole}.{digits}" if digits else f"{sign}{whole}"


def local_time(epoch_ms: int) -> str:
    """Epoch milliseconds as this machine's local time with its zone,
    `2026-12-06 22:40:05 CET`; 0 (never) as `—`."""
    if epoch_ms <= 0:
        return "—"
    return datetime.fromtimestamp(epoch_ms / 1000).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


@dataclass(frozen=True, slots=True)
class Units:
    """The node's token (address, symbol, decimals), learned once per command from its
    `/v1/info`, to show amounts of it and of the chain's coin."""

    token: Address
    symbol: str
    decimals: int

    @classmethod
    def of(cls, info: InfoView) -> Units:
        contracts = info.contracts
        return cls(contracts.token, contracts.token_symbol, contracts.token_decimals)

    def amount(self, value: int, asset: Address | None = None) -> str:
        """`value` smallest units of `asset` (default: the node's token) for people."""
        return f"{self.number(value, asset)} {self.name(asset)}"

    def number(self, value: int, asset: Address | None = None) -> str:
        """The amount alone, for a column whose heading or caption names the asset; an
        unknown token's stays in its smallest unit."""
        if asset is None or asset == self.token:
            return decimal_amount(value, self.decimals)
        if asset == NATIVE:
            return decimal_amount(value, NATIVE_DECIMALS)
        return str(value)

    def name(self, asset: Address | None = None) -> str:
        """The asset's symbol, or for an unknown token `of <address>`."""
        if asset is None or asset == self.token:
            return self.symbol
        if asset == NATIVE:
            return "ETH"
        return f"of {asset.checksum}"

    def price(self, value: int, unit: str, asset: Address | None = None) -> str:
        """A price per unit: `0.0003 M2M/Wh`."""
        return f"{self.amount(value, asset)}/{unit}"
