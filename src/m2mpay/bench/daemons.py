"""`m2mpay node` daemons as real processes, for benchmarks and tests: started with
`--json`, stopped with SIGTERM (a graceful shutdown), their log kept in a file beside
the data dir for failure messages. Starting blocks until the daemon is ready."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from m2mpay.errors import M2MPayError

__all__ = ["NodeProcess"]


class NodeProcess:
    """One `m2mpay node` process (or another `command` with `--json`, `--data-dir` and
    `--port`, such as `watcher serve`); `ready` is its ready line (url, address…)."""

    def __init__(
        self,
        data_dir: Path,
        *extra: str,
        passphrase: str = "correct horse",
        command: Sequence[str] = ("node",),
        log_name: str | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.argv = [
            sys.executable, "-m", "m2mpay", *command, "--json",
            "--data-dir", str(data_dir), "--port", "0", *extra,
        ]  # fmt: skip
        self.env = {**os.environ, "M2MPAY_PASSPHRASE": passphrase}
        self.process: subprocess.Popen[str] | None = None
        self.ready: dict[str, Any] = {}
        # A file, not a pipe: a daemon that logs a lot must never block on a full pipe.
        self.log = data_dir.parent / f"{log_name or data_dir.name}.log"

    @property
    def url(self) -> str:
        return str(self.ready["url"])

    def start(self) -> dict[str, Any]:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("a") as log:
            self.process = subprocess.Popen(
                self.argv,
                stdout=subprocess.PIPE,
                stderr=log,
                stdin=subprocess.DEVNULL,
                text=True,
                env=self.env,
            )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            code = self.process.wait(timeout=30)
            raise M2MPayError(f"m2mpay node exited ({code}): {self.stderr()[-3000:]}")
        self.ready = json.loads(line)
        return self.ready

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait; returns the exit code."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.process = None
        return code

    def stderr(self) -> str:
        return self.log.read_text() if self.log.exists() else ""
