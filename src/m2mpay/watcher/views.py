"""The JSON forms of what the watcher knows, as the HTTP API shows them.

Amounts are decimal strings (uint256 does not fit a JSON number); block numbers,
timestamps and periods are integers. Bearer tokens and signatures never appear.
"""

from __future__ import annotations

from typing import Any

from m2mpay.crypto import Address
from m2mpay.watcher.state import Watched, WatcherState, params_json

__all__ = ["channel_json", "info_json"]


def info_json(
    *, address: Address, chain_id: int, hub: Address, state: WatcherState, cursor: int
) -> dict[str, Any]:
    return {
        "address": address.checksum,
        "chain": f"eip155:{chain_id}",
        "chain_id": chain_id,
        "hub": hub.checksum,
        "channels": len(state.channels),
        "proofs": state.proofs,
        "registrations": sum(len(w.parties) for w in state.channels.values()),
        "disputes": len(state.disputes),
        "cursor": cursor,
    }


def channel_json(watched: Watched) -> dict[str, Any]:
    params, view = watched.params, watched.view
    parties = []
    for party, entry in watched.parties.items():
        parties.append(
            {
                "party": party.checksum,
                "role": "a" if party == params.a else "b",
                "held_transferred": None if entry.proof is None else str(entry.proof.transferred),
                "registered_at": entry.issued_at,
            }
        )
    closing = None
    if view.closing is not None:
        closing = {
            "deadline": view.closing.deadline,
            "transferred_a": str(view.closing.transferred_a),
            "transferred_b": str(view.closing.transferred_b),
            "closer": None if view.closer is None else view.closer.checksum,
            "close_block": view.close_block,
        }
    settlement = None
    if view.settlement is not None:
        settlement = {
            "balance_a": str(view.settlement[0]),
            "balance_b": str(view.settlement[1]),
            "cooperative": view.settlement[2],
            "block": view.settled_block,
        }
    known = view.deposits_at is not None
    return {
        "channel_id": "0x" + params.id.hex(),
        "channel": params_json(params),
        "parties": parties,
        "onchain": {
            "phase": view.phase.value,
            "deposit_a": str(view.deposit_a) if known else None,
            "deposit_b": str(view.deposit_b) if known else None,
            "closing": closing,
            "settlement": settlement,
        },
        "disputes": [d.to_json() for d in watched.disputes],
    }
