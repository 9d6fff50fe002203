"""The peer-authentication handshake: Hello and Auth frames, transcript, session keys.

Both sides run the same steps at the same time (no client or server role):

1. each sends a Hello: protocol version, its address, its 64-byte uncompressed
   public key, 32 random bytes (nonce), the hash of the genesis block of the chain
   it settles on (zero while it does not know it: a device before its host has
   told it) and the name of the codec it writes;
2. each computes the transcript hash over both Hellos, sorted bytewise so both
   sides get the same value whoever spoke first:
   ``T = keccak256("m2mpay/v1/peer-auth/transcript" || min(H1, H2) || max(H1, H2))``;
3. each signs ``keccak256("m2mpay/v1/peer-auth" || T || own address)`` and sends
   the 65-byte signature in an Auth frame;
4. each checks that the peer's signature recovers to the address its Hello
   claims, and that this address is the one of the public key in that Hello.

The signer's address inside the signed digest stops a reflection: a peer
cannot send our own Auth back to us as its own. The domain prefix keeps these
signatures apart from EIP-712 statements (which start with 0x1901), so a
handshake signature can never be replayed as a balance proof or a settlement.

Session keys, one per direction: ECDH of the two keys (coincurve, which hashes
the shared point with SHA-256), then HKDF-SHA256 (RFC 5869) with the two
nonces (sorted) as salt and, as info, a label, the transcript and the sending
side's address. Fresh nonces give fresh keys on every handshake, so frames of
an old session never verify in a new one.

Wire formats (binary, fixed, independent of the codecs):

    Hello = "M2MP" | 0x01 | version u8 | address 20 | public key 64 | nonce 32
            | genesis 32 | codec length u8 | codec name (ASCII)
    Auth  = "M2MP" | 0x02 | signature 65 (r || s || v, low s)
"""

from __future__ import annotations

import hmac
import secrets
import string
from dataclasses import dataclass
from typing import Final

import coincurve

from m2mpay.channel.messages import PROTOCOL_VERSION
from m2mpay.crypto import Address, PrivateKey, Signature, keccak256, recover_signer
from m2mpay.errors import AuthenticationFailed, CryptoError, MalformedMessage

__all__ = [
    "AUTH_DOMAIN",
    "MAX_HELLO_SIZE",
    "TRANSCRIPT_DOMAIN",
    "UNKNOWN_CHAIN",
    "Hello",
    "auth_digest",
    "decode_auth",
    "encode_auth",
    "session_keys",
    "transcript_hash",
    "verify_auth",
]

MAGIC: Final = b"M2MP"
HELLO_KIND: Final = 1
AUTH_KIND: Final = 2
TRANSCRIPT_DOMAIN: Final = b"m2mpay/v1/peer-auth/transcript"
AUTH_DOMAIN: Final = b"m2mpay/v1/peer-auth"
KEY_LABEL: Final = b"m2mpay/v1/session-key"
NONCE_SIZE: Final = 32
UNKNOWN_CHAIN: Final = bytes(32)
_HELLO_FIXED: Final = len(MAGIC) + 1 + 1 + 20 + 64 + NONCE_SIZE + 32 + 1
_AUTH_SIZE: Final = len(MAGIC) + 1 + 65
_MAX_CODEC_NAME: Final = 16
MAX_HELLO_SIZE: Final = _HELLO_FIXED + _MAX_CODEC_NAME
"""Largest Hello; anything longer is refused before a byte of it is looked at."""
_CODEC_CHARS: Final = frozenset(string.ascii_lowercase + string.digits + "-_.")


def _public_key_of(identity: PrivateKey) -> bytes:
    return coincurve.PrivateKey(identity.secret).public_key.format(compressed=False)[1:]


