"""The device WebSocket bus: devices log in, register services, take commands and report
their meters and telemetry; its store (a conformance-tested interface with SQLite
behind it). Telemetry is anchored on chain by `m2mpay.provenance`."""

from m2mpay.bus.server import DeviceBus

__all__ = ["DeviceBus"]
