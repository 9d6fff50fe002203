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

from m2mpay.chain import RpcLedger
from m2mpay.chain.shared import HostedEmbeddedLedger, connect_ledger

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
    finally:
        os.kill(host.pid, signal.SIGKILL)  # no goodbye: its chain.rpc stays behind
        await host.wait()
    try:
        again = await connect_ledger(data_dir=tmp_path)  # this process hosts it now
        try:
            assert isinstance(again, HostedEmbeddedLedger)
            owner = again.dev_accounts()[0]
            await again.transact(owner, owner.address, b"", gas=21_000)
            # The client made before the kill, unchanged, finds the chain where it was.
            async with asyncio.timeout(30):
                assert await client.block_number() == head + 1
        finally:
            await again.stop()
    finally:
        await client.stop()
