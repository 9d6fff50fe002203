"""Credentials sealed to the seller: how an anonymous buyer puts the MQTT username and
password it wants into its purchase so that only the seller can read them.

The seller's **access key** is an X25519 key derived from its node key (HKDF-SHA256 with
an info string of its own), so it needs no storage of its own and survives restarts;
its public half is published in each feed. A sealed box is, in bytes::

    version (1) | ephemeral X25519 public key (32) | ChaCha20-Poly1305 ciphertext and tag

The AEAD key and nonce come from HKDF-SHA256 over the ephemeral-static shared secret,
with both public keys in its info, so a box is bound to the seller it was made for. The
caller's `context` (see `sealed_context`: the buyer, the feed, the session) is the
associated data: a box copied into another purchase, or sent by another buyer, does not
open. Inside, the credentials are ``len(username) (1) | username | password``.
"""

from __future__ import annotations

import re
import secrets
import string
from dataclasses import dataclass, field
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from m2mpay.crypto import Address, PrivateKey
from m2mpay.errors import AccessError

__all__ = [
    "ACCESS_KEY_SIZE",
    "MAX_SEALED_SIZE",
    "SEALED_VERSION",
    "Credentials",
    "access_private_key",
    "access_public_key",
    "open_sealed",
    "seal",
    "sealed_context",
]

ACCESS_KEY_SIZE: Final = 32
SEALED_VERSION: Final = 1

_USERNAME: Final = re.compile(r"[A-Za-z0-9_.-]{3,64}")
_PASSWORD: Final = re.compile(r"[!-~]{16,128}")  # printable ASCII, no space
_PASSWORD_ALPHABET: Final = string.ascii_letters + string.digits
_GENERATED_PASSWORD_LENGTH: Final = 32  # ~190 bits from 62 symbols

_TAG_SIZE: Final = 16
_NONCE_SIZE: Final = 12
_HEADER_SIZE: Final = 1 + ACCESS_KEY_SIZE
_MAX_PLAIN: Final = 1 + 64 + 128
_MIN_PLAIN: Final = 1 + 3 + 16
MAX_SEALED_SIZE: Final = _HEADER_SIZE + _MAX_PLAIN + _TAG_SIZE
_MIN_SEALED_SIZE: Final = _HEADER_SIZE + _MIN_PLAIN + _TAG_SIZE

# Domain separation: the node key signs channel states; what is derived from it for
# another purpose says so, and a box's keys say which version made them.
_ACCESS_KEY_INFO: Final = b"m2mpay/access/x25519-access-key/v1"
_SEAL_INFO: Final = b"m2mpay/access/sealed-credentials/v1"


@dataclass(frozen=True, slots=True)
class Credentials:
    """An MQTT username and password a buyer chooses (or a device is given); `repr`
    never shows the password. Passwords are kept to what any client can type and
    pass on a command line: 16 to 128 printable ASCII characters, no spaces."""

    username: str
    password: str = field(repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.username, str) or not _USERNAME.fullmatch(self.username):
            raise AccessError(
                "bad_username", "a username is 3 to 64 of A-Z, a-z, 0-9, '_', '.', '-'"
            )
        if not isinstance(self.password, str) or not _PASSWORD.fullmatch(self.password):
            raise AccessError(
                "bad_password",
                "a password is 16 to 128 printable ASCII characters without spaces",
            )

    @classmethod
    def generate(cls, prefix: str = "buyer") -> Credentials:
        """Fresh credentials: `prefix` and 12 random hex digits, a 32-character password."""
        password = "".join(
            secrets.choice(_PASSWORD_ALPHABET) for _ in range(_GENERATED_PASSWORD_LENGTH)
        )
        return cls(f"{prefix}-{secrets.token_hex(6)}", password)

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, password=<hidden>)"

    __str__ = __repr__


def access_private_key(node_key: PrivateKey) -> X25519PrivateKey:
    """The seller's X25519 access key, the same for the same node key every time."""
    seed = HKDF(
        algorithm=hashes.SHA256(), length=ACCESS_KEY_SIZE, salt=None, info=_ACCESS_KEY_INFO
    ).derive(node_key.secret)
    return X25519PrivateKey.from_private_bytes(seed)


