"""Two channel machines wired together by hand: a network of message queues and a
pure model of the ChannelHub. Unit tests of the protocol drive everything
explicitly (deliver, mine, tick), so every interleaving is reachable. The real
contract and ledgers are exercised by the conformance and node tests."""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass, field, replace

from m2mpay.chain.hub import Closing, OnchainChannel
from m2mpay.channel.context import ChannelContext, ProtocolConfig
from m2mpay.channel.inputs import (
    Accept,
    ChainChallenged,
    ChainClosing,
    ChainDeposited,
    ChainOpened,
    ChainSettled,
    Input,
    Propose,
    Received,
    Tick,
    TxFailed,
)
from m2mpay.channel.machine import channel_key, is_refusal, transition
from m2mpay.channel.messages import Message
from m2mpay.channel.outputs import (
    ChallengeTx,
    ChannelEvent,
    CloseTx,
    CooperativeCloseTx,
    DepositTx,
    Notify,
    OpenTx,
    Output,
    Rejected,
    Send,
    Submit,
    TxRequest,
)
from m2mpay.channel.state import ChannelState
from m2mpay.crypto import (
    Address,
    PrivateKey,
    balance_proof_digest,
    channel_domain,
    recover_signer,
    settlement_digest,
)

HUB = Address("0x" + "ab" * 20)
TOKEN = Address("0x" + "cd" * 20)
CHAIN_ID = 1337
DOMAIN = channel_domain(CHAIN_ID, HUB)


@dataclass
class Party:
    key: PrivateKey
    ctx: ChannelContext
    channels: dict[bytes, ChannelState] = field(default_factory=dict)
    events: list[ChannelEvent] = field(default_factory=list)
    rejections: list[Rejected] = field(default_factory=list)
    log: list[Input] = field(default_factory=list)  # every input that changed something

    @property
    def address(self) -> Address:
        return self.key.address

    def state(self, channel: bytes) -> ChannelState:
        return self.channels[channel]


