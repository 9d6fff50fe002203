"""The README's fenced code blocks, and running them as written.

Every block's info string starts with its language. A `sh` or `python` block then
says which test runs it, by a name (```` ```sh daemon ````: the tests call
`blocks_named("daemon")`), or why none does (```` ```sh untested: why ````); GitHub
shows both as plain `sh` or `python`. `tests/test_readme_commands.py` fails on a
block that says neither, or whose name no test asks for, so a command added to the
README is run by a test or says why not.

A `Terminal` runs a `sh` block's lines one by one through `bash -c`, as a person would
in one shell: what a line exports holds for the next ones, `~` is a fresh home. A line
ending in `&` keeps running in the background and is stopped at the end; the next
line waits until it says `Ctrl-C stops it` (its ready line). A `<name>` is what the
README says an earlier step printed, read from the terminal's output, or a value the
test gives (a peer the test started). The README's ports (8402, …: "any free port")
become free ones.
"""

from __future__ import annotations

import ast
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from m2mpay.ports import free_port

__all__ = [
    "README",
    "READY",
    "ROOT",
    "Block",
    "Terminal",
    "blocks_named",
    "free_port",
    "readme_blocks",
    "run_python",
    "terminal",
]

ROOT: Final = Path(__file__).resolve().parents[1]
README: Final = ROOT / "README.md"
WAIT_S: Final = 30.0
READY: Final = "Ctrl-C stops it"  # what every long-running command says once it serves

FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
PLACEHOLDER = re.compile(r"<([a-z][\w-]*)>")
BACKGROUND = re.compile(r"(?<!&)&\s*(#.*)?$")

# What each `<name>` is, as the README's prose says: the last match in the terminal's output.
PRINTED: Final = {
    "token": re.compile(r"API token \(shown once, keep it\):\s*(m2m_[\w-]+)"),
    "device": re.compile(r"sell it: m2mpay offer publish --device (0x[0-9a-fA-F]+)"),
    "offer": re.compile(r"offers at \S+.*?\n.*?(0x[0-9a-f]{8,})", re.DOTALL),
    "channel": re.compile(r"channel opened.*?\bid\b\W*(0x[0-9a-f]{8,})", re.DOTALL),
    "session": re.compile(r"session started.*?\bid\b\W*(0x[0-9a-f]{8,})", re.DOTALL),
    "anvil-url": re.compile(r"anvil running at (http://[\d.:]+)"),
    "hub": re.compile(r"ChannelHub\W+(0x[0-9a-fA-F]{40})"),
    "broker": re.compile(r"MQTT broker (\S+:\d+)"),
    "mqtt-port": re.compile(r"MQTT broker \S+:(\d+)"),
    "feed": re.compile(r"feed published.*?\bid\b\W*(0x[0-9a-f]{8,})", re.DOTALL),
    "stream": re.compile(r"stream\(s\).*?(0x[0-9a-f]{8,})", re.DOTALL),
    "stream-id": re.compile(r"stream (0x[0-9a-f]{64})"),
}


@dataclass(frozen=True)
class Block:
    """One fenced block: its language, the test's name for it or why it has none, its
    text and the README line its fence opens on."""

    language: str
    name: str
    untested: str
    text: str
    line: int

    @property
    def commands(self) -> list[str]:
        """A shell block's command lines (comment-only and blank lines left out)."""
        return [s for s in self.text.splitlines() if s.strip() and not s.lstrip().startswith("#")]


def readme_blocks(text: str | None = None) -> list[Block]:
    """Every fenced block of the README (or of `text`), in order."""
    text = README.read_text() if text is None else text
    found = []
    for match in FENCE.finditer(text):
        info = match.group(1).strip()
        language, _, rest = info.partition(" ")
        rest = rest.strip()
        untested = rest.partition(":")[2].strip() if rest.startswith("untested") else ""
        found.append(
            Block(
                language,
                "" if rest.startswith("untested") else rest,
                untested,
                match.group(2),
                text.count("\n", 0, match.start()) + 1,
            )
        )
    return found


def blocks_named(*names: str) -> list[Block]:
    """The README's blocks of these names, in the README's order; at least one each."""
    found = [b for b in readme_blocks() if b.name in names]
    missing = set(names) - {b.name for b in found}
    assert not missing, f"the README has no block named {sorted(missing)}"
    return found


