"""What the market phase observes after its actor finished: the actor's journal read back,
and the truth from the chain — nonces, receipts, the exchange's events and balances, the
registry's ratings and listing, the escrows' states and events, the token's supply."""

from __future__ import annotations

import contextlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from m2mpay.bench.market_actor import market_keys
from m2mpay.bench.market_journal import JournaledOp, MarketJournal
from m2mpay.chain.escrow import EscrowState, EscrowTerms, MeteredEscrow
from m2mpay.chain.exchange import Exchange
from m2mpay.chain.hub import NATIVE_TOKEN
from m2mpay.chain.ledger import Receipt
from m2mpay.chain.market_events import LiquidityAdded, LiquidityRemoved, PoolCreated, Swapped
from m2mpay.chain.registry import ServiceRegistry
from m2mpay.chain.web3_ledger import Web3Ledger
from m2mpay.crypto import Address
from m2mpay.errors import ReceiptTimeout
from m2mpay.torture.phase import Facts
from m2mpay.torture.world import World

__all__ = ["MarketSnapshot", "market_facts", "snapshot"]

_LOCKED_SHARES = 1000  # the first shares of every pool, locked for ever (Exchange.vy)


@dataclass(frozen=True, slots=True)
class MarketSnapshot:
    nonces: int  # of the actor's keys, summed
    supply: int
    held: int  # tokens of the actor's keys, the exchange, the escrow and the hub


def _holders(world: World) -> list[Address]:
    market = world.market
    assert market is not None
    keys = [key.address for key in market_keys().values()]
    return [*keys, market.exchange, market.escrow, world.hub.address]


async def snapshot(world: World) -> MarketSnapshot:
    ledger = world.ledger
    assert isinstance(ledger, Web3Ledger)
    nonces = 0
    for key in market_keys().values():
        nonces += int(await ledger.w3.eth.get_transaction_count(key.address.checksum))
    held = 0
    for holder in _holders(world):
        held += await world.token.balance_of(holder)
    return MarketSnapshot(nonces, await world.token.total_supply(), held)


async def market_facts(world: World, before: MarketSnapshot, journal_path: str) -> Facts:
    journal = MarketJournal(Path(journal_path))
    await journal.open()
    try:
        ops, txs = await journal.ops(), await journal.txs()
    finally:
        await journal.close()
    after = await snapshot(world)
    mined: Counter[int] = Counter()
    reverted = 0
    for tx in txs:
        receipt = await _receipt(world, tx.tx_hash)
        if receipt is not None:
            mined[tx.step] += 1
            reverted += not receipt.succeeded
    facts: Facts = {
        "ops_done": sum(op.done for op in ops),
        # Finished from a transaction a killed run had sent: recovered, not sent again.
        "recovered": sum(bool((op.result or {}).get("recovered")) for op in ops),
        "txs_mined": sum(mined.values()),
        "ops_twice": sum(1 for count in mined.values() if count > 1),
        "txs_reverted": reverted,
        "nonces_used": after.nonces - before.nonces,
        "supply_moved": after.supply - before.supply,
        "tokens_moved": after.held - before.held,
    }
    facts |= await _exchange_facts(world)
    facts |= await _registry_facts(world, ops)
    return facts | await _escrow_facts(world, ops)


async def _receipt(world: World, tx_hash: bytes) -> Receipt | None:
    with contextlib.suppress(ReceiptTimeout):
        return await world.ledger.wait_for_receipt(tx_hash, timeout=0.0)
    return None


