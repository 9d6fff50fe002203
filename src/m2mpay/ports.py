"""TCP ports on this machine as our servers (the API, the wire, Anvil, Mosquitto) bind
them: a free one to listen on, and whether a given one is free."""

from __future__ import annotations

import socket

__all__ = ["bind_error", "free_port", "port_free"]


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (another program may take it before we do)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def bind_error(host: str, port: int) -> OSError | None:
    """Why a server could not listen on `host`:`port` now, or None if it could."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # As the servers bind: a port in TIME_WAIT after our own restart is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            return exc
    return None


def port_free(host: str, port: int) -> bool:
    return bind_error(host, port) is None
