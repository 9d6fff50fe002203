"""EIP-712 digests of the protocol's signed statements, computed directly.

eth-account's generic `encode_typed_data` costs about 200 µs a message; these
digests, encoded from each struct's fields here, cost a few microseconds and are
cross-checked against it in the tests. Every statement is bound to the chain, the
contract and the channel: the domain carries chainId and verifyingContract, the
struct carries channelId.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from m2mpay.crypto.address import Address
from m2mpay.crypto.hashing import keccak256

__all__ = [
    "BALANCE_PROOF_TYPE",
    "METER_READING_TYPE",
    "PERMIT_TYPE",
    "PROTOCOL_NAME",
    "PROTOCOL_VERSION",
    "SESSION_RECEIPT_TYPE",
    "SETTLEMENT_TYPE",
    "TRANSFER_AUTHORIZATION_TYPES",
    "UINT256_MAX",
    "WATCH_REGISTRATION_TYPE",
    "Eip712Domain",
    "TransferAuthorization",
    "balance_proof_digest",
    "balance_proof_typed_data",
    "cancel_authorization_digest",
    "channel_domain",
    "channel_id",
    "meter_reading_digest",
    "meter_reading_typed_data",
    "permit_digest",
    "permit_typed_data",
    "session_receipt_digest",
    "session_receipt_typed_data",
    "settlement_digest",
    "settlement_typed_data",
    "uint256_word",
    "watch_registration_digest",
    "watch_registration_typed_data",
]

PROTOCOL_NAME: Final = "m2mpay"
PROTOCOL_VERSION: Final = "1"
UINT256_MAX: Final = (1 << 256) - 1  # the largest amount any contract or signed state holds


def uint256_word(value: int) -> bytes:
    """ABI word of an unsigned integer; refuses negatives and values past 2**256 - 1."""
    if not 0 <= value <= UINT256_MAX:
        raise ValueError(f"not a uint256: {value}")
    return value.to_bytes(32, "big")


def _address_word(address: Address) -> bytes:
    return bytes(12) + address


def _bytes32(value: bytes) -> bytes:
    if len(value) != 32:
        raise ValueError("expected 32 bytes")
    return bytes(value)


def _string_word(value: str) -> bytes:
    return keccak256(value.encode())


# How EIP-712 encodes a field of each type the protocol's statements use.
_WORDS: Final[dict[str, Callable[[Any], bytes]]] = {
    "uint256": uint256_word,
    "address": _address_word,
    "bytes32": _bytes32,
    "string": _string_word,
}


@dataclass(frozen=True, slots=True)
class _Struct:
    """A signed statement's EIP-712 struct type: its name and its (name, type) fields, in
    order. Its digest, its type string and the typed data given to wallets all come from
    here, so the field order is stated once."""

    name: str
    fields: tuple[tuple[str, str], ...]
    typehash: bytes = field(init=False, repr=False, compare=False)
    # Each field's encoder looked up once: the digests are on the payment path.
    _words: tuple[Callable[[Any], bytes], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "typehash", keccak256(self.encoded_type))
        object.__setattr__(self, "_words", tuple(_WORDS[kind] for _, kind in self.fields))

    @property
    def encoded_type(self) -> bytes:
        return f"{self.name}({','.join(f'{kind} {name}' for name, kind in self.fields)})".encode()

    def struct_hash(self, *values: Any) -> bytes:
        """`hashStruct`: the typehash and each value's word, hashed."""
        words = [word(value) for word, value in zip(self._words, values, strict=True)]
        return keccak256(self.typehash + b"".join(words))

    def digest(self, domain: Eip712Domain, *values: Any) -> bytes:
        """What a party signs: the struct of `values` in `domain`."""
        return domain.digest(self.struct_hash(*values))

    @property
    def type_fields(self) -> list[dict[str, str]]:
        return [{"name": name, "type": kind} for name, kind in self.fields]

    def typed_data(self, domain: Eip712Domain, *values: Any) -> dict[str, Any]:
        """The full message, for wallets (`eth_signTypedData_v4`) and cross-checks."""
        return {
            "types": {
                "EIP712Domain": _DOMAIN.type_fields,
                self.name: self.type_fields,
            },
            "primaryType": self.name,
            "domain": domain.as_dict(),
            "message": {
                name: _shown(kind, value)
                for (name, kind), value in zip(self.fields, values, strict=True)
            },
        }


def _shown(kind: str, value: Any) -> Any:
    """A field's value as typed data writes it: bytes as 0x-hex, addresses checksummed."""
    if kind == "bytes32":
        return "0x" + value.hex()
    if kind == "address":
        return value.checksum
    return value


