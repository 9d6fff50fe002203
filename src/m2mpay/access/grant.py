"""Grants as a pure state machine: `transition(state, input) -> (state, outputs)`.

A grant is a buyer's MQTT client's right to read one live topic until `paid_until_ms`,
bought by the second in a metered session (the session is the money; the grant is
what the money buys). The session permits seconds as they are paid; each permitted
second moves `paid_until_ms` on by a second, from now if the grant had lapsed, from
where it ends if it is live, so a renewal before the end leaves no gap. At
`paid_until_ms` the grant lapses and the broker takes the topic back; when the
session ends, the client goes.

Lifecycle (phase, input -> phase, outputs):

| phase  | input                       | next   | outputs                          |
|--------|-----------------------------|--------|----------------------------------|
| —      | `GrantOpened`               | LAPSED | —                                |
| LAPSED | `Permitted` (more seconds)  | LIVE   | `AllowRead`                      |
| LIVE   | `Permitted` (more seconds)  | LIVE   | — (`paid_until_ms` moves on)     |
| LIVE   | `Permitted` (fewer: a stop) | LAPSED | `RevokeRead`                     |
| LIVE   | `Expire` at/after the end   | LAPSED | `RevokeRead`                     |
| any    | `GrantEnded`                | ENDED  | `RevokeRead`, `RemoveClient`     |

The seconds the buyer has used are what it was permitted less what is left of the
paid time (`used_s`): the meter the session reads is the clock itself, which keeps
running while the seller's node is down, so a grant that ended meanwhile is revoked
as soon as the node is back, and no paid second is lost to a restart either.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

from m2mpay.crypto import Address
from m2mpay.plain import Bytes32, Text, Uint64, plain_type

__all__ = [
    "AllowRead",
    "Expire",
    "Grant",
    "GrantCode",
    "GrantEnded",
    "GrantInput",
    "GrantOpened",
    "GrantOutput",
    "GrantPhase",
    "GrantRefused",
    "Permitted",
    "RemoveClient",
    "RevokeRead",
    "grant_key",
    "transition",
]


class GrantPhase(enum.Enum):
    LIVE = "live"  # the client reads the topic until paid_until_ms
    LAPSED = "lapsed"  # nothing paid is left; more payment makes it live again
    ENDED = "ended"  # the session is over and the client removed


@plain_type("access.grant")
@dataclass(frozen=True, slots=True)
class Grant:
    session_id: Bytes32
    buyer: Address
    username: Text
    topic: Text
    phase: GrantPhase
    permitted_s: Uint64  # the seconds the session has permitted in all
    paid_until_ms: Uint64  # when the read access ends (in the past unless live)
    opened_ms: Uint64

    def left_s(self, now_ms: int) -> int:
        """Whole seconds of paid time left (a started second counts as left)."""
        if self.phase is not GrantPhase.LIVE or now_ms >= self.paid_until_ms:
            return 0
        return -(-(self.paid_until_ms - now_ms) // 1000)

    def used_s(self, now_ms: int) -> int:
        """The seconds the buyer has had, as the session's meter reads them."""
        return self.permitted_s - self.left_s(now_ms)


# -- inputs


@plain_type("gin.opened")
@dataclass(frozen=True, slots=True)
class GrantOpened:
    """A session on a feed began: its buyer's client, the topic, nothing paid yet.
    The client's password is not here: only the broker keeps it, hashed."""

    session_id: Bytes32
    buyer: Address
    username: Text
    topic: Text
    now_ms: Uint64


@plain_type("gin.permitted")
@dataclass(frozen=True, slots=True)
class Permitted:
    """The session permits `seconds` in all (more as payments arrive; down to what
    was used when it stops)."""

    session_id: Bytes32
    seconds: Uint64
    now_ms: Uint64


@plain_type("gin.expire")
@dataclass(frozen=True, slots=True)
class Expire:
    session_id: Bytes32
    now_ms: Uint64


@plain_type("gin.ended")
@dataclass(frozen=True, slots=True)
class GrantEnded:
    session_id: Bytes32
    now_ms: Uint64


GrantInput = GrantOpened | Permitted | Expire | GrantEnded


# -- outputs


@plain_type("gout.allow")
@dataclass(frozen=True, slots=True)
class AllowRead:
    username: Text
    topic: Text


