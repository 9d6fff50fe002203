"""`served_url`: the ledger URL a node's stream codes may name for readers — the embedded
chain it serves to other processes, and never another ledger's URL (an RPC provider's
URL may hold its key)."""

from __future__ import annotations

from pathlib import Path

from m2mpay.chain import EmbeddedLedger, RpcLedger
from m2mpay.chain.shared import HostedEmbeddedLedger, connect_ledger, served_url


async def test_the_served_embedded_chain_is_named_and_no_other_ledger(tmp_path: Path) -> None:
    hosted = await connect_ledger(data_dir=tmp_path)
    try:
        assert isinstance(hosted, HostedEmbeddedLedger)
        assert served_url(hosted) == hosted.rpc_url
        assert hosted.rpc_url.startswith("http://127.0.0.1:")
        # A second process on the data dir is a client of that chain: nothing to name.
        joined = await connect_ledger(data_dir=tmp_path)
        try:
            assert isinstance(joined, RpcLedger)
            assert served_url(joined) is None
        finally:
            await joined.stop()
    finally:
        await hosted.stop()
    async with EmbeddedLedger() as private:
        assert served_url(private) is None
