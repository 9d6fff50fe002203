"""The node layer stays below the watcher: it defines `Watchtower`, never imports one."""

from __future__ import annotations

import ast
from pathlib import Path

import m2mpay.node

NODE_DIR = Path(m2mpay.node.__file__).parent


def _imported_modules(source: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(), str(source))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            modules.add(node.module)
    return modules


def test_no_module_of_the_node_layer_imports_the_watcher() -> None:
    sources = sorted(NODE_DIR.glob("*.py"))
    assert NODE_DIR / "watch.py" in sources
    offending = {
        source.name: sorted(m for m in _imported_modules(source) if m.startswith("m2mpay.watcher"))
        for source in sources
    }
    assert {name: found for name, found in offending.items() if found} == {}
