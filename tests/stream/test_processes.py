"""Sessions between node processes: SIGKILL either side in the middle of a session and
start it again; the session still ends with receipts both signed that match the
money the channel moved, and no unit went unpaid beyond the window."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from m2mpay.bench.processes import PeerProcess
from m2mpay.chain import deploy_contracts
from m2mpay.chain.shared import connect_ledger
from m2mpay.cli import app

UNIT = 10**18
PRICE = 10**12
WINDOW = 20


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _session(party: PeerProcess, session: str) -> dict[str, Any]:
    return await party.call({"cmd": "session_info", "session": session})


async def _until_session(
    party: PeerProcess, session: str, done: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """Poll another process until its view of the session satisfies `done`."""
    async with asyncio.timeout(90):
        while not done(info := await _session(party, session)):  # noqa: ASYNC110 (another process)
            await asyncio.sleep(0.05)
    return info


@pytest.mark.slow
@pytest.mark.parametrize("killed", ["seller", "buyer"])
async def test_a_session_survives_sigkill_of_either_side(killed: str, tmp_path: Path) -> None:
    ledger = await connect_ledger(data_dir=tmp_path / "chain")
    keys = ledger.dev_accounts()
    _, hub, token = await deploy_contracts(ledger, keys[0], mint={keys[1].address: 10 * UNIT})
    ports = {"seller": _free_port(), "buyer": _free_port()}

    def process(role: str) -> PeerProcess:
        return PeerProcess(
            key=2 if role == "seller" else 1,
            hub=hub.address,
            store=tmp_path / f"{role}.sqlite3",
            sessions=tmp_path / f"{role}-sessions.sqlite3",
            chain_dir=tmp_path / "chain",
            port=ports[role],
        )

    parties = {"seller": process("seller"), "buyer": process("buyer")}
    seller, buyer = parties["seller"], parties["buyer"]
    await seller.start()
    await buyer.start()
    try:
        opened = await buyer.call(
            {
                "cmd": "open",
                "peer": str(seller.address),
                "endpoint": seller.endpoint,
                "asset": str(token.address),
                "deposit": str(UNIT),
            }
        )
        rate = {"rate": 40}
        offered = await seller.call(
            {
                "cmd": "session_offer",
                "asset": str(token.address),
                "price": str(PRICE),
                "window": WINDOW,
                "batch": 5,
                **rate,
            }
        )
        started = await buyer.call(
            {"cmd": "session_start", "offer": offered["offer"], "target_units": 300}
        )
        session = started["session"]
        await _until_session(buyer, session, lambda s: int(s["forward"]["units"]) >= 60)

        victim = parties[killed]
        await victim.kill()  # no flush, no goodbye
        parties[killed] = victim = process(killed)
        await victim.start()
        if killed == "seller":
            # Offers are the application's: the restarted seller publishes its offer again.
            await victim.call({"cmd": "session_offer", "offer": offered["offer"], **rate})
        seller, buyer = parties["seller"], parties["buyer"]

        bought = await _until_session(buyer, session, lambda s: s["phase"] == "stopped")
        sold = await _until_session(seller, session, lambda s: s["phase"] == "stopped")
        assert bought["reason"] == "target reached"
        assert bought["countersigned"]
        assert sold["countersigned"]
        assert bought["forward"] == sold["forward"]
        assert bought["forward"]["units"] == "300"
        paid = int(bought["forward"]["paid"])
        assert paid == int(bought["forward"]["value"]) == 300 * PRICE
        # The channel moved exactly what the receipts say (nothing else ran on it); the
        # seller countersigned only once it had counted the last payment.
        buyer_channel = await buyer.call({"cmd": "info", "channel": opened["channel"]})
        seller_channel = await seller.call({"cmd": "info", "channel": opened["channel"]})
        assert int(buyer_channel["sent_total"]) == paid
        assert int(seller_channel["received_total"]) == paid
    finally:
        for party in parties.values():
            await party.stop()
        await ledger.stop()


def test_bench_sessions_runs_sessions_between_two_processes() -> None:
    result = CliRunner().invoke(
        app, ["bench", "sessions", "--sessions", "4", "--seconds", "2", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["sessions"] == 4
    assert report["countersigned"] == 4
    assert report["units"] > 0
    assert 0 < report["max_exposure_units"] <= report["window"]
    assert report["rss_mb_seller"] > 0
