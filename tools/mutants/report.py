"""Kill rates per target from the last `mutmut run` (run from the project root).

A mutant no test reaches ("no tests") counts as surviving: it is a missing test just
the same. Mutants not run (skipped, interrupted, not checked) are not counted.

Survivors are split in two: those that change only the text of a message (a string
literal rewritten, or replaced by None: refusal reasons, stop reasons shown to a
person) and the rest, which change what the code decides. The second kill rate
leaves the message-text mutants out; every logic survivor in a money rule is a
missing test.

    python tools/mutants/report.py [--survivors] [--json FILE]
"""

from __future__ import annotations

import argparse
import ast
import difflib
import io
import json
import re
import subprocess
import sys
import textwrap
import tokenize
from collections import Counter
from functools import lru_cache
from pathlib import Path

TARGETS = {
    "channel": "m2mpay.channel.",
    "stream machine": "m2mpay.stream.",
    "watcher core": "m2mpay.watcher.core.",
}
KILLED = {"killed", "timeout", "caught by type check", "segfault"}
SURVIVED = {"survived", "no tests", "suspicious"}
LINE = re.compile(r"^\s*(?P<name>\S+): (?P<status>.+?)\s*$")


def _results() -> list[tuple[str, str]]:
    mutmut = Path(sys.executable).with_name("mutmut")
    out = subprocess.run(
        [str(mutmut), "results", "--all", "true"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = []
    for line in out.splitlines():
        match = LINE.match(line)
        if match:
            rows.append((match["name"], match["status"]))
    return rows


def _function(mutant: str) -> str:
    return mutant.rsplit("__mutmut_", 1)[0]


@lru_cache(maxsize=64)
def _mutated_functions(module: str) -> dict[str, str]:
    """Source of every function in mutmut's copy of `module`, by name."""
    path = Path("mutants/src", *module.split(".")).with_suffix(".py")
    lines = path.read_text().splitlines(keepends=True)
    return {
        node.name: "".join(lines[node.lineno - 1 : node.end_lineno])
        for node in ast.walk(ast.parse("".join(lines)))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }


def _tokens(source: str) -> list[tuple[int, str]]:
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT}
    return [
        (t.type, t.string)
        for t in tokenize.generate_tokens(io.StringIO(source).readline)
        if t.type not in skip
    ]


def _is_message_text(mutant: str) -> bool:
    """Whether the mutant changes string literals only (or turns one into None)."""
    module, _, name = mutant.rpartition(".")
    functions = _mutated_functions(module)
    orig_name = _function(name) + "__mutmut_orig"
    original = functions.get(orig_name)
    mutated = functions.get(name)
    if original is None or mutated is None:
        return False
    try:
        before = _tokens(textwrap.dedent(original))
        after = _tokens(textwrap.dedent(mutated.replace(name, orig_name, 1)))
    except (tokenize.TokenError, SyntaxError):
        return False
    changes = [
        op
        for op in difflib.SequenceMatcher(a=before, b=after, autojunk=False).get_opcodes()
        if op[0] != "equal"
    ]
    for tag, i1, i2, j1, j2 in changes:
        if tag != "replace" or i2 - i1 != j2 - j1:
            return False
        for old, new in zip(before[i1:i2], after[j1:j2], strict=True):
            if old[0] != tokenize.STRING or new not in ((tokenize.STRING, new[1]), (1, "None")):
                return False
    return bool(changes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--survivors", action="store_true", help="list every survivor")
    parser.add_argument("--json", type=Path, help="also write the summary here")
    args = parser.parse_args(argv)
    rows = _results()
    if not rows:
        print("no mutmut results: run `mutmut run` first", file=sys.stderr)
        return 1
    summary: dict[str, dict[str, object]] = {}
    for target, prefix in TARGETS.items():
        mine = [(n, s) for n, s in rows if n.startswith(prefix)]
        killed = sum(s in KILLED for _, s in mine)
        by_mypy = sum(s == "caught by type check" for _, s in mine)
        survivors = [n for n, s in mine if s in SURVIVED]
        counted = killed + len(survivors)
        text_only = {n for n in survivors if _is_message_text(n)}
        text_killed = sum(s in KILLED and _is_message_text(n) for n, s in mine)
        logic_total = counted - len(text_only) - text_killed
        survivors = [n for n in survivors if n not in text_only]
        summary[target] = {
            "killed": killed,
            "killed_by_tests": killed - by_mypy,
            "caught_by_mypy": by_mypy,
            "total": counted,
            "kill_rate": round(100 * killed / counted, 1) if counted else None,
            "logic_killed": killed - text_killed,
            "logic_total": logic_total,
            "logic_kill_rate": (
                round(100 * (killed - text_killed) / logic_total, 1) if logic_total else None
            ),
            "message_text_survivors": len(text_only),
            "not_run": len(mine) - counted,
            "survivors_by_function": dict(Counter(_function(n) for n in survivors).most_common()),
        }
        if args.survivors:
            summary[target]["survivors"] = survivors
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    for target, s in summary.items():
        print(
            f"{target}: {s['killed']}/{s['total']} mutants killed ({s['kill_rate']} %); "
            f"without message-text mutants {s['logic_killed']}/{s['logic_total']} "
            f"({s['logic_kill_rate']} %); {s['killed_by_tests']} killed by tests, "
            f"{s['caught_by_mypy']} rejected by mypy"
        )
        names = s.get("survivors", [])
        if args.survivors and isinstance(names, list):
            for name in names:
                print(f"    survived: {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
