"""Ports a node let the system choose (`0`), kept in its data dir (`ports.json`).

Peers dial a node at the endpoint they learnt, and clients call its API at the URL
they were given: a node that restarts must be found where it was. A kept port that
another program took meanwhile is given up for a new one, with a warning.
"""

from __future__ import annotations

import contextlib
import json
import logging
from pathlib import Path
from typing import Final
from urllib.parse import urlparse

from m2mpay.ports import port_free

__all__ = ["PORTS_FILE", "KeptPorts"]

log = logging.getLogger("m2mpay.daemon")

PORTS_FILE: Final = "ports.json"


class KeptPorts:
    """`port(name, configured)` to bind; `keep(name, url)` once bound."""

    def __init__(self, data_dir: Path) -> None:
        self._path = data_dir / PORTS_FILE
        self._ports: dict[str, int] = {}
        with contextlib.suppress(OSError, ValueError, AttributeError):
            loaded = json.loads(self._path.read_text())
            self._ports = {
                name: port
                for name, port in loaded.items()
                if isinstance(port, int) and 0 < port < 65536
            }

    def port(self, name: str, host: str, configured: int) -> int:
        """The configured port; if that is 0, the one kept from before, if still free."""
        if configured:
            return configured
        kept = self._ports.get(name, 0)
        if kept and not port_free(host, kept):
            log.warning("the %s port %d kept in %s is taken: using another", name, kept, self._path)
            return 0
        return kept

    def keep(self, name: str, url: str | None) -> None:
        port = urlparse(url).port if url else None
        if port is None or self._ports.get(name) == port:
            return
        self._ports[name] = port
        tmp = self._path.with_name(self._path.name + ".tmp")
        tmp.write_text(json.dumps(self._ports, indent=2, sort_keys=True) + "\n")
        tmp.replace(self._path)
