"""Binding of the MeteredEscrow contract: a buyer's deposit released by a meter's signed reading."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from m2mpay.chain.abi import DecodedEvent
from m2mpay.chain.binding import AbiStruct, ContractBinding, deploy_binding, signature_abi
from m2mpay.chain.hub import NATIVE_TOKEN
from m2mpay.chain.ledger import BlockTag, Ledger, Receipt
from m2mpay.chain.token import TokenContract
from m2mpay.crypto import Address, Eip712Domain, PrivateKey, Signature, keccak256
from m2mpay.crypto.eip712 import (
    PROTOCOL_NAME,
    PROTOCOL_VERSION,
    meter_reading_digest,
    uint256_word,
)
from m2mpay.errors import TransactionReverted

__all__ = [
    "ESCROW_GAS",
    "EscrowOutcome",
    "EscrowState",
    "EscrowTerms",
    "MeteredEscrow",
    "deploy_escrow",
    "sign_reading",
]

# Explicit gas limits, about 1.5x what each call measures (see `m2mpay bench gas`),
# so no transaction pays a round trip for estimation.
ESCROW_GAS: Final = {
    "deploy": 2_000_000,
    "deposit": 150_000,
    "deposit_with_permit": 170_000,
    "claim": 110_000,
    "refund": 80_000,
    "withdraw": 80_000,
}

# A permit signed for a deposit is spent in the same call; an hour covers a slow chain.
_PERMIT_LIFETIME_S: Final = 3600


class EscrowState(enum.IntEnum):
    """The word the contract keeps for an escrow id."""

    UNKNOWN = 0
    OPEN = 1
    CLAIMED = 2
    REFUNDED = 3


@dataclass(frozen=True, slots=True)
class EscrowTerms(AbiStruct):
    """An escrow's terms as the contract hashes them into its id (its storage pre-image)."""

    buyer: Address
    seller: Address
    meter: Address
    token: Address  # NATIVE_TOKEN for ETH
    price: int  # per unit
    deposit: int  # the most the buyer pays
    deadline: int  # chain time (s): claims until then, refunds after
    nonce: int

    @property
    def id(self) -> bytes:
        """keccak256(abi.encode(terms)), as the contract computes it."""
        return keccak256(
            b"".join(bytes(12) + a for a in (self.buyer, self.seller, self.meter, self.token))
            + b"".join(
                uint256_word(v) for v in (self.price, self.deposit, self.deadline, self.nonce)
            )
        )

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any]) -> EscrowTerms:
        """From the contract's event arguments (or a record of them) by name."""
        return cls(
            buyer=Address(fields["buyer"]),
            seller=Address(fields["seller"]),
            meter=Address(fields["meter"]),
            token=Address(fields["token"]),
            price=int(fields["price"]),
            deposit=int(fields["deposit"]),
            deadline=int(fields["deadline"]),
            nonce=int(fields["nonce"]),
        )

    @property
    def max_reading(self) -> int:
        """The largest reading a claim may carry: what the deposit pays for."""
        return self.deposit // self.price if self.price else 0

    def split(self, reading: int) -> tuple[int, int]:
        """What a claim with `reading` pays (seller, buyer), exactly as the contract does."""
        paid = reading * self.price
        return paid, self.deposit - paid


@dataclass(frozen=True, slots=True)
class EscrowOutcome:
    """How an escrow ended, as its event says: claimed with a reading, or refunded."""

    state: EscrowState  # CLAIMED or REFUNDED
    reading: int | None  # None for a refund
    paid: int  # to the seller
    refunded: int  # to the buyer
    tx_hash: bytes
    block_number: int


def _topic(address: Address) -> bytes:
    return bytes(12) + bytes(address)


def sign_reading(meter: PrivateKey, domain: Eip712Domain, escrow: bytes, reading: int) -> Signature:
    """The meter's EIP-712 signature over its final `reading` for escrow id `escrow`."""
    return meter.sign_digest(meter_reading_digest(domain, escrow, reading))