_DOMAIN: Final = _Struct(
    "EIP712Domain",
    (
        ("name", "string"),
        ("version", "string"),
        ("chainId", "uint256"),
        ("verifyingContract", "address"),
    ),
)
_BALANCE_PROOF: Final = _Struct(
    "BalanceProof", (("channelId", "bytes32"), ("transferred", "uint256"))
)
_SETTLEMENT: Final = _Struct(
    "Settlement", (("channelId", "bytes32"), ("balanceA", "uint256"), ("balanceB", "uint256"))
)
_WATCH_REGISTRATION: Final = _Struct(
    "WatchRegistration",
    (
        ("channelId", "bytes32"),
        ("party", "address"),
        ("watcher", "address"),
        ("issuedAt", "uint256"),
    ),
)
_SESSION_RECEIPT: Final = _Struct(
    "SessionReceipt",
    (
        ("sessionId", "bytes32"),
        ("channelId", "bytes32"),
        *(
            (quantity + direction, "uint256")
            for direction in ("Forward", "Backward")
            for quantity in ("units", "value", "paid")
        ),
        ("startedMs", "uint256"),
        ("stoppedMs", "uint256"),
    ),
)
_METER_READING: Final = _Struct("MeterReading", (("escrowId", "bytes32"), ("reading", "uint256")))
_PERMIT: Final = _Struct(
    "Permit",
    (
        ("owner", "address"),
        ("spender", "address"),
        ("value", "uint256"),
        ("nonce", "uint256"),
        ("deadline", "uint256"),
    ),
)
# EIP-3009: the same fields, one struct name for each way the transfer may be submitted.
_AUTHORIZATION_FIELDS: Final = (
    ("from", "address"),
    ("to", "address"),
    ("value", "uint256"),
    ("validAfter", "uint256"),
    ("validBefore", "uint256"),
    ("nonce", "bytes32"),
)
_AUTHORIZATIONS: Final = {
    "transfer": _Struct("TransferWithAuthorization", _AUTHORIZATION_FIELDS),
    "receive": _Struct("ReceiveWithAuthorization", _AUTHORIZATION_FIELDS),
}
_CANCEL_AUTHORIZATION: Final = _Struct(
    "CancelAuthorization", (("authorizer", "address"), ("nonce", "bytes32"))
)
TRANSFER_AUTHORIZATION_TYPES: Final = {
    kind: struct.encoded_type for kind, struct in _AUTHORIZATIONS.items()
}
BALANCE_PROOF_TYPE: Final = _BALANCE_PROOF.encoded_type
SETTLEMENT_TYPE: Final = _SETTLEMENT.encoded_type
WATCH_REGISTRATION_TYPE: Final = _WATCH_REGISTRATION.encoded_type
SESSION_RECEIPT_TYPE: Final = _SESSION_RECEIPT.encoded_type
PERMIT_TYPE: Final = _PERMIT.encoded_type
METER_READING_TYPE: Final = _METER_READING.encoded_type


@dataclass(frozen=True, slots=True)
class Eip712Domain:
    """The signing domain; `separator` is computed once."""

    name: str
    version: str
    chain_id: int
    verifying_contract: Address
    separator: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        separator = _DOMAIN.struct_hash(
            self.name, self.version, self.chain_id, Address(self.verifying_contract)
        )
        object.__setattr__(self, "separator", separator)

    def digest(self, struct_hash: bytes) -> bytes:
        """The EIP-712 digest `keccak256(0x1901 || separator || struct_hash)`."""
        return keccak256(b"\x19\x01" + self.separator + struct_hash)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "chainId": self.chain_id,
            "verifyingContract": self.verifying_contract.checksum,
        }


def channel_domain(chain_id: int, hub: Address) -> Eip712Domain:
    """The domain of every statement about channels of the ChannelHub at `hub`."""
    return Eip712Domain(PROTOCOL_NAME, PROTOCOL_VERSION, chain_id, hub)


def channel_id(a: Address, b: Address, token: Address, challenge_period: int, nonce: int) -> bytes:
    """The id ChannelHub gives a channel: keccak256(abi.encode(a, b, token, period, nonce))."""
    return keccak256(
        _address_word(a)
        + _address_word(b)
        + _address_word(token)
        + uint256_word(challenge_period)
        + uint256_word(nonce)
    )


def balance_proof_digest(domain: Eip712Domain, channel: bytes, transferred: int) -> bytes:
    """Digest of `BalanceProof(channelId, transferred)`: the payer's running total."""
    # Every payment computes it twice (signing, checking): encoded inline, it costs
    # ~1 µs less than `_BALANCE_PROOF.digest`; tests/unit/test_eip712.py checks it against
    # eth-account.
    words = _BALANCE_PROOF.typehash + _bytes32(channel) + uint256_word(transferred)
    return domain.digest(keccak256(words))


def settlement_digest(
    domain: Eip712Domain, channel: bytes, balance_a: int, balance_b: int
) -> bytes:
    """Digest of `Settlement(channelId, balanceA, balanceB)`: a cooperative final split."""
    return _SETTLEMENT.digest(domain, channel, balance_a, balance_b)


def watch_registration_digest(
    domain: Eip712Domain, channel: bytes, party: Address, watcher: Address, issued_at: int
) -> bytes:
    """Digest of `WatchRegistration`: a party asks a watcher to defend its channel.

    Bound to the channel, the party, the watcher's address and a time, so it can
    neither be used with another watcher nor long after it was signed.
    """
    return _WATCH_REGISTRATION.digest(domain, channel, party, watcher, issued_at)