class SimulatedHub:
    """ChannelHub's rules in Python: enough to drive the machines through every path."""

    def __init__(self) -> None:
        self.chain_time = 1_000_000
        self.block = 1
        self.channels: dict[bytes, tuple[OnchainChannel, Closing | None, bool]] = {}
        self.payouts: dict[bytes, tuple[int, int]] = {}

    def execute(self, sender: Address, tx: TxRequest) -> list[Input]:
        """Apply a transaction; returns the chain inputs its events make, or raises ValueError."""
        self.block += 1
        terms = tx.terms
        onchain = OnchainChannel(terms.a, terms.b, terms.asset, terms.challenge_period, terms.nonce)
        if isinstance(tx, OpenTx):
            return self._open(onchain, tx)
        channel, closing, settled = self.channels[onchain.id]
        if settled:
            raise ValueError("channel already settled")
        if (channel.deposit_a, channel.deposit_b) != (tx.deposit_a, tx.deposit_b):
            raise ValueError("stale or wrong channel state")
        if isinstance(tx, DepositTx):
            return self._deposit(channel, closing, tx)
        if isinstance(tx, CooperativeCloseTx):
            return self._cooperative_close(channel, closing, tx)
        if isinstance(tx, CloseTx):
            return self._close(channel, closing, sender, tx)
        if isinstance(tx, ChallengeTx):
            return self._challenge(channel, closing, tx)
        return self._settle(channel, closing)

    def _open(self, onchain: OnchainChannel, tx: OpenTx) -> list[Input]:
        terms = tx.terms
        if onchain.id in self.channels:
            raise ValueError("channel id already used")
        self.channels[onchain.id] = (replace(onchain, deposit_a=terms.deposit_a), None, False)
        return [
            ChainOpened(
                onchain.id,
                terms.a,
                terms.b,
                terms.asset,
                terms.challenge_period,
                terms.nonce,
                terms.deposit_a,
                self.block,
            )
        ]

    def _deposit(
        self, channel: OnchainChannel, closing: Closing | None, tx: DepositTx
    ) -> list[Input]:
        if closing is not None:
            raise ValueError("channel is closing")
        channel = channel.with_deposit(tx.participant, tx.amount)
        self.channels[channel.id] = (channel, None, False)
        return [
            ChainDeposited(
                channel.id, tx.participant, channel.deposit_a, channel.deposit_b, self.block
            )
        ]

    def _cooperative_close(
        self, channel: OnchainChannel, closing: Closing | None, tx: CooperativeCloseTx
    ) -> list[Input]:
        if closing is not None:
            raise ValueError("stale or wrong channel state")
        digest = settlement_digest(DOMAIN, channel.id, tx.balance_a, tx.balance_b)
        if tx.balance_a + tx.balance_b != channel.total_deposit:
            raise ValueError("split does not match deposits")
        if recover_signer(digest, tx.signature_a) != channel.a:
            raise ValueError("settlement not signed by a")
        if recover_signer(digest, tx.signature_b) != channel.b:
            raise ValueError("settlement not signed by b")
        self.channels[channel.id] = (channel, None, True)
        self.payouts[channel.id] = (tx.balance_a, tx.balance_b)
        return [ChainSettled(channel.id, tx.balance_a, tx.balance_b, True, self.block)]

    def _close(
        self, channel: OnchainChannel, closing: Closing | None, sender: Address, tx: CloseTx
    ) -> list[Input]:
        if closing is not None:
            raise ValueError("stale or wrong channel state")
        if sender not in (channel.a, channel.b):
            raise ValueError("only a party can close")
        peer_total = tx.transferred_b if sender == channel.a else tx.transferred_a
        peer = channel.b if sender == channel.a else channel.a
        if peer_total:
            assert tx.peer_proof is not None
            digest = balance_proof_digest(DOMAIN, channel.id, peer_total)
            if recover_signer(digest, tx.peer_proof) != peer:
                raise ValueError("proof not signed by peer")
        closing = Closing(
            self.chain_time + channel.challenge_period, tx.transferred_a, tx.transferred_b
        )
        self.channels[channel.id] = (channel, closing, False)
        return [
            ChainClosing(
                channel.id,
                sender,
                tx.transferred_a,
                tx.transferred_b,
                closing.deadline,
                self.block,
            )
        ]

    def _challenge(
        self, channel: OnchainChannel, closing: Closing | None, tx: ChallengeTx
    ) -> list[Input]:
        if closing is None or self.chain_time > closing.deadline:
            raise ValueError("challenge period is over")
        recorded = closing.transferred_a if tx.participant == channel.a else closing.transferred_b
        if tx.transferred <= recorded:
            raise ValueError("proof is not newer")
        digest = balance_proof_digest(DOMAIN, channel.id, tx.transferred)
        if recover_signer(digest, tx.proof) != tx.participant:
            raise ValueError("proof not signed by the party")
        if tx.participant == channel.a:
            closing = Closing(closing.deadline, tx.transferred, closing.transferred_b)
        else:
            closing = Closing(closing.deadline, closing.transferred_a, tx.transferred)
        self.channels[channel.id] = (channel, closing, False)
        return [
            ChainChallenged(
                channel.id,
                closing.transferred_a,
                closing.transferred_b,
                closing.deadline,
                self.block,
            )
        ]

    def _settle(self, channel: OnchainChannel, closing: Closing | None) -> list[Input]:
        if closing is None or self.chain_time <= closing.deadline:
            raise ValueError("challenge period not over")
        balance_a, balance_b = channel.split(closing)
        self.channels[channel.id] = (channel, closing, True)
        self.payouts[channel.id] = (balance_a, balance_b)
        return [ChainSettled(channel.id, balance_a, balance_b, False, self.block)]


