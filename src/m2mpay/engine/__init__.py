"""Hosting a pure state machine durably: `DurableEngine` (apply, log, act once durable,
group commit, replay), `PlainLog` (its log and snapshots as JSON of plain data) and
`PureMachine` (a pure transition function with that log), `StateWaits` (waiting for a
keyed state to satisfy a condition), `EngineHost`, the base of every host of a machine
(lifecycle, tasks, failing closed, refusals, waits), and `EventFanOut`/`EventSource`
(telling listeners and subscribers of durable events)."""

from m2mpay.engine.durable import DurableEngine, EngineFailed, Machine
from m2mpay.engine.events import EventFanOut, EventSource
from m2mpay.engine.host import Dispatcher, EngineHost, HostCalls, Refusal, now_ms
from m2mpay.engine.plain_log import PlainLog, PureMachine
from m2mpay.engine.waits import StateWaits

__all__ = [
    "Dispatcher",
    "DurableEngine",
    "EngineFailed",
    "EngineHost",
    "EventFanOut",
    "EventSource",
    "HostCalls",
    "Machine",
    "PlainLog",
    "PureMachine",
    "Refusal",
    "StateWaits",
    "now_ms",
]