@plain_type("gout.revoke")
@dataclass(frozen=True, slots=True)
class RevokeRead:
    username: Text
    topic: Text


@plain_type("gout.remove")
@dataclass(frozen=True, slots=True)
class RemoveClient:
    username: Text


class GrantCode(enum.Enum):
    UNKNOWN_GRANT = "unknown_grant"
    GRANT_EXISTS = "grant_exists"
    GRANT_ENDED = "grant_ended"


@plain_type("gout.refused")
@dataclass(frozen=True, slots=True)
class GrantRefused:
    code: GrantCode
    message: Text


GrantOutput = AllowRead | RevokeRead | RemoveClient | GrantRefused
Result = tuple[Grant | None, tuple[GrantOutput, ...]]


def grant_key(inp: GrantInput) -> bytes:
    return inp.session_id


def _refuse(state: Grant | None, code: GrantCode, message: str) -> Result:
    return state, (GrantRefused(code, message),)


def transition(state: Grant | None, inp: GrantInput) -> Result:
    if isinstance(inp, GrantOpened):
        if state is not None:
            if (state.username, state.topic, state.buyer) == (inp.username, inp.topic, inp.buyer):
                return state, ()  # the same session's device started again (a restart)
            return _refuse(state, GrantCode.GRANT_EXISTS, "the session already has a grant")
        opened = Grant(
            inp.session_id,
            inp.buyer,
            inp.username,
            inp.topic,
            GrantPhase.LAPSED,
            0,
            inp.now_ms,
            inp.now_ms,
        )
        return opened, ()
    if state is None:
        return _refuse(state, GrantCode.UNKNOWN_GRANT, "no grant for that session")
    if state.phase is GrantPhase.ENDED:
        if isinstance(inp, GrantEnded | Expire):
            return state, ()
        return _refuse(state, GrantCode.GRANT_ENDED, "the grant has ended")
    if isinstance(inp, Permitted):
        return _permitted(state, inp)
    if isinstance(inp, Expire):
        return _expire(state, inp.now_ms)
    ended = replace(_lapse(state, inp.now_ms), phase=GrantPhase.ENDED)
    revoke: tuple[GrantOutput, ...] = ()
    if state.phase is GrantPhase.LIVE:
        revoke = (RevokeRead(state.username, state.topic),)
    return ended, (*revoke, RemoveClient(state.username))


def _lapse(state: Grant, now_ms: int) -> Grant:
    """No paid time left from `now_ms` on: what was permitted and not used is forfeit
    only in the sense that the session's permit drops to what was used."""
    used = state.used_s(now_ms)
    return replace(
        state,
        phase=GrantPhase.LAPSED,
        permitted_s=used,
        paid_until_ms=min(state.paid_until_ms, now_ms),
    )


def _expire(state: Grant, now_ms: int) -> Result:
    if state.phase is not GrantPhase.LIVE or now_ms < state.paid_until_ms:
        return state, ()
    lapsed = replace(state, phase=GrantPhase.LAPSED)
    return lapsed, (RevokeRead(state.username, state.topic),)


def _permitted(state: Grant, inp: Permitted) -> Result:
    now = inp.now_ms
    if state.phase is GrantPhase.LIVE and now >= state.paid_until_ms:
        # The end passed before this input: lapse first, then count the new seconds.
        lapsed = replace(state, phase=GrantPhase.LAPSED)
        new, more = _permitted(lapsed, inp)
        return new, (RevokeRead(state.username, state.topic), *more)
    if inp.seconds == state.permitted_s:
        return state, ()
    if inp.seconds < state.permitted_s:
        # The session stopped: its permit fell to what was used. Stop at once.
        if state.phase is not GrantPhase.LIVE:
            return replace(state, permitted_s=inp.seconds), ()
        lapsed = replace(_lapse(state, now), permitted_s=inp.seconds)
        return lapsed, (RevokeRead(state.username, state.topic),)
    extra_ms = (inp.seconds - state.permitted_s) * 1000
    if state.phase is GrantPhase.LIVE:
        return replace(
            state, permitted_s=inp.seconds, paid_until_ms=state.paid_until_ms + extra_ms
        ), ()
    live = replace(
        state, phase=GrantPhase.LIVE, permitted_s=inp.seconds, paid_until_ms=now + extra_ms
    )
    return live, (AllowRead(state.username, state.topic),)
