"""Ethereum addresses as a validated bytes type."""

from __future__ import annotations

from functools import lru_cache
from typing import Final

from eth_typing import ChecksumAddress, HexAddress, HexStr

from m2mpay.crypto.hashing import keccak256
from m2mpay.errors import InvalidAddress

__all__ = ["ZERO_ADDRESS", "Address"]

_ADDRESS_LENGTH: Final = 20


class Address(bytes):
    """A 20-byte account address.

    A subclass of `bytes` so comparisons and dictionary lookups on the payment
    hot path cost what comparing bytes costs; `str()` gives the EIP-55 checksum
    form used on every API.
    """

    __slots__ = ()

    def __new__(cls, value: bytes | str) -> Address:
        if isinstance(value, Address):
            return value
        if isinstance(value, str):
            text = value[2:] if value[:2] in ("0x", "0X") else value
            if len(text) != 2 * _ADDRESS_LENGTH:
                raise InvalidAddress(f"address must be 40 hex digits, got {value!r}")
            try:
                raw = bytes.fromhex(text)
            except ValueError:
                raise InvalidAddress(f"address is not hexadecimal: {value!r}") from None
            if text != text.lower() and text != text.upper():
                # Mixed case claims an EIP-55 checksum: a typo must not pass silently.
                candidate = super().__new__(cls, raw)
                if candidate.checksum[2:] != text:
                    raise InvalidAddress(f"address checksum does not match: {value!r}")
                return candidate
            return super().__new__(cls, raw)
        if isinstance(value, bytes | bytearray | memoryview):
            raw = bytes(value)
            if len(raw) != _ADDRESS_LENGTH:
                raise InvalidAddress(f"address must be 20 bytes, got {len(raw)}")
            return super().__new__(cls, raw)
        raise InvalidAddress(f"not an address: {value!r}")

    @classmethod
    def from_public_key(cls, public_key: bytes) -> Address:
        """The address of a 64-byte (or 65-byte, 0x04-prefixed) uncompressed key."""
        if len(public_key) == 65 and public_key[0] == 4:
            public_key = public_key[1:]
        if len(public_key) != 64:
            raise InvalidAddress("public key must be 64 bytes uncompressed")
        return super().__new__(cls, keccak256(public_key)[12:])

    @property
    def checksum(self) -> ChecksumAddress:
        """EIP-55 mixed-case hex form, with 0x."""
        return _checksum(bytes(self))

    def __str__(self) -> str:
        return self.checksum

    def __repr__(self) -> str:
        return f"Address({self.checksum})"


@lru_cache(maxsize=8192)
def _checksum(raw: bytes) -> ChecksumAddress:
    # A node renders the same few addresses (its own, its peers', the hub's) over and
    # over on every message and log record; the hash behind EIP-55 is worth caching.
    lower = raw.hex()
    digest = keccak256(lower.encode("ascii")).hex()
    mixed = "".join(
        ch.upper() if int(d, 16) >= 8 else ch for ch, d in zip(lower, digest[:40], strict=True)
    )
    return ChecksumAddress(HexAddress(HexStr("0x" + mixed)))


ZERO_ADDRESS: Final = Address(bytes(_ADDRESS_LENGTH))
