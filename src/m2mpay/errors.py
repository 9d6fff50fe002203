"""The one exception tree of m2mpay.

Every error the library raises on purpose derives from `M2MPayError`, so a caller
can catch the family it cares about:

- `CodedError`: the base of the errors below that carry a machine-readable `code` and a
  `message` (`ChannelRejection`, `ChannelError`, `StreamError`, `DeviceError`, `AccessError`,
  `ProvenanceError`, `MarketError`, `ApiRefusal`).
- `CryptoError`: malformed keys, signatures or addresses (`InvalidSignature`,
  `InvalidAddress`), a keystore that does not open (`WrongPassphrase`).
- `LedgerError`: the chain refused or could not do something
  (`TransactionReverted`, `ReceiptTimeout`, `LedgerUnavailable`,
  `UnsupportedOperation`, `InsufficientFunds`).
- `ContractError`: contract artifacts or deployments are missing or do not match
  (`ArtifactMismatch`, `DeploymentNotFound`), or a log of theirs does not decode
  (`MalformedEvent`).
- `ProtocolError`: something a peer sent is not acceptable (`MalformedMessage`,
  `AuthenticationFailed`, `WrongChain`, `ChannelRejection` with a machine-readable
  `code`).
- `ChannelError`: a local request on a channel cannot be done (`code` says why).
- `StreamError`: a local request on a metered session cannot be done (`code` says why).
- `DeviceError`: a local request on the device bus cannot be done (`code` says why).
- `AccessError`: paid access cannot be granted or administered: a broker that refuses or
  cannot be reached, credentials that do not open or belong to someone else (`code` says why).
- `ProvenanceError`: a provenance stream cannot be written, stored or read (`code` says why).
- `MarketError`: a market request cannot be done: no registry, an unknown listing, a place
  that is not a geohash, a session with no countersigned receipt to rate (`code` says why).
- `TransportError`: a peer cannot be reached or the link broke (`ConnectionClosed`,
  `NodeUnreachable`: a node's HTTP API did not answer).
- `ApiRefusal`: a node's HTTP API answered with an error (`status`, `code`, `message`,
  `field`): `ApiUnauthorized` (401), `ApiNotFound` (404), `ApiConflict` (409),
  `ApiInvalidInput` (422), `ApiFailure` (5xx); other statuses raise `ApiRefusal` itself.
- `StoreError`: the durable store failed or holds something unreadable.

Packages raise subclasses of these where they need their own, each beside its code:

- `engine.durable.EngineFailed` (a `StoreError`): the engine stopped because its store failed.
- `bus.messages.BadMessage` (a `MalformedMessage`): what a device sent and the bus refuses.
- `provenance.stream_format.StreamInvalid` (a `ProvenanceError`): a provenance stream that
  does not verify; its `code` names the first problem (`bad_signature`, `gap`, `wrong_key`…).
- `provenance.qr.QrFormatError` (a `ProvenanceError`, code `qr_format`): a QR code that is not
  a provenance stream code of a version this reads.
- `node.watch.WatchRefused` (a `ProtocolError`) and `WatchUnavailable` (a `TransportError`):
  a watchtower as the node layer sees it.
- `watcher.errors.WatcherRefusal` (a `ProtocolError`): `Unauthorized` (also an
  `AuthenticationFailed`), `NotFound`, `StaleSubmission`, `InvalidInput` (`BodyTooLarge`).
- `watcher_client.errors.WatcherUnavailable` (a `TransportError`): a watcher not reached.
- `api.errors.ApiError`: a refusal the node's HTTP API answers with.
- `scenarios.stage.ScenarioFailed`, `torture.world.TortureError`.
- `access.x402_wire.PaymentRefused` (a `CodedError`): a payment the paywall refuses, `code`
  being x402's reason; `client.x402.PaymentDeclined` (a `CodedError`): a 402 the paying
  client will not pay (`too_expensive`, `no_payable_requirement`) or whose payment was refused.

A refusal an HTTP service raises on purpose (`ApiError`, `WatcherRefusal`) carries its
`status`, `code`, `message` and `field`; `m2mpay.asgi.errors` answers it in the one error
shape, `{"error": {"code", "message"[, "field"]}}`, which a client reads back as the
matching class (`ApiRefusal` and its subclasses; the watcher's own refusal classes).
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "AccessError",
    "ApiConflict",
    "ApiFailure",
    "ApiInvalidInput",
    "ApiNotFound",
    "ApiRefusal",
    "ApiUnauthorized",
    "ArtifactMismatch",
    "AuthenticationFailed",
    "ChannelError",
    "ChannelRejection",
    "CodedError",
    "ConnectionClosed",
    "ContractError",
    "CryptoError",
    "DeploymentNotFound",
    "DeviceError",
    "InsufficientFunds",
    "InvalidAddress",
    "InvalidSignature",
    "LedgerError",
    "LedgerUnavailable",
    "M2MPayError",
    "MalformedEvent",
    "MalformedMessage",
    "MarketError",
    "NodeUnreachable",
    "ProtocolError",
    "ProvenanceError",
    "ReceiptTimeout",
    "StoreError",
    "StreamError",
    "TransactionReverted",
    "TransportError",
    "UnsupportedOperation",
    "WrongChain",
    "WrongPassphrase",
]


class M2MPayError(Exception):
    """Base of every error m2mpay raises on purpose."""


class CodedError(M2MPayError):
    """An error with a machine-readable `code` (stable) and a `message` for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class CryptoError(M2MPayError):
    """A key, address or signature is malformed or does not verify."""


