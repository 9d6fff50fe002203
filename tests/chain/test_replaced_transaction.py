"""Another process using the same key sends a different transaction with our nonce and
a higher fee before ours is mined: the node's pool replaces ours, which can then never
be mined. The ledger notices while it waits for the receipt and sends what was asked
once more under a new nonce, once however many wait, so no transaction is lost (what
two processes racing for one key need, on a chain that does not mine at once)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
from eth_account import Account
from hexbytes import HexBytes

from m2mpay.chain import AnvilNode, RpcLedger
from m2mpay.chain.devkeys import dev_keys
from m2mpay.errors import LedgerError, ReceiptTimeout


@pytest.fixture
def anvil() -> Iterator[AnvilNode]:
    node = AnvilNode(block_time=1)  # a transaction waits in the pool for the next block
    node.start()
    yield node
    node.stop()


@pytest.fixture
async def ledger(anvil: AnvilNode) -> AsyncIterator[RpcLedger]:
    async with RpcLedger(anvil.url, dev_keys=dev_keys()) as ledger:
        yield ledger


async def _replace(ledger: RpcLedger, tx_hash: bytes, value: int) -> bytes:
    """Send, as another process would, a transfer of `value` with `tx_hash`'s nonce and
    twice its fees; the hash of the one sent."""
    ours = await ledger.w3.eth.get_transaction(HexBytes(tx_hash))
    signer = ledger.dev_accounts()[5]
    other = {
        "chainId": ledger.chain_id,
        "nonce": ours["nonce"],
        "gas": 21_000,
        "maxFeePerGas": 2 * ours["maxFeePerGas"],
        "maxPriorityFeePerGas": 2 * ours["maxPriorityFeePerGas"],
        "to": ledger.dev_accounts()[6].address.checksum,
        "value": value,
        "type": 2,
    }
    raw = Account.sign_transaction(other, signer.secret).raw_transaction
    return bytes(await ledger.w3.eth.send_raw_transaction(raw))


async def test_a_transaction_whose_nonce_another_took_is_sent_again_once(
    ledger: RpcLedger,
) -> None:
    sender, receiver = ledger.dev_accounts()[5], ledger.dev_accounts()[6].address
    before = await ledger.balance(receiver)
    ours = await ledger.send(sender, receiver, b"", gas=21_000, value=1)
    theirs = await _replace(ledger, ours, 1_000)
    # Two waiters on the lost transaction: it is sent again by one of them only.
    first, second = await asyncio.gather(
        ledger.wait_for_receipt(ours, timeout=20), ledger.wait_for_receipt(ours, timeout=20)
    )
    assert first.tx_hash == second.tx_hash
    assert first.tx_hash not in (ours, theirs)
    assert first.succeeded
    assert (await ledger.wait_for_receipt(theirs, timeout=20)).succeeded
    assert await ledger.balance(receiver) == before + 1 + 1_000  # both, each once
    # The sender's nonces stay in step: the next transaction lands too.
    later = await ledger.transact(sender, receiver, b"", gas=21_000, value=10)
    assert later.succeeded
    assert await ledger.balance(receiver) == before + 1 + 1_000 + 10


async def test_a_transaction_that_waits_for_its_block_is_not_sent_twice(
    ledger: RpcLedger,
) -> None:
    sender, receiver = ledger.dev_accounts()[7], ledger.dev_accounts()[8].address
    before = await ledger.balance(receiver)
    sent = [await ledger.send(sender, receiver, b"", gas=21_000, value=v) for v in (1, 2, 4)]
    receipts = [await ledger.wait_for_receipt(tx, timeout=20) for tx in sent]
    assert [r.tx_hash for r in receipts] == sent  # each mined as sent, none again
    await asyncio.sleep(1.5)  # a block later: nothing sent again has landed either
    assert await ledger.balance(receiver) == before + 7


async def test_a_lost_transaction_is_sent_again_once_at_most_even_when_that_fails(
    ledger: RpcLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    sender, receiver = ledger.dev_accounts()[5], ledger.dev_accounts()[6].address
    ours = await ledger.send(sender, receiver, b"", gas=21_000, value=1)
    theirs = await _replace(ledger, ours, 1_000)
    assert (await ledger.wait_for_receipt(theirs, timeout=20)).succeeded
    tries: list[object] = []

    async def answer_lost(*args: object, **kwargs: object) -> bytes:
        # The node may have taken it: sending once more could make it happen twice.
        tries.append(args)
        raise LedgerError("the node's answer was lost")

    monkeypatch.setattr(ledger, "send", answer_lost)
    with pytest.raises(LedgerError, match="answer was lost"):
        await ledger.wait_for_receipt(ours, timeout=20)
    with pytest.raises(ReceiptTimeout):  # not tried a second time
        await ledger.wait_for_receipt(ours, timeout=2)
    assert len(tries) == 1
