"""The keys of provenance streams and what they seal, with primitives WebCrypto also has
(AES-256-GCM, X25519, HKDF-SHA256), so a browser decrypts what Python wrote.

- **Stream key**: 32 bytes per stream and epoch, derived from the author's secp256k1 key
  (HKDF-SHA256, salt = stream id, info = ``m2mpay/provenance/stream-key/v1`` | epoch
  (4, big-endian)): the writer stores no secret of its own and finds its keys again
  after a restart. A restricted stream has one (epoch 0), shared by QR code; a stream of
  subscribers starts a new epoch, with a new key, at each rotation.
- **Sealed payload**: ``nonce (12) | AES-256-GCM ciphertext and tag (16)``, with the
  message's 114-byte header as associated data (so a payload moved to another message,
  index or stream does not open). The nonce is synthetic:
  ``keccak256("m2mpay/provenance/v1/nonce" | key | header | plaintext)[:12]``. A nonce
  repeats only for the same header and plaintext, which is the same message; a writer
  restored from a backup that writes a different message at an index it wrote before
  still gets a fresh nonce, where a counter would repeat one (GCM's one fatal misuse).
  A reader never recomputes it.
- **Key wrap** for a subscriber's X25519 public key S, in a keys message of epoch e with
  one ephemeral key E: ``k = HKDF-SHA256(X25519(E, S), salt = stream id, info =
  "m2mpay/provenance/key-wrap/v1" | e (4) | E | S)``; the wrap is
  ``AES-256-GCM(k, nonce = 12 zero bytes, key, aad = stream id | e (4))`` (48 bytes).
  k serves one wrap only, so a fixed nonce is safe.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from m2mpay.crypto import PrivateKey, keccak256
from m2mpay.provenance.stream_records import MAX_WRAPS, KeyGrant, KeyWrap

__all__ = [
    "KEY_SIZE",
    "NONCE_SIZE",
    "SEALING_OVERHEAD",
    "TAG_SIZE",
    "open_payload",
    "public_bytes",
    "seal_payload",
    "stream_key",
    "unwrap_key",
    "wrap_key",
]

KEY_SIZE: Final = 32
NONCE_SIZE: Final = 12
TAG_SIZE: Final = 16
SEALING_OVERHEAD: Final = NONCE_SIZE + TAG_SIZE  # what sealing adds to a payload
_STREAM_KEY_INFO: Final = b"m2mpay/provenance/stream-key/v1"
_WRAP_INFO: Final = b"m2mpay/provenance/key-wrap/v1"
_NONCE_DOMAIN: Final = b"m2mpay/provenance/v1/nonce"
_ZERO_NONCE: Final = bytes(NONCE_SIZE)


def _hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=salt, info=info).derive(ikm)


def stream_key(author: PrivateKey, stream_id: bytes, epoch: int) -> bytes:
    """The key of `stream_id`'s epoch `epoch`, which only its author can derive."""
    return _hkdf(author.secret, stream_id, _STREAM_KEY_INFO + epoch.to_bytes(4, "big"))


@lru_cache(maxsize=1024)
def _aead(key: bytes) -> AESGCM:
    # Making the cipher object costs as much as sealing a small record; a stream's key
    # seals and opens every message of its epoch.
    return AESGCM(key)


def seal_payload(key: bytes, header: bytes, plaintext: bytes) -> bytes:
    """``nonce | ciphertext | tag`` of `plaintext`, bound to the message's `header`."""
    nonce = keccak256(_NONCE_DOMAIN + key + header + plaintext)[:NONCE_SIZE]
    return nonce + _aead(key).encrypt(nonce, plaintext, header)


def open_payload(key: bytes, header: bytes, sealed: bytes) -> bytes | None:
    """The plaintext of a sealed payload; None if it does not open with `key`."""
    if len(sealed) < NONCE_SIZE + TAG_SIZE or len(key) != KEY_SIZE:
        return None
    try:
        return _aead(key).decrypt(sealed[:NONCE_SIZE], sealed[NONCE_SIZE:], header)
    except InvalidTag:
        return None


def public_bytes(key: X25519PublicKey | X25519PrivateKey) -> bytes:
    public = key.public_key() if isinstance(key, X25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _wrap_secret(shared: bytes, stream_id: bytes, epoch: int, eph: bytes, sub: bytes) -> bytes:
    return _hkdf(shared, stream_id, _WRAP_INFO + epoch.to_bytes(4, "big") + eph + sub)


def wrap_key(
    stream_id: bytes, epoch: int, key: bytes, subscribers: Iterable[X25519PublicKey]
) -> KeyGrant:
    """`key` wrapped for each subscriber, against a fresh ephemeral key."""
    ephemeral = X25519PrivateKey.generate()
    eph = public_bytes(ephemeral)
    aad = stream_id + epoch.to_bytes(4, "big")
    wraps = []
    for subscriber in subscribers:
        sub = public_bytes(subscriber)
        secret = _wrap_secret(ephemeral.exchange(subscriber), stream_id, epoch, eph, sub)
        wraps.append(KeyWrap(sub, AESGCM(secret).encrypt(_ZERO_NONCE, key, aad)))
    if len(wraps) > MAX_WRAPS:
        raise ValueError(f"one keys message wraps for at most {MAX_WRAPS} subscribers")
    return KeyGrant(eph, tuple(wraps))


def unwrap_key(
    grant: KeyGrant, stream_id: bytes, epoch: int, subscriber: X25519PrivateKey
) -> bytes | None:
    """The key `grant` wraps for `subscriber`; None if it wraps none for it, or if
    the wrap does not open (`ValueError`: the wrap names this subscriber but is not)."""
    sub = public_bytes(subscriber)
    wrap = next((w for w in grant.wraps if w.subscriber == sub), None)
    if wrap is None:
        return None
    try:
        shared = subscriber.exchange(X25519PublicKey.from_public_bytes(grant.ephemeral))
        secret = _wrap_secret(shared, stream_id, epoch, grant.ephemeral, sub)
        return AESGCM(secret).decrypt(
            _ZERO_NONCE, wrap.wrapped, stream_id + epoch.to_bytes(4, "big")
        )
    except (InvalidTag, ValueError):
        raise ValueError("the key wrapped for this subscriber does not open") from None
