"""The explorer's routes: the chain as an explorer shows it (`m2mpay.explorer.Explorer`),
blocks, transactions with their calls and events decoded, addresses, a channel's on-chain
history and search; and the node's peers. Reads: the token unless reads are public."""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Final

from fastapi import APIRouter, Query
from fastapi import Path as PathParam

from m2mpay.api.auth import GuardedRoutes
from m2mpay.api.errors import ApiError
from m2mpay.api.gateway import Gateway
from m2mpay.api.market import parse_address
from m2mpay.api.models import ADDRESS, UINT64_MAX, Hex32Path
from m2mpay.api.models_explorer import (
    AddressDetail,
    BlockPageView,
    BlockView,
    CallModel,
    ChannelHistoryView,
    ChannelStepView,
    EventModel,
    PeerList,
    PeerView,
    SearchView,
    TokenHolding,
    TransactionDetail,
    TransferView,
)
from m2mpay.api.views import hex32, parse_hex32
from m2mpay.chain import BlockInfo
from m2mpay.channel.state import FINAL_PHASES
from m2mpay.explorer import MAX_PAGE, EventView, Explorer, TransactionView

__all__ = ["block_view", "event_model", "explorer_routes", "transaction_detail"]

_BLOCK_REF: Final = r"^([0-9]{1,20}|0[xX][0-9a-fA-F]{64})$"
_SEARCH: Final = r"^\s*([0-9]{1,20}|0[xX][0-9a-fA-F]{40}|0[xX][0-9a-fA-F]{64})\s*$"

BlockRef = Annotated[
    str, PathParam(pattern=_BLOCK_REF, description="A block's number, or its 0x-hex hash.")
]
AddressPath = Annotated[str, PathParam(pattern=ADDRESS, description="0x and 40 hex digits.")]


def block_view(block: BlockInfo) -> BlockView:
    return BlockView(
        number=block.number,
        hash=hex32(block.hash),
        parent_hash=hex32(block.parent_hash),
        timestamp=block.timestamp,
        gas_used=block.gas_used,
        gas_limit=block.gas_limit,
        transactions=[hex32(t) for t in block.transactions],
    )


def event_model(event: EventView) -> EventModel:
    return EventModel(
        address=event.address.checksum,
        contract=event.contract,
        event=event.event,
        args=event.args,
        topics=["0x" + t.hex() for t in event.topics],
        data="0x" + event.data.hex(),
        block=event.block_number,
        tx_hash=hex32(event.tx_hash),
        log_index=event.log_index,
    )


def transaction_detail(view: TransactionView) -> TransactionDetail:
    tx = view.transaction
    return TransactionDetail(
        hash=hex32(tx.hash),
        sender=tx.sender.checksum,
        to=tx.to.checksum if tx.to is not None else None,
        value=str(tx.value),
        input="0x" + tx.input.hex(),
        nonce=tx.nonce,
        gas=tx.gas,
        block=tx.block_number,
        block_hash=hex32(tx.block_hash),
        index=tx.index,
        timestamp=view.timestamp,
        status="success" if tx.succeeded else "reverted",
        gas_used=tx.gas_used,
        effective_gas_price=str(tx.effective_gas_price),
        contract_created=tx.contract_address.checksum if tx.contract_address else None,
        call=CallModel(
            contract=view.call.contract,
            function=view.call.function,
            args=view.call.args,
            selector=view.call.selector,
        ),
        events=[event_model(e) for e in view.events],
    )


def _explorer(gw: Gateway) -> Explorer:
    if gw.explorer is None:  # a gateway built without one (tests): made once, kept
        gw.explorer = Explorer(gw.ledger, gw.deployment)
    return gw.explorer


def _not_found(what: str, field: str) -> ApiError:
    return ApiError(404, "not_found", f"the chain holds no {what}", field)


