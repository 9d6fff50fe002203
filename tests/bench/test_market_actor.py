"""The market actor's journal in process, on an embedded chain: a run that dies after
logging a transaction but before broadcasting it, or after its transaction was mined but
before the operation was marked done, is finished by the next run from the journal —
the logged bytes broadcast again, the mined receipt found — and no operation is ever
sent twice (every nonce the actor's keys used went to one logged transaction)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from m2mpay.bench.market_actor import MarketActor, MarketAddresses, market_keys, market_plan
from m2mpay.bench.market_journal import MarketJournal, TxFate
from m2mpay.chain import EmbeddedLedger, deploy_contracts

SEED = 7
UNIT = 10**18


class Killed(BaseException):
    """The process dies here (nothing after it runs, as after a SIGKILL)."""


@pytest.fixture
async def market() -> AsyncIterator[tuple[EmbeddedLedger, MarketAddresses]]:
    async with EmbeddedLedger() as ledger:
        owner = ledger.dev_accounts()[0]
        deployment, hub, token = await deploy_contracts(ledger, owner)
        assert deployment.market is not None
        for role, key in market_keys().items():
            await ledger.transact(owner, key.address, b"", gas=21_000, value=10 * UNIT)
            if role in ("provider", "trader", "buyer"):
                await token.mint(owner, key.address, 10**4 * UNIT)
        market = deployment.market
        yield (
            ledger,
            MarketAddresses(
                token.address, hub.address, market.exchange, market.registry, market.escrow
            ),
        )


async def _run(ledger: EmbeddedLedger, at: MarketAddresses, path: Path, **dies: Any) -> None:
    """One run of the actor until its plan is done, or until it dies as `dies` says."""
    journal = MarketJournal(path)
    await journal.open()
    actor = MarketActor(ledger, journal, at)
    if "before_broadcast" in dies:
        logged = journal.log_tx
        count = [0]

        async def log_then_die(*tx: Any) -> None:
            await logged(*tx)
            count[0] += 1
            if count[0] == dies["before_broadcast"]:
                raise Killed

        ledger.before_broadcast = log_then_die
    if "before_done" in dies:
        finish = journal.finish

        async def die_before_done(step: int, result: dict[str, Any]) -> None:
            if step == dies["before_done"]:
                raise Killed
            await finish(step, result)

        journal.finish = die_before_done  # type: ignore[method-assign]
    try:
        await actor.run(market_plan(SEED))
    except Killed:
        # The next process's ledger knows no nonce of ours: ask the chain again.
        ledger._nonces.clear()
    finally:
        ledger.before_broadcast = None
        await journal.close()


async def _nonces(ledger: EmbeddedLedger) -> int:
    total = 0
    for key in market_keys().values():
        total += int(await ledger.w3.eth.get_transaction_count(key.address.checksum))
    return total


@pytest.mark.parametrize(
    "dies",
    [{"before_broadcast": 6}, {"before_done": 6}, {"before_broadcast": 12, "before_done": 3}],
    ids=["logged-not-sent", "mined-not-done", "both"],
)
async def test_a_run_killed_mid_operation_is_finished_once(
    market: tuple[EmbeddedLedger, MarketAddresses], tmp_path: Path, dies: dict[str, int]
) -> None:
    ledger, at = market
    path = tmp_path / "journal.sqlite3"
    before = await _nonces(ledger)
    await _run(ledger, at, path, **dies)
    await _run(ledger, at, path)
    journal = MarketJournal(path)
    await journal.open()
    try:
        ops, txs = await journal.ops(), await journal.txs()
    finally:
        await journal.close()
    plan = market_plan(SEED)
    assert [op.name for op in ops] == [name for name, _ in plan]
    assert all(op.done and "reverted" not in (op.result or {}) for op in ops)
    mined = [tx for tx in txs if tx.fate != TxFate.VOID]
    assert len({tx.step for tx in mined}) == len(mined) == len(plan)  # one each
    assert await _nonces(ledger) - before == len(plan)
    assert any((op.result or {}).get("recovered") for op in ops)
    for tx in mined:
        assert (await ledger.wait_for_receipt(tx.tx_hash, timeout=1)).succeeded