def _raw_public(key: X25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def access_public_key(node_key: PrivateKey) -> bytes:
    """The 32 bytes a seller publishes in its feeds for buyers to seal to."""
    return _raw_public(access_private_key(node_key).public_key())


def sealed_context(buyer: Address, feed: str, session: bytes) -> bytes:
    """The associated data that binds a box to one buyer, one feed and one session.

    Each part is length-prefixed, so no two different triples give the same bytes.
    """
    parts = (bytes(buyer), feed.encode(), session)
    return b"".join(len(part).to_bytes(2, "big") + part for part in parts)


def _box_cipher(shared: bytes, ephemeral: bytes, seller: bytes) -> tuple[ChaCha20Poly1305, bytes]:
    # Every box has a fresh ephemeral key, so its key (and nonce) is used once.
    okm = HKDF(
        algorithm=hashes.SHA256(),
        length=32 + _NONCE_SIZE,
        salt=None,
        info=_SEAL_INFO + ephemeral + seller,
    ).derive(shared)
    return ChaCha20Poly1305(okm[:32]), okm[32:]


def _encode(credentials: Credentials) -> bytes:
    username = credentials.username.encode("ascii")
    return bytes([len(username)]) + username + credentials.password.encode("ascii")


def _decode(plain: bytes) -> Credentials:
    size = plain[0]
    if len(plain) < 1 + size:
        raise AccessError("sealed_box", "the sealed credentials are malformed")
    try:
        username = plain[1 : 1 + size].decode("ascii")
        password = plain[1 + size :].decode("ascii")
        return Credentials(username, password)
    except (UnicodeDecodeError, AccessError):
        # Which part was wrong stays unsaid: the message must not echo a secret.
        raise AccessError("sealed_box", "the sealed credentials are malformed") from None


def seal(seller_access_public: bytes, credentials: Credentials, context: bytes) -> bytes:
    """`credentials` sealed so that only the holder of the access key opens them, and
    only with the same `context`."""
    if len(seller_access_public) != ACCESS_KEY_SIZE:
        raise AccessError("sealed_box", "a seller's access key is 32 bytes")
    seller = X25519PublicKey.from_public_bytes(seller_access_public)
    ephemeral_key = X25519PrivateKey.generate()
    ephemeral = _raw_public(ephemeral_key.public_key())
    try:
        shared = ephemeral_key.exchange(seller)
    except ValueError:
        raise AccessError("sealed_box", "the seller's access key is not usable") from None
    cipher, nonce = _box_cipher(shared, ephemeral, seller_access_public)
    body = cipher.encrypt(nonce, _encode(credentials), context)
    return bytes([SEALED_VERSION]) + ephemeral + body


def open_sealed(
    seller_access_private: X25519PrivateKey, sealed: bytes, context: bytes
) -> Credentials:
    """The credentials in `sealed`, or `AccessError("sealed_box")` when it does not open:
    a wrong key or context, a changed or cut byte, a bad format or bad credentials."""
    # Sizes first: nothing of a peer's over-long input reaches the cryptography.
    if not _MIN_SEALED_SIZE <= len(sealed) <= MAX_SEALED_SIZE:
        raise AccessError(
            "sealed_box",
            f"a sealed box is {_MIN_SEALED_SIZE} to {MAX_SEALED_SIZE} bytes, not {len(sealed)}",
        )
    if sealed[0] != SEALED_VERSION:
        raise AccessError("sealed_box", f"unknown sealed box version {sealed[0]}")
    ephemeral = bytes(sealed[1:_HEADER_SIZE])
    seller = _raw_public(seller_access_private.public_key())
    try:
        shared = seller_access_private.exchange(X25519PublicKey.from_public_bytes(ephemeral))
    except ValueError:  # a low-order point: the shared secret would be all zeros
        raise AccessError("sealed_box", "the sealed box does not open") from None
    cipher, nonce = _box_cipher(shared, ephemeral, seller)
    try:
        plain = cipher.decrypt(nonce, bytes(sealed[_HEADER_SIZE:]), context)
    except InvalidTag:
        raise AccessError("sealed_box", "the sealed box does not open") from None
    return _decode(plain)
