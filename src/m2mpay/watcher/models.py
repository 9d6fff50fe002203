"""The HTTP API's request and response shapes, for the OpenAPI schema and for clients.

Handlers parse request bodies themselves (`m2mpay.watcher.parsing`) so that every
refusal names its field the same way and the proof update path stays cheap; these
models describe the same shapes for `/openapi.json`, and the tests check that what the
service answers validates against them. Errors are described by the project's one
error model (`m2mpay.asgi.errors.ErrorBody`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ChannelParamsModel",
    "ChannelView",
    "ClosingView",
    "DisputeList",
    "DisputeView",
    "Info",
    "OnchainView",
    "PartyView",
    "ProofStored",
    "ProofUpdate",
    "RegistrationCreated",
    "RegistrationRequest",
    "SettlementView",
]

_ADDRESS = r"^0[xX][0-9a-fA-F]{40}$"
_DECIMAL = r"^(0|[1-9][0-9]{0,77})$"
_HEX32 = r"^0x[0-9a-fA-F]{64}$"
_SIGNATURE = r"^0[xX][0-9a-fA-F]{130}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChannelParamsModel(_Strict):
    a: str = Field(pattern=_ADDRESS)
    b: str = Field(pattern=_ADDRESS)
    token: str = Field(pattern=_ADDRESS, description="0x000…0 for native ETH.")
    challenge_period: int = Field(ge=1, le=31_536_000, description="Seconds.")
    nonce: str | int = Field(description="uint256, preferably as a decimal string.")


class RegistrationRequest(_Strict):
    channel: ChannelParamsModel
    party: str = Field(pattern=_ADDRESS, description="The party to defend: a or b.")
    issued_at: int = Field(
        description="Unix seconds; accepted within ±300 s of the watcher's clock."
    )
    signature: str = Field(
        pattern=_SIGNATURE,
        description="The party's EIP-712 signature of WatchRegistration(channelId, party,"
        " watcher, issuedAt) in the hub's domain.",
    )


class RegistrationCreated(_Strict):
    channel_id: str = Field(pattern=_HEX32)
    party: str
    token: str = Field(description="Bearer token for proof updates; shown once, stored hashed.")


class ProofUpdate(_Strict):
    transferred: str = Field(
        pattern=_DECIMAL, description="Total the party's peer has paid it (uint256, decimal)."
    )
    signature: str = Field(
        pattern=_SIGNATURE,
        description="The peer's EIP-712 signature of BalanceProof(channelId, transferred).",
    )


class ProofStored(_Strict):
    channel_id: str
    party: str
    transferred: str
    stored: Literal[True]


class Info(_Strict):
    address: str = Field(description="The watcher's address; it pays gas for its transactions.")
    chain: str = Field(description="CAIP-2 chain id, e.g. eip155:1337.")
    chain_id: int
    hub: str
    channels: int
    proofs: int
    registrations: int
    disputes: int
    cursor: int = Field(description="The last block the watcher has read.")


class PartyView(_Strict):
    party: str
    role: Literal["a", "b"]
    held_transferred: str | None = Field(description="Newest total its peer signed, if any.")
    registered_at: int


class ClosingView(_Strict):
    deadline: int
    transferred_a: str
    transferred_b: str
    closer: str | None
    close_block: int | None


class SettlementView(_Strict):
    balance_a: str
    balance_b: str
    cooperative: bool
    block: int | None


class OnchainView(_Strict):
    phase: Literal["unknown", "open", "closing", "settled"]
    deposit_a: str | None
    deposit_b: str | None
    closing: ClosingView | None
    settlement: SettlementView | None


class DisputeView(_Strict):
    id: int
    kind: Literal["challenge", "settle"]
    status: Literal["submitted", "mined", "failed", "interrupted"]
    channel_id: str
    participant: str | None = Field(description="Whose total the challenge raised.")
    beneficiary: str | None = Field(description="The watched party it was raised for.")
    transferred: str | None
    replaced: str | None
    balance_a: str | None
    balance_b: str | None
    tx_hash: str | None
    block: int | None
    close_block: int | None
    close_seen_at_ms: int | None
    submitted_at_ms: int
    mined_at_ms: int | None
    latency_ms: int | None = Field(
        description="From the watcher seeing the close to seeing its transaction mined."
    )
    reason: str | None


class ChannelView(_Strict):
    channel_id: str
    channel: ChannelParamsModel
    parties: list[PartyView]
    onchain: OnchainView
    disputes: list[DisputeView]


class DisputeList(_Strict):
    disputes: list[DisputeView]
