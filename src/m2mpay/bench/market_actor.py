"""A market actor in its own process (`python -m m2mpay.bench.market_actor …`), which the
torture phase `market` SIGKILLs and starts again: a scripted mix of market operations
with its own keys through the chain bindings — approvals, liquidity added and removed,
swaps both ways, a listing with its update and withdrawal, a channel on the hub and a
rating of its session's countersigned receipt by each party, escrows deposited and
claimed with the meter's signed reading or refunded after their deadline.

The script is a function of `--seed`; each operation's arguments are fixed when it is
logged, before it acts (`MarketJournal`), so that a restart carries on where the journal
says, settling what a killed run left half done and never sending an operation twice.
It says `{"step": N}` before each operation and `{"done": N}` at the end, then exits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from m2mpay.bench.lines import say
from m2mpay.bench.market_journal import JournaledOp, MarketJournal, TxFate
from m2mpay.chain.devkeys import dev_keys
from m2mpay.chain.escrow import EscrowTerms, MeteredEscrow
from m2mpay.chain.exchange import Exchange
from m2mpay.chain.hub import NATIVE_TOKEN, ChannelHub, OnchainChannel
from m2mpay.chain.ledger import Receipt
from m2mpay.chain.registry import RatedSession, ServiceRegistry, ServiceTerms
from m2mpay.chain.shared import connect_ledger
from m2mpay.chain.token import TokenContract
from m2mpay.chain.web3_ledger import Web3Ledger
from m2mpay.crypto import Address, PrivateKey, channel_domain
from m2mpay.errors import ReceiptTimeout, TransactionReverted

__all__ = [
    "FIRST_MARKET_KEY",
    "MARKET_ROLES",
    "MarketAddresses",
    "market_keys",
    "market_plan",
]

# Dev accounts of the actor's roles, from this index on (beyond the other phases' keys).
FIRST_MARKET_KEY: Final = 14
MARKET_ROLES: Final = ("provider", "trader", "lister", "buyer", "seller", "meter")
_MAX: Final = 2**256 - 1
_SPENDERS: Final = ("exchange", "escrow", "hub")
PRICE: Final = 10**15  # per unit, of listings and escrows
Plan = list[tuple[str, dict[str, Any]]]


def market_keys() -> dict[str, PrivateKey]:
    keys = dev_keys(FIRST_MARKET_KEY + len(MARKET_ROLES))
    return {role: keys[FIRST_MARKET_KEY + i] for i, role in enumerate(MARKET_ROLES)}


@dataclass(frozen=True, slots=True)
class MarketAddresses:
    token: Address
    hub: Address
    exchange: Address
    registry: Address
    escrow: Address

    def spender(self, name: str) -> Address:
        return {"exchange": self.exchange, "escrow": self.escrow, "hub": self.hub}[name]


def market_plan(seed: int) -> Plan:
    """The operations of one run: the same for the same seed."""
    rng = random.Random(seed)
    unit = 10**18

    def swap() -> tuple[str, dict[str, Any]]:
        token_in = rng.random() < 0.5
        amount = rng.randint(1, 20) * unit // (10 if token_in else 1000)
        return "swap", {"token_in": token_in, "amount": amount}

    def escrow(n: int, claim: bool) -> tuple[str, dict[str, Any]]:
        return "escrow_open", {"n": n, "deposit": rng.randint(10, 100) * PRICE, "claim": claim}

    return [
        *[("approve", {"who": w, "spender": s}) for w, s in _APPROVALS],
        ("add", {"token": rng.randint(100, 200) * unit, "eth": rng.randint(1, 3) * unit // 10}),
        swap(),
        ("list", {"price": rng.randint(1, 9) * PRICE}),
        escrow(0, True),
        swap(),
        ("open_channel", {"deposit": 100 * PRICE, "nonce": rng.getrandbits(64)}),
        escrow(1, False),
        ("update", {"price": rng.randint(10, 19) * PRICE}),
        ("add", {"token": rng.randint(10, 50) * unit, "eth": unit // 100}),
        ("escrow_claim", {"n": 0, "reading": rng.randint(0, 10)}),
        ("rate", {"by": "buyer", "rating": rng.randint(1, 5), "session": rng.getrandbits(64)}),
        ("remove", {"divisor": rng.randint(2, 4)}),
        swap(),
        ("rate", {"by": "seller", "rating": rng.randint(1, 5)}),
        ("escrow_refund", {"n": 1}),
        ("withdraw" if rng.random() < 0.5 else "update", {"price": rng.randint(20, 29) * PRICE}),
        swap(),
    ]


_APPROVALS: Final = (
    ("provider", "exchange"),
    ("trader", "exchange"),
    ("buyer", "escrow"),
    ("buyer", "hub"),
)


def rated_session(args: dict[str, Any]) -> RatedSession:
    return RatedSession(
        int(args["session"]).to_bytes(32, "big"),
        bytes.fromhex(args["channel"]),
        (10, 10 * PRICE, 10 * PRICE),
        (0, 0, 0),
        1_000,
        2_000,
    )


def channel_of(args: dict[str, Any], keys: dict[str, PrivateKey], token: Address) -> OnchainChannel:
    return OnchainChannel(
        keys["buyer"].address, keys["seller"].address, token, 3600, int(args["nonce"]),
        deposit_a=int(args["deposit"]),
    )  # fmt: skip


class MarketActor:
    """Runs a plan against the chain, journaled (see the module's docstring)."""

    def __init__(self, ledger: Web3Ledger, journal: MarketJournal, at: MarketAddresses) -> None:
        self.ledger = ledger
        self.journal = journal
        self.at = at
        self.keys = market_keys()
        self.exchange = Exchange(ledger, at.exchange)
        self.registry = ServiceRegistry(ledger, at.registry)
        self.escrow = MeteredEscrow(ledger, at.escrow)
        self.hub = ChannelHub(ledger, at.hub)
        self.done: dict[str, dict[str, Any]] = {}  # what later steps need of earlier ones
        ledger.before_broadcast = journal.log_tx

    async def run(self, plan: Plan) -> None:
        logged = {op.step: op for op in await self.journal.ops()}
        for step, (name, given) in enumerate(plan):
            say({"step": step})
            op = logged.get(step)
            if op is None:
                args = {**given, **await self._prepare(name, given)}
                await self.journal.intend(step, name, args)
                op = JournaledOp(step, name, args, False, None)
            elif not op.done:
                receipt = await self._settle(step)
                if receipt is not None:
                    await self._finish(op, await self._result_of(op, receipt))
                    continue
            else:
                self._remember(op.name, op.args, op.result or {})
                continue
            self.journal.step = step
            try:
                result = await self._act(op.name, op.args)
            except TransactionReverted as exc:
                result = {"reverted": exc.reason}
            await self._finish(op, result)
        say({"done": len(plan)})

    async def _finish(self, op: JournaledOp, result: dict[str, Any]) -> None:
        await self.journal.finish(op.step, result)
        self._remember(op.name, op.args, result)

    def _remember(self, name: str, args: dict[str, Any], result: dict[str, Any]) -> None:
        if name == "escrow_open":
            self.done[f"escrow{args['n']}"] = args
        elif name in ("list", "open_channel", "rate"):
            self.done[name] = {**args, **result}

    async def _settle(self, step: int) -> Receipt | None:
        """What became of the step's logged transactions: the receipt of the one mined
        (after broadcasting again one the chain never saw), or None if none was."""
        mined = None
        for tx in await self.journal.txs(step):
            receipt = await self._receipt(tx.tx_hash)
            if receipt is None:
                count = await self.ledger.w3.eth.get_transaction_count(tx.sender.checksum)
                if count > tx.nonce:  # the nonce went to another transaction of ours
                    await self.journal.settle_tx(tx.tx_hash, TxFate.VOID)
                    continue
                with contextlib.suppress(Exception):  # known already: no matter
                    await self.ledger.w3.eth.send_raw_transaction(tx.raw)
                receipt = await self.ledger.wait_for_receipt(tx.tx_hash, timeout=30)
            fate = TxFate.SUCCEEDED if receipt.succeeded else TxFate.REVERTED
            await self.journal.settle_tx(tx.tx_hash, fate)
            mined = receipt
        return mined

    async def _receipt(self, tx_hash: bytes) -> Receipt | None:
        try:
            return await self.ledger.wait_for_receipt(tx_hash, timeout=0.0)
        except ReceiptTimeout:
            return None

    async def _result_of(self, op: JournaledOp, receipt: Receipt) -> dict[str, Any]:
        """What a step whose transaction a killed run sent achieved, from the chain."""
        if not receipt.succeeded:
            return {"reverted": "(found after a restart)"}
        if op.name == "list":
            lister = self.keys["lister"].address
            mine = [
                found.listing_id
                for found in await self.registry.listings()
                if found.provider == lister and found.listing_id > op.args["count_before"]
            ]
            return {"listing_id": max(mine), "recovered": True}
        return {"recovered": True}

    # -- the operations

    async def _prepare(self, name: str, given: dict[str, Any]) -> dict[str, Any]:
        """What an operation's transaction will carry, fixed before it is logged."""
        now = await self.ledger.block_timestamp()
        token, provider = self.at.token, self.keys["provider"].address
        if name in ("add", "remove", "swap"):
            extra: dict[str, Any] = {"deadline": now + 3600}
            if name == "remove":
                shares = await self.exchange.shares_of(token, NATIVE_TOKEN, provider)
                extra["shares"] = shares // given["divisor"]
            if name == "swap":
                pair = (token, NATIVE_TOKEN) if given["token_in"] else (NATIVE_TOKEN, token)
                extra["min_out"] = await self.exchange.quote(*pair, given["amount"]) * 98 // 100
            return extra
        if name == "list":
            return {"count_before": await self.registry.listing_count()}
        if name == "escrow_open":
            keys = self.keys
            return {
                "buyer": keys["buyer"].address.checksum,
                "seller": keys["seller"].address.checksum,
                "meter": keys["meter"].address.checksum,
                "token": token.checksum,
                "price": PRICE,
                "deadline": now + (3600 if given["claim"] else 60),
                "nonce": random.getrandbits(64),
            }
        if name == "rate":
            channel = channel_of(self.done["open_channel"], self.keys, token)
            session = given.get("session") or self.done["rate"]["session"]
            return {"channel": channel.id.hex(), "session": session}
        return {}

    async def _act(self, name: str, args: dict[str, Any]) -> dict[str, Any]:
        acts: dict[str, Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]] = {
            "approve": self._approve,
            "add": self._add,
            "remove": self._remove,
            "swap": self._swap,
            "list": self._list,
            "update": self._update,
            "withdraw": self._withdraw,
            "open_channel": self._open_channel,
            "rate": self._rate,
            "escrow_open": self._escrow_open,
            "escrow_claim": self._escrow_claim,
            "escrow_refund": self._escrow_refund,
        }
        return await acts[name](args)

    async def _approve(self, args: dict[str, Any]) -> dict[str, Any]:
        token = TokenContract(self.ledger, self.at.token)
        await token.approve(self.keys[args["who"]], self.at.spender(args["spender"]), _MAX)
        return {}

    async def _add(self, args: dict[str, Any]) -> dict[str, Any]:
        await self.exchange.add(
            self.keys["provider"], self.at.token, NATIVE_TOKEN, args["token"], args["eth"],
            args["deadline"],
        )  # fmt: skip
        return {}

    async def _remove(self, args: dict[str, Any]) -> dict[str, Any]:
        if args["shares"]:
            await self.exchange.remove(
                self.keys["provider"], self.at.token, NATIVE_TOKEN, args["shares"],
                args["deadline"],
            )  # fmt: skip
        return {}

    async def _swap(self, args: dict[str, Any]) -> dict[str, Any]:
        token = self.at.token
        pair = (token, NATIVE_TOKEN) if args["token_in"] else (NATIVE_TOKEN, token)
        await self.exchange.swap(
            self.keys["trader"], *pair, args["amount"], args["min_out"], args["deadline"]
        )
        return {}

    def _terms(self, price: int) -> ServiceTerms:
        return ServiceTerms(0, "kWh", price, self.at.token, "ws://charger.test:8401", "u33db")

    async def _list(self, args: dict[str, Any]) -> dict[str, Any]:
        listing_id, _ = await self.registry.list_service(
            self.keys["lister"], self._terms(args["price"])
        )
        return {"listing_id": listing_id}

    async def _update(self, args: dict[str, Any]) -> dict[str, Any]:
        listing_id = self.done["list"]["listing_id"]
        terms = self._terms(args["price"])
        await self.registry.update_service(self.keys["lister"], listing_id, terms)
        return {"listing_id": listing_id}

    async def _withdraw(self, args: dict[str, Any]) -> dict[str, Any]:
        listing_id = self.done["list"]["listing_id"]
        await self.registry.withdraw_service(self.keys["lister"], listing_id)
        return {"listing_id": listing_id}

    async def _open_channel(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = channel_of(args, self.keys, self.at.token)
        await self.hub.open(self.keys["buyer"], channel)
        return {"channel": channel.id.hex()}

    async def _rate(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = channel_of(self.done["open_channel"], self.keys, self.at.token)
        session = rated_session(args)
        digest = session.digest(channel_domain(self.ledger.chain_id, self.at.hub))
        signature_a = self.keys["buyer"].sign_digest(digest)
        signature_b = self.keys["seller"].sign_digest(digest)
        rater = self.keys[args["by"]]
        await self.registry.rate(rater, session, channel, signature_a, signature_b, args["rating"])
        return {}

    async def _escrow_open(self, args: dict[str, Any]) -> dict[str, Any]:
        terms = EscrowTerms.from_fields(args)
        await self.escrow.deposit(self.keys["buyer"], terms)
        return {"escrow_id": terms.id.hex()}

    async def _escrow_claim(self, args: dict[str, Any]) -> dict[str, Any]:
        terms = EscrowTerms.from_fields(self.done[f"escrow{args['n']}"])
        signature = self.escrow.sign_reading(self.keys["meter"], terms.id, args["reading"])
        await self.escrow.claim(self.keys["seller"], terms, args["reading"], signature)
        return {}

    async def _escrow_refund(self, args: dict[str, Any]) -> dict[str, Any]:
        terms = EscrowTerms.from_fields(self.done[f"escrow{args['n']}"])
        # Moving a dev chain's clock is no transaction: doing it again is harmless.
        now = await self.ledger.block_timestamp()
        if now <= terms.deadline:
            await self.ledger.advance_time(terms.deadline - now + 1)
        await self.escrow.refund(self.keys["buyer"], terms)
        return {}


async def _main(args: argparse.Namespace) -> None:
    ledger = await connect_ledger(data_dir=args.chain_dir)
    assert isinstance(ledger, Web3Ledger)
    journal = MarketJournal(args.journal)
    await journal.open()
    try:
        at = MarketAddresses(*(Address(a) for a in args.addresses.split(",")))
        await MarketActor(ledger, journal, at).run(market_plan(args.seed))
    finally:
        await journal.close()
        await ledger.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chain-dir", type=Path, required=True)
    parser.add_argument("--journal", type=Path, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument(
        "--addresses", required=True, help="token,hub,exchange,registry,escrow (0x-hex)"
    )
    asyncio.run(_main(parser.parse_args(argv)))


if __name__ == "__main__":
    main(sys.argv[1:])