class Network:
    """Alice (party a) and Bob (party b), their message queues and the hub."""

    def __init__(self, config: ProtocolConfig | None = None) -> None:
        config = config or ProtocolConfig()
        self.alice = _party(PrivateKey(b"\x11" * 32), config)
        self.bob = _party(PrivateKey(b"\x22" * 32), config)
        self.queues: defaultdict[Address, deque[tuple[Address, Message]]] = defaultdict(deque)
        self.hub = SimulatedHub()
        self.mempool: list[tuple[Party, bytes, TxRequest]] = []
        self.failed_tx: list[tuple[str, str]] = []
        self.now_ms = 1_000_000_000

    def party(self, address: Address) -> Party:
        return self.alice if address == self.alice.address else self.bob

    def other(self, party: Party) -> Party:
        return self.bob if party is self.alice else self.alice

    def apply(self, party: Party, inp: Input) -> tuple[Output, ...]:
        key = channel_key(party.ctx, inp)
        state = party.channels.get(key) if key is not None else None
        new, outputs = transition(party.ctx, state, inp)
        if new is not None and key is not None and (new is not state or outputs):
            party.channels[key] = new
        if not is_refusal(state, new, outputs) and (new is not state or outputs):
            party.log.append(inp)
        for output in outputs:
            if isinstance(output, Send):
                self.queues[output.peer].append((party.address, output.message))
            elif isinstance(output, Submit):
                self.mempool.append((party, output.channel_id, output.tx))
            elif isinstance(output, Notify):
                party.events.append(output.event)
            elif isinstance(output, Rejected):
                party.rejections.append(output)
        return outputs

    def deliver(self, to: Party, count: int | None = None) -> int:
        """Deliver up to `count` queued messages to `to`, in order."""
        queue = self.queues[to.address]
        delivered = 0
        while queue and (count is None or delivered < count):
            sender, message = queue.popleft()
            self.apply(to, Received(sender, message, self.now_ms))
            delivered += 1
        return delivered

    def deliver_all(self) -> None:
        while self.queues[self.alice.address] or self.queues[self.bob.address]:
            self.deliver(self.alice)
            self.deliver(self.bob)

    def mine(self, *, unseen_by: Party | None = None) -> list[Input]:
        """Execute every submitted transaction and feed its events to both parties, or hold
        back those of a party whose chain follower lags (returned, for it to see later)."""
        withheld: list[Input] = []
        while self.mempool:
            party, channel, tx = self.mempool.pop(0)
            try:
                chain_inputs = self.hub.execute(party.address, tx)
            except ValueError as exc:
                self.failed_tx.append((tx.kind, str(exc)))
                self.apply(party, TxFailed(channel, tx.kind, str(exc)))
                continue
            for chain_input in chain_inputs:
                for party in (self.alice, self.bob):
                    if party is unseen_by:
                        withheld.append(chain_input)
                    else:
                        self.apply(party, chain_input)
        return withheld

    def settle_everything(self) -> None:
        self.deliver_all()
        self.mine()
        self.deliver_all()
        self.mine()

    def tick(
        self, party: Party, channel: bytes, *, advance_ms: int = 0, advance_s: int = 0
    ) -> None:
        self.now_ms += advance_ms
        self.hub.chain_time += advance_s
        self.apply(party, Tick(channel, self.now_ms, self.hub.chain_time))

    def open_channel(
        self, deposit_a: int = 1_000, deposit_b: int = 0, period: int = 100, nonce: int = 1
    ) -> bytes:
        """Propose, accept, open and fund a channel alice → bob."""
        self.apply(
            self.alice,
            Propose(
                self.bob.address, TOKEN, deposit_a, deposit_b, period, nonce, self.now_ms, 60_000
            ),
        )
        self.deliver_all()
        channel = next(c for c, s in self.bob.channels.items() if s.terms.nonce == nonce)
        self.apply(self.bob, Accept(channel))
        self.deliver_all()
        self.mine()
        self.mine()
        return channel


def _party(key: PrivateKey, config: ProtocolConfig) -> Party:
    return Party(key, ChannelContext(key, DOMAIN, config))
