"""`m2mpay token create`'s supply, in whole tokens as people write them, parsed exactly.
(The commands against a node: tests/test_readme_market.py.)"""

from __future__ import annotations

import pytest
import typer

from m2mpay.cli.token import parse_supply


def test_supply_is_parsed_exactly() -> None:
    assert parse_supply("2.5", 6) == 2_500_000
    assert parse_supply("7", 0) == 7
    assert parse_supply("0.000000000000000001", 18) == 1
    assert parse_supply("1.50", 1) == 15  # trailing zeros are no extra precision
    with pytest.raises(typer.BadParameter, match="uint256"):
        parse_supply("1" + "0" * 77, 1)
