"""Simulated machines that join m2mpay through its public interfaces only (HTTP,
WebSocket, MQTT, the SDK), exactly as a real device would; and the simulated meters
(`m2mpay.devices.simulated`) that any `Supply` host can run in process."""

from m2mpay.devices.lamp import Lamp, LampSession

__all__ = ["Lamp", "LampSession"]
