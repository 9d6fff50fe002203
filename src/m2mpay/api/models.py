"""The node API's request and response bodies (pydantic), which are also its OpenAPI schema.

Amounts are integer strings in the asset's smallest unit; addresses and ids are
0x-hex. Requests forbid unknown fields, so a typo is a 422 naming the field, not
a silently ignored option.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from fastapi import Path as PathParam
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool

from m2mpay.api import examples as ex
from m2mpay.api.examples import example
from m2mpay.crypto import UINT256_MAX

__all__ = [
    "ADDRESS",
    "AMOUNT",
    "HEX32",
    "Address",
    "Amount",
    "BalanceView",
    "ChannelList",
    "ChannelOpen",
    "ChannelView",
    "ContractsView",
    "Count",
    "Endpoint",
    "ErrorBody",
    "ErrorDetail",
    "FaucetRequest",
    "FlowView",
    "Hex32",
    "Hex32Path",
    "InfoView",
    "OfferCreate",
    "OfferList",
    "OfferView",
    "PaymentMade",
    "PaymentRequest",
    "PositiveAmount",
    "PriceSignal",
    "ReceiptView",
    "SessionList",
    "SessionReverse",
    "SessionStart",
    "SessionStop",
    "SessionView",
    "TransferRequest",
    "TransferView",
    "WalletView",
]

UINT64_MAX: Final = 2**64 - 1


def _uint256(value: str) -> str:
    # 78 digits pass the pattern; 2^256 and above fit no contract and no signed state.
    if int(value) > UINT256_MAX:
        raise ValueError("must be at most 2^256 - 1")
    return value


AMOUNT = r"^(0|[1-9][0-9]{0,77})$"
Amount = Annotated[
    str,
    Field(pattern=AMOUNT, description="Integer in the smallest unit, at most 2^256 - 1."),
    AfterValidator(_uint256),
]
PositiveAmount = Annotated[
    str,
    Field(pattern=r"^[1-9][0-9]{0,77}$", description="Positive integer, smallest unit, < 2^256."),
    AfterValidator(_uint256),
]
Count = Annotated[int, Field(ge=0, le=UINT64_MAX)]
ADDRESS: Final = r"^0[xX][0-9a-fA-F]{40}$"
Address = Annotated[
    str,
    Field(
        pattern=ADDRESS,
        # Mixed case must be the EIP-55 checksum (a typo is refused), which no pattern
        # can say; the format names the rule for clients and test generators.
        json_schema_extra={"format": "eip55-address"},
        description="0x and 40 hex digits: all lower case, or EIP-55 checksummed.",
    ),
]
HEX32: Final = r"^0[xX][0-9a-fA-F]{64}$"
Hex32 = Annotated[str, Field(pattern=HEX32)]
Endpoint = Annotated[
    str,
    Field(
        pattern=r"^(wss?|mqtts?)://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?(/[!-~]*)?$",
        max_length=400,
        description="A node's wire endpoint: ws://host:port (or mqtt://broker/…).",
    ),
]
Hex32Path = Annotated[str, PathParam(pattern=HEX32, description="0x and 64 hex digits.")]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable reason, e.g. `insufficient_funds`.")
    message: str
    field: str | None = Field(None, description="The offending input field, when one is at fault.")


class ErrorBody(BaseModel):
    model_config = example(ex.ERROR)
    error: ErrorDetail


# -- node and wallet


class ContractsView(BaseModel):
    hub: Address
    token: Address
    token_symbol: str
    token_decimals: int = Field(
        ge=0,
        le=255,
        description="Decimal places of the token: amounts are integers in its smallest unit, "
        "10^token_decimals of which make one token.",
    )
    anchor: Address | None = Field(
        default=None, description="The TelemetryAnchor that anchors telemetry and stream heads."
    )
    token_factory: Address | None = Field(
        default=None, description="The factory anyone creates a named token with."
    )
    exchange: Address | None = Field(default=None, description="The constant-product exchange.")
    registry: Address | None = Field(
        default=None, description="The service registry, with reputation."
    )
    escrow: Address | None = Field(default=None, description="The metered escrow.")


class InfoView(BaseModel):
    model_config = example(ex.INFO)
    address: Address
    chain: str = Field(description="CAIP-2 id, e.g. eip155:1337.")
    genesis_hash: Hex32 = Field(
        description="The chain's block 0: dev chains share ids, not genesis blocks. A peer "
        "on another chain is refused in the handshake (`wrong_chain`)."
    )
    ledger: str
    contracts: ContractsView
    peer_endpoint: str | None = Field(description="Where other nodes reach this node's wire.")
    version: str
    dev_chain: bool
    public_reads: bool = Field(
        description="Whether reads need no token (`m2mpay node --public-reads`); anything "
        "that moves money or changes state needs it all the same."
    )


class BalanceView(BaseModel):
    asset: Address = Field(description="0x000…0 for the native coin.")
    symbol: str
    decimals: int = Field(ge=0, description="10^decimals of the smallest unit make one.")
    on_chain: Amount
    in_channels: Amount = Field(description="Our side of every open channel in this asset.")


class WalletView(BaseModel):
    model_config = example(ex.WALLET)
    address: Address
    balances: list[BalanceView]


class TransferRequest(_Request):
    model_config = example(ex.TRANSFER_REQUEST)
    to: Address
    asset: Address = Field(description="0x000…0 for the native coin.")
    amount: PositiveAmount


class TransferView(BaseModel):
    model_config = example(ex.TRANSFER)
    tx_hash: Hex32
    block: int
    gas_used: int


class FaucetRequest(_Request):
    model_config = example(ex.FAUCET_REQUEST)
    asset: Address | None = Field(
        None, description="The token to mint (default: the deployment's token)."
    )
    amount: PositiveAmount | None = Field(None, description="Default: 1,000 whole tokens.")
    native: PositiveAmount | None = Field(None, description="Native coin, default 1 ether.")


# -- channels


class ChannelOpen(_Request):
    model_config = example(ex.CHANNEL_OPEN)
    peer: Address
    endpoint: Endpoint | None = None
    asset: Address | None = Field(None, description="Default: the deployment's token.")
    deposit: PositiveAmount
    peer_deposit: Amount = "0"
    challenge_period: int | None = Field(None, ge=10, le=31_536_000, description="Seconds.")


class ChannelView(BaseModel):
    model_config = example(ex.CHANNEL)
    channel_id: Hex32
    peer: Address
    phase: str
    asset: Address
    challenge_period: int
    deposit_mine: Amount
    deposit_peer: Amount
    balance_mine: Amount
    balance_peer: Amount
    sent_total: Amount
    received_total: Amount
    in_flight: int
    payments_sent: int = Field(description="Balance proofs this node signed on the channel.")
    payments_received: int = Field(description="Balance proofs the peer sent.")
    final_balance_mine: Amount | None


class ChannelList(BaseModel):
    model_config = example({"channels": [ex.CHANNEL]})
    channels: list[ChannelView]


class PaymentRequest(_Request):
    model_config = example(ex.PAYMENT_REQUEST)
    amount: PositiveAmount
    wait: StrictBool = Field(
        True,
        description="Answer once the payee holds the payment durably; false: once it is "
        "durable here and sent.",
    )


class ChannelTopUp(_Request):
    model_config = example(ex.CHANNEL_TOP_UP)
    amount: PositiveAmount = Field(
        description="Added to this node's deposit, in the asset's smallest unit."
    )


class PaymentMade(BaseModel):
    model_config = example(ex.PAYMENT)
    channel_id: Hex32
    amount: Amount
    sent_total: Amount = Field(description="All we have paid on this channel, this included.")
    seq: int
    acknowledged: bool


class CommitmentMade(BaseModel):
    """A balance proof signed for the caller to deliver (an x402 `batch-settlement`
    payment), not sent over the wire: the payee's node takes it from the caller."""

    model_config = example(ex.COMMITMENT)
    channel_id: Hex32
    chain_id: int
    hub: Address
    payer: Address
    amount: Amount
    total: Amount = Field(description="The running total signed: all paid on this channel.")
    seq: int
    signature: str = Field(pattern=r"^0x[0-9a-f]{130}$")


