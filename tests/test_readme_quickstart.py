"""The README's quickstart, run as written: two terminals, two node processes on one
embedded chain and a charger device process, ending in a countersigned receipt and
exact balances on chain.

The quickstart's ```` ```sh terminal-N ```` blocks are two terminals, run as
`tests/readme_blocks.py` runs a block: line by line, `&` in the background, a `<name>`
read from what the terminal printed, the README's ports (8402, 8403: "use any free
port, the same in every URL") free ones."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.readme_blocks import Terminal, blocks_named, free_port, terminal

pytestmark = pytest.mark.slow
PORTS = ("8402", "8403")


@pytest.fixture
def terminals(tmp_path: Path) -> Iterator[dict[str, Terminal]]:
    ports = {readme: str(free_port()) for readme in PORTS}
    made = {name: terminal(tmp_path, name, ports) for name in ("terminal-1", "terminal-2")}
    try:
        yield made
    finally:
        for shell in reversed(made.values()):
            shell.stop()


def test_the_readme_quickstart_ends_countersigned_with_exact_balances(
    terminals: dict[str, Terminal],
) -> None:
    blocks = blocks_named("terminal-1", "terminal-2")
    assert [b.name for b in blocks] == ["terminal-1", "terminal-2", "terminal-1"]
    for block in blocks:
        terminals[block.name].run_block(block)

    charger, car = terminals["terminal-1"], terminals["terminal-2"]
    session = car.printed("session")
    # The car's owner is told what to do next, with an id the commands take back.
    assert f"follow it: m2mpay session watch {session[:12]}" in car.output()
    bought = car.m2mpay_json("session", "show", session)
    sold = charger.m2mpay_json("session", "show", session)
    assert bought["role"] == "buyer"
    assert sold["role"] == "seller"
    for view in (bought, sold):
        assert view["countersigned"] is True
        assert view["stop_reason"]
    receipt = car.m2mpay_json("session", "receipt", session)
    signed_by_charger = charger.m2mpay_json("session", "receipt", session)
    # One statement, each side's signature: the countersignature is the other's.
    assert {**receipt, "signature": ""} == {**signed_by_charger, "signature": ""}
    assert receipt["signature"] != signed_by_charger["signature"]
    assert bought["peer_receipt"] == signed_by_charger
    assert sold["peer_receipt"] == receipt
    forward = receipt["forward"]
    assert isinstance(forward, dict)
    units, price = forward["units"], int(str(bought["price"]))
    assert units == 30  # the README's --target-units
    assert int(forward["value"]) == int(forward["paid"]) == units * price

    def token_on_chain(terminal: Terminal) -> int:
        wallet = terminal.m2mpay_json("wallet", "show")
        balances = wallet["balances"]
        assert isinstance(balances, list)
        (token,) = [b for b in balances if b["symbol"] == "M2M"]
        assert int(token["in_channels"]) == 0  # closed: everything is back on chain
        return int(token["on_chain"])

    faucet = 1000 * 10**18  # `wallet faucet`'s default, as the README says
    assert token_on_chain(car) == faucet - units * price
    assert token_on_chain(charger) == units * price
    assert "30 Wh delivered" in charger.output() or "stopped: 30 Wh" in charger.output()
