"""`m2mpay registry …` against real nodes served over TCP in this process: a listing
from an offer, discovery by place, the offer checked at its endpoint, a rating and the
score it makes, and the registry's refusal of another's listing said with its reason."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from m2mpay.chain.registry import deploy_registry
from m2mpay.cli import app
from m2mpay.cli.common import console
from m2mpay.market.registry_index import RegistryIndex
from tests.client.conftest import METER, UNIT, Api, ApiFactory, Chain

PRICE = 10**15
runner = CliRunner()


async def _cli(url: str, token: str | None, *args: str) -> Result:
    env = {"M2MPAY_URL": url, "M2MPAY_TOKEN": token or ""}
    return await asyncio.to_thread(runner.invoke, app, list(args), env=env)


async def _json(url: str, token: str | None, *args: str) -> Any:
    result = await _cli(url, token, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(autouse=True)
def _wide_terminal() -> Iterator[None]:
    """A terminal wide enough for the table of services, whatever runs the test."""
    before, console.width = console.width, 200
    yield
    console.width = before


@pytest.fixture
async def index(chain: Chain) -> AsyncIterator[RegistryIndex]:
    registry, _ = await deploy_registry(chain.ledger, chain.keys[0], chain.hub.address)
    made = RegistryIndex(registry)
    await made.start()
    yield made
    await made.stop()


async def _node(make_api: ApiFactory, number: int, index: RegistryIndex) -> tuple[Api, str]:
    api = await make_api(number)
    url = await api.serve()
    api.gateway.registry, api.gateway.api_url = index, url
    return api, url


async def test_a_charger_listed_found_checked_rated_and_withdrawn_from_the_shell(
    make_api: ApiFactory, index: RegistryIndex
) -> None:
    charger, charger_url = await _node(make_api, 1, index)
    car, car_url = await _node(make_api, 2, index)
    offer = await charger.client.publish_offer(
        kind="energy", unit="Wh", price=PRICE, window=10, batch=2, device=METER
    )
    listed = await _json(
        charger_url, charger.token, "registry", "list", "--offer", offer.offer_id[:12],
        "--location", "u09tvw0",
    )  # fmt: skip
    assert (listed["price"], listed["endpoint"]) == (str(PRICE), charger_url)

    found = await _cli(
        car_url, car.token, "registry", "find", "--kind", "energy", "--near", "u09tvqx"
    )
    assert found.exit_code == 0, found.output
    assert "0.001 M2M / Wh" in found.stdout
    assert "unrated" in found.stdout
    checked = await _cli(
        car_url, car.token, "registry", "show", str(listed["listing_id"]), "--verify"
    )
    assert checked.exit_code == 0, checked.output
    assert "the offer at the endpoint matches" in checked.stdout

    session = await car.client.start_session(
        offer, endpoint=charger.party.node.endpoint, deposit=UNIT, target_units=10
    )
    await car.party.sessions.wait_stopped(bytes.fromhex(session.session_id[2:]), timeout=30)
    rated = await _cli(car_url, car.token, "registry", "rate", session.session_id[:12], "5")
    assert rated.exit_code == 0, rated.output
    assert "5/5" in rated.stdout
    again = await _cli(car_url, car.token, "registry", "rate", session.session_id, "1")
    assert again.exit_code == 1
    assert "party already rated this session" in again.output
    scores = await _json(
        car_url, car.token, "registry", "score", charger.party.node.address.checksum
    )
    assert [(s["average"], s["ratings"]) for s in scores["scores"]] == [("5.0000", 1)]

    # The car's key may not withdraw the charger's listing: the registry says why.
    refused = await _cli(car_url, car.token, "registry", "withdraw", str(listed["listing_id"]))
    assert refused.exit_code == 1
    assert "not the provider of the listing" in refused.output
    gone = await _json(
        charger_url, charger.token, "registry", "withdraw", str(listed["listing_id"])
    )
    assert gone == {"listing_id": listed["listing_id"], "withdrawn": True}
    empty = await _json(car_url, car.token, "registry", "find")
    assert empty == {"services": []}
