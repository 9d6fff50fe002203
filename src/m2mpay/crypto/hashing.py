"""Keccak-256, the hash of Ethereum (not NIST SHA3-256)."""

from __future__ import annotations

from sha3 import keccak_256

__all__ = ["keccak256"]


def keccak256(data: bytes) -> bytes:
    """Return the 32-byte Keccak-256 digest of `data`."""
    return keccak_256(data).digest()  # type: ignore[no-any-return]
