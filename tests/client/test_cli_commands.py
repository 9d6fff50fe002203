"""The `m2mpay offer` and `session` commands (and error output) against real nodes served
over TCP in this process; each command runs in a worker thread, as it runs its own loop."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import Iterator
from typing import Any

from typer.testing import CliRunner, Result

from m2mpay.cli import app
from m2mpay.cli.common import console
from m2mpay.cli.units import decimal_amount, local_time
from tests.client.conftest import METER, UNIT, Api, ApiFactory
from tests.waiting import eventually_async

PRICE = 10**15
runner = CliRunner()


async def _cli(url: str, token: str | None, *args: str) -> Result:
    env = {"M2MPAY_URL": url, "M2MPAY_TOKEN": token or ""}
    return await asyncio.to_thread(runner.invoke, app, list(args), env=env)


async def _json(url: str, token: str | None, *args: str) -> Any:
    result = await _cli(url, token, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@contextlib.contextmanager
def _terminal_width(columns: int) -> Iterator[None]:
    before = console.width
    console.width = columns
    try:
        yield
    finally:
        console.width = before


async def _served(api: Api) -> tuple[str, str]:
    return await api.serve(), api.token


async def test_selling_and_buying_a_metered_session(make_api: ApiFactory) -> None:
    seller_api, buyer_api = await make_api(1), await make_api(2)
    seller, buyer = await _served(seller_api), await _served(buyer_api)
    offer = await _json(
        *seller,
        "offer", "publish", "--kind", "energy", "--unit", "Wh", "--price", str(PRICE),
        "--window", "10", "--batch", "2", "--device", METER,
    )  # fmt: skip
    assert offer["price"] == str(PRICE)
    with _terminal_width(120):  # 80 columns fold the table's every column
        listed = await _cli(seller[0], None, "offer", "list")  # the storefront is public
    assert listed.exit_code == 0, listed.output
    assert offer["offer_id"][:10] in listed.stdout
    assert " 0.001 " in listed.stdout  # PRICE per unit, for people
    assert "prices per unit, in M2M" in listed.stdout

    # Bought by a prefix of the offer's id, with a progress bar until the target.
    bought = await _cli(
        *buyer,
        "session", "start", offer["offer_id"][:12], "--seller", seller[0],
        "--deposit", str(UNIT), "--target-units", "20", "--follow", "--interval", "0.05",
    )  # fmt: skip
    assert bought.exit_code == 0, bought.output
    assert "session stopped" in bought.stdout
    assert "target reached" in bought.stdout
    (first,) = (await _json(*buyer, "session", "list"))["sessions"]
    assert first["forward"]["units"] == 20
    assert first["forward"]["paid"] == str(20 * PRICE)
    receipt = await _json(*buyer, "session", "receipt", first["session_id"][:12])
    assert receipt["forward"] == first["forward"]

    # A second session on the same channel, steered by both sides, stopped by the buyer.
    started = await _json(*buyer, "session", "start", offer["offer_id"], "--seller", seller[0])
    assert started["channel_id"] == first["channel_id"]
    session = started["session_id"]
    refused = await _cli(*buyer, "session", "reverse", session)
    assert refused.exit_code == 1
    assert "reverse_not_agreed" in refused.stderr
    repriced = await _json(*seller, "session", "price", session, str(PRICE // 2))
    assert repriced["role"] == "seller"

    async def agreed() -> bool:  # the buyer's answer takes the price in, on both sides
        views = [await _json(*side, "session", "show", session) for side in (seller, buyer)]
        return all(view["price"] == str(PRICE // 2) for view in views)

    await eventually_async(agreed)
    stopped = await _json(*buyer, "session", "stop", session[:12], "--reason", "enough")
    assert stopped["stop_reason"] == "enough"
    assert stopped["forward"]["paid"] == stopped["forward"]["value"]
    shown = await _cli(*seller, "session", "show", session)
    assert shown.exit_code == 0, shown.output
    assert "enough" in shown.stdout

    withdrawn = await _json(*seller, "offer", "withdraw", offer["offer_id"][:12])
    assert withdrawn == {"offer_id": offer["offer_id"], "withdrawn": True}
    assert (await _json(seller[0], None, "offer", "list")) == {"offers": []}
    await _shown_to_people(buyer, shown.stdout, stopped, receipt)


async def _shown_to_people(
    buyer: tuple[str, str],
    session_shown: str,
    stopped: dict[str, Any],
    receipt: dict[str, Any],
) -> None:
    """What the commands above print without `--json`: amounts in tokens with the
    symbol, exact to the smallest unit, and times as local times."""
    assert "0.0005 M2M" in session_shown  # repriced to PRICE // 2 per unit
    times = f"{local_time(stopped['started_ms'])} / {local_time(stopped['stopped_ms'])}"
    assert times in session_shown
    assert str(stopped["started_ms"]) not in session_shown
    receipt_shown = await _cli(*buyer, "session", "receipt", receipt["session_id"][:12])
    assert receipt_shown.exit_code == 0, receipt_shown.output
    assert "20 units worth 0.02 M2M, 0.02 M2M paid" in receipt_shown.stdout
    assert local_time(receipt["started_ms"]) in receipt_shown.stdout

    channel = receipt["channel_id"]
    sent_before = int((await _json(*buyer, "channel", "show", channel))["sent_total"])
    paid = await _cli(*buyer, "channel", "pay", channel[:10], "1", "--count", "2")
    assert paid.exit_code == 0, paid.output
    assert "paid 0.000000000000000002 M2M in 2 payment(s)" in paid.stdout
    assert f"{decimal_amount(sent_before + 2, 18)} M2M sent in all" in paid.stdout


async def test_errors_name_the_code_and_exit_with_1(make_api: ApiFactory) -> None:
    api = await make_api(1)
    node = await _served(api)
    bad = await _cli(
        *node,
        "offer", "publish", "--kind", "energy", "--unit", "Wh", "--price", "5",
        "--window", "2", "--batch", "3", "--device", METER,
    )  # fmt: skip
    assert bad.exit_code == 1
    assert "invalid_input" in bad.stderr
    assert "batch" in bad.stderr
    unknown = await _cli(*node, "channel", "show", "0xabc")
    assert unknown.exit_code == 1
    assert "no channel starts with 0xabc" in unknown.stderr
    as_json = await _cli(*node, "session", "show", "0x" + "ab" * 32, "--json")
    assert as_json.exit_code == 1
    error = json.loads(as_json.stderr)["error"]
    assert (error["status"], error["code"]) == (404, "unknown_session")
    assert error["message"]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        nowhere = f"http://127.0.0.1:{sock.getsockname()[1]}"
    unreachable = await _cli(nowhere, "t", "wallet", "show", "--json")
    assert unreachable.exit_code == 1
    assert json.loads(unreachable.stderr)["error"]["code"] == "node_unreachable"
    human = await _cli(nowhere, "t", "channel", "list")
    assert human.exit_code == 1
    assert f"cannot reach the node at {nowhere}" in human.stderr
