"""The paying half of a node's API: payments over the wire, queued at full speed
under backpressure and awaited as far as the caller asks, and payments delivered
by another road (an HTTP commitment), signed or taken exactly as the wire's.

`NodePayments` is a base of `Node`: node.py holds the node's plumbing and its
channels' life on chain, this module what moves money on an open channel. The
acknowledgements and the backpressure themselves are the `ChannelNotifier`'s
(node/notifier.py); the rules are the channel machine's (channel/paying.py).
"""

from __future__ import annotations

import abc
import asyncio

from m2mpay.channel.context import ChannelContext
from m2mpay.channel.inputs import Commit, Input, Pay, Received
from m2mpay.channel.messages import PaymentMessage
from m2mpay.channel.outputs import Output
from m2mpay.channel.paying import payment_message
from m2mpay.channel.state import ChannelState
from m2mpay.crypto import Address
from m2mpay.engine import EngineHost, now_ms
from m2mpay.errors import ChannelError
from m2mpay.node.config import NodeConfig
from m2mpay.node.info import PaymentHandle, PaymentWait
from m2mpay.node.notifier import ChannelNotifier

__all__ = ["NodePayments"]


class NodePayments(EngineHost[bytes, ChannelState, Input, Output]):
    """What a node pays and is paid through its API; the node makes `config` and
    `_notifier` and says when it runs (`_ensure_running`)."""

    config: NodeConfig
    _notifier: ChannelNotifier

    @abc.abstractmethod
    def _ensure_running(self) -> ChannelContext:
        """The channel context, or the refusal of a node that is not running."""

    @property
    def _channels(self) -> dict[bytes, ChannelState]:
        return self._engine.states

    def pay_nowait(self, channel_id: bytes, amount: int) -> PaymentHandle:
        """Sign and queue a payment now; `acknowledged` resolves once the payee made it durable.

        Raises `ChannelError` at once for an unknown channel, a channel that is not
        open, a non-positive amount or one above our balance, and when
        `max_in_flight` payments already await acknowledgement.
        """
        if self._notifier.in_flight(channel_id) >= self.config.max_in_flight:
            raise ChannelError("backpressure", "too many payments await acknowledgement")
        self._request(Pay(channel_id, amount))
        state = self._channels[channel_id]
        future = self._notifier.expect_ack(channel_id, state.sent_seq)
        return PaymentHandle(channel_id, amount, state.sent_total, state.sent_seq, future)

    async def pay(
        self,
        channel_id: bytes,
        amount: int,
        *,
        wait: PaymentWait = PaymentWait.ACKNOWLEDGED,
        timeout: float = 30.0,
    ) -> PaymentHandle:
        """Pay `amount` and return once the payment is as far as `wait` says: queued
        (signed; a loop of such calls streams payments at full speed), durable in our
        log, or acknowledged by the payee as durable in its own.

        Whatever `wait` says, it waits while `max_in_flight` payments are
        unacknowledged (backpressure); `timeout` bounds each wait.
        """
        await self._notifier.room_for_payment(channel_id, self.config.max_in_flight, timeout)
        handle = self.pay_nowait(channel_id, amount)
        await self._engine.yield_if_busy()
        # asyncio.timeout rather than wait_for: on Python 3.11, wait_for loses a
        # cancellation that arrives just as the awaited future completes.
        if wait is PaymentWait.ACKNOWLEDGED:
            async with asyncio.timeout(timeout):
                await asyncio.shield(handle.acknowledged)
        elif wait is PaymentWait.DURABLE:
            async with asyncio.timeout(timeout):
                await self.flushed()
        return handle

    async def commit(self, channel_id: bytes, amount: int) -> PaymentMessage:
        """Sign our running total `amount` higher, for the caller to deliver (an HTTP
        payment) instead of the wire; returns once it is durable in our log, so a crash
        never lets us sign another proof with the same sequence number."""
        ctx = self._ensure_running()
        self._request(Commit(channel_id, amount))
        message = payment_message(ctx, self._channels[channel_id], amount)
        await self._engine.durable()
        return message

    def take_commitment(self, payer: Address, message: PaymentMessage) -> ChannelState:
        """Apply a payment `payer` delivered by another road than the wire (an HTTP
        commitment) exactly as one from the wire: every check a payee makes, refused
        as `ChannelError` with the machine's code. Durable only once `flushed()`
        returns: serve nothing against it before."""
        self._request(Received(payer, message, now_ms()))
        return self._channels[message.channel_id]

    async def flushed(self) -> None:
        """Return once everything asked of the node so far is durable and under way
        (a payment made with `pay_nowait` is then signed, logged and sent)."""
        await self._engine.durable()
