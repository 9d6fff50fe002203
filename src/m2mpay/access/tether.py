"""A child process tethered to the node: the kernel ends it when the node dies, however
the node dies (SIGKILL included), so that nothing the node started outlives it.

The node's own Mosquitto holds the grants on the broker, and only the node revokes
them: a broker left running by a node that was SIGKILLed would go on serving a grant
whose paid time ended while the node was down. Tethered, it fails closed instead: it
goes with the node, its buyers lose the live topic until the node is back, and the
restarted node starts it anew and revokes what ended meanwhile before anyone reads.

How: Linux's `prctl(PR_SET_PDEATHSIG, SIGTERM)` in the child between fork and exec.
The kernel sends the signal when the *thread* that forked the child exits, not the
process; a child forked on a worker thread (`asyncio.to_thread`) would be killed when
that worker retires. So every tethered child is forked on one thread of this module's
(`_Forker`) that lives as long as the process. A parent that died before the prctl
took effect is caught by the child itself: its parent's PID is no longer the node's.

Why not a pipe the broker watches: Mosquitto reads no pipe of ours, and a watchdog
process beside it would be one more process that can itself be killed. On a system
without prctl (not Linux), the child is started untethered: the node's restart still
stops it (`ManagedMosquitto.stop_stale`) and reconciles the grants.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Final

__all__ = ["TETHERED", "tethered_popen"]

PR_SET_PDEATHSIG: Final = 1  # <linux/prctl.h>


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        # Loaded here, in the parent: after fork the child only calls it.
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None
    prctl: Callable[..., int] = libc.prctl
    return prctl


_PRCTL: Final = _load_prctl()
TETHERED: Final = _PRCTL is not None  # whether children here die with their node


def _tether(parent: int, then: Callable[[], None] | None) -> Callable[[], None]:
    """The child's preexec: the death signal asked for, the parent checked, then `then`."""
    prctl = _PRCTL

    def preexec() -> None:
        if prctl is not None:
            if prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) != 0:
                os._exit(126)  # never a broker that could outlive the node unnoticed
            if os.getppid() != parent:
                os._exit(0)  # the node died before the signal was asked for
        if then is not None:
            then()

    return preexec


class _Forker:
    """The one thread that forks tethered children; see the module docstring. Made on
    first use (again in a forked child of the node, whose copy of it does not run)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = queue.SimpleQueue()
        self._owner = -1  # the process whose thread it is

    def run(self, job: Callable[[], Any]) -> Any:
        with self._lock:
            if self._owner != os.getpid():
                self._jobs = queue.SimpleQueue()
                threading.Thread(target=self._serve, name="m2mpay-forker", daemon=True).start()
                self._owner = os.getpid()
        done: Future[Any] = Future()
        self._jobs.put((job, done))
        return done.result()

    def _serve(self) -> None:
        jobs = self._jobs
        while True:
            job, done = jobs.get()
            try:
                done.set_result(job())
            except BaseException as exc:  # handed to the caller, who raises it
                done.set_exception(exc)


_FORKER: Final = _Forker()


def tethered_popen(
    argv: list[str], *, preexec: Callable[[], None] | None = None, **options: Any
) -> subprocess.Popen[bytes]:
    """`subprocess.Popen(argv, **options)` for a child that dies with this process
    (SIGTERM), forked on the forker thread; `preexec` runs in the child after that."""
    tether = _tether(os.getpid(), preexec)
    popen: subprocess.Popen[bytes] = _FORKER.run(
        lambda: subprocess.Popen(argv, preexec_fn=tether, **options)  # noqa: PLW1509
    )
    return popen
