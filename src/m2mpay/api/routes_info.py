"""Node info (public) and the wallet: balances, on-chain transfers, a dev-chain faucet."""

from __future__ import annotations

import asyncio
from typing import Final

from fastapi import APIRouter

from m2mpay import __version__
from m2mpay.api.auth import GuardedRoutes
from m2mpay.api.errors import ApiError
from m2mpay.api.gateway import Gateway
from m2mpay.api.models import (
    BalanceView,
    ContractsView,
    FaucetRequest,
    InfoView,
    TransferRequest,
    TransferView,
    WalletView,
)
from m2mpay.chain import NATIVE_TOKEN, Deployment, TokenContract
from m2mpay.channel.state import Phase
from m2mpay.crypto import Address

__all__ = ["info_routes", "require_funds"]

_NATIVE_GAS: Final = 21_000
_NATIVE_DECIMALS: Final = 18
_TOKEN_GAS: Final = 80_000
_FAUCET_TOKENS: Final = 1_000 * 10**18
_FAUCET_NATIVE: Final = 10**18


async def token_at(gw: Gateway, asset: Address) -> TokenContract:
    """The token at `asset`; an address without code is the caller's mistake."""
    if not await gw.ledger.code(asset):
        raise ApiError(422, "invalid_input", f"no token contract at {asset}", "asset")
    return TokenContract(gw.ledger, asset)


async def require_funds(gw: Gateway, asset: Address, amount: int, field: str) -> None:
    """Refuse up front what the chain would refuse with a bare revert (or a lost fee)."""
    me = gw.node.address
    if asset == NATIVE_TOKEN:
        balance = await gw.ledger.balance(me)
    else:
        balance = await (await token_at(gw, asset)).balance_of(me)
    if balance < amount:
        raise ApiError(
            409, "insufficient_funds", f"{amount} is more than the {balance} this node holds", field
        )


def info_routes(gw: Gateway) -> APIRouter:
    # Untagged router: each route says its one tag, or /docs would list the wallet twice.
    routes = GuardedRoutes(gw.credentials)
    # A token's decimals never change: asked of the chain once, not on every /v1/info.
    known_decimals: list[int] = []

    async def _token_decimals() -> int:
        if not known_decimals:
            known_decimals.append(await gw.token.decimals())
        return known_decimals[0]

    # Likewise another token's symbol and decimals, asked once per token.
    named: dict[Address, tuple[str, int]] = {}

    async def _named(token: TokenContract) -> tuple[str, int]:
        if token.address not in named:
            named[token.address] = (await token.symbol(), await token.decimals())
        return named[token.address]

    @routes.router.get(
        "/v1/info", response_model=InfoView, summary="Who and where this node is", tags=["node"]
    )
    async def info() -> InfoView:
        return InfoView(
            address=gw.node.address.checksum,
            chain=gw.ledger.caip2,
            genesis_hash="0x" + gw.ledger.genesis_hash.hex(),
            ledger=gw.ledger.description,
            contracts=ContractsView(
                hub=gw.deployment.hub.checksum,
                token=gw.deployment.token.checksum,
                token_symbol=gw.deployment.token_symbol,
                token_decimals=await _token_decimals(),
                **_optional_contracts(gw.deployment),
            ),
            peer_endpoint=gw.node.endpoint,
            version=__version__,
            dev_chain=gw.dev_chain,
            public_reads=gw.credentials.public_reads,
        )

    @routes.read("/v1/wallet", WalletView, tags=["wallet"])
    async def wallet() -> WalletView:
        me = gw.node.address
        in_channels: dict[Address, int] = {}
        for channel in gw.node.channels():
            if channel.phase is Phase.OPEN:
                in_channels[channel.asset] = (
                    in_channels.get(channel.asset, 0) + channel.balance_mine
                )
        balances = [
            BalanceView(
                asset=NATIVE_TOKEN.checksum,
                symbol="ETH",
                decimals=_NATIVE_DECIMALS,
                on_chain=str(await gw.ledger.balance(me)),
                in_channels=str(in_channels.pop(NATIVE_TOKEN, 0)),
            ),
            BalanceView(
                asset=gw.deployment.token.checksum,
                symbol=gw.deployment.token_symbol,
                decimals=await _token_decimals(),
                on_chain=str(await gw.token.balance_of(me)),
                in_channels=str(in_channels.pop(gw.deployment.token, 0)),
            ),
        ]
        # Channels in other tokens (a factory's, such as a lamp owner's): listed too, or
        # what this node holds in them would show nowhere.
        for asset, amount in sorted(in_channels.items()):
            token = TokenContract(gw.ledger, asset)
            (symbol, decimals), held = await asyncio.gather(_named(token), token.balance_of(me))
            balances.append(
                BalanceView(
                    asset=asset.checksum,
                    symbol=symbol,
                    decimals=decimals,
                    on_chain=str(held),
                    in_channels=str(amount),
                )
            )
        return WalletView(address=me.checksum, balances=balances)

    @routes.write(
        "/v1/wallet/transfers",
        TransferView,
        status_code=201,
        tags=["wallet"],
        summary="Send the native coin or a token on chain",
    )
    async def transfer(body: TransferRequest) -> TransferView:
        asset, to, amount = Address(body.asset), Address(body.to), int(body.amount)
        key = gw.node.key
        await require_funds(gw, asset, amount, "amount")
        if asset == NATIVE_TOKEN:
            receipt = await gw.ledger.transact(key, to, b"", gas=_NATIVE_GAS, value=amount)
        else:
            receipt = await (await token_at(gw, asset)).transfer(key, to, amount)
        return TransferView(
            tx_hash="0x" + receipt.tx_hash.hex(),
            block=receipt.block_number,
            gas_used=receipt.gas_used,
        )

    @routes.write(
        "/v1/wallet/faucet",
        WalletView,
        tags=["wallet"],
        summary="Dev chains only: mint tokens and send the native coin to this node",
    )
    async def faucet(body: FaucetRequest) -> WalletView:
        accounts = gw.ledger.dev_accounts()
        if not gw.dev_chain or not accounts:
            raise ApiError(409, "not_a_dev_chain", "the faucet exists on development chains only")
        owner = accounts[0]  # deploys the dev contracts and owns the token
        asset = Address(body.asset) if body.asset else gw.deployment.token
        me = gw.node.address
        await (await token_at(gw, asset)).mint(
            owner, me, int(body.amount) if body.amount else _FAUCET_TOKENS
        )
        native = int(body.native) if body.native else _FAUCET_NATIVE
        await gw.ledger.transact(owner, me, b"", gas=_NATIVE_GAS, value=native)
        return await wallet()

    return routes.router


def _optional_contracts(deployment: Deployment) -> dict[str, str]:
    """The anchor's and the market's addresses, where the deployment has them."""
    found: dict[str, str] = {}
    if deployment.anchor is not None:
        found["anchor"] = deployment.anchor.checksum
    if deployment.market is not None:
        found.update(
            token_factory=deployment.market.token_factory.checksum,
            exchange=deployment.market.exchange.checksum,
            registry=deployment.market.registry.checksum,
            escrow=deployment.market.escrow.checksum,
        )
    return found
