"""The contract mutation runner (tools/mutants, not part of the package) makes the
mutants it says it makes, and only in checks: never in reason strings or comments."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def _runner() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "vyper_mutants", ROOT / "tools" / "mutants" / "vyper_mutants.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


SOURCE = '''\
"""
@notice a docstring with assert x <= y inside
"""
@external
def f(ch: Channel, t: uint256):
    x: uint256 = t + 1  # not a check: never mutated
    assert t <= ch.deposit_a, "Hub: t <= deposit, a == b"
    if msg.sender == ch.a and t != 0:
        pass
'''


def test_mutations_cover_comparisons_booleans_parties_and_dropped_asserts() -> None:
    mutants = list(_runner().mutations_of("Hub", SOURCE))
    got = {(m.line, m.kind, m.after.strip()) for m in mutants}
    assert got == {
        (7, "<= -> <", 'assert t < ch.deposit_a, "Hub: t <= deposit, a == b"'),
        (7, "deposit_a -> deposit_b", 'assert t <= ch.deposit_b, "Hub: t <= deposit, a == b"'),
        (7, "drop assert", "pass"),
        (8, "== -> !=", "if msg.sender != ch.a and t != 0:"),
        (8, "and -> or", "if msg.sender == ch.a or t != 0:"),
        (8, "!= -> ==", "if msg.sender == ch.a and t == 0:"),
        (8, "ch.a -> ch.b", "if msg.sender == ch.b and t != 0:"),
    }
    # Each mutant changes one line and keeps its indentation.
    lines = SOURCE.splitlines()
    for mutant in mutants:
        assert mutant.before == lines[mutant.line - 1]
        indent = len(mutant.before) - len(mutant.before.lstrip())
        assert mutant.after[:indent] == mutant.before[:indent]


def test_the_summary_counts_only_mutants_a_test_could_tell_apart() -> None:
    runner = _runner()
    mutant = runner.Mutant("Hub", 7, "drop assert", "    assert x", "    pass")
    outcomes = [
        runner.Outcome(mutant, status, 1.0)
        for status in ("killed", "killed", "timeout", "survived", "invalid", "equivalent")
    ]
    summary = runner.summarise(outcomes)["Hub"]
    assert (summary["killed"], summary["total"], summary["kill_rate"]) == (3, 4, 75.0)
    assert summary["not_counted"] == {"invalid": 1, "equivalent": 1}
    assert summary["survivors"] == ["Hub.vy:7: drop assert: assert x"]
