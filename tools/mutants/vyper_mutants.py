"""Mutation testing of the contracts' checks through the conformance suite.

mutmut cannot read Vyper, so this applies one textual mutation at a time to the
checks (`assert`, `if`, `elif` lines) of a contract: a comparison flipped (`<` and
`<=`, `>` and `>=`, `==` and `!=`), `and` and `or` swapped, an `assert` dropped,
party a and party b swapped. Each mutant is compiled with the pinned Vyper into a
scratch copy of `contracts/` and the conformance suite runs against it on the
embedded ledger only, through `M2MPAY_CONTRACTS_DIR` (the same switch the artifact
tests use), stopping at the first failure. A mutant that does not compile, or
compiles to the original bytecode, is not counted: no test could tell it apart.

    python tools/mutants/vyper_mutants.py [--target ChannelHub] [--lines 181,205] [--json FILE]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tokenize
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TARGETS = ("ChannelHub", "Token")
CHECK_LINE = re.compile(r"^\s*(assert|if|elif)\b")
FLIPS = {"<": "<=", "<=": "<", ">": ">=", ">=": ">", "==": "!=", "!=": "=="}
BOOLEANS = {"and": "or", "or": "and"}
# Names that exist once per party: swapping them in a check is the "rule tested for
# party a only" mistake.
PARTY_PAIRS = (("ch.a", "ch.b"), ("transferred_a", "transferred_b"), ("deposit_a", "deposit_b"))
PYTEST_ARGS = ("-x", "-q", "-p", "no:cacheprovider", "-k", "embedded and not rpc")


@dataclass(frozen=True)
class Mutant:
    target: str
    line: int  # 1-based
    kind: str
    before: str
    after: str


@dataclass
class Outcome:
    mutant: Mutant
    status: str  # killed | survived | invalid | equivalent | timeout
    seconds: float


def _code_tokens(line: str) -> list[tokenize.TokenInfo]:
    """The tokens of one source line outside strings and comments (reason strings in
    asserts hold `<` and `==` too)."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(line.strip() + "\n").readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return []
    indent = len(line) - len(line.lstrip())
    shifted = []
    for tok in tokens:
        if tok.type in (tokenize.OP, tokenize.NAME):
            shifted.append(tok._replace(start=(1, tok.start[1] + indent)))
    return shifted


def mutations_of(target: str, source: str) -> Iterator[Mutant]:
    """Every mutant of the checks in `source`, one change each."""
    in_docstring = False
    for number, line in enumerate(source.splitlines(), 1):
        if line.count('"""') % 2 == 1:
            in_docstring = not in_docstring
            continue
        if in_docstring or not CHECK_LINE.match(line):
            continue
        for tok in _code_tokens(line):
            column = tok.start[1]
            replacement = FLIPS.get(tok.string) if tok.type == tokenize.OP else None
            if replacement is None and tok.type == tokenize.NAME:
                replacement = BOOLEANS.get(tok.string)
            if replacement is not None:
                after = line[:column] + replacement + line[column + len(tok.string) :]
                yield Mutant(target, number, f"{tok.string} -> {replacement}", line, after)
        code = line.split(',"', 1)[0].split(', "', 1)[0]
        for one, other in PARTY_PAIRS:
            for name, swapped in ((one, other), (other, one)):
                for match in re.finditer(rf"(?<!\w){re.escape(name)}(?!\w)", code):
                    after = line[: match.start()] + swapped + line[match.end() :]
                    yield Mutant(target, number, f"{name} -> {swapped}", line, after)
        if line.lstrip().startswith("assert "):
            indent = line[: len(line) - len(line.lstrip())]
            yield Mutant(target, number, "drop assert", line, indent + "pass")


def _scratch_contracts(base: Path) -> Path:
    scratch = base / "contracts"
    shutil.copytree(ROOT / "contracts", scratch, ignore=shutil.ignore_patterns("__pycache__"))
    return scratch


def _compile_into(scratch: Path, target: str) -> bytes | None:
    """Compile the scratch copy of `target` into its artifact; None if it does not compile."""
    from m2mpay.chain.artifacts import compile_contract

    saved = os.environ.get("M2MPAY_CONTRACTS_DIR")
    os.environ["M2MPAY_CONTRACTS_DIR"] = str(scratch)
    try:
        artifact = compile_contract(target)
    except Exception:  # any compiler refusal makes the mutant invalid, not a result
        return None
    finally:  # the scratch dir goes away: nothing may keep reading from it
        if saved is None:
            del os.environ["M2MPAY_CONTRACTS_DIR"]
        else:
            os.environ["M2MPAY_CONTRACTS_DIR"] = saved
    (scratch / "build" / f"{target}.json").write_text(artifact.to_json())
    return artifact.runtime_bytecode


