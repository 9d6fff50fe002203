"""EIP-712 digests of the protocol's signed statements, computed directly.

eth-account's generic `encode_typed_data` costs about 200 µs a message; these
hand-rolled digests cost a few microseconds and are cross-checked against it in
the tests. Every statement is bound to the chain, the contract and the channel:
the domain carries chainId and verifyingContract, the struct carries channelId.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from m2mpay.crypto.address import Address
from m2mpay.crypto.hashing import keccak256

__all__ = [
    "BALANCE_PROOF_TYPE",
    "PERMIT_TYPE",
    "PROTOCOL_NAME",
    "PROTOCOL_VERSION",
    "SESSION_RECEIPT_TYPE",
    "SETTLEMENT_TYPE",
    "UINT256_MAX",
    "WATCH_REGISTRATION_TYPE",
    "Eip712Domain",
    "balance_proof_digest",
    "balance_proof_typed_data",
    "channel_domain",
    "channel_id",
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

_DOMAIN_TYPE: Final = (
    b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)


@dataclass(frozen=True, slots=True)
class _Struct:
    """A signed statement's EIP-712 struct type: its name and its (name, type) fields, in
    order. The digests below encode the fields by hand for speed; the type string and the
    typed data given to wallets come from here."""

    name: str
    fields: tuple[tuple[str, str], ...]

    @property
    def encoded_type(self) -> bytes:
        return f"{self.name}({','.join(f'{kind} {name}' for name, kind in self.fields)})".encode()

    def typed_data(self, domain: Eip712Domain, *values: Any) -> dict[str, Any]:
        """The full message, for wallets (`eth_signTypedData_v4`) and cross-checks."""
        return {
            "types": {
                "EIP712Domain": _EIP712_DOMAIN_FIELDS,
                self.name: [{"name": name, "type": kind} for name, kind in self.fields],
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
BALANCE_PROOF_TYPE: Final = _BALANCE_PROOF.encoded_type
SETTLEMENT_TYPE: Final = _SETTLEMENT.encoded_type
WATCH_REGISTRATION_TYPE: Final = _WATCH_REGISTRATION.encoded_type
SESSION_RECEIPT_TYPE: Final = _SESSION_RECEIPT.encoded_type
PERMIT_TYPE: Final = _PERMIT.encoded_type

_DOMAIN_TYPEHASH: Final = keccak256(_DOMAIN_TYPE)
_BALANCE_PROOF_TYPEHASH: Final = keccak256(BALANCE_PROOF_TYPE)
_SETTLEMENT_TYPEHASH: Final = keccak256(SETTLEMENT_TYPE)
_PERMIT_TYPEHASH: Final = keccak256(PERMIT_TYPE)
_WATCH_REGISTRATION_TYPEHASH: Final = keccak256(WATCH_REGISTRATION_TYPE)
_SESSION_RECEIPT_TYPEHASH: Final = keccak256(SESSION_RECEIPT_TYPE)
UINT256_MAX: Final = (1 << 256) - 1  # the largest amount any contract or signed state holds

_EIP712_DOMAIN_FIELDS: Final = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]


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


@dataclass(frozen=True, slots=True)
class Eip712Domain:
    """The signing domain; `separator` is computed once."""

    name: str
    version: str
    chain_id: int
    verifying_contract: Address
    separator: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        separator = keccak256(
            _DOMAIN_TYPEHASH
            + keccak256(self.name.encode())
            + keccak256(self.version.encode())
            + uint256_word(self.chain_id)
            + _address_word(Address(self.verifying_contract))
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
    return domain.digest(
        keccak256(_BALANCE_PROOF_TYPEHASH + _bytes32(channel) + uint256_word(transferred))
    )


def settlement_digest(
    domain: Eip712Domain, channel: bytes, balance_a: int, balance_b: int
) -> bytes:
    """Digest of `Settlement(channelId, balanceA, balanceB)`: a cooperative final split."""
    return domain.digest(
        keccak256(
            _SETTLEMENT_TYPEHASH
            + _bytes32(channel)
            + uint256_word(balance_a)
            + uint256_word(balance_b)
        )
    )


def watch_registration_digest(
    domain: Eip712Domain, channel: bytes, party: Address, watcher: Address, issued_at: int
) -> bytes:
    """Digest of `WatchRegistration`: a party asks a watcher to defend its channel.

    Bound to the channel, the party, the watcher's address and a time, so it can
    neither be used with another watcher nor long after it was signed.
    """
    return domain.digest(
        keccak256(
            _WATCH_REGISTRATION_TYPEHASH
            + _bytes32(channel)
            + _address_word(party)
            + _address_word(watcher)
            + uint256_word(issued_at)
        )
    )


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
    words = b"".join(uint256_word(v) for v in (*forward, *backward, started_ms, stopped_ms))
    return domain.digest(
        keccak256(_SESSION_RECEIPT_TYPEHASH + _bytes32(session) + _bytes32(channel) + words)
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


def permit_digest(
    token_domain: Eip712Domain,
    owner: Address,
    spender: Address,
    value: int,
    nonce: int,
    deadline: int,
) -> bytes:
    """Digest of an EIP-2612 `Permit` for the token whose domain is given."""
    return token_domain.digest(
        keccak256(
            _PERMIT_TYPEHASH
            + _address_word(owner)
            + _address_word(spender)
            + uint256_word(value)
            + uint256_word(nonce)
            + uint256_word(deadline)
        )
    )


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
