"""The layers of ARCHITECTURE.md: the test reads its table, so the document and the
code cannot drift. Every package has a row, imports only what its row lists, and a
row lists only packages above it in the table (an import never points up).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Final

import m2mpay

ROOT: Final = Path(m2mpay.__file__).parent
DOCUMENT: Final = ROOT.parents[1] / "ARCHITECTURE.md"

# The exception tree, which every layer raises from.
_LEAVES: Final = frozenset({"errors"})
TOP: Final = frozenset({"cli", "__main__", "__init__"})  # may import everything


def _table() -> list[tuple[str, frozenset[str]]]:
    """The layer table's rows, bottom up: (package, what it may import)."""
    text = DOCUMENT.read_text()
    section = text.split("## Layers", 1)[1].split("\n## ", 1)[0]
    rows: list[tuple[str, frozenset[str]]] = []
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not re.fullmatch(r"`[a-z_]+`", cells[0]):
            continue
        rows.append((cells[0].strip("`"), frozenset(re.findall(r"`([a-z_]+)`", cells[2]))))
    return rows


ALLOWED: Final = dict(_table())


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


def test_the_table_is_read_and_lists_each_package_once() -> None:
    rows = [name for name, _ in _table()]
    assert len(rows) == len(set(rows))
    assert {"crypto", "channel", "node", "api", "daemon"} <= set(rows)


def test_a_row_lists_only_packages_below_it() -> None:
    seen: set[str] = set()
    upward: dict[str, list[str]] = {}
    for name, allowed in _table():
        if allowed - seen:
            upward[name] = sorted(allowed - seen)
        seen.add(name)
    assert upward == {}


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