def watch_registration_typed_data(
    domain: Eip712Domain, channel: bytes, party: Address, watcher: Address, issued_at: int
) -> dict[str, Any]:
    return _WATCH_REGISTRATION.typed_data(domain, channel, party, watcher, issued_at)


def session_receipt_digest(
    domain: Eip712Domain,
    session: bytes,
    channel: bytes,
    forward: tuple[int, int, int],
    backward: tuple[int, int, int],
    started_ms: int,
    stopped_ms: int,
) -> bytes:
    """Digest of a metered session's receipt: (units, value, paid) each way, and when.

    Both parties sign it; in the channel's domain, so it names the chain and hub too.
    """
    return _SESSION_RECEIPT.digest(
        domain, session, channel, *forward, *backward, started_ms, stopped_ms
    )


def session_receipt_typed_data(
    domain: Eip712Domain,
    session: bytes,
    channel: bytes,
    forward: tuple[int, int, int],
    backward: tuple[int, int, int],
    started_ms: int,
    stopped_ms: int,
) -> dict[str, Any]:
    return _SESSION_RECEIPT.typed_data(
        domain, session, channel, *forward, *backward, started_ms, stopped_ms
    )


def meter_reading_digest(domain: Eip712Domain, escrow: bytes, reading: int) -> bytes:
    """Digest of `MeterReading(escrowId, reading)`: a meter's final reading for one escrow.

    The escrow id hashes all the escrow's terms and the domain names the MeteredEscrow
    contract and chain, so the signature releases that one escrow and no other.
    """
    return _METER_READING.digest(domain, escrow, reading)


def meter_reading_typed_data(domain: Eip712Domain, escrow: bytes, reading: int) -> dict[str, Any]:
    return _METER_READING.typed_data(domain, escrow, reading)


def permit_digest(
    token_domain: Eip712Domain,
    owner: Address,
    spender: Address,
    value: int,
    nonce: int,
    deadline: int,
) -> bytes:
    """Digest of an EIP-2612 `Permit` for the token whose domain is given."""
    return _PERMIT.digest(token_domain, owner, spender, value, nonce, deadline)


def balance_proof_typed_data(
    domain: Eip712Domain, channel: bytes, transferred: int
) -> dict[str, Any]:
    """The full EIP-712 message, for wallets (`eth_signTypedData_v4`) and cross-checks."""
    return _BALANCE_PROOF.typed_data(domain, channel, transferred)


def settlement_typed_data(
    domain: Eip712Domain, channel: bytes, balance_a: int, balance_b: int
) -> dict[str, Any]:
    return _SETTLEMENT.typed_data(domain, channel, balance_a, balance_b)


def permit_typed_data(
    token_domain: Eip712Domain,
    owner: Address,
    spender: Address,
    value: int,
    nonce: int,
    deadline: int,
) -> dict[str, Any]:
    return _PERMIT.typed_data(token_domain, owner, spender, value, nonce, deadline)


@dataclass(frozen=True, slots=True)
class TransferAuthorization:
    """An EIP-3009 authorization: `value` of a token from `sender` to `receiver`, valid
    strictly between `valid_after` and `valid_before` (unix seconds), once per random
    32-byte `nonce`. `kind` "transfer" lets anyone submit it, "receive" only the
    receiver. x402's exact scheme on EVM carries one, signed by the payer."""

    sender: Address
    receiver: Address
    value: int
    valid_after: int
    valid_before: int
    nonce: bytes
    kind: str = "transfer"

    def __post_init__(self) -> None:
        if self.kind not in _AUTHORIZATIONS:
            raise ValueError(f"an authorization is to transfer or to receive, not {self.kind!r}")
        if len(self.nonce) != 32:
            raise ValueError("an authorization's nonce is 32 bytes")
        if not all(0 <= n <= UINT256_MAX for n in self._numbers):
            raise ValueError("an authorization's value and times are uint256")

    @property
    def _numbers(self) -> tuple[int, int, int]:
        return (self.value, self.valid_after, self.valid_before)

    def digest(self, token_domain: Eip712Domain) -> bytes:
        """What the payer signs, in the token's domain."""
        return _AUTHORIZATIONS[self.kind].digest(
            token_domain, self.sender, self.receiver, *self._numbers, self.nonce
        )

    def typed_data(self, token_domain: Eip712Domain) -> dict[str, Any]:
        return _AUTHORIZATIONS[self.kind].typed_data(
            token_domain, self.sender, self.receiver, *self._numbers, self.nonce
        )


def cancel_authorization_digest(
    token_domain: Eip712Domain, authorizer: Address, nonce: bytes
) -> bytes:
    """Digest of an EIP-3009 `CancelAuthorization`: the authorizer withdraws `nonce`."""
    return _CANCEL_AUTHORIZATION.digest(token_domain, authorizer, nonce)
