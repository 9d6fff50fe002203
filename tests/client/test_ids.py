"""One rule for ids on the command line (`m2mpay.cli.remote.id_of`): a whole id as
given, else the one known id a prefix starts, with or without 0x, in any case; an
unknown or ambiguous prefix is one line saying how many ids it matched of how many."""

from __future__ import annotations

import pytest

from m2mpay.cli.remote import ADDRESS_LENGTH, id_of, resolve_id
from m2mpay.errors import M2MPayError

DEVICES = [
    "0xAb5801a7D398351b8bE11C439e05C5B3259aeC9B",
    "0xab71Fd0c2dC4Cf43A0eD4a2b0e2c4fE8a1d1A2b3",
    "0x1234567890AbcdEF1234567890aBcdef12345678",
]


def test_a_unique_prefix_names_the_id_in_any_case_with_or_without_0x() -> None:
    assert resolve_id("0xab58", DEVICES, "device") == DEVICES[0]
    assert resolve_id("AB71", DEVICES, "device") == DEVICES[1]
    assert resolve_id("0X1234", DEVICES, "device") == DEVICES[2]
    assert resolve_id(DEVICES[2].lower(), DEVICES, "device") == DEVICES[2]


def test_an_ambiguous_prefix_says_how_many_it_matched() -> None:
    with pytest.raises(M2MPayError, match=r"^2 devices start with 0xab: give more of the id$"):
        resolve_id("0xab", DEVICES, "device")


def test_an_unknown_prefix_says_of_how_many_and_where_to_see_them() -> None:
    with pytest.raises(M2MPayError) as raised:
        resolve_id("0xff", DEVICES, "device")
    assert str(raised.value) == (
        "no device starts with 0xff, of the node's 3 (`m2mpay device list`)"
    )


async def test_a_whole_id_is_not_looked_up_and_a_prefix_is() -> None:
    asked: list[str] = []

    async def listed() -> list[str]:
        asked.append("devices")
        return DEVICES

    whole = DEVICES[1]
    assert await id_of(whole, "device", listed, length=ADDRESS_LENGTH) == whole
    assert asked == []
    assert await id_of("0x1234", "device", listed, length=ADDRESS_LENGTH) == DEVICES[2]
    assert asked == ["devices"]
    # A device's whole id is shorter than a channel's: by default it is a prefix.
    assert await id_of(whole.lower(), "channel", listed) == whole
