"""An offer sold to plain transfers, through the CLI and the SDK against a real node
process with a lamp on its bus: `offer sell-by-transfer` enables it, a plain token
transfer to the lamp's address is counted once after its confirmations and lights the
lamp for amount / price seconds, and `offer transfers` (and the SDK) list it; a
withdrawn offer is sold to transfers no more."""

from __future__ import annotations

import asyncio
import json

import pytest
from typer.testing import Result

from m2mpay.bench.daemons import NodeProcess
from m2mpay.cli.common import console
from m2mpay.client import NodeClient
from m2mpay.crypto import Address, PrivateKey
from m2mpay.devices.lamp import Lamp
from m2mpay.errors import ApiInvalidInput, ApiNotFound
from tests.cli.conftest import cli, running_node  # noqa: F401 (a fixture)
from tests.waiting import eventually_async

PRICE = 10**15  # per second of light
UNIT = 10**18


async def _cli(node: NodeProcess, *args: str) -> str:
    env = {"M2MPAY_URL": node.url, "M2MPAY_TOKEN": node.ready["api_token"]}
    done: Result = await asyncio.to_thread(cli, *args, **env)
    assert done.exit_code == 0, done.output
    return done.stdout


async def test_a_plain_transfer_to_the_lamp_buys_light_once_confirmed(
    running_node: NodeProcess,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(console, "width", 200)
    node = running_node
    token = Address(node.ready["token_contract"])
    lamp = Lamp(
        node.url.replace("http://", "ws://") + "/v1/devices/ws",
        PrivateKey.generate(),
        price=PRICE,
        asset=token,
        speed=20.0,
        server=Address(node.ready["address"]),
    )
    async with lamp, NodeClient(node.url, node.ready["api_token"]) as api:
        await lamp.connected.wait()
        await api.faucet()

        async def registered() -> bool:
            return any(d.device_id == lamp.address.checksum for d in await api.devices())

        await eventually_async(registered)
        offer = await api.publish_offer(
            kind="actuation",
            unit="s",
            price=PRICE,
            window=5,
            device=f"{lamp.address.checksum}/light",
            min_units=2,
            max_units=100,
        )
        said = await _cli(node, "offer", "sell-by-transfer", offer.offer_id[:12],
                          "--confirmations", "2", "--overpay", "credit")  # fmt: skip
        assert lamp.address.checksum in said
        assert "credit" in said

        # A wallet of the node's sends the token as any wallet would: no channel.
        sent = await api.transfer(lamp.address, 7 * PRICE + PRICE // 2, asset=token)
        await api.transfer(Address("0x" + "42" * 20), 1)  # one more block: 2 confirmations

        async def lit() -> bool:
            found = (await api.transfer_sales()).purchases
            return bool(found) and found[0].done

        await eventually_async(lit, timeout=60)
        sales = await api.transfer_sales()
        [terms] = sales.sales
        assert (terms.offer_id, terms.confirmations, terms.overpay) == (offer.offer_id, 2, "credit")
        [bought] = sales.purchases
        assert (bought.units, bought.credit, bought.kept) == (7, PRICE // 2, 0)
        assert bought.tx_hash == sent.tx_hash
        assert bought.delivered == 7
        assert abs(lamp.session_seconds(bought.purchase_id) - 7) < 1e-6

        listed = json.loads(await _cli(node, "offer", "transfers", "--json"))
        assert [p["purchase_id"] for p in listed["purchases"]] == [bought.purchase_id]
        people = await _cli(node, "offer", "transfers")
        assert bought.purchase_id[:10] in people

        # What the route refuses, in the API's one error shape.
        with pytest.raises(ApiNotFound):
            await api.sell_by_transfer("0x" + "00" * 32)
        with pytest.raises(ApiInvalidInput):
            await api.sell_by_transfer(offer.offer_id, confirmations=0)

        # Withdrawn, the offer is sold to transfers no more; what was counted stays.
        await api.withdraw_offer(offer.offer_id)
        after = await api.transfer_sales()
        assert (after.sales, [p.purchase_id for p in after.purchases]) == (
            (),
            [bought.purchase_id],
        )
