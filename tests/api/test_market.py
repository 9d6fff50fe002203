"""Tokens and the exchange through the node's API and its SDK, on a real embedded chain:
a token made, listed, pooled against ETH, quoted, swapped and withdrawn, every balance
moving exactly as the quote said; bad input refused with its code before anything moves,
and what the contract refuses answered with its reason."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest

from m2mpay.api.errors import ApiError
from m2mpay.api.market import REVERT_CODES, contract_refusals
from m2mpay.client import NATIVE
from m2mpay.crypto import Address
from m2mpay.errors import ApiConflict, ApiInvalidInput, TransactionReverted
from tests.api.conftest import UNIT, Api, ApiFactory

NOBODY = "0x" + "42" * 20  # an address without code


async def _light_balance(api: Api, light: Address) -> int:
    return (await api.client.token(light)).balance


async def test_a_token_is_made_pooled_quoted_swapped_and_withdrawn_as_quoted(
    make_api: ApiFactory,
) -> None:
    api = await make_api(1)
    node = api.client
    made = await node.create_token("IoT-Light", "LIGHT", supply=1_000_000 * UNIT)
    assert (made.symbol, made.decimals, made.supply) == ("LIGHT", 18, 1_000_000 * UNIT)
    assert (made.holder, made.creator, made.mint_owner) == (api.address, api.address, None)
    mintable = await node.create_token("IoT-Heat", "HEAT", decimals=6, mintable=True)
    assert (mintable.supply, mintable.mint_owner) == (0, api.address)
    assert [t.address for t in await node.tokens()] == [made.address, mintable.address]
    light = made.address
    detail = await node.token(light)
    assert (detail.token, detail.total_supply, detail.balance) == (made, made.supply, made.supply)

    added = await node.add_liquidity(NATIVE, light, 10 * UNIT, 1_000 * UNIT)
    shares = math.isqrt(10 * UNIT * 1_000 * UNIT) - 1_000  # the first 1,000 locked for ever
    assert (added.amount_a, added.amount_b, added.shares) == (10 * UNIT, 1_000 * UNIT, shares)
    assert added.shares_held == shares
    assert await _light_balance(api, light) == made.supply - 1_000 * UNIT

    sold = UNIT // 10
    quote = await node.quote(NATIVE, light, sold)
    expected = sold * 997 * 1_000 * UNIT // (10 * UNIT * 1_000 + sold * 997)
    assert (quote.amount_out, quote.fee, quote.fee_bps) == (expected, sold * 3 // 1_000, 30)
    assert quote.price_impact_bps == 99  # a tenth of an ether against 10: about 1 %
    before = await _light_balance(api, light)
    swapped = await node.swap(NATIVE, light, sold, slippage_bps=100)
    assert (swapped.amount_in, swapped.amount_out) == (sold, quote.amount_out)
    assert swapped.min_out == expected * 9_900 // 10_000
    assert await _light_balance(api, light) == before + quote.amount_out

    [pool] = await node.pools()
    assert (pool.token0, pool.token1, pool.symbol0, pool.symbol1) == (NATIVE, light, "ETH", "LIGHT")
    assert (pool.reserve0, pool.reserve1) == (10 * UNIT + sold, 1_000 * UNIT - expected)
    assert (pool.total_shares, pool.shares, pool.fee_bps) == (shares + 1_000, shares, 30)
    assert pool.pool_id == added.pool_id
    assert pool.price0.startswith("98.0325")  # whole LIGHT for one ETH, fee and impact aside
    assert pool.price1.startswith("0.0102006")

    back = await node.quote(light, NATIVE, quote.amount_out)
    sold_back = await node.swap(light, NATIVE, quote.amount_out, min_out=back.amount_out)
    assert sold_back.amount_out == back.amount_out < sold  # the fee, both ways
    before = await _light_balance(api, light)
    [pool] = await node.pools()
    removed = await node.remove_liquidity(light, NATIVE, shares)  # either order names the pool
    assert removed.amount_a == shares * pool.reserve1 // pool.total_shares
    assert removed.amount_b == shares * pool.reserve0 // pool.total_shares
    assert (removed.shares, removed.shares_held) == (shares, 0)
    assert await _light_balance(api, light) == before + removed.amount_a


async def _refused(api: Api, method: str, path: str, **request: Any) -> tuple[int, dict[str, Any]]:
    answer = await api.http.request(method, path, **request)
    error: dict[str, Any] = answer.json()["error"]
    return answer.status_code, error


async def test_bad_input_gets_its_code_before_anything_moves(make_api: ApiFactory) -> None:
    api = await make_api(1)
    node = api.client
    light = (await node.create_token("IoT-Light", "LIGHT", supply=1_000 * UNIT)).address
    await node.add_liquidity(NATIVE, light, UNIT, 100 * UNIT)
    m2m = api.gateway.deployment.token
    held = await _light_balance(api, light)
    [pool] = await node.pools()

    def swap(**changes: Any) -> dict[str, Any]:
        body = {"sell": NATIVE.checksum, "buy": light.checksum, "amount_in": str(UNIT // 100)}
        return {"json": {**body, **changes}}

    cases: list[tuple[str, str, dict[str, Any], int, str, str | None]] = [
        ("POST", "/v1/dex/swaps", swap(buy=NATIVE.checksum), 422, "same_asset", "buy"),
        ("POST", "/v1/dex/swaps", swap(buy=NOBODY), 422, "unknown_token", "buy"),
        ("POST", "/v1/dex/swaps", swap(amount_in="0"), 422, "invalid_input", "amount_in"),
        ("POST", "/v1/dex/swaps", swap(buy=m2m.checksum), 404, "no_pool", None),
        ("POST", "/v1/dex/swaps", swap(min_out=str(UNIT)), 409, "slippage", "min_out"),
        ("POST", "/v1/dex/swaps", swap(deadline=1), 409, "deadline_passed", "deadline"),
        (
            "POST", "/v1/dex/swaps", swap(min_out="1", slippage_bps=10),
            422, "invalid_input", "slippage_bps",
        ),
        (
            "POST", "/v1/dex/swaps", swap(amount_in=str(10**30)),
            409, "insufficient_funds", "amount_in",
        ),
        (
            "POST", "/v1/dex/swaps", swap(amount_in=str(10**40)),  # above a reserve's 112 bits
            422, "amount_too_large", "amount_in",
        ),
        (
            "GET", "/v1/dex/quote",
            {"params": {"sell": light.checksum, "buy": light.checksum, "amount": "1"}},
            422, "same_asset", "buy",
        ),
        (
            "GET", "/v1/dex/quote",
            {"params": {"sell": NATIVE.checksum, "buy": light.checksum, "amount": "0"}},
            422, "invalid_amount", "amount",
        ),
        (
            "GET", "/v1/dex/quote",
            {"params": {"sell": NATIVE.checksum, "buy": light.checksum, "amount": "9" * 78}},
            422, "invalid_amount", "amount",
        ),
        (
            "POST", "/v1/dex/liquidity/removals",
            {"json": {"asset_a": NATIVE.checksum, "asset_b": light.checksum,
                      "shares": str(pool.shares + 1)}},
            409, "insufficient_shares", "shares",
        ),
        (
            "POST", "/v1/dex/liquidity/removals",
            {"json": {"asset_a": NATIVE.checksum, "asset_b": m2m.checksum, "shares": "1"}},
            404, "no_pool", None,
        ),
        (
            "POST", "/v1/tokens",
            {"json": {"name": "X", "symbol": "X", "supply": "1", "holder": "0x" + "00" * 20}},
            422, "invalid_input", "holder",
        ),
        ("POST", "/v1/tokens", {"json": {"name": "", "symbol": "X"}}, 422, "invalid_input", "name"),
        (
            "POST", "/v1/tokens", {"json": {"name": "X", "symbol": "X", "decimals": 78}},
            422, "invalid_input", "decimals",
        ),
        ("GET", f"/v1/tokens/{m2m.checksum}", {}, 404, "not_a_factory_token", "address"),
    ]  # fmt: skip
    for method, path, request, status, code, field in cases:
        got_status, error = await _refused(api, method, path, **request)
        assert (got_status, error["code"], error.get("field")) == (status, code, field), (
            path,
            request,
            error,
        )
    assert await _light_balance(api, light) == held
    assert await node.pools() == [pool]


async def test_what_the_contract_refuses_comes_back_with_its_reason_and_nothing_moves(
    make_api: ApiFactory,
) -> None:
    api = await make_api(1)
    node = api.client
    light = (await node.create_token("IoT-Light", "LIGHT", supply=1_000 * UNIT)).address
    with pytest.raises(ApiInvalidInput) as too_small:  # the pool's first 1,000 shares are locked
        await node.add_liquidity(NATIVE, light, 1_000, 1_000)
    assert too_small.value.code == "amount_too_small"
    assert "Exchange: initial liquidity too small" in too_small.value.message
    assert await node.pools() == []
    await node.add_liquidity(NATIVE, light, UNIT, 100 * UNIT)
    [pool] = await node.pools()
    held = await _light_balance(api, light)
    with pytest.raises(ApiConflict) as greedy:
        await node.add_liquidity(NATIVE, light, UNIT, 100 * UNIT, min_shares=100 * UNIT)
    assert (greedy.value.code, greedy.value.field) == ("slippage", "min_shares")
    assert "Exchange: shares below minimum" in greedy.value.message
    with pytest.raises(ApiConflict) as short:
        await node.remove_liquidity(NATIVE, light, pool.shares, min_b=101 * UNIT)
    assert (short.value.code, short.value.field) == ("slippage", "min_a")
    assert "Exchange: output below minimum" in short.value.message
    assert await node.pools() == [pool]
    assert await _light_balance(api, light) == held


async def test_a_deployment_without_market_contracts_says_so(make_api: ApiFactory) -> None:
    api = await make_api(1, market=False)
    with pytest.raises(ApiConflict) as listed:
        await api.client.tokens()
    assert listed.value.code == "no_market"
    with pytest.raises(ApiConflict) as swapped:
        await api.client.swap(NATIVE, api.gateway.deployment.token, 1)
    assert swapped.value.code == "no_market"


# Reasons the node never meets through its routes: it sends the ETH a swap needs, pays
# itself, swaps without permit, and the blueprint is checked at deployment.
_NEVER_MET = {
    "ETH sent differs from amount",
    "ETH sent with a token",
    "receiver is the zero address",
    "permit needs a token",
    "blueprint is not a contract",
}


def test_every_reason_the_contracts_give_has_its_code() -> None:
    root = Path(__file__).parents[2] / "contracts"
    given = {
        reason
        for source in ("Exchange.vy", "TokenFactory.vy")
        for reason in re.findall(
            r'"(?:Exchange|TokenFactory): ([^"]+)"', (root / source).read_text()
        )
    }
    assert set(REVERT_CODES) == given - _NEVER_MET  # no code for a reason that is gone
    for reason, (status, code) in REVERT_CODES.items():
        with pytest.raises(ApiError) as refused, contract_refusals({code: "here"}):
            raise TransactionReverted(f"Exchange: {reason}")
        assert (refused.value.status, refused.value.code, refused.value.field) == (
            status,
            code,
            "here",
        )
        assert refused.value.message == f"Exchange: {reason}"
    with pytest.raises(ApiError) as other, contract_refusals():
        raise TransactionReverted("Token: something new")
    assert (other.value.status, other.value.code) == (409, "transaction_reverted")
