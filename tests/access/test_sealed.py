"""Credentials sealed to the seller: they open only with the seller's access key and the
purchase's own context; anything else is refused with the code `sealed_box`."""

from __future__ import annotations

import string
from typing import Final

import pytest
from hypothesis import given
from hypothesis import strategies as st

from m2mpay.access.sealed import (
    ACCESS_KEY_SIZE,
    MAX_SEALED_SIZE,
    Credentials,
    access_private_key,
    access_public_key,
    open_sealed,
    seal,
    sealed_context,
)
from m2mpay.crypto import Address, PrivateKey
from m2mpay.errors import AccessError

SELLER: Final = PrivateKey(bytes(31) + b"\x05")
OTHER_SELLER: Final = PrivateKey(bytes(31) + b"\x06")
BUYER: Final = Address(b"\x11" * 20)
OTHER_BUYER: Final = Address(b"\x22" * 20)
CONTEXT: Final = sealed_context(BUYER, "plug-1", b"\x01" * 32)
CREDENTIALS: Final = Credentials("buyer-0001", "s3cret-Passw0rd!xyz")

usernames = st.text(string.ascii_letters + string.digits + "_.-", min_size=3, max_size=64)
passwords = st.text(
    "".join(chr(c) for c in range(0x21, 0x7F)), min_size=16, max_size=128
)  # fmt: skip


def _sealed() -> bytes:
    return seal(access_public_key(SELLER), CREDENTIALS, CONTEXT)


def _refused(sealed: bytes, *, key: PrivateKey = SELLER, context: bytes = CONTEXT) -> AccessError:
    with pytest.raises(AccessError) as caught:
        open_sealed(access_private_key(key), sealed, context)
    assert caught.value.code == "sealed_box"
    assert CREDENTIALS.password not in str(caught.value)
    return caught.value


def test_a_sealed_box_opens_with_the_sellers_key_and_its_context() -> None:
    assert open_sealed(access_private_key(SELLER), _sealed(), CONTEXT) == CREDENTIALS


def test_two_seals_of_the_same_credentials_differ() -> None:
    assert _sealed() != _sealed()  # a fresh ephemeral key each time


def test_another_sellers_key_does_not_open_it() -> None:
    _refused(_sealed(), key=OTHER_SELLER)


@pytest.mark.parametrize(
    "context",
    [
        sealed_context(OTHER_BUYER, "plug-1", b"\x01" * 32),
        sealed_context(BUYER, "plug-2", b"\x01" * 32),
        sealed_context(BUYER, "plug-1", b"\x02" * 32),
        b"",
    ],
    ids=["other-buyer", "other-feed", "other-session", "empty"],
)
def test_another_purchases_context_does_not_open_it(context: bytes) -> None:
    _refused(_sealed(), context=context)


def test_each_byte_flipped_is_refused() -> None:
    sealed = _sealed()
    for index in range(len(sealed)):
        for bit in (0x01, 0x80):
            changed = bytearray(sealed)
            changed[index] ^= bit
            _refused(bytes(changed))


def test_every_truncation_is_refused() -> None:
    sealed = _sealed()
    for size in range(len(sealed)):
        _refused(sealed[:size])


@pytest.mark.parametrize("size", [MAX_SEALED_SIZE + 1, 10_000, 10_000_000])
def test_over_long_input_is_refused_by_its_size(size: int) -> None:
    error = _refused(b"\x01" * size)
    assert "bytes" in error.message


def test_an_appended_byte_is_refused() -> None:
    _refused(_sealed() + b"\x00")


def test_an_unknown_version_is_refused() -> None:
    error = _refused(b"\x02" + _sealed()[1:])
    assert "version" in error.message


def test_a_low_order_ephemeral_key_is_refused() -> None:
    # The all-zero point gives an all-zero shared secret, which X25519 refuses.
    sealed = _sealed()
    _refused(sealed[:1] + bytes(ACCESS_KEY_SIZE) + sealed[1 + ACCESS_KEY_SIZE :])


