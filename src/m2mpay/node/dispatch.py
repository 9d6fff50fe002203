"""The node's one dispatcher of effects: what the channel machine outputs, once logged,
is sent to peers, submitted to the chain or told to the application here, and
nowhere else. Acknowledgements are coalesced per channel; a transaction that fails
comes back as an input (`TxFailed`); one that is mined, through the chain follower as
the event it caused."""

from __future__ import annotations

import logging
from collections.abc import Callable

from m2mpay.channel.inputs import Accept, Input, TxFailed
from m2mpay.channel.messages import ChannelTerms, Message, PaymentAck
from m2mpay.channel.outputs import (
    ChannelEvent,
    Notify,
    Output,
    ProposalReceived,
    Rejected,
    Send,
    Submit,
    TransactionFailed,
)
from m2mpay.crypto import Address
from m2mpay.engine import HostCalls
from m2mpay.errors import LedgerError
from m2mpay.node.chain_access import ChainAccess
from m2mpay.node.effects import resending
from m2mpay.node.notifier import ChannelNotifier
from m2mpay.node.peers import Peers

__all__ = ["ChannelDispatch"]

log = logging.getLogger("m2mpay.node")


class ChannelDispatch:
    def __init__(
        self,
        peers: Peers,
        chain: ChainAccess,
        notifier: ChannelNotifier,
        host: HostCalls[Input],
        accept: Callable[[ChannelTerms], bool] | bool,
    ) -> None:
        self._peers = peers
        self._chain = chain
        self._notifier = notifier
        self._host = host
        self._accept = accept
        # Why a channel's deposit or close failed, for the call that waits on it.
        self.tx_failures: dict[tuple[bytes, str], str] = {}

    async def perform(self, outputs: list[Output]) -> None:
        sends: dict[Address, list[Message]] = {}
        acks: dict[tuple[Address, bytes], PaymentAck] = {}
        for output in outputs:
            if isinstance(output, Send):
                message = output.message
                if isinstance(message, PaymentAck):
                    acks[(output.peer, message.channel_id)] = message
                else:
                    sends.setdefault(output.peer, []).append(message)
            elif isinstance(output, Submit):
                self._host.spawn(self._submit(output))
            elif isinstance(output, Notify):
                self._notify(output.event)
            elif isinstance(output, Rejected):
                log.info("refused: %s %s", output.code.value, output.message)
        for (peer, _), ack in acks.items():
            sends.setdefault(peer, []).append(ack)
        for peer, messages in sends.items():
            # A peer without a session is brought up to date by a resync when it is back.
            await self._peers.send(peer, messages)

    def perform_refusal(self, outputs: tuple[Output, ...]) -> None:
        for output in outputs:
            if isinstance(output, Rejected):
                log.info("refused: %s %s", output.code.value, output.message)
            elif isinstance(output, Send):
                self._peers.send_soon(output.peer, output.message)

    async def _submit(self, output: Submit) -> None:
        tx = output.tx
        try:
            await resending(tx.kind, lambda: self._chain.execute(tx), self._host.running)
        except LedgerError as exc:
            reason = getattr(exc, "reason", str(exc))
            log.warning(
                "%s transaction for 0x%s failed: %s", tx.kind, output.channel_id.hex(), reason
            )
            self._host.feed_back(TxFailed(output.channel_id, tx.kind, str(reason)[:1000]))

    def _notify(self, event: ChannelEvent) -> None:
        if isinstance(event, ProposalReceived):
            policy = self._accept
            if policy if isinstance(policy, bool) else policy(event.terms):
                self._host.handle(Accept(event.channel_id))
        elif isinstance(event, TransactionFailed):
            self.tx_failures[(event.channel_id, event.kind)] = event.reason
        self._notifier.publish(event)
