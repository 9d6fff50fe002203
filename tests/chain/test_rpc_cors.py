"""The embedded chain's JSON-RPC server as a web page meets it: any origin may read (the
preflight of a JSON POST is answered, every answer allows it), and a request a browser
sends for a page (it has an `Origin`) may call only read-only methods, so no page can have
the chain's unlocked dev accounts send a transaction; a process (no `Origin`) still can."""

from __future__ import annotations

import httpx

from m2mpay.chain import EmbeddedLedger
from m2mpay.chain.rpc_server import EmbeddedLedgerServer

PAGE = {"Origin": "https://reader.example"}


async def test_a_page_may_read_the_chain_and_nothing_more() -> None:
    async with EmbeddedLedger() as ledger:
        server = EmbeddedLedgerServer(ledger)
        url = await server.start()
        try:
            async with httpx.AsyncClient() as http:
                preflight = await http.options(
                    url,
                    headers=PAGE
                    | {
                        "Access-Control-Request-Method": "POST",
                        "Access-Control-Request-Headers": "content-type",
                    },
                )
                assert preflight.status_code == 204
                assert preflight.headers["access-control-allow-origin"] == "*"
                assert "POST" in preflight.headers["access-control-allow-methods"]
                assert "content-type" in preflight.headers["access-control-allow-headers"].lower()

                def call(method: str, params: list[object]) -> dict[str, object]:
                    return {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}

                read = await http.post(url, json=call("eth_chainId", []), headers=PAGE)
                assert read.headers["access-control-allow-origin"] == "*"
                assert read.json()["result"] == hex(ledger.chain_id)
                sender = str(ledger.dev_accounts()[0].address)
                send = call("eth_sendTransaction", [{"from": sender, "to": sender, "value": "0x1"}])
                refused = await http.post(url, json=[send, call("evm_mine", [])], headers=PAGE)
                assert [r["error"]["code"] for r in refused.json()] == [-32601, -32601]
                head = await ledger.block_number()
                assert (await http.post(url, json=call("evm_mine", []))).json()["result"] == "0x0"
                assert await ledger.block_number() == head + 1  # a process may
        finally:
            await server.stop()
