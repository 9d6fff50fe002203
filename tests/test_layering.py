"""The layers of DESIGN.md: an import never points up the table.

Each package lists what it may import, as DESIGN.md's table says; the few
deviations the code has are listed with the reason, so a new one fails here.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Final

import m2mpay

ROOT: Final = Path(m2mpay.__file__).parent

# The exception tree, which every layer raises from.
_LEAVES: Final = frozenset({"errors"})

ALLOWED: Final[dict[str, frozenset[str]]] = {
    "crypto": frozenset(),
    "chain": frozenset({"crypto"}),
    "channel": frozenset({"crypto"}),
    "wire": frozenset({"crypto", "channel"}),
    "store": frozenset({"channel"}),
    "node": frozenset({"crypto", "chain", "channel", "wire", "store"}),
    # The watcher defines no tower interface of its own: it implements node.watch's
    # `Watchtower` and feeds it from a `Node` (watcher/feed.py).
    "watcher": frozenset({"chain", "channel", "store", "crypto", "node", "asgi"}),
    "stream": frozenset({"node", "crypto", "channel", "store"}),
    # The SDK speaks HTTP to a node; it shares only keys and the error tree.
    "client": frozenset({"crypto"}),
    "asgi": frozenset(),
    "gateway": frozenset({"node", "stream", "crypto", "chain", "channel", "wire", "store", "asgi"}),
    "devices": frozenset({"gateway", "stream", "crypto", "client"}),
    # Scenarios play the machines through the SDK and the daemons' processes; the stage
    # hosts the chain and the malicious car's owner uses the chain directly, as an
    # attacker would.
    "scenarios": frozenset({"client", "devices", "crypto", "chain", "stream", "bench", "watcher"}),
    "bench": frozenset(
        {
            "chain",
            "channel",
            "crypto",
            "node",
            "store",
            "stream",
            "watcher",
            "wire",
            "client",
            "gateway",
            "asgi",
        }
    ),
    # Drives the benchmarks' process drivers and reads the truth from the chain.
    "torture": frozenset({"bench", "chain", "crypto", "watcher"}),
}
TOP: Final = frozenset({"cli", "__main__", "__init__"})  # may import everything


def _layer(path: Path) -> str:
    return path.relative_to(ROOT).parts[0].removesuffix(".py")


def _imports(source: Path) -> set[str]:
    layers: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(), str(source))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        layers.update(n.split(".")[1] for n in names if n.startswith("m2mpay."))
    return layers


def test_every_package_of_ours_has_a_row() -> None:
    packages = {_layer(p) for p in ROOT.rglob("*.py")} - TOP - _LEAVES
    assert packages == set(ALLOWED)


def test_no_import_points_up_the_table() -> None:
    offending: dict[str, list[str]] = {}
    for source in sorted(ROOT.rglob("*.py")):
        layer = _layer(source)
        if layer in TOP or layer in _LEAVES:
            continue
        wrong = _imports(source) - ALLOWED[layer] - _LEAVES - {layer}
        if wrong:
            offending[str(source.relative_to(ROOT))] = sorted(wrong)
    assert offending == {}


def test_the_node_layer_never_imports_the_watcher() -> None:
    sources = sorted((ROOT / "node").glob("*.py"))
    assert ROOT / "node" / "watch.py" in sources
    assert {s.name for s in sources if "watcher" in _imports(s)} == set()
