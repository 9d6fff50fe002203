"""Private keys on secp256k1 (coincurve), the identity of every party."""

from __future__ import annotations

import secrets

from coincurve import PrivateKey as _CurveKey

from m2mpay.crypto.address import Address
from m2mpay.crypto.signature import SECP256K1_N, Signature
from m2mpay.errors import CryptoError

__all__ = ["PrivateKey"]


class PrivateKey:
    """A secp256k1 signing key with its address.

    `repr` never shows the secret; `secret` is there for keystores and for
    handing the key to eth-account when signing transactions.
    """

    __slots__ = ("_address", "_key")

    def __init__(self, secret: bytes) -> None:
        if len(secret) != 32 or not 0 < int.from_bytes(secret, "big") < SECP256K1_N:
            raise CryptoError("private key must be 32 bytes in (0, n)")
        self._key = _CurveKey(secret)
        self._address = Address.from_public_key(self._key.public_key.format(compressed=False))

    @classmethod
    def generate(cls) -> PrivateKey:
        while True:
            secret = secrets.token_bytes(32)
            if 0 < int.from_bytes(secret, "big") < SECP256K1_N:
                return cls(secret)

    @classmethod
    def from_hex(cls, text: str) -> PrivateKey:
        body = text[2:] if text[:2] in ("0x", "0X") else text
        try:
            return cls(bytes.fromhex(body))
        except ValueError:
            raise CryptoError("private key is not 64 hex digits") from None

    @property
    def address(self) -> Address:
        return self._address

    @property
    def secret(self) -> bytes:
        return self._key.secret

    def sign_digest(self, digest: bytes) -> Signature:
        """Sign a 32-byte digest (already hashed, e.g. an EIP-712 digest).

        libsecp256k1 always produces low-s signatures, so the result is valid
        for the contracts as it is.
        """
        if len(digest) != 32:
            raise CryptoError("digest must be 32 bytes")
        raw = self._key.sign_recoverable(digest, hasher=None)
        return Signature(raw[:64] + bytes([raw[64] + 27]))

    def __repr__(self) -> str:
        return f"PrivateKey(address={self._address.checksum})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PrivateKey) and other.secret == self.secret

    def __hash__(self) -> int:
        return hash(self._address)
