"""Node info and the wallet: balances, on-chain transfers, the dev-chain faucet."""

from __future__ import annotations

from dataclasses import dataclass

from m2mpay.client.base import ApiBase, address_text, given, given_amounts
from m2mpay.client.codec import Amount, decode
from m2mpay.crypto import ZERO_ADDRESS, Address

__all__ = [
    "NATIVE",
    "BalanceView",
    "ContractsView",
    "InfoView",
    "TransferView",
    "WalletApi",
    "WalletView",
]

NATIVE = ZERO_ADDRESS  # the chain's own coin, where an asset is asked for


@dataclass(frozen=True, slots=True)
class ContractsView:
    hub: Address
    token: Address
    token_symbol: str
    token_decimals: int = 18  # nodes before the field: their token had 18
    # None where the node's deployment lacks them (recorded before they existed).
    anchor: Address | None = None
    token_factory: Address | None = None
    exchange: Address | None = None
    registry: Address | None = None
    escrow: Address | None = None


@dataclass(frozen=True, slots=True)
class InfoView:
    address: Address
    chain: str  # CAIP-2, e.g. eip155:1337
    ledger: str
    contracts: ContractsView
    peer_endpoint: str | None  # where other nodes reach this node's wire
    version: str
    dev_chain: bool
    genesis_hash: str = ""  # 0x…: dev chains share ids, never genesis blocks
    public_reads: bool = False  # reads need no token (writes always do)


@dataclass(frozen=True, slots=True)
class BalanceView:
    asset: Address  # NATIVE for the chain's coin
    symbol: str
    on_chain: Amount
    in_channels: Amount  # our side of every open channel in this asset
    decimals: int = 18  # nodes before the field listed only 18-decimal assets


@dataclass(frozen=True, slots=True)
class WalletView:
    address: Address
    balances: tuple[BalanceView, ...]

    def balance(self, asset: Address | str) -> BalanceView:
        """The balance of `asset` (an address, or a symbol such as `ETH`)."""
        by_symbol = isinstance(asset, str) and not asset.lower().startswith("0x")
        for item in self.balances:
            if item.symbol == asset if by_symbol else item.asset == Address(asset):
                return item
        raise KeyError(asset)


@dataclass(frozen=True, slots=True)
class TransferView:
    tx_hash: str
    block: int
    gas_used: int


class WalletApi(ApiBase):
    async def info(self) -> InfoView:
        """Who and where the node is (public: no token needed)."""
        return decode(InfoView, await self._call("GET", "/v1/info"))

    async def wallet(self) -> WalletView:
        return decode(WalletView, await self._call("GET", "/v1/wallet"))

    async def transfer(
        self, to: Address | str, amount: int, *, asset: Address | str = NATIVE
    ) -> TransferView:
        """Send `amount` of `asset` (default: the chain's coin) on chain; answers once mined."""
        body = {"to": address_text(to), "asset": address_text(asset), "amount": str(amount)}
        return decode(TransferView, await self._call("POST", "/v1/wallet/transfers", body=body))

    async def faucet(
        self,
        *,
        amount: int | None = None,
        native: int | None = None,
        asset: Address | str | None = None,
    ) -> WalletView:
        """Dev chains only: mint `amount` of `asset` (default: the deployment's token) and
        send `native` coin to the node; the node picks amounts left out."""
        body = {**given_amounts(amount=amount, native=native), **given(asset=asset)}
        return decode(WalletView, await self._call("POST", "/v1/wallet/faucet", body=body))