class MeteredEscrow(ContractBinding):
    """Typed access to one deployed MeteredEscrow."""

    ARTIFACT = "MeteredEscrow"
    GAS = ESCROW_GAS

    @property
    def domain(self) -> Eip712Domain:
        """The EIP-712 domain every meter reading for this contract is signed in."""
        return Eip712Domain(PROTOCOL_NAME, PROTOCOL_VERSION, self.ledger.chain_id, self.address)

    def sign_reading(self, meter: PrivateKey, escrow: bytes, reading: int) -> Signature:
        return sign_reading(meter, self.domain, escrow, reading)

    # -- reads

    async def state(self, escrow: bytes, *, block: BlockTag = "latest") -> EscrowState:
        return EscrowState(int(await self._output("escrows", escrow, block=block)))

    async def contract_escrow_id(self, terms: EscrowTerms) -> bytes:
        return bytes(await self._output("escrow_id", terms.as_abi()))

    async def domain_separator(self) -> bytes:
        return bytes(await self._output("domain_separator"))

    async def deferred(self, token: Address, recipient: Address) -> int:
        return int(await self._output("deferred", token, recipient))

    async def opened(
        self,
        *,
        buyer: Address | None = None,
        seller: Address | None = None,
        escrow: bytes | None = None,
        from_block: int = 0,
    ) -> list[EscrowTerms]:
        """The escrows opened (by `buyer`, for `seller`, or the one `escrow`), oldest
        first, with their terms as the `EscrowOpened` events carry them: storage holds
        only each escrow's state."""
        topics: list[bytes | None] = [
            self._abi.event_topic("EscrowOpened"),
            escrow,
            None if buyer is None else _topic(buyer),
            None if seller is None else _topic(seller),
        ]
        logs = await self.ledger.get_logs(
            address=self.address, from_block=from_block, topics=topics
        )
        found: list[EscrowTerms] = []
        for log in logs:
            event = self._abi.decode_event(log)
            if event is None or event.name != "EscrowOpened":
                continue
            found.append(EscrowTerms.from_fields(event.args))
        return found

    async def outcome(self, escrow: bytes, *, from_block: int = 0) -> EscrowOutcome | None:
        """How `escrow` ended; None while it is open (or unknown)."""
        for name in ("EscrowClaimed", "EscrowRefunded"):
            logs = await self.ledger.get_logs(
                address=self.address,
                from_block=from_block,
                topics=[self._abi.event_topic(name), escrow],
            )
            for log in logs:
                event = self._abi.decode_event(log)
                if event is None:
                    continue
                args = event.args
                if event.name == "EscrowClaimed":
                    return EscrowOutcome(
                        EscrowState.CLAIMED,
                        int(args["reading"]),
                        int(args["paid"]),
                        int(args["refunded"]),
                        log.tx_hash,
                        log.block_number,
                    )
                return EscrowOutcome(
                    EscrowState.REFUNDED,
                    None,
                    0,
                    int(args["amount"]),
                    log.tx_hash,
                    log.block_number,
                )
        return None

    async def events(self, from_block: int = 0) -> list[DecodedEvent]:
        """Every escrow opened, claimed or refunded (and payout deferred) from `from_block`
        on, in chain order."""
        logs = await self.ledger.get_logs(address=self.address, from_block=from_block)
        return [event for log in logs if (event := self._abi.decode_event(log)) is not None]

    def events_of(self, receipt: Receipt) -> list[DecodedEvent]:
        """The events this contract logged in `receipt` (EscrowOpened, EscrowClaimed, …)."""
        return [
            event
            for log in receipt.logs
            if log.address == self.address and (event := self._abi.decode_event(log)) is not None
        ]

    # -- transactions

    async def deposit(
        self,
        buyer: PrivateKey,
        terms: EscrowTerms,
        *,
        permit: Signature | None = None,
        permit_deadline: int = 0,
    ) -> Receipt:
        """Open the escrow `terms` with `terms.deposit` paid by `buyer`: as ETH, from an
        approved token allowance, or with a permit."""
        return await self._pay_in(
            buyer,
            "deposit",
            (terms.as_abi(),),
            token=terms.token,
            amount=terms.deposit,
            permit=permit,
            permit_deadline=permit_deadline,
        )

    async def open(self, buyer: PrivateKey, terms: EscrowTerms) -> Receipt:
        """Open `terms`, paying its deposit the simplest way the token allows: ETH as the
        value, a permit token in one transaction, any other ERC-20 after an approve."""
        if terms.token == NATIVE_TOKEN:
            return await self.deposit(buyer, terms)
        token = TokenContract(self.ledger, terms.token)
        deadline = await self.ledger.block_timestamp() + _PERMIT_LIFETIME_S
        try:
            permit = await token.sign_permit(buyer, self.address, terms.deposit, deadline)
        except TransactionReverted:  # no `nonces`/`name`: not a permit token
            await token.approve(buyer, self.address, terms.deposit)
            return await self.deposit(buyer, terms)
        return await self.deposit(buyer, terms, permit=permit, permit_deadline=deadline)

    async def claim(
        self, sender: PrivateKey, terms: EscrowTerms, reading: int, signature: Signature
    ) -> Receipt:
        """Pay the seller `reading` x price and refund the rest; anyone may send it."""
        return await self._transact(
            sender, "claim", terms.as_abi(), reading, signature_abi(signature)
        )

    async def refund(self, sender: PrivateKey, terms: EscrowTerms) -> Receipt:
        """After the deadline with no claim, return the deposit to the buyer."""
        return await self._transact(sender, "refund", terms.as_abi())

    async def withdraw(self, recipient: PrivateKey, token: Address, receiver: Address) -> Receipt:
        """Take a payout the contract could not push to `recipient`, sent to `receiver`."""
        return await self._transact(recipient, "withdraw", token, receiver)


async def deploy_escrow(ledger: Ledger, deployer: PrivateKey) -> tuple[MeteredEscrow, Receipt]:
    return await deploy_binding(MeteredEscrow, ledger, deployer, gas=ESCROW_GAS["deploy"])
