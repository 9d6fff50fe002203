"""`m2mpay status`: whose chain a node is on and whether it is reachable, which peers
are connected, which sessions run, whether its watcher answers.

Exits with 1 when the chain or the watcher cannot be reached, so that scripts and
health checks can use it; a node that does not answer is an error as for every command.
"""

from __future__ import annotations

import asyncio

import typer
from rich.markup import escape

from m2mpay.cli.remote import Remote, emit, kv_table, listing, short
from m2mpay.cli.units import Units
from m2mpay.client import NodeClient, NodeStatus, PeerStatus, SessionView, encode

__all__ = ["status"]


def status(remote: Remote) -> None:
    """Is the node well: its chain, connected peers, running sessions, its watcher."""
    well = True

    async def work(node: NodeClient) -> None:
        nonlocal well
        found, sessions, units = await asyncio.gather(
            node.status(), node.sessions(), Units.load(node)
        )
        running = [s for s in sessions if not s.stopped]
        well = found.chain.reachable and (found.watcher is None or found.watcher.reachable)
        if remote.as_json:
            emit({**encode(found), "sessions": [encode(s) for s in running]})
        else:
            _show(remote.url, found, running, units)

    remote.call(work)
    if not well:
        raise typer.Exit(1)


def _show(url: str, found: NodeStatus, running: list[SessionView], units: Units) -> None:
    chain = found.chain
    reached = (
        f"reachable, block {chain.block}" if chain.reachable else f"NOT REACHABLE: {chain.problem}"
    )
    watcher = found.watcher
    if watcher is None:
        watched = "none (m2mpay node --watcher URL feeds one)"
    elif watcher.reachable:
        watched = (
            f"{watcher.url}: reachable ({watcher.address.checksum if watcher.address else ''})"
        )
    else:
        watched = f"{watcher.url}: NOT REACHABLE: {watcher.problem}"
    kv_table(
        f"node {found.address.checksum} at {url}",
        [
            ("chain", f"{chain.chain}: {reached}"),
            ("genesis", chain.genesis_hash),
            ("ledger", chain.ledger),
            ("ChannelHub", chain.hub.checksum),
            ("token", f"{units.symbol} ({units.decimals} decimals) at {chain.token.checksum}"),
            ("peers reach it at", found.peer_endpoint),
            ("watcher", watched),
            ("version", found.version),
        ],
    )
    listing(
        "peer",
        found.peers,
        _peer_row,
        empty="no peers with open channels",
        keep="peer connected",
        numbers="channels",
    )
    listing(
        "running session",
        running,
        lambda view: _session_row(view, units),
        empty="no sessions running",
        keep="session peer role phase",
        numbers="units paid",
    )


def _peer_row(peer: PeerStatus) -> list[str]:
    return [peer.address.checksum, "yes" if peer.connected else "NO", str(peer.channels)]


def _session_row(view: SessionView, units: Units) -> list[str]:
    return [
        short(view.session_id),
        short(view.peer.checksum),
        view.role,
        escape(view.phase),
        str(view.forward.units),
        units.amount(view.forward.paid, view.asset),
    ]