async def _exchange_facts(world: World) -> Facts:
    market = world.market
    assert market is not None
    exchange = Exchange(world.ledger, market.exchange)
    token = world.token.address
    provider = market_keys()["provider"].address
    reserve_token, reserve_eth, _ = await exchange.reserves(token, NATIVE_TOKEN)
    gap = abs(reserve_token - await world.token.balance_of(exchange.address))
    gap += abs(reserve_eth - await world.ledger.balance(exchange.address))
    state: dict[bytes, tuple[int, int, int]] = {}  # pool → reserves and total shares
    k_fell = over_shares = 0
    minted = burned = 0
    for event in await exchange.events():
        if isinstance(event, PoolCreated):
            state[event.pool] = (0, 0, 0)
            continue
        assert isinstance(event, Swapped | LiquidityAdded | LiquidityRemoved)
        r0, r1, total = state[event.pool]
        n0, n1 = event.reserve0, event.reserve1
        if isinstance(event, Swapped):
            k_fell += n0 * n1 < r0 * r1
            state[event.pool] = (n0, n1, total)
            continue
        if isinstance(event, LiquidityAdded):
            new_total = total + event.shares + (_LOCKED_SHARES if total == 0 else 0)
            minted += event.shares if event.provider == provider else 0
        else:
            new_total = total - event.shares
            burned += event.shares if event.provider == provider else 0
            over_shares += (
                event.amount0 * total > event.shares * r0
                or event.amount1 * total > event.shares * r1
            )
        # What a share is worth (sqrt(k) / shares) never falls across liquidity changes.
        if total and new_total:
            k_fell += n0 * n1 * total * total < r0 * r1 * new_total * new_total
        state[event.pool] = (n0, n1, new_total)
    held = await exchange.shares_of(token, NATIVE_TOKEN, provider)
    return {
        "reserve_gap": gap,
        "k_fell": k_fell,
        "over_shares": over_shares,
        "shares_gap": abs(held - (minted - burned)),
    }


def _done(ops: list[JournaledOp], *names: str) -> list[JournaledOp]:
    return [
        op for op in ops if op.name in names and op.done and "reverted" not in (op.result or {})
    ]


async def _registry_facts(world: World, ops: list[JournaledOp]) -> Facts:
    market = world.market
    assert market is not None
    registry = ServiceRegistry(world.ledger, market.registry)
    keys = market_keys()
    ratings: Counter[tuple[Any, ...]] = Counter()
    for event in await registry.events():
        if event.name == "Rated":
            args = event.args
            ratings[(bytes(args["channel_id"]), bytes(args["session_id"]), args["rater"])] += 1
    missing = 0
    for op in _done(ops, "rate"):
        channel = bytes.fromhex(op.args["channel"])
        session = int(op.args["session"]).to_bytes(32, "big")
        missing += not await registry.has_rated(channel, session, keys[op.args["by"]].address)
    wrong = 0
    listed = _done(ops, "list")
    if listed:
        listing_id = int((listed[0].result or {})["listing_id"])
        last = _done(ops, "list", "update", "withdraw")[-1]
        now = await registry.listing(listing_id)
        if last.name == "withdraw":
            wrong = int(now is not None)
        else:
            wrong = int(
                now is None
                or now.provider != keys["lister"].address
                or now.terms.price != int(last.args["price"])
            )
    return {
        "double_ratings": sum(count - 1 for count in ratings.values()),
        "ratings_missing": missing,
        "listing_wrong": wrong,
    }


async def _escrow_facts(world: World, ops: list[JournaledOp]) -> Facts:
    market = world.market
    assert market is not None
    escrow = MeteredEscrow(world.ledger, market.escrow)
    readings = {op.args["n"]: int(op.args["reading"]) for op in _done(ops, "escrow_claim")}
    wrong = 0
    for op in _done(ops, "escrow_open"):
        terms = EscrowTerms.from_fields(op.args)
        state = await escrow.state(terms.id)
        outcome = await escrow.outcome(terms.id)
        if op.args["claim"]:
            reading = readings.get(op.args["n"])
            ok = (
                state == EscrowState.CLAIMED
                and outcome is not None
                and reading is not None
                and (outcome.paid, outcome.refunded) == terms.split(reading)
            )
        else:
            ok = state == EscrowState.REFUNDED and outcome is not None
            ok = ok and outcome is not None and outcome.refunded == terms.deposit
        wrong += not ok
    ended: Counter[bytes] = Counter()
    held = 0
    for event in await escrow.events():
        args = event.args
        if event.name == "EscrowOpened":
            held += int(args["deposit"])
        elif event.name == "EscrowClaimed":
            ended[bytes(args["escrow_id"])] += 1
            held -= int(args["paid"]) + int(args["refunded"])
        elif event.name == "EscrowRefunded":
            ended[bytes(args["escrow_id"])] += 1
            held -= int(args["amount"])
    return {
        "escrow_wrong": wrong,
        "escrow_both": sum(1 for count in ended.values() if count > 1),
        "escrow_held_gap": abs(await world.token.balance_of(escrow.address) - held),
    }