@dataclass
class Terminal:
    """One shell of the README: its environment, its output, its background jobs."""

    name: str
    cwd: Path
    env: dict[str, str]
    log: Path
    ports: dict[str, str] = field(default_factory=dict)  # the README's port → a free one
    given: dict[str, Callable[[], str]] = field(default_factory=dict)  # `<name>`s the test knows
    jobs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def printed(self, name: str) -> str:
        """What the README calls `<name>`, waiting for the step that prints it."""
        if name in self.given:
            return self.given[name]()
        assert name in PRINTED, f"the README uses <{name}>, which this test cannot find"
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            found = PRINTED[name].findall(self.output())
            if found:
                return str(found[-1])
            self._jobs_alive()
            time.sleep(0.2)
        raise AssertionError(f"{self.name} never printed <{name}>:\n{self.output()}")

    def command(self, line: str) -> str:
        """`line` as it is run: its placeholders filled in, its ports free ones."""
        for readme, free in self.ports.items():
            line = line.replace(readme, free)
        return PLACEHOLDER.sub(lambda m: self.printed(m.group(1)), line)

    def run_block(self, block: Block) -> None:
        assert block.language == "sh", f"README line {block.line}: not a shell block"
        for line in block.commands:
            self.run(line)

    def run(self, line: str) -> None:
        command = self.command(line)
        with self.log.open("ab") as out:
            out.write(f"$ {command}\n".encode())
            out.flush()
            if BACKGROUND.search(command):
                self._background(command, out)
                return
            env_file = self.log.with_suffix(".env")
            done = subprocess.run(
                ["bash", "-c", f'{command}\nstatus=$?; env -0 > "{env_file}"; exit $status'],
                cwd=self.cwd, env=self.env, stdout=out, stderr=out,
                stdin=subprocess.DEVNULL, timeout=180, check=False,
            )  # fmt: skip
        assert done.returncode == 0, f"{self.name}: `{command}` failed:\n{self.output()}"
        pairs = env_file.read_bytes().split(b"\0")
        self.env = dict(p.decode().split("=", 1) for p in pairs if b"=" in p)

    def _background(self, command: str, out: Any) -> None:
        ready_before = self.output().count(READY)
        # Without its `&`: this bash is the job, alive as long as the command runs.
        in_front = BACKGROUND.sub("", command)
        self.jobs.append(
            subprocess.Popen(
                ["bash", "-c", in_front],
                cwd=self.cwd,
                env=self.env,
                stdout=out,
                stderr=out,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        )
        deadline = time.monotonic() + WAIT_S
        while self.output().count(READY) <= ready_before:
            self._jobs_alive()
            assert time.monotonic() < deadline, f"`{command}` never said it was ready"
            time.sleep(0.1)

    def _jobs_alive(self) -> None:
        for job in self.jobs:
            assert job.poll() is None, f"{self.name}: {job.args!r} ended:\n{self.output()}"

    def m2mpay_json(self, *args: str) -> Any:
        """`m2mpay <args> --json` with this terminal's environment (for the checks)."""
        done = subprocess.run(
            [sys.executable, "-m", "m2mpay", *args, "--json"],
            cwd=self.cwd, env=self.env, capture_output=True, text=True, timeout=60,
            check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def stop(self) -> None:
        for job in self.jobs:
            try:
                os.killpg(job.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
        for job in self.jobs:
            try:
                job.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(job.pid, signal.SIGKILL)
                job.wait()


def terminal(tmp_path: Path, name: str, ports: Mapping[str, str] | None = None) -> Terminal:
    """A terminal in a fresh clone directory under `tmp_path` (its `.venv` the venv
    running the tests, its code the tree under test) with a fresh home."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    clone = tmp_path / "clone"
    clone.mkdir(exist_ok=True)
    venv = clone / ".venv"
    if not venv.exists():
        venv.symlink_to(Path(sys.prefix))
    env = {
        "HOME": str(home),
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(ROOT / "src"),  # the tree under test, not an installed copy
        "LANG": "C.UTF-8",
    }
    made = Terminal(name, clone, env, tmp_path / f"{name}.log", dict(ports or {}))
    made.log.touch()
    return made


async def run_python(block: Block, namespace: dict[str, Any]) -> None:
    """Run a `python` block as written in `namespace` (what the README's prose says the
    example has: a ledger, keys…), top-level `await` and `async with` included."""
    assert block.language == "python", f"README line {block.line}: not a Python block"
    code = compile(
        block.text,
        f"README.md:{block.line}",
        "exec",
        flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT,
    )
    result = eval(code, namespace)  # the README's own example, as a reader would run it
    if result is not None:
        await result
