"""Sealed boxes from buyers against hostile input: `open_sealed` gives the credentials a
real box holds or raises `AccessError("sealed_box")`, whatever the bytes, and an
over-long box is refused by its size before any cryptography, in bounded memory."""

from __future__ import annotations

from typing import Final

import pytest
from hypothesis import given
from hypothesis import strategies as st

from m2mpay.access.sealed import (
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
from tests.fuzz.hostile import FUZZ, TEN_MB, peak_memory, truncations

pytestmark = pytest.mark.timeout(60)

SELLER: Final = PrivateKey(bytes(31) + b"\x09")
CONTEXT: Final = sealed_context(Address(b"\x11" * 20), "plug-1", b"\x05" * 32)
CREDENTIALS: Final = Credentials("buyer-fuzz", "a-Buyers-password-1")


def _opens_or_refuses(data: bytes) -> None:
    try:
        opened = open_sealed(access_private_key(SELLER), data, CONTEXT)
    except AccessError as error:
        assert error.code == "sealed_box"  # noqa: PT017 (any bytes: either outcome)
        return
    assert isinstance(opened, Credentials)


@given(data=st.binary(max_size=MAX_SEALED_SIZE + 40))
@FUZZ
def test_any_bytes_open_or_are_refused_as_sealed_box(data: bytes) -> None:
    _opens_or_refuses(data)


@given(data=st.data())
@FUZZ
def test_a_real_box_with_any_bytes_changed_opens_only_unchanged(data: st.DataObject) -> None:
    sealed = seal(access_public_key(SELLER), CREDENTIALS, CONTEXT)
    start = data.draw(st.integers(0, len(sealed) - 1))
    patch = data.draw(st.binary(min_size=1, max_size=16))
    changed = sealed[:start] + patch + sealed[start + len(patch) :]
    if changed == sealed:
        assert open_sealed(access_private_key(SELLER), changed, CONTEXT) == CREDENTIALS
        return
    with pytest.raises(AccessError) as caught:
        open_sealed(access_private_key(SELLER), changed, CONTEXT)
    assert caught.value.code == "sealed_box"


def test_every_prefix_of_a_real_box_is_refused() -> None:
    sealed = seal(access_public_key(SELLER), CREDENTIALS, CONTEXT)
    for prefix in truncations(sealed):
        with pytest.raises(AccessError):
            open_sealed(access_private_key(SELLER), prefix, CONTEXT)


def test_a_ten_megabyte_box_is_refused_by_its_size_in_bounded_memory() -> None:
    huge = bytes([1]) + b"\x00" * TEN_MB
    with pytest.raises(AccessError, match="bytes"):
        open_sealed(access_private_key(SELLER), huge, CONTEXT)
    # Nothing is copied or decrypted: what it allocates does not grow with the input.
    assert peak_memory(lambda: open_sealed(access_private_key(SELLER), huge, CONTEXT)) < 64_000