def _seal_raw(plain: bytes) -> bytes:
    """A box around any bytes, as a buyer with its own encoder could make one."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from m2mpay.access import sealed as module

    ephemeral_key = X25519PrivateKey.generate()
    ephemeral = module._raw_public(ephemeral_key.public_key())
    seller = access_public_key(SELLER)
    shared = ephemeral_key.exchange(access_private_key(SELLER).public_key())
    cipher, nonce = module._box_cipher(shared, ephemeral, seller)
    return bytes([module.SEALED_VERSION]) + ephemeral + cipher.encrypt(nonce, plain, CONTEXT)


@pytest.mark.parametrize(
    "plain",
    [
        b"\x02ab" + b"p" * 20,  # a username too short
        b"\x0abuyer-0001" + b"p" * 15,  # a password too short
        b"\x0abuyer-0001" + b"with a space in it!",  # a space in the password
        b"\x0abuyer\xff0001" + b"p" * 20,  # not ASCII
        b"\x0abuyer/0001" + b"p" * 20,  # a slash in the username
        b"\x40buyer-0001" + b"p" * 20,  # a username longer than what follows
        b"\x0abuyer-0001" + b"p\x00" * 10,  # a NUL in the password
    ],
    ids=[
        "short-user",
        "short-password",
        "space",
        "not-ascii",
        "slash",
        "length-past-end",
        "nul",
    ],
)
def test_bad_credentials_inside_a_good_box_are_refused(plain: bytes) -> None:
    assert len(plain) >= 20  # past the size check: the box opens, its content is refused
    error = _refused(_seal_raw(plain))
    assert "malformed" in error.message


def test_the_raw_box_of_good_credentials_opens() -> None:
    # The helper above is a faithful sealer: the refusals are about the content.
    plain = b"\x0abuyer-0001" + b"s3cret-Passw0rd!xyz"
    assert open_sealed(access_private_key(SELLER), _seal_raw(plain), CONTEXT) == CREDENTIALS


@given(username=usernames, password=passwords, context=st.binary(max_size=200))
def test_any_valid_credentials_round_trip_in_any_context(
    username: str, password: str, context: bytes
) -> None:
    credentials = Credentials(username, password)
    sealed = seal(access_public_key(SELLER), credentials, context)
    assert len(sealed) <= MAX_SEALED_SIZE
    assert open_sealed(access_private_key(SELLER), sealed, context) == credentials


@given(data=st.binary(max_size=400))
def test_any_bytes_open_to_nothing(data: bytes) -> None:
    with pytest.raises(AccessError) as caught:
        open_sealed(access_private_key(SELLER), data, CONTEXT)
    assert caught.value.code == "sealed_box"


@pytest.mark.parametrize(
    ("username", "password", "code"),
    [
        ("ab", "p" * 16, "bad_username"),
        ("a" * 65, "p" * 16, "bad_username"),
        ("buyer one", "p" * 16, "bad_username"),
        ("buyer#1", "p" * 16, "bad_username"),
        ("buyer", "p" * 15, "bad_password"),
        ("buyer", "p" * 129, "bad_password"),
        ("buyer", "pass word with spaces", "bad_password"),
        ("buyer", "pässwörd-is-not-ascii", "bad_password"),
        ("buyer", "password\x00with-a-nul", "bad_password"),
    ],
)
def test_bad_credentials_are_refused_when_made(username: str, password: str, code: str) -> None:
    with pytest.raises(AccessError) as caught:
        Credentials(username, password)
    assert caught.value.code == code
    assert password not in str(caught.value)


def test_repr_and_str_hide_the_password() -> None:
    for shown in (repr(CREDENTIALS), str(CREDENTIALS), f"{CREDENTIALS}", repr([CREDENTIALS])):
        assert CREDENTIALS.password not in shown
        assert "buyer-0001" in shown


def test_generated_credentials_are_valid_and_fresh() -> None:
    first, second = Credentials.generate(), Credentials.generate()
    assert first != second
    assert first.username.startswith("buyer-")
    assert len(first.password) == 32
    assert Credentials(first.username, first.password) == first


def test_the_access_key_is_derived_deterministically_per_node_key() -> None:
    public = access_public_key(SELLER)
    assert len(public) == ACCESS_KEY_SIZE
    assert access_public_key(PrivateKey(SELLER.secret)) == public  # a restart: same key
    assert access_public_key(OTHER_SELLER) != public
    # Derived, not the node key's own bytes: a domain of its own.
    assert public not in (SELLER.secret, bytes(SELLER.address))


def test_a_seller_key_of_the_wrong_size_is_refused() -> None:
    with pytest.raises(AccessError) as caught:
        seal(b"\x01" * 31, CREDENTIALS, CONTEXT)
    assert caught.value.code == "sealed_box"


def test_the_context_is_unambiguous() -> None:
    # Length prefixes: moving a byte from one part to the next changes the context.
    assert sealed_context(BUYER, "ab", b"c") != sealed_context(BUYER, "a", b"bc")


def test_sealing_to_a_low_order_key_is_refused() -> None:
    with pytest.raises(AccessError) as caught:
        seal(bytes(ACCESS_KEY_SIZE), CREDENTIALS, CONTEXT)
    assert caught.value.code == "sealed_box"
