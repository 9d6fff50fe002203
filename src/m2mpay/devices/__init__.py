"""Simulated machines that join m2mpay through its public interfaces only (HTTP,
WebSocket, MQTT, the SDK), exactly as a real device would; and the simulated meters
(`m2mpay.devices.simulated`) that any `Supply` host can run in process.

`m2mpay.devices.catalog` (what `m2mpay device run` can start) is read by the CLI on
every start: the lamp is loaded only when asked for, as it loads the bus and the
chain with it (about a second)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from m2mpay.devices.lamp import Lamp, LampSession

__all__ = ["Lamp", "LampSession"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from m2mpay.devices import lamp

        return getattr(lamp, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
