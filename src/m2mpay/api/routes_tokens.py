"""Tokens: every ERC-20 (with permit) the deployment's TokenFactory made, and a new one
made by the node's own key.

A token the factory made works at once in channels and sessions, and on the exchange
(`routes_dex`). A token the node holds but the factory did not make is not listed here
(`/v1/wallet` shows the node's balances)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from fastapi import Path as PathParam

from m2mpay.api.auth import GuardedRoutes
from m2mpay.api.errors import ApiError
from m2mpay.api.gateway import Gateway
from m2mpay.api.market import contract_refusals, market_of, parse_address
from m2mpay.api.models import ADDRESS
from m2mpay.api.models_market import TokenCreate, TokenDetail, TokenList, TokenView
from m2mpay.api.views import hex32
from m2mpay.chain import NATIVE_TOKEN, CreatedToken, TokenContract, TokenFactory
from m2mpay.errors import ContractError

__all__ = ["token_routes", "token_view"]

TokenPath = Annotated[str, PathParam(pattern=ADDRESS, description="The token's address.")]


def token_view(created: CreatedToken) -> TokenView:
    return TokenView(
        address=created.token.checksum,
        name=created.name,
        symbol=created.symbol,
        decimals=created.decimals,
        supply=str(created.supply),
        creator=created.creator.checksum,
        holder=created.holder.checksum,
        mint_owner=created.mint_owner.checksum if created.mint_owner is not None else None,
        block=created.block_number,
        tx_hash=hex32(created.tx_hash),
    )


def token_routes(gw: Gateway) -> APIRouter:
    routes = GuardedRoutes(gw.credentials, "tokens")

    def factory() -> TokenFactory:
        return TokenFactory(gw.ledger, market_of(gw).token_factory)

    @routes.read("/v1/tokens", TokenList, summary="Every token the deployment's factory made")
    async def list_tokens() -> TokenList:
        made = await factory().created(0)
        return TokenList(tokens=[token_view(created) for created in made])

    @routes.write(
        "/v1/tokens",
        TokenView,
        status_code=201,
        summary="Create a token (ERC-20 with permit) with the node's key",
        description="Its supply goes to `holder` (default: this node). With `mintable`, "
        "this node may mint more later; without, no one ever may. The node pays the gas.",
    )
    async def create_token(body: TokenCreate) -> TokenView:
        holder = parse_address(body.holder, "holder") if body.holder else gw.node.address
        supply = int(body.supply)
        if supply > 0 and holder == NATIVE_TOKEN:
            raise ApiError(422, "invalid_input", "a supply cannot go to the zero address", "holder")
        made = factory()
        with contract_refusals():
            _, receipt = await made.create(
                gw.node.key,
                body.name,
                body.symbol,
                decimals=body.decimals,
                supply=supply,
                holder=holder,
                mint_owner=gw.node.address if body.mintable else None,
            )
        created = next((c for log in receipt.logs if (c := made.decode(log)) is not None), None)
        if created is None:  # `create` found it already: this cannot be
            raise ContractError("the factory's receipt announces no TokenCreated")
        return token_view(created)

    @routes.read(
        "/v1/tokens/{address}",
        TokenDetail,
        summary="One token the factory made, and this node's balance of it",
        description="An address the factory did not make is 404 `not_a_factory_token`.",
    )
    async def show_token(address: TokenPath) -> TokenDetail:
        token = parse_address(address, "address")
        created = await factory().creation_of(token)
        if created is None:
            raise ApiError(
                404,
                "not_a_factory_token",
                f"{token.checksum} is not a token the deployment's factory made",
                "address",
            )
        erc20 = TokenContract(gw.ledger, token)
        return TokenDetail(
            token=token_view(created),
            total_supply=str(await erc20.total_supply()),
            balance=str(await erc20.balance_of(gw.node.address)),
        )

    return routes.router