def run_mutant(mutant: Mutant, original: str, original_code: bytes, timeout: float) -> Outcome:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="m2mpay-vyper-mutant-") as base:
        scratch = _scratch_contracts(Path(base))
        lines = original.splitlines(keepends=True)
        lines[mutant.line - 1] = mutant.after + "\n"
        (scratch / f"{mutant.target}.vy").write_text("".join(lines))
        code = _compile_into(scratch, mutant.target)
        if code is None:
            return Outcome(mutant, "invalid", time.monotonic() - started)
        if code == original_code:
            return Outcome(mutant, "equivalent", time.monotonic() - started)
        env = {**os.environ, "M2MPAY_CONTRACTS_DIR": str(scratch)}
        try:
            result = subprocess.run(
                [sys.executable, "-m", "pytest", *PYTEST_ARGS, "tests/conformance"],
                cwd=ROOT,
                env=env,
                capture_output=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return Outcome(mutant, "timeout", time.monotonic() - started)
    if result.returncode == 0:
        status = "survived"
    elif result.returncode == 1:
        status = "killed"
    else:  # pytest could not run at all: a broken set-up must not count as a kill
        raise RuntimeError(f"pytest exited {result.returncode}: {result.stdout[-2000:]!r}")
    return Outcome(mutant, status, time.monotonic() - started)


def summarise(outcomes: list[Outcome]) -> dict[str, dict[str, object]]:
    summary: dict[str, dict[str, object]] = {}
    for target in sorted({o.mutant.target for o in outcomes}):
        mine = [o for o in outcomes if o.mutant.target == target]
        counted = [o for o in mine if o.status in ("killed", "survived", "timeout")]
        killed = sum(o.status != "survived" for o in counted)
        summary[target] = {
            "killed": killed,
            "total": len(counted),
            "kill_rate": round(100 * killed / len(counted), 1) if counted else None,
            "not_counted": {s: sum(o.status == s for o in mine) for s in ("invalid", "equivalent")},
            "seconds": round(sum(o.seconds for o in mine)),
            "survivors": [
                f"{target}.vy:{o.mutant.line}: {o.mutant.kind}: {o.mutant.before.strip()}"
                for o in mine
                if o.status == "survived"
            ],
        }
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", action="append", choices=TARGETS)
    parser.add_argument("--limit", type=int, default=0, help="at most N mutants per target")
    parser.add_argument("--kind", help="only mutants whose kind matches this regex")
    parser.add_argument(
        "--lines", help="only mutants of these source lines, e.g. 181,205 (to re-check survivors)"
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per mutant")
    parser.add_argument("--json", type=Path, help="also write the outcomes here")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT / "src"))
    from m2mpay.chain.artifacts import load_artifact

    targets = args.target or list(TARGETS)
    # The committed artifacts, read before any mutant is compiled.
    originals = {t: load_artifact(t).runtime_bytecode for t in targets}
    outcomes: list[Outcome] = []
    for target in targets:
        original = (ROOT / "contracts" / f"{target}.vy").read_text()
        original_code = originals[target]
        mutants = list(mutations_of(target, original))
        if args.lines:
            wanted = {int(n) for n in args.lines.split(",")}
            mutants = [m for m in mutants if m.line in wanted]
        if args.kind:
            mutants = [m for m in mutants if re.search(args.kind, m.kind)]
        if args.limit:
            mutants = mutants[: args.limit]
        for index, mutant in enumerate(mutants, 1):
            outcome = run_mutant(mutant, original, original_code, args.timeout)
            outcomes.append(outcome)
            print(
                f"[{target} {index}/{len(mutants)}] {outcome.status:10} "
                f"line {mutant.line}: {mutant.kind} ({outcome.seconds:.1f} s)",
                flush=True,
            )
    summary = summarise(outcomes)
    if args.json:
        args.json.write_text(
            json.dumps({"summary": summary, "outcomes": [asdict(o) for o in outcomes]}, indent=2)
            + "\n"
        )
    print(json.dumps(summary, indent=2))
    for target, s in summary.items():
        rate = f"{s['killed']}/{s['total']} mutants killed ({s['kill_rate']} %)"
        print(f"contracts/{target}.vy: {rate}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