def explorer_routes(gw: Gateway) -> APIRouter:
    routes = GuardedRoutes(gw.credentials, "explorer")

    @routes.read(
        "/v1/explorer/blocks",
        BlockPageView,
        summary="Blocks, newest first, a page at a time",
        description="`before`: only blocks below that number (the previous page's "
        "`next_before`); none: from the newest.",
    )
    async def blocks(
        before: Annotated[int | None, Query(ge=1, le=UINT64_MAX)] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 25,
    ) -> BlockPageView:
        page = await _explorer(gw).blocks(before, limit)
        return BlockPageView(
            head=page.head,
            blocks=[block_view(b) for b in page.blocks],
            next_before=page.next_before,
        )

    @routes.read(
        "/v1/explorer/blocks/{number_or_hash}",
        BlockView,
        summary="One block by number or hash, with its transactions' hashes",
    )
    async def block(number_or_hash: BlockRef) -> BlockView:
        ref: int | bytes
        if number_or_hash[:2] in ("0x", "0X"):
            ref = parse_hex32(number_or_hash, "number_or_hash")
        else:
            ref = int(number_or_hash)
            if ref > UINT64_MAX:
                raise _not_found("such block", "number_or_hash")
        found = await _explorer(gw).block(ref)
        if found is None:
            raise _not_found("such block", "number_or_hash")
        return block_view(found)

    @routes.read(
        "/v1/explorer/transactions/{tx_hash}",
        TransactionDetail,
        summary="A mined transaction: its call and events decoded, its receipt",
        description="The call is decoded by the ABI of the deployment's contract it went "
        "to, each log by its emitter's; what does not decode is shown raw (null names).",
    )
    async def transaction(tx_hash: Hex32Path) -> TransactionDetail:
        found = await _explorer(gw).transaction(parse_hex32(tx_hash, "tx_hash"))
        if found is None:
            raise _not_found("mined transaction of that hash", "tx_hash")
        return transaction_detail(found)

    @routes.read(
        "/v1/explorer/addresses/{address}",
        AddressDetail,
        summary="An address: its balances, what contract it is, its token transfers",
    )
    async def address(address: AddressPath) -> AddressDetail:
        view = await _explorer(gw).address(parse_address(address, "address"))
        return AddressDetail(
            address=view.address.checksum,
            balance=str(view.balance),
            is_contract=view.contract is not None,
            contract=view.contract,
            tokens=[
                TokenHolding(token=t.token.checksum, symbol=t.symbol, balance=str(t.balance))
                for t in view.tokens
            ],
            transfers=[
                TransferView(
                    token=t.token.checksum,
                    sender=t.sender.checksum,
                    receiver=t.receiver.checksum,
                    value=str(t.value),
                    block=t.block_number,
                    tx_hash=hex32(t.tx_hash),
                    log_index=t.log_index,
                )
                for t in view.transfers
            ],
        )

    @routes.read(
        "/v1/explorer/channels/{channel_id}",
        ChannelHistoryView,
        summary="A channel's history on chain: the hub's events of it, in order",
    )
    async def channel(channel_id: Hex32Path) -> ChannelHistoryView:
        history = await _explorer(gw).channel(parse_hex32(channel_id, "channel_id"))
        if history is None:
            raise _not_found("channel of that id at the deployment's hub", "channel_id")
        return ChannelHistoryView(
            channel_id=hex32(history.channel_id),
            events=[
                ChannelStepView(
                    event=step.event.event,
                    args=step.event.args,
                    block=step.event.block_number,
                    tx_hash=hex32(step.event.tx_hash),
                    log_index=step.event.log_index,
                    timestamp=step.timestamp,
                )
                for step in history.steps
            ],
        )

    @routes.read(
        "/v1/explorer/search",
        SearchView,
        summary="What a query names: a block, a transaction, a channel, an address",
        description="A block number; an address; a 32-byte hash: a transaction's, a "
        "block's or a channel's id, tried in that order. 404 when the chain holds none.",
    )
    async def search(q: Annotated[str, Query(pattern=_SEARCH, max_length=80)]) -> SearchView:
        try:
            hit = await _explorer(gw).search(q)
        except ValueError as exc:
            raise ApiError(422, "invalid_input", f"q: {exc}", "q") from None
        if hit is None:
            raise _not_found("block, transaction or channel of that", "q")
        return SearchView(kind=hit.kind, id=hit.id)

    @routes.read("/v1/peers", PeerList, summary="The node's peers: where, linked, channels")
    async def peers() -> PeerList:
        node = gw.node
        live = Counter(c.peer for c in node.channels() if c.phase not in FINAL_PHASES)
        endpoints = node.peer_endpoints()
        return PeerList(
            peers=[
                PeerView(
                    address=peer.checksum,
                    endpoint=endpoints.get(peer),
                    connected=node.is_connected(peer),
                    channels=live.get(peer, 0),
                )
                for peer in sorted(set(endpoints) | set(live))
            ]
        )

    return routes.router
