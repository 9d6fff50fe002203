"""A seller and a buyer running the session machine, wired by hand: message queues,
a channel reduced to its two running totals, and meters that deliver only what the
machine permits. Every interleaving is reachable from a test."""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass, field

from m2mpay.crypto import Address, PrivateKey, channel_domain
from m2mpay.stream.context import SessionConfig, SessionContext
from m2mpay.stream.inputs import (
    ChannelTotals,
    MeterReading,
    RequestReceived,
    SessionInput,
    SessionReceived,
    SessionTick,
    StartSession,
)
from m2mpay.stream.machine import is_session_refusal, session_key, transition
from m2mpay.stream.messages import SessionMessage, SessionRequest
from m2mpay.stream.offer import Leader, Offer, ServiceKind
from m2mpay.stream.outputs import (
    Allow,
    PayUpTo,
    SendSession,
    SessionEvent,
    SessionNotify,
    SessionOutput,
    SessionRefused,
)
from m2mpay.stream.state import SessionState

HUB = Address("0x" + "ab" * 20)
TOKEN = Address("0x" + "cd" * 20)
DOMAIN = channel_domain(1337, HUB)
CHANNEL = b"\x0c" * 32
SESSION = b"\x5e" * 32
NOW = 1_000_000


@dataclass
class Party:
    key: PrivateKey
    ctx: SessionContext
    states: dict[bytes, SessionState] = field(default_factory=dict)
    events: list[SessionEvent] = field(default_factory=list)
    refused: list[SessionRefused] = field(default_factory=list)
    log: list[SessionInput] = field(default_factory=list)
    sent_total: int = 0  # what this party has paid the other on the channel
    allowed: dict[bool, int] = field(default_factory=lambda: {False: 0, True: 0})
    metered: dict[bool, int] = field(default_factory=lambda: {False: 0, True: 0})

    @property
    def address(self) -> Address:
        return self.key.address

    @property
    def state(self) -> SessionState:
        return self.states[SESSION]


def make_offer(
    seller: Address,
    *,
    price: int = 10,
    window: int = 10,
    batch: int = 5,
    leader: Leader = Leader.DELIVERER,
    max_units: int = 0,
    reverse_price: int = 0,
) -> Offer:
    return Offer(
        b"\x0f" * 32,
        seller,
        ServiceKind.ENERGY,
        "Wh",
        price,
        TOKEN,
        0,
        max_units,
        window,
        leader,
        batch,
        reverse_price,
        NOW + 10**9,
    )


class SessionNet:
    def __init__(self, config: SessionConfig | None = None) -> None:
        config = config or SessionConfig(
            silence_timeout_ms=5_000, receipt_timeout_ms=5_000, resend_ms=1_000
        )
        self.seller = _party(PrivateKey(b"\x31" * 32), config)
        self.buyer = _party(PrivateKey(b"\x32" * 32), config)
        self.queues: defaultdict[Address, deque[tuple[Address, SessionMessage]]] = defaultdict(
            deque
        )
        # Payments travel too: the payee sees a payment only when it is delivered.
        self.payments: defaultdict[Address, deque[int]] = defaultdict(deque)
        self.now = NOW

    def other(self, party: Party) -> Party:
        return self.buyer if party is self.seller else self.seller

    # -- the machine, with every output carried out

    def apply(self, party: Party, inp: SessionInput) -> None:
        self.perform(party, self.step(party, inp))

    def step(self, party: Party, inp: SessionInput) -> tuple[SessionOutput, ...]:
        """Run the machine on an input, logging it unless it was refused or changed nothing."""
        key = session_key(inp)
        state = party.states.get(key) if key is not None else None
        new, outputs = transition(party.ctx, state, inp)
        if new is not None and key is not None:
            party.states[key] = new
        if not is_session_refusal(state, new, outputs) and (new is not state or outputs):
            party.log.append(inp)
        return outputs

    def perform(self, party: Party, outputs: tuple[SessionOutput, ...]) -> None:
        for output in outputs:
            if isinstance(output, SendSession):
                self.queues[output.peer].append((party.address, output.message))
            elif isinstance(output, PayUpTo):
                state_now = party.states[output.session_id]
                base = state_now.seller_base if state_now.we_sell else state_now.buyer_base
                amount = output.total - (party.sent_total - base)
                if amount > 0:
                    party.sent_total += amount
                    self.payments[self.other(party).address].append(party.sent_total)
            elif isinstance(output, Allow):
                party.allowed[output.reversed] = output.units
            elif isinstance(output, SessionNotify):
                party.events.append(output.event)
            elif isinstance(output, SessionRefused):
                party.refused.append(output)

    def start(
        self,
        offer: Offer,
        *,
        budget: int = 0,
        target: int = 0,
        limit_price: int = 10**6,
        allow_reverse: bool = False,
    ) -> None:
        self.apply(
            self.buyer,
            StartSession(
                SESSION,
                offer,
                CHANNEL,
                limit_price,
                budget,
                target,
                allow_reverse,
                self.buyer.sent_total,
                self.seller.sent_total,
                self.now,
            ),
        )
        self.offer = offer

    def deliver_messages(self, to: Party, count: int | None = None) -> int:
        queue = self.queues[to.address]
        done = 0
        while queue and (count is None or done < count):
            sender, message = queue.popleft()
            if isinstance(message, SessionRequest):
                self.apply(
                    to,
                    RequestReceived(
                        sender,
                        message,
                        self.offer if message.offer_id == self.offer.offer_id else None,
                        sender,
                        TOKEN,
                        to.sent_total,
                        self.other(to).sent_total,
                        False,
                        self.now,
                    ),
                )
            else:
                self.apply(to, SessionReceived(sender, message, self.now))
            done += 1
        return done

    def settle_payments(self, to: Party, count: int | None = None) -> None:
        """The payee's node makes payments durable and tells the session machine."""
        queue = self.payments[to.address]
        done = 0
        while queue and (count is None or done < count):
            received = queue.popleft()
            self.apply(to, ChannelTotals(SESSION, to.sent_total, received, self.now))
            done += 1

    def meter(self, party: Party, reversed_flow: bool, units: int) -> int:
        """The deliverer's meter delivers up to `units` more, never past its permit."""
        can = max(0, party.allowed[reversed_flow] - party.metered[reversed_flow])
        delivered = min(units, can)
        if delivered:
            party.metered[reversed_flow] += delivered
            self.apply(
                party, MeterReading(SESSION, reversed_flow, party.metered[reversed_flow], self.now)
            )
        return delivered

    def run(self, rounds: int = 200, units_per_round: int = 1) -> None:
        """Deliver, report, pay and settle until nothing moves (or `rounds` pass)."""
        for _ in range(rounds):
            moved = 0
            for party in (self.seller, self.buyer):
                if SESSION in party.states:
                    for reversed_flow in (False, True):
                        if party.states[SESSION].delivers(reversed_flow):
                            moved += self.meter(party, reversed_flow, units_per_round)
            moved += self.deliver_messages(self.seller) + self.deliver_messages(self.buyer)
            for party in (self.seller, self.buyer):
                before = len(self.payments[party.address])
                self.settle_payments(party)
                moved += before
            if not moved:
                return

    def tick(self, advance_ms: int) -> None:
        self.now += advance_ms
        for party in (self.seller, self.buyer):
            if SESSION in party.states:
                self.apply(party, SessionTick(SESSION, self.now))


def _party(key: PrivateKey, config: SessionConfig) -> Party:
    return Party(key, SessionContext(key, DOMAIN, config))
