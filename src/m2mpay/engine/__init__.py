"""Hosting a pure state machine durably: `DurableEngine` (apply, log, act once durable,
group commit, replay), `PlainLog` (its log and snapshots as JSON of plain data) and
`StateWaits` (waiting for a keyed state to satisfy a condition), and `EngineHost`,
the base of every host of a machine (lifecycle, tasks, failing closed)."""

from m2mpay.engine.durable import DurableEngine, EngineFailed, Machine
from m2mpay.engine.host import EngineHost
from m2mpay.engine.plain_log import PlainLog
from m2mpay.engine.waits import StateWaits

__all__ = ["DurableEngine", "EngineFailed", "EngineHost", "Machine", "PlainLog", "StateWaits"]
