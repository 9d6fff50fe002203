"""Binding of the ChannelHub contract: typed calls over any `Ledger`."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final

from m2mpay.chain.abi import ContractInterface
from m2mpay.chain.binding import (
    NATIVE_TOKEN,
    AbiStruct,
    ContractBinding,
    deploy_binding,
    signature_abi,
)
from m2mpay.chain.events import HubEvent, decode_hub_event
from m2mpay.chain.ledger import BlockTag, Ledger, Receipt
from m2mpay.crypto import (
    Address,
    Eip712Domain,
    PrivateKey,
    Signature,
    balance_proof_digest,
    channel_domain,
    channel_id,
    settlement_digest,
)
from m2mpay.errors import ContractError

__all__ = [
    "HUB_GAS",
    "NATIVE_TOKEN",
    "ChannelHub",
    "Closing",
    "OnchainChannel",
    "deploy_hub",
]

SETTLED_MARKER: Final = (1).to_bytes(32, "big")

# Explicit gas limits, about 1.5x what each call measures (see `m2mpay bench gas`),
# so no transaction pays a round trip for estimation.
HUB_GAS: Final = {
    "deploy": 3_000_000,
    "open": 150_000,
    "open_with_permit": 200_000,
    "deposit": 100_000,
    "deposit_with_permit": 160_000,
    "cooperative_close": 160_000,
    "close": 80_000,
    "challenge": 80_000,
    "settle": 160_000,
    "withdraw": 100_000,
}


@dataclass(frozen=True, slots=True)
class OnchainChannel(AbiStruct):
    """The parameters and deposits a channel has on chain (its storage pre-image)."""

    a: Address
    b: Address
    token: Address
    challenge_period: int
    nonce: int
    deposit_a: int = 0
    deposit_b: int = 0

    @property
    def id(self) -> bytes:
        return channel_id(self.a, self.b, self.token, self.challenge_period, self.nonce)

    @property
    def total_deposit(self) -> int:
        return self.deposit_a + self.deposit_b

    def is_party(self, address: Address) -> bool:
        return address in (self.a, self.b)

    def with_deposit(self, participant: Address, amount: int) -> OnchainChannel:
        if participant == self.a:
            return replace(self, deposit_a=self.deposit_a + amount)
        if participant == self.b:
            return replace(self, deposit_b=self.deposit_b + amount)
        raise ContractError(f"{participant} is not a party of the channel")

    def split(self, closing: Closing) -> tuple[int, int]:
        """What settling with `closing` pays (a, b), exactly as the contract computes it.

        A party cannot pay more than it holds: totals beyond that are clamped.
        """
        if closing.transferred_b >= closing.transferred_a:
            balance_a = self.deposit_a + min(
                closing.transferred_b - closing.transferred_a, self.deposit_b
            )
        else:
            balance_a = self.deposit_a - min(
                closing.transferred_a - closing.transferred_b, self.deposit_a
            )
        return balance_a, self.total_deposit - balance_a


@dataclass(frozen=True, slots=True)
class Closing(AbiStruct):
    """A unilateral close in progress: the deadline and both parties' paid totals."""

    deadline: int
    transferred_a: int
    transferred_b: int