# -- offers and sessions


ServiceKindName = Literal["energy", "actuation", "data"]
LeaderName = Literal["deliverer", "payer"]


class OfferCreate(_Request):
    model_config = example(ex.OFFER_CREATE)
    kind: ServiceKindName
    unit: str = Field(min_length=1, max_length=32, description="Wh, s, message…")
    price: PositiveAmount = Field(description="Per unit.")
    asset: Address | None = Field(None, description="Default: the deployment's token.")
    window: int = Field(ge=1, le=1_000_000, description="Credit window in units.")
    batch: int = Field(
        1, ge=1, le=1_000_000, description="Units per report and payment; at most the window."
    )
    leader: LeaderName = "deliverer"
    min_units: Count = 0
    max_units: Count = Field(0, description="0: no limit.")
    reverse_price: Amount = Field("0", description="Paid per unit fed back; 0: not offered.")
    valid_for_s: int = Field(86_400, ge=1, le=10 * 366 * 86_400)
    device: str | None = Field(
        None, description="A registered device's service that delivers it: `device/service`."
    )


class OfferView(BaseModel):
    model_config = example(ex.OFFER)
    offer_id: Hex32
    seller: Address
    kind: ServiceKindName
    unit: str
    price: Amount
    asset: Address
    min_units: Count
    max_units: Count
    window: Count
    leader: LeaderName
    batch: Count
    reverse_price: Amount
    valid_until_ms: Count


