"""A process that reaches a data dir's embedded chain through its host keeps reaching
it when the host is SIGKILLed and the chain is hosted again (found by `m2mpay torture
crash`, phase chain.host, seed 10: the new host served on another port, and every
process that used the old one had lost the chain for good)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
from pathlib import Path

import pytest

from m2mpay.chain import RpcLedger
from m2mpay.chain.shared import HostedEmbeddedLedger, connect_ledger
from m2mpay.errors import LedgerUnavailable

_HOST = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from m2mpay.chain.shared import connect_ledger

    async def main():
        ledger = await connect_ledger(data_dir=Path(sys.argv[1]))
        owner = ledger.dev_accounts()[0]
        await ledger.transact(owner, owner.address, b"", gas=21000)
        print("hosting", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())
    """
)


async def test_a_client_of_a_killed_host_reaches_the_chain_hosted_again(tmp_path: Path) -> None:
    host = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _HOST, str(tmp_path), stdout=asyncio.subprocess.PIPE
    )
    try:
        assert host.stdout is not None
        assert await asyncio.wait_for(host.stdout.readline(), timeout=120) == b"hosting\n"
        client = await connect_ledger(data_dir=tmp_path)
        assert isinstance(client, RpcLedger)
        head = await client.block_number()
        assert head >= 1
        owner = client.dev_accounts()[0]
        # A follower of the chain from before the kill, as a node's is: it must ride
        # the outage out, or the node that runs it is blind to the chain for good.
        follower = client.subscribe(address=owner.address, from_block=head + 1)
        following = asyncio.ensure_future(anext(follower))
        await asyncio.sleep(0.2)
    finally:
        os.kill(host.pid, signal.SIGKILL)  # no goodbye: its chain.rpc stays behind
        await host.wait()
    try:
        # While no one hosts the chain, the client says so in the ledger's own terms.
        with pytest.raises(LedgerUnavailable):
            await client.block_number()
        await asyncio.sleep(0.3)  # the follower polls through the outage
        assert not following.done()
        again = await connect_ledger(data_dir=tmp_path)  # this process hosts it now
        try:
            assert isinstance(again, HostedEmbeddedLedger)
            receipt = await again.transact(owner, owner.address, b"", gas=21_000)
            # The client made before the kill, unchanged, finds the chain where it was.
            async with asyncio.timeout(30):
                assert await client.block_number() == receipt.block_number
            await asyncio.sleep(0.3)
            assert not following.done()  # it never gave up (no logs to yield here)
        finally:
            await again.stop()
    finally:
        following.cancel()
        await client.stop()
