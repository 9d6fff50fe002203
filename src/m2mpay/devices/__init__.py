"""Simulated machines that join m2mpay through its public interfaces only (HTTP,
WebSocket, MQTT, the SDK), exactly as a real device would."""

from m2mpay.devices.lamp import Lamp, LampSession

__all__ = ["Lamp", "LampSession"]
