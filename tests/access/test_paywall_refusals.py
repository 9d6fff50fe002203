"""Every bad payment the paywall is sent gets x402's reason (402, or 400 for a header
that does not decode), reaches no upstream and moves nothing on chain."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from m2mpay.client.x402 import OfferedPayment, X402Payer, read_payment_required
from m2mpay.crypto import Address, PrivateKey
from tests.access.paywall_rig import PRICE, Rig, decoded, encoded, paywall_rig

OTHER = Address("0x" + "11" * 20)


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    async with paywall_rig(tmp_path) as made:
        yield made


async def _offer(rig: Rig, path: str = "/data") -> tuple[dict[str, Any] | None, OfferedPayment]:
    async with rig.client() as http:
        answer = await http.get(path)
    resource, [offer] = read_payment_required(answer.headers["PAYMENT-REQUIRED"])
    return resource, offer


async def _refused(rig: Rig, header: str, status: int = 402) -> str:
    """The reason the paywall gives for `header`, having checked that nothing moved."""
    before = await rig.balances()
    async with rig.client() as http:
        answer = await http.get("/data", headers={"PAYMENT-SIGNATURE": header})
    assert answer.status_code == status, answer.text
    assert "PAYMENT-RESPONSE" not in answer.headers
    assert await rig.balances() == before
    assert rig.upstream.gets() == []
    reason: str = decoded(answer.headers["PAYMENT-REQUIRED"])["error"]
    if status == 400:  # the one error shape, naming the header at fault
        assert answer.json()["error"]["code"] == reason
        assert answer.json()["error"]["field"] == "PAYMENT-SIGNATURE"
    return reason


def _payer(rig: Rig, *, key: PrivateKey | None = None, shift_s: float = 0) -> X402Payer:
    return X402Payer(key or rig.buyer, 10**30, clock=lambda: time.time() + shift_s)


async def _signed(
    rig: Rig,
    change: Callable[[OfferedPayment], OfferedPayment] = lambda offer: offer,
    *,
    payer: X402Payer | None = None,
    resource: Callable[[dict[str, Any]], dict[str, Any]] = lambda found: found,
) -> str:
    found, offer = await _offer(rig)
    assert found is not None
    changed = change(offer)
    # The payment echoes what it claims to accept: the changed terms, not the offered ones.
    raw = {
        **offer.raw,
        "network": changed.network,
        "asset": changed.asset.checksum,
        "payTo": changed.pay_to.checksum,
        "amount": str(changed.amount),
    }
    return (payer or _payer(rig)).pay(dataclasses.replace(changed, raw=raw), resource(found))


async def test_a_replayed_authorization_is_refused_before_anything_is_sent(rig: Rig) -> None:
    header = await _signed(rig)
    async with rig.client() as http:
        assert (await http.get("/data", headers={"PAYMENT-SIGNATURE": header})).status_code == 200
    rig.upstream.seen.clear()
    assert await _refused(rig, header) == "invalid_exact_evm_nonce_already_used"


async def test_expired_and_not_yet_valid_authorizations_are_refused(rig: Rig) -> None:
    expired = await _signed(rig, payer=_payer(rig, shift_s=-3600))
    assert await _refused(rig, expired) == "invalid_exact_evm_payload_authorization_valid_before"
    early = await _signed(rig, payer=_payer(rig, shift_s=3600))
    assert await _refused(rig, early) == "invalid_exact_evm_payload_authorization_valid_after"


async def test_another_network_asset_or_payee_is_refused(rig: Rig) -> None:
    network = await _signed(rig, lambda o: dataclasses.replace(o, network="eip155:1", chain_id=1))
    assert await _refused(rig, network) == "network_mismatch"
    asset = await _signed(rig, lambda o: dataclasses.replace(o, asset=OTHER))
    assert await _refused(rig, asset) == "network_mismatch"
    payee = await _signed(rig, lambda o: dataclasses.replace(o, pay_to=OTHER))
    assert await _refused(rig, payee) == "invalid_exact_evm_payload_recipient_mismatch"


async def test_an_underpayment_is_refused(rig: Rig) -> None:
    under = await _signed(rig, lambda o: dataclasses.replace(o, amount=PRICE - 1))
    assert await _refused(rig, under) == "invalid_exact_evm_payload_authorization_value_mismatch"


async def test_a_payment_for_another_resource_is_refused(rig: Rig) -> None:
    other = await _signed(rig, resource=lambda found: {**found, "url": "http://x/elsewhere"})
    assert await _refused(rig, other) == "invalid_payment_requirements"


async def test_a_forged_signature_and_an_empty_purse_are_refused(rig: Rig) -> None:
    header = decoded(await _signed(rig))
    forger = PrivateKey.generate()
    forged_payer = _payer(rig, key=forger)
    forged = decoded(await _signed(rig, payer=forged_payer))
    # Alice's authorization with the forger's signature: it recovers to someone else.
    header["payload"]["signature"] = forged["payload"]["signature"]
    assert await _refused(rig, encoded(header)) == "invalid_exact_evm_payload_signature"
    # The forger signs for itself, correctly, but holds no tokens.
    assert await _refused(rig, encoded(forged)) == "invalid_exact_evm_insufficient_balance"


async def test_an_unknown_scheme_is_refused(rig: Rig) -> None:
    header = decoded(await _signed(rig))
    header["accepted"]["scheme"] = "upto"
    assert await _refused(rig, encoded(header)) == "unsupported_scheme"


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("not base64 at all!", "invalid_payload"),
        ("A" * 9000, "invalid_payload"),
        (encoded({"x402Version": 2}), "invalid_payload"),
        (encoded({"x402Version": 1, "accepted": {}, "payload": {}}), "invalid_x402_version"),
        ("W10=", "invalid_payload"),  # a JSON list, not an object
    ],
)
async def test_a_header_that_does_not_decode_is_400(rig: Rig, header: str, reason: str) -> None:
    assert await _refused(rig, header, status=400) == reason
