"""The running node: feeds inputs from peers, the chain, the clock and the API into
the channel machine, durably, and performs its outputs in one dispatcher.

Log, then act: the channel machine runs on a `DurableEngine`, which logs every
input with its outputs before they are performed and shares one flush among
many inputs (group commit). `_perform` is the one place where messages are sent,
transactions submitted and the application told (`ChannelDispatch`, node/dispatch.py).
The paying half of its API (`pay`, `commit`, …) is its base `NodePayments`
(node/payments.py); here are its plumbing and its channels' life on chain.
"""

from __future__ import annotations

import logging
import secrets

from m2mpay.channel.context import ChannelContext
from m2mpay.channel.inputs import ForceClose, Propose, Received, RequestClose, Resync, TopUp
from m2mpay.channel.machine import channel_key
from m2mpay.channel.messages import MESSAGE_TYPES, Message
from m2mpay.channel.outputs import ChannelEvent, Rejected
from m2mpay.channel.state import ChannelState, Phase
from m2mpay.crypto import Address, PrivateKey, channel_domain
from m2mpay.engine import EventFanOut, EventSource, now_ms
from m2mpay.errors import ChannelError
from m2mpay.node.chain_access import ChainAccess
from m2mpay.node.chain_follow import ChainFollower
from m2mpay.node.channel_machine import ChannelMachine
from m2mpay.node.clock import ChannelClock
from m2mpay.node.config import NodeConfig
from m2mpay.node.dispatch import ChannelDispatch
from m2mpay.node.endpoints import PeerEndpoints
from m2mpay.node.info import ChannelInfo
from m2mpay.node.notifier import ChannelNotifier
from m2mpay.node.payments import NodePayments
from m2mpay.node.peers import Peers
from m2mpay.store import Store
from m2mpay.wire import Transport

__all__ = ["Node", "NodeConfig"]

log = logging.getLogger("m2mpay.node")


