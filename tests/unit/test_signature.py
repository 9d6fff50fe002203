"""Signatures and addresses refuse malformed and malleable forms at the boundary."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from m2mpay.crypto import Address, PrivateKey, Signature, recover_signer
from m2mpay.crypto.signature import SECP256K1_N
from m2mpay.errors import CryptoError, InvalidAddress, InvalidSignature


def test_sign_and_recover_round_trip() -> None:
    key = PrivateKey.generate()
    digest = b"\x07" * 32
    signature = key.sign_digest(digest)
    assert len(signature) == 65
    assert signature.v in (27, 28)
    assert recover_signer(digest, signature) == key.address


@settings(max_examples=50)
@given(digest=st.binary(min_size=32, max_size=32))
def test_signatures_are_always_low_s(digest: bytes) -> None:
    signature = PrivateKey.generate().sign_digest(digest)
    assert int.from_bytes(signature.s, "big") <= SECP256K1_N // 2


def test_malleable_twin_is_refused() -> None:
    key = PrivateKey.generate()
    signature = key.sign_digest(b"\x01" * 32)
    r = int.from_bytes(signature.r, "big")
    s = int.from_bytes(signature.s, "big")
    twin_v = 55 - signature.v  # 27 <-> 28
    with pytest.raises(InvalidSignature, match="upper half"):
        Signature.from_parts(r, SECP256K1_N - s, twin_v)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"\x01" * 64, "65 bytes"),
        (b"\x01" * 64 + b"\x00", "v must be 27 or 28"),
        (b"\x00" * 32 + b"\x01" * 32 + b"\x1b", "r is out of range"),
        (b"\x01" * 32 + b"\x00" * 32 + b"\x1b", "s is zero"),
        ("0xzz", "not hexadecimal"),
    ],
)
def test_malformed_signatures_are_refused(raw: bytes | str, message: str) -> None:
    with pytest.raises(InvalidSignature, match=message):
        Signature(raw)


def test_wrong_key_recovers_other_address() -> None:
    signer, other = PrivateKey.generate(), PrivateKey.generate()
    digest = b"\x02" * 32
    assert recover_signer(digest, signer.sign_digest(digest)) != other.address


def test_address_checksum_matches_eip55() -> None:
    # The example addresses of EIP-55.
    for text in (
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
        "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
        "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
    ):
        assert Address(text).checksum == text
        assert Address(text.lower()) == Address(text)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD", "checksum"),
        ("0x1234", "40 hex digits"),
        ("0x" + "g" * 40, "not hexadecimal"),
        (b"\x01" * 19, "20 bytes"),
    ],
)
def test_bad_addresses_are_refused(value: str | bytes, message: str) -> None:
    with pytest.raises(InvalidAddress, match=message):
        Address(value)


def test_private_key_repr_hides_secret() -> None:
    key = PrivateKey.generate()
    assert key.secret.hex() not in repr(key)
    assert str(key.address) in repr(key)


@pytest.mark.parametrize("secret", [bytes(32), SECP256K1_N.to_bytes(32, "big"), b"\x01" * 31])
def test_invalid_private_keys_are_refused(secret: bytes) -> None:
    with pytest.raises(CryptoError):
        PrivateKey(secret)
