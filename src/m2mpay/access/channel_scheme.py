"""x402's `batch-settlement` scheme, bound to m2mpay payment channels (capital-backed).

The commitment is the payer's running total in an open channel with the seller: the
same EIP-712 `BalanceProof(channelId, transferred)` the channels exchange on the wire,
bound to the chain, the hub contract and the channel (`ChannelCommitment`). The seller
holds it against its node's own record of the channel (`verify`: the channel is open
with this payer in the price's asset, the proof is the payer's, its total grows by at
least the price over the newest total the node holds and stays within the payer's
deposit), then hands it to the node's channel engine as if it came over the wire
(`settle`: the machine checks it again, logs it, and the seller serves only once the log
is flushed). There is no second book of totals: the channel state is the storage, its
newest total the double-spend guard (a replay does not grow it), and closing the
channel on chain redeems it. The settlement's commitment id is `0x<channel id>:<total>`.

A 402 lists this scheme first, with where to open a channel when the client has none
(`extra.channelOpen`: the seller's peer endpoint, its address, the hub, the asset and
the least deposit worth opening).
"""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from m2mpay.access.pricing import Purchase
from m2mpay.access.schemes import Verified
from m2mpay.access.x402_wire import (
    Hex32,
    HexAddress,
    IntString,
    PaymentPayload,
    PaymentRefused,
    PaymentRequirements,
    ResourceInfo,
    SettleResponse,
)
from m2mpay.channel.messages import PaymentMessage
from m2mpay.channel.state import Phase
from m2mpay.crypto import Address, Signature, balance_proof_digest, channel_domain
from m2mpay.crypto.signature import recover_signer
from m2mpay.errors import ChannelError, CryptoError
from m2mpay.node import Node

__all__ = [
    "BATCH_SETTLEMENT",
    "BINDING",
    "ChannelCommitment",
    "ChannelCredit",
    "ChannelScheme",
    "commitment_id",
]

BATCH_SETTLEMENT: Final = "batch-settlement"
BINDING: Final = "m2mpay-channel"
_PREFIX: Final = "invalid_batch_settlement_evm_"
STALE: Final = _PREFIX + "stale_commitment"
UNDERPAID: Final = _PREFIX + "underpaid"
UNKNOWN_CHANNEL: Final = _PREFIX + "unknown_channel"
SIGNATURE: Final = _PREFIX + "signature"
RECIPIENT: Final = _PREFIX + "recipient_mismatch"
# What the machine's refusals mean to an x402 client.
_MACHINE_REASONS: Final = {
    "stale_proof": STALE,
    "overdraft": "insufficient_funds",
    "bad_signature": SIGNATURE,
    "unknown_channel": UNKNOWN_CHANNEL,
    "invalid_phase": UNKNOWN_CHANNEL,
    "not_a_party": UNKNOWN_CHANNEL,
}


