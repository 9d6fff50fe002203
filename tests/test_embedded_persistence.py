"""The embedded chain, given a data dir, survives restarts: deposits do not vanish."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import textwrap
from pathlib import Path

import pytest

from m2mpay.chain import (
    ChannelHub,
    ChannelOpened,
    EmbeddedLedger,
    OnchainChannel,
    TokenContract,
    deploy_contracts,
)
from m2mpay.crypto import Address
from m2mpay.errors import LedgerError

UNIT = 10**18


async def test_channel_survives_a_clean_restart(tmp_path: Path) -> None:
    async with EmbeddedLedger(tmp_path) as ledger:
        owner, alice, bob = ledger.dev_accounts()[:3]
        _, hub, token = await deploy_contracts(ledger, owner, mint={alice.address: 100 * UNIT})
        channel = OnchainChannel(alice.address, bob.address, token.address, 60, 1, deposit_a=UNIT)
        await token.approve(alice, hub.address, UNIT)
        await hub.open(alice, channel)
        await ledger.advance_time(1000)
        head, clock = await ledger.block_number(), await ledger.block_timestamp()

    async with EmbeddedLedger(tmp_path) as ledger:
        assert await ledger.block_number() == head
        # The advanced clock persists too: the next block is not earlier.
        assert await ledger.block_timestamp() == clock
        hub = ChannelHub(ledger, hub.address)
        token = TokenContract(ledger, token.address)
        assert await hub.state_hash(channel.id) == await hub.expected_state_hash(channel)
        assert await token.balance_of(hub.address) == UNIT
        split = (UNIT // 4, UNIT - UNIT // 4)
        await hub.cooperative_close(
            bob,
            channel,
            *split,
            hub.sign_settlement(alice, channel.id, *split),
            hub.sign_settlement(bob, channel.id, *split),
        )
        assert await token.balance_of(bob.address) == split[1]
        assert await ledger.block_timestamp() >= clock


_OPENER = textwrap.dedent(
    """
    import asyncio, json, sys, time
    from pathlib import Path
    from m2mpay.chain import EmbeddedLedger, OnchainChannel, deploy_contracts

    async def main():
        ledger = EmbeddedLedger(Path(sys.argv[1]))
        await ledger.start()
        owner, alice, bob = ledger.dev_accounts()[:3]
        _, hub, token = await deploy_contracts(ledger, owner, mint={alice.address: 10**20})
        channel = OnchainChannel(alice.address, bob.address, token.address, 60, 1, deposit_a=10**18)
        await token.approve(alice, hub.address, 10**18)
        await hub.open(alice, channel)
        print(json.dumps({"hub": str(hub.address), "token": str(token.address)}), flush=True)
        # Keep mining while the parent kills us: the open must already be durable.
        while True:
            await ledger.transact(owner, owner.address, b"", gas=21000)

    asyncio.run(main())
    """
)


async def test_deposit_survives_sigkill_of_the_process(tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _OPENER,
        str(tmp_path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), timeout=120)
        if not line:
            assert process.stderr is not None
            pytest.fail((await process.stderr.read()).decode())
        deployed = json.loads(line)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        await process.wait()
    assert process.returncode == -signal.SIGKILL

    async with EmbeddedLedger(tmp_path) as ledger:
        owner, alice, bob = ledger.dev_accounts()[:3]
        hub = ChannelHub(ledger, Address(deployed["hub"]))
        token_address = Address(deployed["token"])
        channel = OnchainChannel(alice.address, bob.address, token_address, 60, 1, deposit_a=UNIT)
        assert await hub.state_hash(channel.id) == await hub.expected_state_hash(channel)
        assert await TokenContract(ledger, token_address).balance_of(hub.address) == UNIT
        # The log index committed with the blocks: the open is found, and only once.
        assert [type(event) for event in await hub.events(0)] == [ChannelOpened]
        # The chain goes on where it stopped.
        receipt = await ledger.transact(owner, owner.address, b"", gas=21_000)
        assert receipt.block_number == await ledger.block_number()


async def test_a_data_dir_keeps_its_chain_id(tmp_path: Path) -> None:
    async with EmbeddedLedger(tmp_path, chain_id=4242) as ledger:
        assert ledger.chain_id == 4242
    with pytest.raises(LedgerError, match="holds chain 4242"):
        async with EmbeddedLedger(tmp_path, chain_id=1337):
            pass


async def test_in_memory_ledger_starts_fresh() -> None:
    async with EmbeddedLedger() as ledger:
        assert await ledger.block_number() == 0
