"""A Mosquitto of the node's own (`ManagedMosquitto`), or one it is given (`BrokerAddress`).

`ManagedMosquitto` keeps everything in `<data_dir>/mqtt/` (mode 0700): the generated
`mosquitto.conf`, the dynamic-security plugin's `dynsec.json` (initialised once with
`mosquitto_ctrl dynsec init`, as Debian's 2.0.x needs; the plugin rewrites it on every
change, so clients and ACLs survive a restart), `admin.json` (the administrator's
generated credentials, mode 0600), the pid file, the log and the persistent sessions.
It listens on 127.0.0.1 (or the host given) on the port given, else on the port it
used last time, else on a free one, so an address handed to buyers stays valid
across restarts. It is stopped by PID; an instance of ours left by a crash (its pid
file, and /proc naming our config) is stopped before a new one starts. It is
tethered to the node (`m2mpay.access.tether`): when the node dies, SIGKILLed
included, the kernel stops it too, so it never serves a grant the node can no longer
revoke (fail closed: its buyers wait for the node's restart, which revokes what ended).

A broker the node did not start is reached through a `BrokerAddress` and
administered only through `$CONTROL/dynamic-security/v1`: its configuration is never
touched.

`start` and `stop` block (a broker starts in tens of milliseconds, and stops in up to
the stop timeout): an event loop runs them in a thread.

When run as root, Mosquitto drops to the `mosquitto` user and could then write
neither its dynsec file nor its log in our data dir: the config names the user who
runs the node instead.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import pwd
import re
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from m2mpay.access.tether import tethered_popen
from m2mpay.errors import AccessError
from m2mpay.lifecycle import Process, find_program
from m2mpay.ports import free_port, port_free

__all__ = [
    "BrokerAddress",
    "ManagedMosquitto",
    "find_dynsec_plugin",
    "find_mosquitto",
    "raise_descriptor_limit",
]

PLUGIN_PATHS: Final = (
    Path("/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so"),
    Path("/usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so"),
    Path("/usr/lib/mosquitto/mosquitto_dynamic_security.so"),
    Path("/usr/local/lib/mosquitto_dynamic_security.so"),
    Path("/usr/lib/mosquitto_dynamic_security.so"),
)
ADMIN_USERNAME: Final = "m2mpay-admin"


@dataclass(frozen=True)
class BrokerAddress:
    """Where a broker listens and how its administrator logs in (never shown)."""

    host: str
    port: int
    admin_username: str
    admin_password: str = field(repr=False)

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @classmethod
    def parse(cls, url: str, admin_username: str, admin_password: str) -> BrokerAddress:
        """`mqtt://host:port` (port 1883 when absent) and the administrator's credentials."""
        parts = urlsplit(url)
        try:
            port = parts.port or 1883
        except ValueError:
            raise AccessError("bad_broker_url", f"{url!r}: the port is not a number") from None
        if parts.scheme != "mqtt" or not parts.hostname or parts.path not in ("", "/"):
            raise AccessError("bad_broker_url", f"{url!r} is not mqtt://host:port")
        if not admin_username or not admin_password:
            raise AccessError(
                "bad_broker_url", "the broker's admin username and password are needed"
            )
        return cls(parts.hostname, port, admin_username, admin_password)


def find_mosquitto() -> Path:
    """The mosquitto binary: $M2MPAY_MOSQUITTO, /usr/sbin/mosquitto, or PATH."""
    found = find_program("mosquitto", "M2MPAY_MOSQUITTO", Path("/usr/sbin/mosquitto"))
    if found is None:
        raise AccessError(
            "broker_missing", "mosquitto not found: install the Debian package `mosquitto`"
        )
    return found


def find_dynsec_plugin() -> Path:
    """The dynamic-security plugin: $M2MPAY_DYNSEC_PLUGIN or the usual library paths."""
    explicit = os.environ.get("M2MPAY_DYNSEC_PLUGIN")
    candidates = [Path(explicit)] if explicit else []
    candidates.extend(PLUGIN_PATHS)
    candidates.extend(sorted(Path("/usr/lib").glob("*/mosquitto_dynamic_security.so")))
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise AccessError(
        "broker_missing",
        "mosquitto_dynamic_security.so not found: install the Debian package `mosquitto` "
        "or set M2MPAY_DYNSEC_PLUGIN",
    )


def raise_descriptor_limit() -> None:
    """The soft limit of open files raised to the hard one (at most 65,536): a socket
    per subscriber, and a thousand subscribers would meet a soft limit of 1024."""
    # Also run in the broker's child before exec.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 65_536 if hard == resource.RLIM_INFINITY else min(hard, 65_536)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def _write_private(path: Path, text: str) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
    os.chmod(path, 0o600)  # an older file keeps its mode through O_TRUNC


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        # A zombie child of ours is dead for our purpose.
        if Path(f"/proc/{pid}/stat").read_text().split(") ")[-1].startswith("Z"):
            return False
    return True


