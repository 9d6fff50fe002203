"""The composition root of `m2mpay node`: ledger, contracts, node, sessions, device bus
and API in one process, with the ports it keeps across restarts."""

from m2mpay.daemon.daemon import Daemon, DaemonConfig

__all__ = ["Daemon", "DaemonConfig"]
