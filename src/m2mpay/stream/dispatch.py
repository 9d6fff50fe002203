"""The session manager's one dispatcher of effects: what the session machine outputs,
once logged, is sent to peers, paid over the node's channels, permitted to the
devices or told to the application here, and nowhere else. Only a stop does not
wait for the log to switch the devices down (`freeze`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from m2mpay.crypto import Address
from m2mpay.engine import HostCalls, now_ms
from m2mpay.node import Node
from m2mpay.stream.channels import pay_up_to
from m2mpay.stream.inputs import SessionInput
from m2mpay.stream.messages import SessionMessage
from m2mpay.stream.outputs import (
    Allow,
    PayUpTo,
    SendSession,
    SessionEvent,
    SessionNotify,
    SessionOutput,
    SessionRefused,
    SessionStopped,
)
from m2mpay.stream.state import SessionPhase, SessionState
from m2mpay.stream.supplies import Supplies

__all__ = ["SessionDispatch"]

log = logging.getLogger("m2mpay.stream")


class SessionDispatch:
    def __init__(
        self,
        node: Node,
        supplies: Supplies,
        host: HostCalls[SessionInput],
        state_of: Callable[[bytes], SessionState | None],
        announce: Callable[[SessionEvent], None],
    ) -> None:
        self._node = node
        self._supplies = supplies
        self._host = host
        self._state_of = state_of
        self._announce = announce  # to the callers waiting and the listeners

    async def perform(self, outputs: list[SessionOutput]) -> None:
        """Send, pay, switch devices, notify."""
        sends: dict[Address, list[SessionMessage]] = {}
        for output in outputs:
            if isinstance(output, SendSession):
                sends.setdefault(output.peer, []).append(output.message)
            elif isinstance(output, PayUpTo):
                self._pay(output)
            elif isinstance(output, Allow):
                state = self._state_of(output.session_id)
                if state is not None:
                    supply = await self._supplies.of(state, output.reversed)
                    if supply is not None:
                        # Never above the newest permit: a stop handled since this was
                        # logged has already switched the device down (`freeze`).
                        newest = state.flow(output.reversed).allowed
                        supply.permit(min(output.units, newest))
            elif isinstance(output, SessionNotify):
                await self._notify(output.event)
            elif isinstance(output, SessionRefused):
                log.info("session refused: %s %s", output.code.value, output.message)
        for peer, messages in sends.items():
            # A peer without a session is caught up by the machine's own repeats.
            await self._node.peers.send(peer, messages)

    def perform_refusal(self, outputs: tuple[SessionOutput, ...]) -> None:
        for output in outputs:
            if isinstance(output, SessionRefused):
                log.info("session refused: %s %s", output.code.value, output.message)
            elif isinstance(output, SendSession):
                self._node.peers.send_soon(output.peer, output.message)

    def freeze(self, outputs: tuple[SessionOutput, ...]) -> None:
        """A session that stops switches its devices off at once, not after the flush:
        stopping risks no money, and every unit a meter adds after the stop would be
        delivered and never billed."""
        for output in outputs:
            if isinstance(output, Allow):
                state = self._state_of(output.session_id)
                supply = self._supplies.running(output.session_id, output.reversed)
                if (
                    supply is not None
                    and state is not None
                    and state.phase is not SessionPhase.ACTIVE
                ):
                    supply.permit(output.units)

    def _pay(self, output: PayUpTo) -> None:
        state = self._state_of(output.session_id)
        if state is None:
            return
        failed = pay_up_to(self._node, state, output, now_ms())
        if failed is not None:
            log.warning("session payment failed: %s", failed.reason)
            self._host.feed_back(failed)

    async def _notify(self, event: SessionEvent) -> None:
        if isinstance(event, SessionStopped):
            await self._supplies.stop(event.session_id)
        self._announce(event)