@dataclass(frozen=True, slots=True)
class Hello:
    """What a side says about itself before proving it."""

    version: int
    address: Address
    public_key: bytes  # 64 bytes, uncompressed without the 0x04 prefix
    nonce: bytes
    codec: str
    chain: bytes = UNKNOWN_CHAIN  # the genesis hash of the chain it settles on

    @classmethod
    def create(cls, identity: PrivateKey, codec: str, chain: bytes = UNKNOWN_CHAIN) -> Hello:
        if len(chain) != 32:
            raise ValueError("a chain is named by its 32-byte genesis hash")
        return cls(
            PROTOCOL_VERSION,
            identity.address,
            _public_key_of(identity),
            secrets.token_bytes(NONCE_SIZE),
            codec,
            chain,
        )

    def encode(self) -> bytes:
        name = self.codec.encode("ascii")
        return b"".join(
            (
                MAGIC,
                bytes((HELLO_KIND, self.version)),
                bytes(self.address),
                self.public_key,
                self.nonce,
                self.chain,
                bytes((len(name),)),
                name,
            )
        )

    @classmethod
    def decode(cls, frame: bytes) -> Hello:
        """Parse and check a peer's Hello: `MalformedMessage` or `AuthenticationFailed`."""
        _check_kind(frame, HELLO_KIND, "Hello", MAX_HELLO_SIZE)
        if len(frame) < _HELLO_FIXED:
            raise MalformedMessage(f"Hello of {len(frame)} bytes is too short")
        version = frame[5]
        if version != PROTOCOL_VERSION:
            raise MalformedMessage(
                f"peer speaks protocol version {version}, this node speaks {PROTOCOL_VERSION}"
            )
        address = Address(frame[6:26])
        public_key = frame[26:90]
        nonce = frame[90:122]
        chain = frame[122:154]
        name_length = frame[154]
        raw_name = frame[155:]
        if len(raw_name) != name_length or not 0 < name_length <= _MAX_CODEC_NAME:
            raise MalformedMessage("Hello codec name has a wrong length")
        name = raw_name.decode("latin-1")
        if not set(name) <= _CODEC_CHARS:
            raise MalformedMessage(f"Hello codec name {name!r} is not a plain name")
        try:
            coincurve.PublicKey(b"\x04" + public_key)
        except ValueError:
            raise AuthenticationFailed("peer's public key is not a point on secp256k1") from None
        if Address.from_public_key(public_key) != address:
            raise AuthenticationFailed(
                f"peer claims address {address.checksum} but sent the public key of "
                f"{Address.from_public_key(public_key).checksum}"
            )
        return cls(version, address, public_key, nonce, name, chain)


def _check_kind(frame: bytes, kind: int, what: str, max_size: int) -> None:
    if not isinstance(frame, bytes):
        raise MalformedMessage(f"expected a handshake {what}, got {type(frame).__name__}")
    if len(frame) > max_size:
        raise MalformedMessage(f"handshake {what} of {len(frame)} bytes is above {max_size}")
    if frame[:4] != MAGIC or len(frame) < 5:
        raise MalformedMessage(
            f"expected a handshake {what}, got {len(frame)} bytes of something else"
        )
    if frame[4] != kind:
        raise MalformedMessage(f"expected a handshake {what}, got frame kind {frame[4]}")


def transcript_hash(first: Hello, second: Hello) -> bytes:
    """The hash both sides sign over; symmetric in its arguments."""
    low, high = sorted((first.encode(), second.encode()))
    return keccak256(TRANSCRIPT_DOMAIN + low + high)


def auth_digest(transcript: bytes, signer: Address) -> bytes:
    """What `signer` signs to prove its key in the handshake with `transcript`."""
    return keccak256(AUTH_DOMAIN + transcript + bytes(signer))


def encode_auth(signature: Signature) -> bytes:
    return MAGIC + bytes((AUTH_KIND,)) + bytes(signature)


def decode_auth(frame: bytes) -> Signature:
    _check_kind(frame, AUTH_KIND, "Auth", _AUTH_SIZE)
    if len(frame) != _AUTH_SIZE:
        raise MalformedMessage(f"Auth of {len(frame)} bytes, expected {_AUTH_SIZE}")
    try:
        return Signature(frame[5:])
    except CryptoError as exc:
        raise AuthenticationFailed(f"peer's handshake signature is malformed: {exc}") from None


def verify_auth(transcript: bytes, peer: Hello, signature: Signature) -> None:
    """`AuthenticationFailed` unless `signature` is by the address `peer` claims."""
    try:
        signer = recover_signer(auth_digest(transcript, peer.address), signature)
    except CryptoError as exc:
        raise AuthenticationFailed(f"peer's handshake signature does not verify: {exc}") from None
    if signer != peer.address:
        raise AuthenticationFailed(
            f"handshake signature is by {signer.checksum}, not by the claimed "
            f"{peer.address.checksum}"
        )


def _hkdf(salt: bytes, ikm: bytes, info: bytes, length: int = 32) -> bytes:
    """HKDF-SHA256 (RFC 5869), extract then expand."""
    prk = hmac.digest(salt, ikm, "sha256")
    out, block = b"", b""
    for counter in range(1, -(-length // 32) + 1):
        block = hmac.digest(prk, block + info + bytes((counter,)), "sha256")
        out += block
    return out[:length]


def session_keys(
    identity: PrivateKey, mine: Hello, peer: Hello, transcript: bytes
) -> tuple[bytes, bytes]:
    """(key for frames we send, key for frames we receive)."""
    try:
        shared = coincurve.PrivateKey(identity.secret).ecdh(b"\x04" + peer.public_key)
    except ValueError:
        raise AuthenticationFailed("peer's public key is not usable for ECDH") from None
    salt = b"".join(sorted((mine.nonce, peer.nonce)))
    send = _hkdf(salt, shared, KEY_LABEL + transcript + bytes(mine.address))
    receive = _hkdf(salt, shared, KEY_LABEL + transcript + bytes(peer.address))
    return send, receive
