"""Amounts and times as people read them, in the CLI's human output only.

The API and `--json` carry amounts as exact integers in the smallest unit and times as
epoch milliseconds; a table shows `4.9436 M2M` and `2026-12-06 22:40:05 CET` instead.

Amounts are never rounded: every digit of the smallest unit is kept (trailing zeros
trimmed), computed with integers, so `1` wei of an 18-decimal token reads
`0.000000000000000001 M2M` and 2^256 − 1 keeps all its digits. The assets named are the
chain's coin, the node's token and every token its deployment's factory made; an amount
of any other token is shown as the raw integer with the token's address, as its
decimals are not known.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from m2mpay.client import NATIVE, InfoView, NodeClient, TokenView
from m2mpay.crypto import Address
from m2mpay.errors import ApiRefusal, CryptoError, M2MPayError

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
    """The assets a node names, learned once per command: its token (address, symbol,
    decimals: the default asset), the chain's coin, and the tokens its deployment's
    factory made (`tokens`: address to symbol and decimals)."""

    token: Address
    symbol: str
    decimals: int
    tokens: Mapping[Address, tuple[str, int]] = field(default_factory=dict)

    @classmethod
    def of(cls, info: InfoView, tokens: Iterable[TokenView] = ()) -> Units:
        contracts = info.contracts
        made = {t.address: (t.symbol, t.decimals) for t in tokens}
        return cls(contracts.token, contracts.token_symbol, contracts.token_decimals, made)

    @classmethod
    async def load(cls, node: NodeClient) -> Units:
        """The node's `/v1/info` and its factory's tokens, asked together."""
        info, tokens = await asyncio.gather(node.info(), _factory_tokens(node))
        return cls.of(info, tokens)

    def known(self, asset: Address | None = None) -> tuple[str, int] | None:
        """(symbol, decimals) of an asset this node names; None for any other."""
        if asset is None or asset == self.token:
            return self.symbol, self.decimals
        if asset == NATIVE:
            return "ETH", NATIVE_DECIMALS
        return self.tokens.get(asset)

    def asset(self, text: str) -> Address:
        """The asset `text` names: an address, ETH, or a unique symbol."""
        if text.lower().startswith("0x"):
            try:
                return Address(text)
            except CryptoError as exc:
                raise M2MPayError(f"{text}: {exc}") from None
        if text.upper() == "ETH":
            return NATIVE
        named = {self.token} if text == self.symbol else set()
        named |= {a for a, (symbol, _) in self.tokens.items() if symbol == text}
        if len(named) == 1:
            return named.pop()
        if not named:
            raise M2MPayError(f"no asset {text!r}: give ETH, a token's symbol or its address")
        raise M2MPayError(f"{len(named)} tokens are {text!r}: give the address")

    def amount(self, value: int, asset: Address | None = None) -> str:
        """`value` smallest units of `asset` (default: the node's token) for people."""
        return f"{self.number(value, asset)} {self.name(asset)}"

    def number(self, value: int, asset: Address | None = None) -> str:
        """The amount alone, for a column whose heading or caption names the asset; an
        unknown token's stays in its smallest unit."""
        known = self.known(asset)
        return str(value) if known is None else decimal_amount(value, known[1])

    def name(self, asset: Address | None = None) -> str:
        """The asset's symbol, or for an unknown token `of <address>`."""
        known = self.known(asset)
        if known is None:
            assert asset is not None  # the node's token is always known
            return f"of {asset.checksum}"
        return known[0]

    def price(self, value: int, unit: str, asset: Address | None = None) -> str:
        """A price per unit: `0.0003 M2M/Wh`."""
        return f"{self.amount(value, asset)}/{unit}"


async def _factory_tokens(node: NodeClient) -> list[TokenView]:
    """The factory's tokens, or none when the node will not list them: a deployment made
    without a factory, a node read without its token (a public storefront), a chain out
    of reach (`status` says so). Their amounts then show raw with their address, as
    any unknown token's: never wrong, and the command still answers."""
    try:
        return await node.tokens()
    except ApiRefusal:
        return []
