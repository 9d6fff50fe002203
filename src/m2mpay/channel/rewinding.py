"""Rewinding: a chain reorganisation took back events the machine had acted on.

The chain has the last word, including when it changes its mind. `chain_view` folds
a channel's events, as the chain now holds them, into one `ChainRewound` input;
`chain_rewound` sets the channel's on-chain view (opened, deposits, unilateral close,
settlement) back to it and does again what the dropped events had made unnecessary:
a close of ours is submitted again with our newest proofs, an old total on chain is
challenged again (`defend`), and a disputed channel is settled again by the ticker.
Events after the view's block arrive again as ordinary inputs, as they are mined.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Final

from m2mpay.channel.context import ChannelContext
from m2mpay.channel.inputs import (
    ChainChallenged,
    ChainClosing,
    ChainDeposited,
    ChainOpened,
    ChainRewound,
    ChainSettled,
)
from m2mpay.channel.outputs import ChainReorganised, Notify, Output
from m2mpay.channel.rules import NO_OUTPUTS, Result, close_unilaterally, defend
from m2mpay.channel.state import ChannelState, OnchainClose, Phase

__all__ = ["chain_rewound", "chain_view"]

# Phases that stand on something the chain did; only these can be taken back.
_CHAIN_PHASES: Final = frozenset(
    {Phase.OPEN, Phase.CLOSING, Phase.DISPUTED, Phase.CLOSED, Phase.SETTLED}
)

ChainFact = ChainOpened | ChainDeposited | ChainClosing | ChainChallenged | ChainSettled


def chain_view(
    channel_id: bytes, events: Iterable[ChainFact], block_number: int, now_ms: int
) -> ChainRewound:
    """What the chain shows of a channel after `events` (in chain order, all from blocks
    before `block_number`; other channels' events are skipped)."""
    opened = settled = cooperative = False
    deposit_a = deposit_b = balance_a = balance_b = 0
    closing: OnchainClose | None = None
    for event in events:
        if event.channel_id != channel_id:
            continue
        if isinstance(event, ChainOpened):
            opened, deposit_a = True, event.deposit_a
        elif isinstance(event, ChainDeposited):
            deposit_a, deposit_b = event.deposit_a, event.deposit_b
        elif isinstance(event, ChainClosing):
            closing = OnchainClose(
                event.closer, event.deadline, event.transferred_a, event.transferred_b
            )
        elif isinstance(event, ChainChallenged) and closing is not None:
            closing = replace(
                closing,
                deadline=event.deadline,
                transferred_a=event.transferred_a,
                transferred_b=event.transferred_b,
            )
        elif isinstance(event, ChainSettled):
            settled, cooperative = True, event.cooperative
            balance_a, balance_b = event.balance_a, event.balance_b
    return ChainRewound(
        channel_id,
        block_number,
        opened,
        deposit_a,
        deposit_b,
        closing,
        settled,
        balance_a,
        balance_b,
        cooperative,
        now_ms,
    )


def _phase_shown(state: ChannelState, inp: ChainRewound) -> Phase:
    if inp.settled:
        return Phase.CLOSED if inp.cooperative else Phase.SETTLED
    if inp.closing is not None:
        return Phase.DISPUTED
    if inp.opened:
        # A cooperative close we took part in is still wanted; its transaction comes again.
        return Phase.CLOSING if state.close is not None else Phase.OPEN
    return Phase.ACCEPTED


def chain_rewound(ctx: ChannelContext, state: ChannelState | None, inp: ChainRewound) -> Result:
    if state is None or state.phase not in _CHAIN_PHASES:
        return state, NO_OUTPUTS  # nothing on chain was believed, nothing to take back
    phase = _phase_shown(state, inp)
    settled = (inp.balance_a, inp.balance_b) if inp.settled else (None, None)
    unchanged = (
        phase is state.phase
        and (inp.deposit_a, inp.deposit_b) == (state.deposit_a, state.deposit_b)
        and inp.closing == state.onchain_close
        and settled == (state.final_balance_a, state.final_balance_b)
    )
    if unchanged:
        return state, NO_OUTPUTS
    new = replace(
        state.rewound_to(phase),
        deposit_a=inp.deposit_a,
        deposit_b=inp.deposit_b,
        onchain_close=inp.closing,
        final_balance_a=settled[0],
        final_balance_b=settled[1],
    )
    if phase is Phase.CLOSING and state.phase is not Phase.CLOSING and new.close is not None:
        # The cooperative close's transaction was dropped: give it the close timeout
        # again to land before falling back to a unilateral close.
        new = replace(new, close=replace(new.close, started_at_ms=inp.now_ms))
    outputs: tuple[Output, ...] = (
        Notify(ChainReorganised(new.channel_id, phase.value, inp.deposit_a, inp.deposit_b)),
    )
    dropped = state.onchain_close
    if phase in (Phase.OPEN, Phase.CLOSING) and dropped is not None and dropped.closer == ctx.me:
        # Our unilateral close is gone: close again, with the newest proofs we hold.
        new, closing = close_unilaterally(new)
        outputs += closing
    elif phase is Phase.DISPUTED:
        # A challenge of ours may be gone: the chain holds an older total again.
        new, defence = defend(new)
        outputs += defence
    return new, outputs
