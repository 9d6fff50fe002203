"""The channel protocol as a `Machine` for the durable engine: its transition, and its
log and snapshots as JSON of the protocol's plain data (`PureMachine`)."""

from __future__ import annotations

from collections.abc import Callable

from m2mpay.channel.context import ChannelContext
from m2mpay.channel.inputs import Input
from m2mpay.channel.machine import channel_key, is_refusal, transition
from m2mpay.channel.outputs import Output
from m2mpay.channel.state import ChannelState
from m2mpay.engine import PureMachine
from m2mpay.errors import ChannelError

__all__ = ["ChannelMachine"]


class ChannelMachine(PureMachine[ChannelContext, bytes, ChannelState, Input, Output]):
    """The channel protocol as a `Machine` for the engine: its transition, and its log."""

    def __init__(self, context: Callable[[], ChannelContext | None]) -> None:
        super().__init__(
            ChannelState,
            lambda state: state.channel_id,
            context,
            lambda: ChannelError("not_running", "the node is not started"),
            transition,
            is_refusal,
        )

    def key(self, inp: Input) -> bytes | None:
        return channel_key(self._ctx, inp)
