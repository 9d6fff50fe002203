"""Provenance: what devices report, kept so that anyone can check it later. Today the
device bus's telemetry, stored as it arrives, Merkle-batched and anchored on chain
(`TelemetryBatcher`), each record provable against its anchored root."""

from m2mpay.provenance.records import TelemetryRecord, TelemetryStore
from m2mpay.provenance.telemetry import (
    TelemetryBatcher,
    TelemetryConfig,
    TelemetryProof,
    verify_anchored,
)

__all__ = [
    "TelemetryBatcher",
    "TelemetryConfig",
    "TelemetryProof",
    "TelemetryRecord",
    "TelemetryStore",
    "verify_anchored",
]