class ManagedMosquitto(Process):
    """A Mosquitto the node starts and stops by PID, configured from its data dir."""

    def __init__(
        self,
        data_dir: Path,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        startup_timeout: float = 10.0,
        stop_timeout: float = 5.0,
        max_queued_messages: int = 1_000,
        max_queued_bytes: int = 256 * 1024,
        before_start: Callable[[Path], object] | None = None,
    ) -> None:
        """`before_start(dynsec_file)` runs at each start once no broker of ours runs
        on the file (the node withdraws its clients' reads there: `dynsec_file.py`)."""
        self.directory = Path(data_dir) / "mqtt"
        self.config = self.directory / "mosquitto.conf"
        self.dynsec = self.directory / "dynsec.json"
        self.admin_file = self.directory / "admin.json"
        self.pid_file = self.directory / "mosquitto.pid"
        self.log = self.directory / "mosquitto.log"
        self._host = host
        self._wanted_port = port
        self._port: int | None = None
        self._startup_timeout = startup_timeout
        self._stop_timeout = stop_timeout
        self._max_queued = max_queued_messages
        self._max_queued_bytes = max_queued_bytes
        self._process: subprocess.Popen[bytes] | None = None
        self._before_start = before_start

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def port(self) -> int:
        if self._port is None:
            raise AccessError("broker_stopped", "the node's broker is not running")
        return self._port

    @property
    def address(self) -> BrokerAddress:
        username, password = self._admin()
        return BrokerAddress(self._host, self.port, username, password)

    # -- starting ---------------------------------------------------------------------

    def start(self) -> None:
        if self._process is not None:
            return
        binary, plugin = find_mosquitto(), find_dynsec_plugin()
        self.directory.mkdir(parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)  # the dynsec file holds password hashes
        self.stop_stale()
        if self.dynsec.exists() and not self.admin_file.exists():
            raise AccessError(
                "broker_failed",
                f"{self.admin_file} is missing but {self.dynsec} exists: its administrator's "
                "password is lost (restore admin.json, or remove dynsec.json to start afresh, "
                "which forgets every client)",
            )
        username, password = self._admin()
        if not self.dynsec.exists():
            self._init_dynsec(username, password)
        elif self._before_start is not None:
            self._before_start(self.dynsec)
        chosen = self._wanted_port or self._previous_port()
        for _ in range(3):  # a free port may be taken before Mosquitto binds it
            port = self._check_port(chosen) if chosen else free_port(self._host)
            try:
                self._process = self._spawn(binary, plugin, port)
            except AccessError as exc:
                if exc.code != "port_in_use" or chosen:
                    raise
                continue
            self._port = port
            atexit.register(self.stop)  # a node that ends without stopping it still does
            return
        raise AccessError("port_in_use", f"no free port on {self._host} after three tries")

    def _spawn(self, binary: Path, plugin: Path, port: int) -> subprocess.Popen[bytes]:
        self._write_config(port, plugin)
        logged_before = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as log:
            # Tethered: it dies with the node, which alone revokes its grants.
            process = tethered_popen(
                [str(binary), "-c", str(self.config)],
                preexec=raise_descriptor_limit,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd=self.directory,
                start_new_session=True,  # a Ctrl-C meant for the node is not the broker's
            )
        self.pid_file.write_text(f"{process.pid}\n")
        try:
            self._wait_listening(process, port)
            self._check_security_loaded(logged_before)
        except BaseException:
            self._terminate(process.pid, process)
            self.pid_file.unlink(missing_ok=True)
            raise
        return process

    def _admin(self) -> tuple[str, str]:
        """The administrator's credentials, generated once and kept in mode 0600."""
        if self.admin_file.exists():
            kept = json.loads(self.admin_file.read_text())
            return str(kept["username"]), str(kept["password"])
        self.directory.mkdir(parents=True, exist_ok=True)
        password = secrets.token_urlsafe(32)
        _write_private(
            self.admin_file, json.dumps({"username": ADMIN_USERNAME, "password": password})
        )
        return ADMIN_USERNAME, password

    def _init_dynsec(self, username: str, password: str) -> None:
        # The password goes through stdin (it prompts twice), not argv, which any
        # local user can read in /proc.
        ctrl = shutil.which("mosquitto_ctrl") or "/usr/bin/mosquitto_ctrl"
        partial = self.dynsec.with_suffix(".json.new")
        partial.unlink(missing_ok=True)
        try:
            done = subprocess.run(
                [ctrl, "dynsec", "init", str(partial), username],
                input=f"{password}\n{password}\n".encode(),
                capture_output=True,
                timeout=30,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise AccessError("broker_missing", f"mosquitto_ctrl did not run: {exc}") from None
        if done.returncode != 0 or not partial.exists():
            raise AccessError(
                "broker_failed",
                f"mosquitto_ctrl dynsec init failed: {done.stderr.decode(errors='replace')[-300:]}",
            )
        os.chmod(partial, 0o600)
        partial.replace(self.dynsec)

    def _check_port(self, port: int) -> int:
        if not port_free(self._host, port):
            raise AccessError(
                "port_in_use",
                f"port {port} on {self._host} is in use: the node's broker cannot listen there "
                "(stop what holds it, or choose another port)",
            )
        return port

    def _previous_port(self) -> int | None:
        if not self.config.exists():
            return None
        found = re.search(r"^listener (\d+)", self.config.read_text(), re.MULTILINE)
        return int(found.group(1)) if found else None

    def _write_config(self, port: int, plugin: Path) -> None:
        user = pwd.getpwuid(os.geteuid()).pw_name
        self.config.write_text(
            "# Generated by m2mpay for its own broker; rewritten on every start.\n"
            f"listener {port} {self._host}\n"
            # The free aggregates are readable without an account.
            "allow_anonymous true\n"
            f"plugin {plugin}\n"
            f"plugin_opt_config_file {self.dynsec}\n"
            f"user {user}\n"
            "persistence true\n"
            f"persistence_location {self.directory}/\n"
            "autosave_interval 60\n"
            f"log_dest file {self.log}\n"
            "log_type error\nlog_type warning\nlog_type notice\n"
            "connection_messages false\n"
            # Nagle's algorithm would hold each delivery ~40 ms.
            "set_tcp_nodelay true\n"
            # Per client: ~8 minutes of a 2 Hz feed for a reader that stalls, within a
            # quarter of a megabyte, so a thousand stalled readers stay within memory.
            f"max_queued_messages {self._max_queued}\n"
            f"max_queued_bytes {self._max_queued_bytes}\n"
            "max_inflight_messages 20\n"
            "persistent_client_expiration 7d\n"
        )

    def _wait_listening(self, process: subprocess.Popen[bytes], port: int) -> None:
        deadline = time.monotonic() + self._startup_timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                tail = self.log_tail()
                code = "port_in_use" if "Address already in use" in tail else "broker_failed"
                raise AccessError(
                    code, f"mosquitto exited with {process.returncode} on port {port}: {tail}"
                )
            with contextlib.suppress(OSError), socket.create_connection((self._host, port), 0.2):
                return
            time.sleep(0.01)
        raise AccessError(
            "broker_failed",
            f"mosquitto did not listen on {port} within {self._startup_timeout:g} s: "
            f"{self.log_tail()}",
        )

    def _check_security_loaded(self, logged_before: int) -> None:
        # With a dynsec file it cannot read, Mosquitto still listens but lets no one in,
        # its administrator included: better to say so now than to time out later.
        with self.log.open("rb") as log:
            log.seek(logged_before)
            since = log.read().decode(errors="replace")
        if "Error loading Dynamic security plugin config" in since:
            raise AccessError(
                "broker_failed",
                f"mosquitto could not load its dynamic-security file {self.dynsec}: "
                f"{since.strip()[-500:]}",
            )

    def log_tail(self, lines: int = 15) -> str:
        """The last lines of the broker's log (empty when there is none)."""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    # -- stopping ---------------------------------------------------------------------

    def stop(self) -> None:
        """Stop our broker by PID: SIGTERM, then SIGKILL after the stop timeout."""
        if self._process is not None:
            self._terminate(self._process.pid, self._process)
            self._process = None
            self._port = None
            self.pid_file.unlink(missing_ok=True)
            atexit.unregister(self.stop)

    def stop_stale(self) -> bool:
        """Stop an instance of ours that a crash left running; True if there was one."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return False
        stale = False
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            cmdline = []
        # Only a process started with our config is ours: a reused PID is someone else's.
        if str(self.config).encode() in cmdline and _pid_alive(pid):
            self._terminate(pid, None)
            stale = True
        self.pid_file.unlink(missing_ok=True)
        return stale

    def _terminate(self, pid: int, process: subprocess.Popen[bytes] | None) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if self._wait_gone(pid, process, self._stop_timeout):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        self._wait_gone(pid, process, self._stop_timeout)

    @staticmethod
    def _wait_gone(pid: int, process: subprocess.Popen[bytes] | None, timeout: float) -> bool:
        if process is not None:
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                return False
            return True
        deadline = time.monotonic() + timeout
        while _pid_alive(pid):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True
