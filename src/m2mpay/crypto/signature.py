"""65-byte recoverable ECDSA signatures (r, s, v) on secp256k1, as Ethereum uses them."""

from __future__ import annotations

from typing import Final

from coincurve import PublicKey

from m2mpay.crypto.address import Address
from m2mpay.errors import InvalidSignature

__all__ = ["SECP256K1_N", "Signature", "recover_signer"]

SECP256K1_N: Final = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_HALF_N: Final = SECP256K1_N // 2
_SIGNATURE_LENGTH: Final = 65


class Signature(bytes):
    """r (32 bytes) || s (32 bytes) || v (27 or 28), with s in the lower half of the curve order.

    Constructing one validates the form, so a malleable (high-s) twin of a valid
    signature or a v of 0/1 is refused at the boundary, exactly as the contracts
    refuse them.
    """

    __slots__ = ()

    def __new__(cls, value: bytes | str) -> Signature:
        if isinstance(value, Signature):
            return value
        if isinstance(value, str):
            text = value[2:] if value[:2] in ("0x", "0X") else value
            try:
                value = bytes.fromhex(text)
            except ValueError:
                raise InvalidSignature("signature is not hexadecimal") from None
        raw = bytes(value)
        if len(raw) != _SIGNATURE_LENGTH:
            raise InvalidSignature(f"signature must be 65 bytes, got {len(raw)}")
        r = int.from_bytes(raw[:32], "big")
        s = int.from_bytes(raw[32:64], "big")
        if not 0 < r < SECP256K1_N:
            raise InvalidSignature("signature r is out of range")
        if not 0 < s <= _HALF_N:
            raise InvalidSignature("signature s is zero or in the upper half (malleable)")
        if raw[64] not in (27, 28):
            raise InvalidSignature(f"signature v must be 27 or 28, got {raw[64]}")
        return super().__new__(cls, raw)

    @classmethod
    def from_parts(cls, r: int, s: int, v: int) -> Signature:
        """Build from integers; refuses what the constructor refuses."""
        if not (0 <= r < 2**256 and 0 <= s < 2**256 and 0 <= v < 256):
            raise InvalidSignature("signature part out of range")
        return cls(r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([v]))

    @property
    def r(self) -> bytes:
        return bytes(self[:32])

    @property
    def s(self) -> bytes:
        return bytes(self[32:64])

    @property
    def v(self) -> int:
        return self[64]

    def __repr__(self) -> str:
        return f"Signature(0x{self.hex()})"


def recover_signer(digest: bytes, signature: Signature) -> Address:
    """The address whose key produced `signature` over the 32-byte `digest`."""
    if len(digest) != 32:
        raise InvalidSignature("digest must be 32 bytes")
    recoverable = signature[:64] + bytes([signature[64] - 27])
    try:
        public_key = PublicKey.from_signature_and_message(recoverable, digest, hasher=None)
    except Exception as exc:  # coincurve raises plain Exception on bad points
        raise InvalidSignature(f"signature does not recover to a key: {exc}") from None
    return Address.from_public_key(public_key.format(compressed=False))