class Node(NodePayments, EventSource[ChannelEvent, ChannelState]):
    """A party to payment channels: the small Python API over the whole engine.

    Its listeners and subscribers (`add_listener`, `events`) hear of every channel
    event (payments received, opened, closed, …) with the channel's state."""

    _what = "node"
    _item = "channel"
    _log = log
    _refused = Rejected

    def __init__(
        self,
        key: PrivateKey,
        chain: ChainAccess,
        store: Store,
        *,
        transport: Transport | None = None,
        config: NodeConfig | None = None,
    ) -> None:
        self.key = key
        self.config = config or NodeConfig()
        self._chain = chain
        self._ctx: ChannelContext | None = None
        super().__init__(
            ChannelMachine(lambda: self._ctx), store, snapshot_every=self.config.snapshot_every
        )
        self.peers = Peers(
            key,
            transport,
            self.config.peers,
            spawn=self._spawn,
            after_message=self._engine.yield_if_busy,
        )
        self.peers.route(MESSAGE_TYPES, self._on_channel_message)
        self.peers.on_link(self._on_peer_link)
        self._endpoints = PeerEndpoints(self.peers, self._engine.put_meta)
        self._clock = ChannelClock(chain, self._handle)
        self._events: EventFanOut[ChannelEvent, ChannelState] = EventFanOut()
        self._notifier = ChannelNotifier(self._engine.state, self._waits, self._events)
        self._dispatch = ChannelDispatch(
            self.peers, chain, self._notifier, self._calls, self.config.accept
        )
        self._tx_failures = self._dispatch.tx_failures
        self._follower = ChainFollower(
            chain,
            key.address,
            lambda: self._engine.states,
            self._handle,
            self._engine.put_meta,
            start_block=self.config.start_block,
        )
        self.caught_up = self._follower.caught_up

    # ------------------------------------------------------------------ lifecycle

    @property
    def address(self) -> Address:
        return self.key.address

    @property
    def endpoint(self) -> str | None:
        return self.peers.endpoint

    @property
    def chain(self) -> ChainAccess:
        return self._chain

    async def start(self) -> None:
        """Recover from the store, then start listening, following the chain and ticking."""
        await self._chain.start()
        self.peers.chain = self._chain.genesis_hash
        self._ctx = ChannelContext(
            self.key, channel_domain(self._chain.chain_id, self._chain.hub), self.config.protocol
        )
        recovered = await self._open_engine()
        self._follower.restore(recovered.meta)
        self._endpoints.restore(recovered.meta)
        self._run_engine()
        self._spawn(self._follower.run())
        self._spawn(self._every(self.config.tick_interval_s, self._clock.tick))
        await self.peers.start()
        self._endpoints.keep_connected()

    async def stop(self) -> None:
        """Finish what is durable, snapshot, and release everything."""
        if not await self._stop_engine():
            return
        await self.peers.stop()
        await self._close_store()
        await self._chain.stop()
        self._notifier.fail_payments(ChannelError("stopped", "the node stopped"))

    def _refusal(self, code: str, message: str) -> ChannelError:
        return ChannelError("node_failed" if code == "failed" else code, message)

    def _ensure_running(self) -> ChannelContext:
        self._check_running()
        if self._ctx is None:
            raise ChannelError("not_running", "the node is not running")
        return self._ctx

    # ------------------------------------------------------------------ the engine and effects

    def _on_change(self, channel: bytes, state: ChannelState) -> None:
        self._clock.changed(channel, state)

    # ------------------------------------------------------------------ peers

    async def connect(self, endpoint: str, peer: Address | None = None) -> Address:
        """Open an authenticated session to the node at `endpoint`; returns its address."""
        self._ensure_running()
        return await self.peers.connect(endpoint, peer)

    def is_connected(self, peer: Address) -> bool:
        return self.peers.is_connected(peer)

    def peer_endpoints(self) -> dict[Address, str]:
        """Where each peer the node had a link with is reached, as it last learnt."""
        return self._endpoints.known()

    def _on_channel_message(self, peer: Address, message: Message) -> None:
        self._handle(Received(peer, message, now_ms()))

    def _on_peer_link(self, peer: Address) -> None:
        for channel, state in self._channels.items():
            if state.peer == peer:
                self._handle(Resync(channel))

    # ------------------------------------------------------------------ the API

    def channels(self) -> list[ChannelInfo]:
        return [ChannelInfo.of(state) for state in self._channels.values()]

    def channel(self, channel_id: bytes) -> ChannelInfo:
        state = self._channels.get(channel_id)
        if state is None:
            raise ChannelError("unknown_channel", f"no channel 0x{channel_id.hex()}")
        return ChannelInfo.of(state)

    def channel_states(self) -> list[ChannelState]:
        """Every channel's whole state, with the newest proof the peer signed us.

        For services that act on the proofs themselves (a watcher feed); applications
        want `channels()`.
        """
        return list(self._channels.values())

    async def open_channel(
        self,
        peer: Address,
        asset: Address,
        deposit: int,
        *,
        peer_deposit: int = 0,
        challenge_period: int | None = None,
        endpoint: str | None = None,
        timeout: float = 60.0,
    ) -> ChannelInfo:
        """Propose a channel, have it accepted, fund it on chain; returns once it is open
        (and, if `peer_deposit` was agreed, once the peer has funded it too)."""
        self._ensure_running()
        await self._endpoints.reach(peer, endpoint)
        inp = Propose(
            peer,
            asset,
            deposit,
            peer_deposit,
            challenge_period or self.config.challenge_period,
            secrets.randbits(64),
            now_ms(),
            self.config.proposal_ttl_ms,
        )
        self._request(inp)
        channel = channel_key(self._ensure_running(), inp)
        assert channel is not None
        state = await self._wait(
            channel,
            lambda s: (
                s.phase not in (Phase.PROPOSED, Phase.ACCEPTED)
                and (s.phase is not Phase.OPEN or s.deposit_b >= peer_deposit)
            ),
            timeout,
        )
        if state.phase is not Phase.OPEN:
            raise ChannelError(
                state.phase.value, f"channel 0x{channel.hex()} is {state.phase.value}"
            )
        return ChannelInfo.of(state)

    async def top_up(self, channel_id: bytes, amount: int, *, timeout: float = 60.0) -> ChannelInfo:
        before = self._channels.get(channel_id)
        target = (before.my_deposit if before else 0) + amount
        self._tx_failures.pop((channel_id, "deposit"), None)
        self._request(TopUp(channel_id, amount))
        state = await self._wait(
            channel_id,
            lambda s: s.my_deposit >= target or (channel_id, "deposit") in self._tx_failures,
            timeout,
        )
        if state.my_deposit < target:
            reason = self._tx_failures.pop((channel_id, "deposit"), "not confirmed")
            raise ChannelError("top_up_failed", f"the deposit did not go through: {reason}")
        return ChannelInfo.of(state)

    async def close(self, channel_id: bytes, *, timeout: float = 120.0) -> ChannelInfo:
        """Close cooperatively (falling back to a unilateral close if the peer does not
        answer); returns once the chain shows the channel closed or in dispute."""
        self._request(RequestClose(channel_id, now_ms()))
        state = await self._wait(
            channel_id,
            lambda s: s.phase in (Phase.CLOSED, Phase.SETTLED, Phase.DISPUTED),
            timeout,
        )
        return ChannelInfo.of(state)

    async def force_close(self, channel_id: bytes, *, timeout: float = 60.0) -> ChannelInfo:
        """Close unilaterally with our newest proofs; returns once the close is on chain."""
        self._tx_failures.pop((channel_id, "close"), None)
        self._request(ForceClose(channel_id))
        state = await self._wait(
            channel_id,
            lambda s: (
                s.phase in (Phase.DISPUTED, Phase.SETTLED, Phase.CLOSED)
                or (channel_id, "close") in self._tx_failures
            ),
            timeout,
        )
        failure = self._tx_failures.pop((channel_id, "close"), None)
        if failure is not None and state.phase not in (Phase.DISPUTED, Phase.SETTLED, Phase.CLOSED):
            raise ChannelError("close_failed", failure)
        return ChannelInfo.of(state)

    async def wait_closed(self, channel_id: bytes, *, timeout: float = 120.0) -> ChannelInfo:
        """Wait until the channel is paid out (cooperatively or after a dispute)."""
        state = await self._wait(
            channel_id, lambda s: s.phase in (Phase.CLOSED, Phase.SETTLED), timeout
        )
        return ChannelInfo.of(state)