class InvalidSignature(CryptoError):
    """A signature is malformed, malleable (high s), or recovers to no key."""


class InvalidAddress(CryptoError):
    """A value is not a 20-byte Ethereum address."""


class WrongPassphrase(CryptoError):
    """The keystore at `path` does not open with the passphrase given."""

    def __init__(self, path: Path, detail: str) -> None:
        super().__init__(f"cannot decrypt keystore {path}: wrong passphrase ({detail})")
        self.path = path


class LedgerError(M2MPayError):
    """The ledger refused a request or could not be reached."""


class LedgerUnavailable(LedgerError):
    """The ledger could not be reached or answered garbage."""


class InsufficientFunds(LedgerError):
    """The sender cannot pay the value and the gas of a transaction."""


class TransactionReverted(LedgerError):
    """A transaction was mined but reverted; `reason` is the contract's message."""

    def __init__(self, reason: str, tx_hash: bytes | None = None, gas_used: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.tx_hash = tx_hash
        self.gas_used = gas_used


class ReceiptTimeout(LedgerError):
    """No receipt arrived for a sent transaction within the timeout."""


class UnsupportedOperation(LedgerError):
    """The ledger cannot do this (for example moving time on a public chain)."""


class ContractError(M2MPayError):
    """Contract artifacts or deployments are missing or inconsistent."""


class ArtifactMismatch(ContractError):
    """Compiled artifacts do not match the Vyper sources they claim to come from."""


class MalformedEvent(ContractError):
    """A log claims to be one of our contracts' events but does not hold its fields."""


class DeploymentNotFound(ContractError):
    """No deployment of the contracts is known for this chain."""


class ProtocolError(M2MPayError):
    """A peer sent something that is not acceptable; nothing was changed."""


class MalformedMessage(ProtocolError):
    """Bytes that do not decode to a known message of a supported version."""


class AuthenticationFailed(ProtocolError):
    """A peer could not prove it holds the key of the address it claims, or a frame was forged."""


class WrongChain(AuthenticationFailed):
    """A peer settles on another chain (its genesis block differs from ours)."""

    code = "wrong_chain"


class ChannelRejection(CodedError, ProtocolError):
    """A well-formed message that the channel protocol refuses; `code` says why."""


class ChannelError(CodedError):
    """A local request on a channel cannot be done (closed, unknown, not enough balance…)."""


class StreamError(CodedError):
    """A local request on a metered session cannot be done (unknown offer, rejected…)."""


class DeviceError(CodedError):
    """A local request on the device bus cannot be done (unknown device or service…)."""


class AccessError(CodedError):
    """Paid access cannot be granted or administered (`code` says why): the broker
    refused or did not answer, sealed credentials did not open, a name is taken."""


class ProvenanceError(CodedError):
    """A provenance stream cannot be written, stored or read (a conflicting append, a
    stream that does not verify, a file that is not a stream): `code` says why."""


class MarketError(CodedError):
    """A market request cannot be done (no registry, an unknown listing, a bad geohash, a
    session with no countersigned receipt to rate): `code` says why."""


class TransportError(M2MPayError):
    """A peer cannot be reached, or the link to it failed."""


class ConnectionClosed(TransportError):
    """The link was closed (by either side) while in use."""


class NodeUnreachable(TransportError):
    """A node's HTTP API could not be reached, or the connection failed mid-request."""


class ApiRefusal(CodedError):
    """A node's HTTP API answered with an error; the API's `code` says why (stable),
    `message` explains it to people, `field` names the input at fault when one is."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(code, message)
        self.status = status
        self.field = field


class ApiUnauthorized(ApiRefusal):
    """401: no bearer token, or not the node's."""


class ApiNotFound(ApiRefusal):
    """404: no such channel, session, offer, device or route."""


class ApiConflict(ApiRefusal):
    """409: not possible in the current state (closed channel, not enough balance…)."""


class ApiInvalidInput(ApiRefusal):
    """422: malformed input; `field` names it."""


class ApiFailure(ApiRefusal):
    """5xx: the node took the request but failed (its chain or the peer failed, a timeout)."""


class StoreError(M2MPayError):
    """The durable store failed, or holds data that cannot be read back."""
