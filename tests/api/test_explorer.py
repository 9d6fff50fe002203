"""The explorer's routes against real node processes on one embedded chain: after a
channel is opened, paid and closed and a token made, pooled and swapped, the chain reads
as an explorer shows it: the open transaction's hub call and events decoded, the
channel's history from open to settle, an address's token balances and transfers,
search finding each kind; bad input 422 naming the field, unknown things 404."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from m2mpay.bench.daemons import NodeProcess
from m2mpay.client import NodeClient
from m2mpay.client.explorer import SearchHit
from tests.api.conftest import paid_and_closed_channel
from tests.cli.conftest import cli

UNIT = 10**18
ETH = "0x" + "00" * 20


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NodeProcess, NodeProcess]]:
    root = tmp_path_factory.mktemp("explorer")
    node = NodeProcess(root / "node", "--no-mqtt")
    (root / "node").mkdir()
    node.start()
    peer = NodeProcess(root / "peer", "--no-mqtt", "--chain-dir", str(root / "node"))
    try:
        peer.start()
        yield node, peer
    finally:
        peer.stop()
        node.stop()


@pytest.fixture(scope="module")
def story(nodes: tuple[NodeProcess, NodeProcess]) -> Iterator[dict[str, Any]]:
    """A channel opened, paid and closed; a token made, pooled against ETH and bought."""
    node, peer = nodes
    with httpx.Client(
        base_url=node.url,
        headers={"Authorization": f"Bearer {node.ready['api_token']}"},
        timeout=60,
    ) as api:
        channel = paid_and_closed_channel(api, peer)
        made = api.post(
            "/v1/tokens", json={"name": "IoT-Light", "symbol": "LIGHT", "supply": str(10**24)}
        )
        assert made.status_code == 201, made.text
        light = made.json()["address"]
        pooled = api.post(
            "/v1/dex/liquidity",
            json={
                "asset_a": ETH,
                "asset_b": light,
                "amount_a": str(UNIT // 2),
                "amount_b": str(50 * UNIT),
            },
        )
        assert pooled.status_code in (200, 201), pooled.text
        swapped = api.post(
            "/v1/dex/swaps",
            json={"sell": ETH, "buy": light, "amount_in": str(UNIT // 100), "slippage_bps": 100},
        )
        assert swapped.status_code in (200, 201), swapped.text
        yield {
            "api": api,
            "channel": channel,
            "light": light,
            "token_tx": made.json()["tx_hash"],
            "address": node.ready["address"],
            "peer": peer.ready["address"],
        }


def _ok(api: httpx.Client, path: str, **params: Any) -> Any:
    answer = api.get(path, params=params)
    assert answer.status_code == 200, (path, answer.text)
    return answer.json()


def test_the_channel_s_history_lists_open_deposit_close_and_settle_with_their_times(
    story: dict[str, Any],
) -> None:
    api = story["api"]
    history = _ok(api, f"/v1/explorer/channels/{story['channel']}")
    names = [step["event"] for step in history["events"]]
    assert names[0] == "ChannelOpened"
    assert names[-1] == "ChannelSettled"
    opened = history["events"][0]
    assert opened["args"]["channel_id"] == story["channel"]
    assert opened["args"]["deposit_a"] == "1000000"
    assert {opened["args"]["a"], opened["args"]["b"]} == {story["address"], story["peer"]}
    settled = history["events"][-1]["args"]
    assert int(settled["balance_a"]) + int(settled["balance_b"]) == 1_000_000
    assert "1234" in (settled["balance_a"], settled["balance_b"])
    blocks = [step["block"] for step in history["events"]]
    assert blocks == sorted(blocks)
    assert all(step["timestamp"] > 0 for step in history["events"])


def test_the_open_transaction_shows_the_hub_s_call_and_events_decoded(
    story: dict[str, Any],
) -> None:
    api = story["api"]
    history = _ok(api, f"/v1/explorer/channels/{story['channel']}")
    tx = _ok(api, f"/v1/explorer/transactions/{history['events'][0]['tx_hash']}")
    assert tx["status"] == "success"
    assert tx["call"]["contract"] == "ChannelHub"
    assert tx["call"]["function"].startswith("open")
    channel_arg = tx["call"]["args"]["ch"]
    assert channel_arg["a"] == tx["sender"] == story["address"]
    assert channel_arg["b"] == story["peer"]
    hub_events = [e for e in tx["events"] if e["contract"] == "ChannelHub"]
    assert next(e["event"] for e in hub_events) == "ChannelOpened"
    assert any(e["event"] == "Transfer" and e["contract"] == "Token" for e in tx["events"])
    block = _ok(api, f"/v1/explorer/blocks/{tx['block']}")
    assert tx["hash"] in block["transactions"]
    assert _ok(api, f"/v1/explorer/blocks/{block['hash']}") == block
    assert tx["timestamp"] == block["timestamp"]


def test_the_token_s_creation_and_the_node_s_address(story: dict[str, Any]) -> None:
    api = story["api"]
    created = _ok(api, f"/v1/explorer/transactions/{story['token_tx']}")
    call = created["call"]
    assert (call["contract"], call["function"]) == ("TokenFactory", "create")
    assert (call["args"]["name_"], call["args"]["symbol_"]) == ("IoT-Light", "LIGHT")
    assert any(e["event"] == "TokenCreated" for e in created["events"])
    mine = _ok(api, f"/v1/explorer/addresses/{story['address']}")
    assert mine["is_contract"] is False
    assert mine["contract"] is None
    assert int(mine["balance"]) > 0
    held = {t["symbol"]: t for t in mine["tokens"]}
    assert {"M2M", "LIGHT"} <= set(held)
    transfers = mine["transfers"]
    assert transfers, mine
    assert [(t["block"], t["log_index"]) for t in transfers] == sorted(
        ((t["block"], t["log_index"]) for t in transfers), reverse=True
    )
    bought = [
        t for t in transfers if t["token"] == story["light"] and t["receiver"] == story["address"]
    ]
    assert bought, transfers  # the swap paid LIGHT to the node
    light = _ok(api, f"/v1/explorer/addresses/{story['light']}")
    assert (light["is_contract"], light["contract"]) == (True, "Token")


def test_blocks_page_newest_first_with_a_cursor(story: dict[str, Any]) -> None:
    api = story["api"]
    first = _ok(api, "/v1/explorer/blocks", limit=5)
    numbers = [b["number"] for b in first["blocks"]]
    assert numbers == list(range(first["head"], first["head"] - 5, -1))
    second = _ok(api, "/v1/explorer/blocks", limit=5, before=first["next_before"])
    assert [b["number"] for b in second["blocks"]] == [n - 5 for n in numbers]
    assert second["blocks"][0]["hash"] == first["blocks"][-1]["parent_hash"]
    last = _ok(api, "/v1/explorer/blocks", limit=3, before=2)
    assert ([b["number"] for b in last["blocks"]], last["next_before"]) == ([1, 0], None)


def test_search_finds_each_kind(story: dict[str, Any]) -> None:
    api = story["api"]
    history = _ok(api, f"/v1/explorer/channels/{story['channel']}")
    tx_hash = history["events"][0]["tx_hash"]
    block = _ok(api, f"/v1/explorer/blocks/{history['events'][0]['block']}")
    found = {
        query: _ok(api, "/v1/explorer/search", q=query)
        for query in (tx_hash, block["hash"], story["channel"], story["light"].lower(), "1")
    }
    assert found[tx_hash] == {"kind": "transaction", "id": tx_hash}
    assert found[block["hash"]] == {"kind": "block", "id": str(block["number"])}
    assert found[story["channel"]] == {"kind": "channel", "id": story["channel"]}
    assert found[story["light"].lower()] == {"kind": "address", "id": story["light"]}
    assert found["1"] == {"kind": "block", "id": "1"}
    nothing = api.get("/v1/explorer/search", params={"q": "0x" + "ab" * 32})
    assert nothing.status_code == 404


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/v1/explorer/search?q=hello", "q"),
        ("/v1/explorer/blocks?limit=101", "limit"),
        ("/v1/explorer/blocks?before=0", "before"),
        ("/v1/explorer/blocks/0x12", "number_or_hash"),
        ("/v1/explorer/transactions/12", "tx_hash"),
        ("/v1/explorer/addresses/0x1234", "address"),
        ("/v1/explorer/channels/nope", "channel_id"),
    ],
)
def test_bad_input_is_422_naming_the_field(story: dict[str, Any], path: str, field: str) -> None:
    answer = story["api"].get(path)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["field"] == field


def test_unknown_things_are_404_and_reads_need_the_token(
    story: dict[str, Any], nodes: tuple[NodeProcess, NodeProcess]
) -> None:
    api = story["api"]
    for path in (
        "/v1/explorer/blocks/99999999",
        "/v1/explorer/transactions/0x" + "cd" * 32,
        "/v1/explorer/channels/0x" + "ef" * 32,
    ):
        answer = api.get(path)
        assert answer.status_code == 404, (path, answer.text)
        assert answer.json()["error"]["code"] == "not_found"
    anonymous = httpx.get(f"{nodes[0].url}/v1/explorer/blocks", timeout=30)
    assert anonymous.status_code == 401


def test_peers_show_the_channel_s_peer_with_its_endpoint(
    story: dict[str, Any], nodes: tuple[NodeProcess, NodeProcess]
) -> None:
    (peer,) = _ok(story["api"], "/v1/peers")["peers"]
    assert peer["address"] == story["peer"]
    assert peer["endpoint"] == nodes[1].ready["peer_endpoint"]
    assert peer["channels"] == 0  # the one channel is settled


def test_the_cli_and_the_sdk_read_what_the_routes_answer(
    story: dict[str, Any], nodes: tuple[NodeProcess, NodeProcess]
) -> None:
    node = nodes[0]
    env = {"M2MPAY_URL": node.url, "M2MPAY_TOKEN": node.ready["api_token"]}
    history = _ok(story["api"], f"/v1/explorer/channels/{story['channel']}")
    as_json = cli("explorer", "channel", story["channel"], "--json", **env)
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout) == history
    open_tx = history["events"][0]["tx_hash"]
    shown = cli("explorer", "tx", open_tx, **env)
    assert shown.exit_code == 0, shown.output
    assert "ChannelHub.open" in shown.stdout
    assert "ChannelOpened(" in shown.stdout
    found = cli("explorer", "search", story["channel"], **env)
    assert found.stdout.strip() == f"channel {story['channel']}"
    for args in (("blocks", "--limit", "3"), ("block", "1"), ("address", story["address"])):
        result = cli("explorer", *args, **env)
        assert result.exit_code == 0, (args, result.output)
    refused = cli("explorer", "search", "nothing", **env)
    assert refused.exit_code == 1
    assert "q" in refused.output

    async def through_the_sdk() -> None:
        async with NodeClient(node.url, node.ready["api_token"]) as client:
            tx = await client.explorer_transaction(open_tx)
            assert (tx.call.contract, tx.status) == ("ChannelHub", "success")
            page = await client.explorer_blocks(limit=2)
            assert [b.number for b in page.blocks] == [page.head, page.head - 1]
            assert (await client.explorer_search("0")) == SearchHit("block", "0")
            mine = await client.explorer_address(story["address"])
            assert {t.symbol for t in mine.tokens} >= {"M2M", "LIGHT"}
            history_seen = await client.channel_history(story["channel"])
            assert history_seen.events[0].event == "ChannelOpened"
            (peer,) = await client.peers()
            assert peer.address.checksum == story["peer"]

    asyncio.run(through_the_sdk())