class ChannelCommitment(BaseModel):
    """The `payload` of a `batch-settlement` payment on an m2mpay channel."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, frozen=True, extra="ignore"
    )

    channel_id: Hex32
    hub: HexAddress
    payer: HexAddress
    total: IntString
    seq: Annotated[int, Field(ge=1, lt=1 << 64)]
    signature: Annotated[str, Field(pattern=r"^0x[0-9a-fA-F]{130}$")]


def commitment_id(channel_id: bytes, total: int) -> str:
    return f"0x{channel_id.hex()}:{total}"


class _Held:
    """What `verify` found, for `settle`: the payer and the proof as a wire message."""

    __slots__ = ("message", "payer")

    def __init__(self, payer: Address, message: PaymentMessage) -> None:
        self.payer = payer
        self.message = message


class ChannelScheme:
    """`batch-settlement` paid in channels with `node` (the seller's node, running)."""

    def __init__(
        self,
        node: Node,
        asset: Address,
        *,
        min_deposit: int | None = None,
        max_timeout_seconds: int = 60,
    ) -> None:
        self._node = node
        self._asset = asset
        # Per channel: what one-off requests settled since this process started, so a
        # metered response counts only the rest of the channel's growth as its own.
        self._one_off: dict[bytes, int] = {}
        self._metering: set[bytes] = set()
        self._min_deposit = min_deposit
        self._timeout = max_timeout_seconds

    @property
    def name(self) -> str:
        return BATCH_SETTLEMENT

    def requirements(self, resource: ResourceInfo, purchase: Purchase) -> PaymentRequirements:
        chain = self._node.chain
        hub = chain.hub.checksum
        # Worth opening: many purchases' worth, so the open's gas is spread thin.
        deposit = self._min_deposit if self._min_deposit is not None else purchase.amount * 100
        return PaymentRequirements(
            scheme=BATCH_SETTLEMENT,
            network=f"eip155:{chain.chain_id}",
            asset=self._asset.checksum,
            amount=str(purchase.amount),
            pay_to=self._node.address.checksum,
            max_timeout_seconds=self._timeout,
            extra={
                "binding": BINDING,
                "hub": hub,
                "channelOpen": {
                    "peer": self._node.address.checksum,
                    "endpoint": self._node.endpoint,
                    "hub": hub,
                    "asset": self._asset.checksum,
                    "minDeposit": str(deposit),
                },
            },
        )

    async def verify(self, payment: PaymentPayload, requirements: PaymentRequirements) -> Verified:
        payer, message = self.check(payment, requirements)
        return Verified(
            payer,
            message.amount,
            requirements,
            payment.resource.url if payment.resource else "",
            _Held(payer, message),
        )

    def check(
        self, payment: PaymentPayload, requirements: PaymentRequirements
    ) -> tuple[Address, PaymentMessage]:
        """The payer and its proof as the wire message the node takes, once they answer
        `requirements` against what the node holds now; refused with x402's reason."""
        chosen = payment.accepted
        if chosen.scheme != BATCH_SETTLEMENT:
            raise PaymentRefused("unsupported_scheme", f"scheme {chosen.scheme!r} was not offered")
        if chosen.network != requirements.network or _address(chosen.asset) != _address(
            requirements.asset
        ):
            raise PaymentRefused("network_mismatch", "another network or asset than offered")
        if _address(chosen.pay_to) != _address(requirements.pay_to):
            raise PaymentRefused(RECIPIENT, "the payment is to another payee")
        try:
            proof = ChannelCommitment.model_validate(payment.payload)
        except ValidationError:
            raise PaymentRefused("invalid_payload", "not a channel commitment") from None
        chain = self._node.chain
        if _address(proof.hub) != chain.hub:
            raise PaymentRefused("network_mismatch", "the proof is for another hub")
        payer, channel = _address(proof.payer), bytes.fromhex(proof.channel_id[2:])
        total = int(proof.total)
        if total >= 1 << 256:
            raise PaymentRefused("invalid_payload", "total: above 2**256")
        try:
            info = self._node.channel(channel)
        except ChannelError:
            raise PaymentRefused(UNKNOWN_CHANNEL, "no such channel with this seller") from None
        if info.peer != payer or info.phase is not Phase.OPEN:
            raise PaymentRefused(UNKNOWN_CHANNEL, "the channel is not open with this payer")
        if info.asset != _address(requirements.asset):
            raise PaymentRefused("network_mismatch", "the channel is in another asset")
        credited = total - info.received_total
        if credited <= 0:
            raise PaymentRefused(STALE, f"the seller holds total {info.received_total} already")
        if credited < int(requirements.amount):
            raise PaymentRefused(
                UNDERPAID, f"the total grows by {credited}, the price is {requirements.amount}"
            )
        if credited > info.balance_peer:
            raise PaymentRefused("insufficient_funds", "the total is above the payer's deposit")
        try:
            signature = Signature(proof.signature)
            digest = balance_proof_digest(channel_domain(chain.chain_id, chain.hub), channel, total)
            signer = recover_signer(digest, signature)
        except CryptoError as exc:
            raise PaymentRefused(SIGNATURE, str(exc)) from None
        if signer != payer:
            raise PaymentRefused(SIGNATURE, "the proof is not signed by the payer")
        message = PaymentMessage(
            channel, chain.chain_id, chain.hub, total, credited, proof.seq, signature
        )
        return payer, message

    async def settle(self, verified: Verified) -> SettleResponse:
        held = verified.proof
        assert isinstance(held, _Held)
        message = held.message
        held_now = self._node.channel(message.channel_id).received_total
        if message.total - held_now < int(verified.requirements.amount):
            raise PaymentRefused(STALE, f"the seller holds total {held_now} already")
        try:
            # Synchronous with the check above: no other commitment slips in between.
            self._node.take_commitment(held.payer, message)
        except ChannelError as exc:
            reason = _MACHINE_REASONS.get(exc.code, "invalid_payload")
            raise PaymentRefused(reason, str(exc)) from None
        await self._node.flushed()  # log, then serve
        self._one_off[message.channel_id] = (
            self._one_off.get(message.channel_id, 0) + message.amount
        )
        return SettleResponse(
            success=True,
            transaction=commitment_id(message.channel_id, message.total),
            network=verified.requirements.network,
            payer=held.payer.checksum,
            amount=str(message.amount),
        )

    def meter(self, verified: Verified) -> ChannelCredit | None:
        """The credit of a response paid as it flows by `verified` (a settled payment):
        the channel's durable growth since, beyond what one-off requests took; one
        metered response per channel at a time (another gets only what it paid)."""
        held = verified.proof
        assert isinstance(held, _Held)
        channel = held.message.channel_id
        if channel in self._metering:
            return None
        # The opening payment was counted as a one-off by settle: it is this meter's.
        self._one_off[channel] = self._one_off.get(channel, 0) - held.message.amount
        self._metering.add(channel)
        return ChannelCredit(self, channel, held.message.amount)


class ChannelCredit:
    """What a metered response holds: its opening payment plus the channel's durable
    growth since that no one-off request took."""

    def __init__(self, scheme: ChannelScheme, channel: bytes, opening: int) -> None:
        self._scheme = scheme
        self._channel = channel
        self._opening = opening
        node = scheme._node
        self._start = node.channel(channel).received_total - scheme._one_off.get(channel, 0)

    async def credit(self) -> int:
        node = self._scheme._node
        try:
            total = node.channel(self._channel).received_total
        except ChannelError:
            return self._opening
        taken = self._scheme._one_off.get(self._channel, 0)
        await node.flushed()  # only what is durable counts: `total` was read before
        return self._opening + max(0, total - taken - self._start)

    def close(self) -> None:
        self._scheme._metering.discard(self._channel)


def _address(text: str) -> Address:
    try:
        return Address(text)
    except CryptoError as exc:
        raise PaymentRefused("invalid_payload", str(exc)) from None
