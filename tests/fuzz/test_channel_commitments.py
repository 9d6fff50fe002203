"""A hostile buyer of the channel scheme: whatever `batch-settlement` payload it sends
(any JSON in any field of a nearly right commitment, any total, any signature), the
seller's check answers a payer and proof or `PaymentRefused` with a reason, never
another exception, and a commitment not signed by the channel's payer is never taken.
The seller's node is a double holding one open channel."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from m2mpay.access.channel_scheme import ChannelScheme
from m2mpay.access.pricing import Per, Purchase
from m2mpay.access.x402_wire import PaymentPayload, PaymentRefused, ResourceInfo
from m2mpay.channel.state import Phase
from m2mpay.crypto import Address, PrivateKey, balance_proof_digest, channel_domain
from m2mpay.errors import ChannelError
from m2mpay.node import ChannelInfo
from tests.fuzz.hostile import FUZZ
from tests.fuzz.test_api_client import json_values, json_values_of

PAYER = PrivateKey.from_hex("0x" + "42" * 32)
SELLER = Address(bytes([0x22]) * 20)
TOKEN = Address(bytes([0x33]) * 20)
HUB = Address(bytes([0x44]) * 20)
CHANNEL = bytes([0x55]) * 32
PRICE = 1000


@dataclass
class _Chain:
    chain_id: int = 1337
    hub: Address = HUB


class _Node:
    address = SELLER
    endpoint = "ws://127.0.0.1:1"
    chain = _Chain()

    def channel(self, channel_id: bytes) -> ChannelInfo:
        if channel_id != CHANNEL:
            raise ChannelError("unknown_channel", "no such channel")
        return ChannelInfo(
            channel_id=CHANNEL, peer=PAYER.address, we_are_a=False, phase=Phase.OPEN,
            asset=TOKEN, challenge_period=60, deposit_mine=0, deposit_peer=10**6,
            balance_mine=2 * PRICE, balance_peer=10**6 - 2 * PRICE, sent_total=0,
            received_total=2 * PRICE, acked_total=0, in_flight=0, payments_sent=0,
            payments_received=2, final_balance_mine=None,
        )  # fmt: skip


SCHEME = ChannelScheme(_Node(), TOKEN)  # type: ignore[arg-type]
OFFERED = SCHEME.requirements(ResourceInfo(url="http://seller/x"), Purchase(PRICE, Per.REQUEST, 1))
TOTAL = 3 * PRICE
GOOD = {
    "channelId": "0x" + CHANNEL.hex(),
    "hub": HUB.checksum,
    "payer": PAYER.address.checksum,
    "total": str(TOTAL),
    "seq": 3,
    "signature": "0x"
    + PAYER.sign_digest(balance_proof_digest(channel_domain(1337, HUB), CHANNEL, TOTAL)).hex(),
}


def _check(payload: Any, accepted: Any = None) -> None:
    try:
        payment = PaymentPayload.model_validate(
            {
                "x402Version": 2,
                "accepted": accepted or OFFERED.model_dump(by_alias=True),
                "payload": payload,
            }
        )
    except ValueError:
        return  # the header's reader refuses what is not of the payload's shape
    refused: PaymentRefused | None = None
    try:
        payer, message = SCHEME.check(payment, OFFERED)
    except PaymentRefused as exc:
        refused = exc
    if refused is not None:
        assert refused.code
        return
    # Taken only when it is the good commitment (or as good: same total, same signer).
    assert payer == PAYER.address
    assert message.total == TOTAL


def test_the_good_commitment_is_taken() -> None:
    _check(GOOD)


@FUZZ
@given(json_values)
def test_any_payload_is_a_commitment_or_refused(value: Any) -> None:
    _check(value)


@FUZZ
@given(
    st.fixed_dictionaries(json_values_of(GOOD)),
    st.fixed_dictionaries(json_values_of(OFFERED.model_dump(by_alias=True))),
)
def test_a_nearly_right_commitment_is_checked_or_refused(
    payload: dict[str, Any], accepted: dict[str, Any]
) -> None:
    _check(payload)
    _check(GOOD, accepted)


@FUZZ
@given(st.integers(0, 2**300), st.integers(-5, 2**70))
def test_any_total_and_seq_is_refused_unless_signed(total: int, seq: int) -> None:
    _check({**GOOD, "total": str(total), "seq": seq})