class ChannelHub(ContractBinding):
    """Typed access to one deployed ChannelHub."""

    ARTIFACT = "ChannelHub"
    GAS = HUB_GAS

    def __init__(self, ledger: Ledger, address: Address) -> None:
        super().__init__(ledger, address)
        self._domain: Eip712Domain | None = None

    @property
    def interface(self) -> ContractInterface:
        """The ABI, for callers that build a call by hand."""
        return self._abi

    @property
    def domain(self) -> Eip712Domain:
        """The EIP-712 domain every balance proof and settlement of this hub is bound to."""
        if self._domain is None:
            self._domain = channel_domain(self.ledger.chain_id, self.address)
        return self._domain

    # -- signing helpers (pure)

    def sign_balance_proof(self, key: PrivateKey, channel: bytes, transferred: int) -> Signature:
        return key.sign_digest(balance_proof_digest(self.domain, channel, transferred))

    def sign_settlement(
        self, key: PrivateKey, channel: bytes, balance_a: int, balance_b: int
    ) -> Signature:
        return key.sign_digest(settlement_digest(self.domain, channel, balance_a, balance_b))

    # -- reads

    async def state_hash(self, channel: bytes) -> bytes:
        """The stored word: zero for unknown, SETTLED_MARKER once paid out."""
        return bytes(await self._output("channels", channel))

    async def is_settled(self, channel: bytes) -> bool:
        return await self.state_hash(channel) == SETTLED_MARKER

    async def expected_state_hash(
        self, channel: OnchainChannel, closing: Closing | None = None
    ) -> bytes:
        closing = closing or Closing(0, 0, 0)
        return bytes(await self._output("state_hash", channel.as_abi(), closing.as_abi()))

    async def domain_separator(self) -> bytes:
        return bytes(await self._output("domain_separator"))

    async def contract_channel_id(self, channel: OnchainChannel) -> bytes:
        return bytes(await self._output("channel_id", channel.as_abi()))

    async def deferred(self, token: Address, recipient: Address) -> int:
        return int(await self._output("deferred", token, recipient))

    async def events(self, from_block: int, to_block: BlockTag = "latest") -> list[HubEvent]:
        logs = await self.ledger.get_logs(
            address=self.address, from_block=from_block, to_block=to_block
        )
        return [event for log in logs if (event := decode_hub_event(log)) is not None]

    # -- transactions

    async def open(
        self,
        funder: PrivateKey,
        channel: OnchainChannel,
        *,
        permit: Signature | None = None,
        permit_deadline: int = 0,
    ) -> Receipt:
        """Open `channel` with `channel.deposit_a` paid by `funder`."""
        return await self._pay_in(
            funder,
            "open",
            (channel.as_abi(),),
            token=channel.token,
            amount=channel.deposit_a,
            permit=permit,
            permit_deadline=permit_deadline,
        )

    async def deposit(
        self,
        funder: PrivateKey,
        channel: OnchainChannel,
        participant: Address,
        amount: int,
        *,
        permit: Signature | None = None,
        permit_deadline: int = 0,
    ) -> Receipt:
        """Add `amount` from `funder` to `participant`'s deposit; `channel` is the current state."""
        args = (channel.as_abi(), participant, amount)
        return await self._pay_in(
            funder,
            "deposit",
            args,
            token=channel.token,
            amount=amount,
            permit=permit,
            permit_deadline=permit_deadline,
        )

    async def cooperative_close(
        self,
        sender: PrivateKey,
        channel: OnchainChannel,
        balance_a: int,
        balance_b: int,
        signature_a: Signature,
        signature_b: Signature,
    ) -> Receipt:
        return await self._transact(
            sender,
            "cooperative_close",
            channel.as_abi(),
            balance_a,
            balance_b,
            signature_abi(signature_a),
            signature_abi(signature_b),
        )

    async def close(
        self,
        closer: PrivateKey,
        channel: OnchainChannel,
        transferred_a: int,
        transferred_b: int,
        peer_proof: Signature | None,
    ) -> Receipt:
        """Unilateral close by a party: its own total, and the peer's newest signed total."""
        return await self._transact(
            closer,
            "close",
            channel.as_abi(),
            transferred_a,
            transferred_b,
            signature_abi(peer_proof),
        )

    async def challenge(
        self,
        sender: PrivateKey,
        channel: OnchainChannel,
        closing: Closing,
        participant: Address,
        transferred: int,
        proof: Signature,
    ) -> Receipt:
        """Raise `participant`'s total to `transferred`, which it signed; anyone may send it."""
        return await self._transact(
            sender,
            "challenge",
            channel.as_abi(),
            closing.as_abi(),
            participant,
            transferred,
            signature_abi(proof),
        )

    async def settle(
        self, sender: PrivateKey, channel: OnchainChannel, closing: Closing
    ) -> Receipt:
        return await self._transact(sender, "settle", channel.as_abi(), closing.as_abi())

    async def withdraw(self, sender: PrivateKey, token: Address, receiver: Address) -> Receipt:
        return await self._transact(sender, "withdraw", token, receiver)


async def deploy_hub(ledger: Ledger, deployer: PrivateKey) -> tuple[ChannelHub, Receipt]:
    return await deploy_binding(ChannelHub, ledger, deployer, gas=HUB_GAS["deploy"])