class OfferList(BaseModel):
    model_config = example({"offers": [ex.OFFER]})
    offers: list[OfferView]


class SessionStart(_Request):
    model_config = example(ex.SESSION_START)
    offer: OfferView = Field(description="The seller's offer, as its node publishes it.")
    endpoint: Endpoint | None = None
    channel_id: Hex32 | None = Field(
        None, description="Default: a free open channel, or a new one."
    )
    deposit: Amount = Field("0", description="Open a channel with this deposit if none is free.")
    budget: Amount = Field("0", description="The most to pay; 0: no limit.")
    target_units: Count = Field(0, description="Stop once delivered; 0: no target.")
    limit_price: Amount | None = Field(None, description="The highest price accepted.")
    allow_reverse: StrictBool = Field(False, description="The seller may reverse the flow.")
    feed_back_device: str | None = Field(
        None,
        max_length=200,
        description="With allow_reverse: the device on this node's bus that delivers when "
        "the flow is reversed, `device/service`.",
    )


class SessionStop(_Request):
    model_config = example(ex.SESSION_STOP)
    reason: str = Field("stopped through the API", max_length=200)
    wait: StrictBool = Field(True, description="Answer once the receipt is signed.")


class FlowView(BaseModel):
    units: int
    value: Amount
    paid: Amount


class ReceiptView(BaseModel):
    model_config = example(ex.RECEIPT)
    session_id: Hex32
    channel_id: Hex32
    forward: FlowView
    backward: FlowView
    started_ms: int
    stopped_ms: int
    signature: str


class SessionView(BaseModel):
    model_config = example(ex.SESSION)
    session_id: Hex32
    offer_id: Hex32
    channel_id: Hex32
    peer: Address
    role: Literal["seller", "buyer"]
    phase: str
    price: Amount
    reversed: bool
    unit: str = Field(description="The offer's unit (s, Wh, message).")
    window: int = Field(
        description="The offer's credit window in units: how far delivery and payment may "
        "run apart, the most either party is exposed to (`window` × `price`)."
    )
    asset: Address = Field(description="What it is paid in.")
    forward: FlowView
    backward: FlowView
    started_ms: int
    stopped_ms: int
    stop_reason: str
    countersigned: bool
    receipt: ReceiptView | None
    peer_receipt: ReceiptView | None
    supplies: Hex32 | None = Field(
        None, description="A purchase by a reseller: the sale of this node's it supplies."
    )


class SessionList(BaseModel):
    model_config = example({"sessions": [ex.SESSION]})
    sessions: list[SessionView]


class SessionReverse(_Request):
    model_config = example({"reversed": True})
    reversed: bool


class PriceSignal(_Request):
    model_config = example({"price": "200000000000000"})
    price: PositiveAmount
