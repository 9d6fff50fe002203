"""Every command the README shows is run by a test, as written.

`test_every_block_is_run_or_says_why_not` holds the README to it: each `sh` and
`python` block names the test that runs it (a name some `tests/test_readme_*.py`
asks `blocks_named` for) or says why none does (`untested: …`), so a command added
to the README without a test fails here. The other tests run the shell blocks outside
the quickstart (`tests/test_readme_quickstart.py`) in a fresh terminal each
(`tests/readme_blocks.py`), on the embedded chain and a private Anvil, and check
that each did what the README says it does."""

from __future__ import annotations

import ast
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from m2mpay.bench.daemons import NodeProcess
from tests.readme_blocks import (
    ROOT,
    Block,
    Terminal,
    blocks_named,
    free_port,
    readme_blocks,
    terminal,
)
from tests.store.conftest import postgres_url  # noqa: F401 (a fixture: the watcher's store)

# A block in any of these is a command or a program: a test runs it, or it says why not.
RUNNABLE = ("sh", "bash", "shell", "console", "zsh", "python", "py", "python3", "pycon")


def _asked_for() -> set[str]:
    """The block names the README tests pass to `blocks_named`, read from their source."""
    names = set()
    for path in (ROOT / "tests").glob("test_readme_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "blocks_named"
            ):
                names |= {a.value for a in node.args if isinstance(a, ast.Constant)}
    return {str(name) for name in names}


def _problem(block: Block, asked: set[str]) -> str | None:
    where = f"README.md:{block.line} (```{block.language} {block.name or block.untested})"
    if not block.language:
        return f"{where}: a block says its language (```sh, ```python, ```text …)"
    if block.language not in RUNNABLE:
        return None
    if block.untested:
        return None
    if not block.name:
        return f"{where}: name the test that runs it, or say `untested: why`"
    if block.name not in asked:
        return f"{where}: no tests/test_readme_*.py runs the block {block.name!r}"
    return None


def test_every_block_is_run_or_says_why_not() -> None:
    blocks = readme_blocks()
    problems = [p for b in blocks if (p := _problem(b, _asked_for())) is not None]
    assert not problems, "\n".join(problems)
    # What the rule would catch: an untagged block, a named one no test runs.
    sample = "```sh\nm2mpay wallet show\n```\n```sh nobody\nls\n```\n```\nx\n```\n"
    sample += "```console\n$ m2mpay status\n```\n```text\nx\n```\n```sh untested:\nls\n```\n"
    found = [_problem(b, set()) is not None for b in readme_blocks(sample)]
    assert found == [True, True, True, True, False, True]
    # Every runnable block the README has is run by one of the README tests.
    runnable = [b for b in blocks if b.language in RUNNABLE and not b.untested]
    assert {b.name for b in runnable} <= _asked_for()
    assert all(b.untested.strip() for b in blocks if b.language in RUNNABLE and not b.name)


@pytest.fixture
def shell(tmp_path: Path) -> Iterator[Terminal]:
    made = terminal(tmp_path, "shell", {"8402": str(free_port()), "8700": str(free_port())})
    try:
        yield made
    finally:
        made.stop()


@pytest.mark.slow
def test_the_daemon_section_with_a_peer_a_payment_and_a_device(
    shell: Terminal, tmp_path: Path
) -> None:
    (block,) = blocks_named("daemon")
    peer = NodeProcess(tmp_path / "peer", "--chain-dir", str(tmp_path / "home" / ".m2mpay"))

    def peer_ready() -> dict[str, str]:
        """The other node, started once the README's node hosts the chain it joins."""
        if not peer.ready:
            peer.start()
        return peer.ready

    shell.given |= {
        "peer": lambda: peer_ready()["address"],
        "peer-endpoint": lambda: peer_ready()["peer_endpoint"],
        "peer-url": lambda: peer_ready()["url"],
    }
    try:
        shell.run_block(block)
        channel = shell.m2mpay_json("channel", "show", shell.printed("channel"))
        assert channel["peer"] == peer.ready["address"]
        assert channel["sent_total"] == "250"  # `channel pay <channel> 250`
        (offer,) = shell.m2mpay_json("offer", "list")["offers"]
        # The device's terms: energy by the Wh at the charger's price.
        assert (offer["kind"], offer["unit"], offer["price"]) == ("energy", "Wh", str(3 * 10**14))
        (listed,) = shell.m2mpay_json("device", "list")["devices"]
        assert listed["device_id"].lower().startswith(shell.printed("device").lower())
    finally:
        peer.stop()
    said = shell.output()
    assert offer["offer_id"][:40] in said  # `offer publish` printed the offer it made
    assert "paid 0.00000000000000025 M2M in 1 payment(s)" in said


@pytest.mark.slow
def test_using_it_then_the_watcher_on_both_chains(
    shell: Terminal,
    tmp_path: Path,
    postgres_url: str,  # noqa: F811
) -> None:
    # The clone's contracts: what `contracts build` writes (a copy here, so the tree
    # under test is only read).
    contracts = shutil.copytree(ROOT / "contracts", tmp_path / "contracts")
    shell.env["M2MPAY_CONTRACTS_DIR"] = str(contracts)
    shell.ports["8701"] = str(free_port())
    shell.given["postgresql-url"] = lambda: postgres_url
    (using,) = blocks_named("using-it")
    shell.run_block(using)
    said = shell.output()
    assert "Usage: m2mpay" in said
    assert "eip155:31337" in said  # deployed on the Anvil `ledger anvil` started
    gas = json.loads(next(s for s in said.splitlines() if s.startswith('{"ledger"')))
    assert gas["meets_budget"] is True
    for built in (contracts / "build").glob("*.json"):  # the build is reproducible
        assert built.read_bytes() == (ROOT / "contracts" / "build" / built.name).read_bytes()
    assert "match their sources" in said

    (watcher,) = blocks_named("watcher")
    shell.run_block(watcher)
    on_embedded = shell.m2mpay_json("watcher", "status", "--url", _url(shell, "8700"))
    on_anvil = shell.m2mpay_json("watcher", "status", "--url", _url(shell, "8701"))
    assert on_embedded["chain"] == "eip155:1337"
    assert on_anvil["chain"] == "eip155:31337"
    assert on_anvil["hub"] == shell.printed("hub")


def _url(shell: Terminal, readme_port: str) -> str:
    return f"http://127.0.0.1:{shell.ports[readme_port]}"
