"""Binding of the ChannelHub contract: typed calls over any `Ledger`."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Final

from m2mpay.chain.abi import ContractInterface
from m2mpay.chain.binding import ContractBinding, deploy_binding
from m2mpay.chain.events import HubEvent, decode_hub_event
from m2mpay.chain.ledger import BlockTag, Ledger, Receipt
from m2mpay.crypto import (
    ZERO_ADDRESS,
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

NATIVE_TOKEN: Final = ZERO_ADDRESS
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

_NO_SIGNATURE: Final = (bytes(32), bytes(32), 0)


def _signature_tuple(signature: Signature | None) -> tuple[bytes, bytes, int]:
    if signature is None:
        return _NO_SIGNATURE
    return (signature.r, signature.s, signature.v)


@dataclass(frozen=True, slots=True)
class OnchainChannel:
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

    def as_abi(self) -> tuple[Any, ...]:
        return (
            self.a,
            self.b,
            self.token,
            self.challenge_period,
            self.nonce,
            self.deposit_a,
            self.deposit_b,
        )


@dataclass(frozen=True, slots=True)
class Closing:
    """A unilateral close in progress: the deadline and both parties' paid totals."""

    deadline: int
    transferred_a: int
    transferred_b: int

    def as_abi(self) -> tuple[int, int, int]:
        return (self.deadline, self.transferred_a, self.transferred_b)


class ChannelHub(ContractBinding):
    """Typed access to one deployed ChannelHub."""

    ARTIFACT = "ChannelHub"

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

    async def _view(self, name: str, *args: Any, block: BlockTag = "latest") -> tuple[Any, ...]:
        data = await self.ledger.call(self.address, self._abi.encode_call(name, *args), block=block)
        return self._abi.decode_output(name, data)

    async def state_hash(self, channel: bytes) -> bytes:
        """The stored word: zero for unknown, SETTLED_MARKER once paid out."""
        return bytes((await self._view("channels", channel))[0])

    async def is_settled(self, channel: bytes) -> bool:
        return await self.state_hash(channel) == SETTLED_MARKER

    async def expected_state_hash(
        self, channel: OnchainChannel, closing: Closing | None = None
    ) -> bytes:
        closing = closing or Closing(0, 0, 0)
        return bytes((await self._view("state_hash", channel.as_abi(), closing.as_abi()))[0])

    async def domain_separator(self) -> bytes:
        return bytes((await self._view("domain_separator"))[0])

    async def contract_channel_id(self, channel: OnchainChannel) -> bytes:
        return bytes((await self._view("channel_id", channel.as_abi()))[0])

    async def deferred(self, token: Address, recipient: Address) -> int:
        return int((await self._view("deferred", token, recipient))[0])

    async def events(self, from_block: int, to_block: BlockTag = "latest") -> list[HubEvent]:
        logs = await self.ledger.get_logs(
            address=self.address, from_block=from_block, to_block=to_block
        )
        return [event for log in logs if (event := decode_hub_event(log)) is not None]

    # -- transactions

    async def _transact(self, signer: PrivateKey, name: str, *args: Any, value: int = 0) -> Receipt:
        return await self.ledger.transact(
            signer,
            self.address,
            self._abi.encode_call(name, *args),
            gas=HUB_GAS[name],
            value=value,
        )

    async def open(
        self,
        funder: PrivateKey,
        channel: OnchainChannel,
        *,
        permit: Signature | None = None,
        permit_deadline: int = 0,
    ) -> Receipt:
        """Open `channel` with `channel.deposit_a` paid by `funder`."""
        return await self._fund(
            funder, "open", channel, (channel.as_abi(),), channel.deposit_a, permit, permit_deadline
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
        return await self._fund(funder, "deposit", channel, args, amount, permit, permit_deadline)

    async def _fund(
        self,
        funder: PrivateKey,
        name: str,
        channel: OnchainChannel,
        args: tuple[Any, ...],
        amount: int,
        permit: Signature | None,
        permit_deadline: int,
    ) -> Receipt:
        """Call `name` (or `name_with_permit`) paying in `amount`: as ETH, from an
        approved token allowance, or with a permit."""
        if permit is not None:
            return await self._transact(
                funder, f"{name}_with_permit", *args, permit_deadline, _signature_tuple(permit)
            )
        value = amount if channel.token == NATIVE_TOKEN else 0
        return await self._transact(funder, name, *args, value=value)

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
            _signature_tuple(signature_a),
            _signature_tuple(signature_b),
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
            _signature_tuple(peer_proof),
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
            _signature_tuple(proof),
        )

    async def settle(
        self, sender: PrivateKey, channel: OnchainChannel, closing: Closing
    ) -> Receipt:
        return await self._transact(sender, "settle", channel.as_abi(), closing.as_abi())

    async def withdraw(self, sender: PrivateKey, token: Address, receiver: Address) -> Receipt:
        return await self._transact(sender, "withdraw", token, receiver)


async def deploy_hub(ledger: Ledger, deployer: PrivateKey) -> tuple[ChannelHub, Receipt]:
    return await deploy_binding(ChannelHub, ledger, deployer, gas=HUB_GAS["deploy"])
