"""The README's quickstart, run as written: two terminals, two node processes on one
embedded chain and a charger device process, ending in a countersigned receipt and
exact balances on chain.

Each ```` ```sh terminal-N ```` block of the README's quickstart is a terminal: its lines
run one by one through `bash -c` with that terminal's environment (what earlier lines
exported, `~` a fresh home). A line ending in `&` keeps running, as in a shell, and is
stopped at the end. A `<name>` is what the README says an earlier step printed; it is
read from that terminal's output. The README's ports (8402, 8403: "use any free port,
the same in every URL") become free ones."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Quickstart: a charger and a car in two terminals"
BLOCK = re.compile(r"^```sh (terminal-\d)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
PORTS = ("8402", "8403")
WAIT_S = 30.0

# What each `<name>` is, as the README's prose says: the last match in the terminal's output.
PRINTED = {
    "token": re.compile(r"API token \(shown once, keep it\):\s*(m2m_[\w-]+)"),
    "device": re.compile(r"sell it: m2mpay offer publish --device (0x[0-9a-fA-F]+)"),
    "offer": re.compile(r"offers at \S+.*?\n.*?(0x[0-9a-f]{8,})", re.DOTALL),
    "channel": re.compile(r"channel opened.*?\bid\b\W*(0x[0-9a-f]{8,})", re.DOTALL),
    "session": re.compile(r"session started.*?\bid\b\W*(0x[0-9a-f]{8,})", re.DOTALL),
}
PLACEHOLDER = re.compile(r"<(\w+)>")


def quickstart_blocks() -> list[tuple[str, list[str]]]:
    """The quickstart's blocks in order: (terminal, its command lines)."""
    text = (ROOT / "README.md").read_text()
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    return [
        (terminal, [line for line in body.splitlines() if line.strip()])
        for terminal, body in BLOCK.findall(text[start : end if end > 0 else None])
    ]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Terminal:
    """One shell of the README: its environment, its output, its background jobs."""

    name: str
    cwd: Path
    env: dict[str, str]
    log: Path
    jobs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def printed(self, name: str) -> str:
        """What the README calls `<name>`, waiting for the step that prints it."""
        assert name in PRINTED, f"the README uses <{name}>, which this test cannot find"
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            found = PRINTED[name].findall(self.output())
            if found:
                return str(found[-1])
            time.sleep(0.2)
        raise AssertionError(f"{self.name} never printed <{name}>:\n{self.output()}")

    def run(self, line: str) -> None:
        command = PLACEHOLDER.sub(lambda m: self.printed(m.group(1)), line)
        with self.log.open("ab") as out:
            out.write(f"$ {command}\n".encode())
            out.flush()
            if command.endswith("&"):
                self.jobs.append(
                    subprocess.Popen(
                        ["bash", "-c", command],
                        cwd=self.cwd,
                        env=self.env,
                        stdout=out,
                        stderr=out,
                        stdin=subprocess.DEVNULL,
                        start_new_session=True,
                    )
                )
                return
            env_file = self.log.with_suffix(".env")
            done = subprocess.run(
                ["bash", "-c", f'{command}\nstatus=$?; env -0 > "{env_file}"; exit $status'],
                cwd=self.cwd, env=self.env, stdout=out, stderr=out,
                stdin=subprocess.DEVNULL, timeout=120, check=False,
            )  # fmt: skip
        assert done.returncode == 0, f"{self.name}: `{command}` failed:\n{self.output()}"
        pairs = env_file.read_bytes().split(b"\0")
        self.env = dict(p.decode().split("=", 1) for p in pairs if b"=" in p)

    def m2mpay_json(self, *args: str) -> dict[str, object]:
        """`m2mpay <args> --json` with this terminal's environment (for the checks)."""
        done = subprocess.run(
            [sys.executable, "-m", "m2mpay", *args, "--json"],
            cwd=self.cwd, env=self.env, capture_output=True, text=True, timeout=60,
            check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        answer: dict[str, object] = json.loads(done.stdout)
        return answer

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


@pytest.fixture
def terminals(tmp_path: Path) -> Iterator[dict[str, Terminal]]:
    home = tmp_path / "home"
    home.mkdir()
    clone = tmp_path / "clone"
    clone.mkdir()
    (clone / ".venv").symlink_to(Path(sys.prefix))  # the venv running this test
    env = {
        "HOME": str(home),
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(ROOT / "src"),  # the tree under test, not an installed copy
        "LANG": "C.UTF-8",
    }
    made = {
        name: Terminal(name, clone, dict(env), tmp_path / f"{name}.log")
        for name in ("terminal-1", "terminal-2")
    }
    for terminal in made.values():
        terminal.log.touch()
    try:
        yield made
    finally:
        for terminal in reversed(made.values()):
            terminal.stop()


def test_the_readme_quickstart_ends_countersigned_with_exact_balances(
    terminals: dict[str, Terminal],
) -> None:
    blocks = quickstart_blocks()
    assert [t for t, _ in blocks] == ["terminal-1", "terminal-2", "terminal-1"]
    ports = {readme: str(_free_port()) for readme in PORTS}
    for terminal, lines in blocks:
        for line in lines:
            command = line
            for readme, free in ports.items():
                command = command.replace(readme, free)
            terminals[terminal].run(command)

    charger, car = terminals["terminal-1"], terminals["terminal-2"]
    session = car.printed("session")
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
