"""Registrations: only a party, for this watcher, hub and chain, recently signed, and
never a replay; every refusal changes nothing."""

from __future__ import annotations

import time
from typing import Any

from m2mpay.crypto import Address, PrivateKey, channel_domain, watch_registration_digest
from tests.watcher.conftest import Setup


def _registration(
    setup: Setup,
    signer: PrivateKey,
    *,
    party: Address | None = None,
    issued_at: int | None = None,
    watcher: Address | None = None,
    chain_id: int | None = None,
) -> dict[str, Any]:
    world, channel = setup.world, setup.channel
    party = party or signer.address
    issued_at = int(time.time()) if issued_at is None else issued_at
    domain = channel_domain(chain_id or world.ledger.chain_id, world.hub.address)
    digest = watch_registration_digest(
        domain, channel.id, party, watcher or setup.running.watcher.address, issued_at
    )
    return {
        "channel": {
            "a": str(channel.a),
            "b": str(channel.b),
            "token": str(channel.token),
            "challenge_period": channel.challenge_period,
            "nonce": str(channel.nonce),
        },
        "party": str(party),
        "issued_at": issued_at,
        "signature": "0x" + signer.sign_digest(digest).hex(),
    }


async def test_registrations_refused(setup: Setup) -> None:
    world = setup.world
    url = f"{setup.running.url}/v1/registrations"
    now = int(time.time())
    wrong_signer = ("wrong_signer", "signature")
    out_of_range = ("issued_at_out_of_range", "issued_at")
    cases: list[tuple[dict[str, Any], tuple[str, str]]] = [
        # A stranger registering itself, or pretending to be bob.
        (_registration(setup, world.carol), ("not_a_party", "party")),
        (_registration(setup, world.carol, party=world.bob.address), wrong_signer),
        # Stale or from the future.
        (_registration(setup, world.bob, issued_at=now - 400), out_of_range),
        (_registration(setup, world.bob, issued_at=now + 400), out_of_range),
        # Signed for another watcher, or another chain.
        (_registration(setup, world.bob, watcher=world.carol.address), wrong_signer),
        (_registration(setup, world.bob, chain_id=1), wrong_signer),
    ]
    for body, (code, field) in cases:
        await setup.refused("POST", url, body, status=422, code=code, field=field)
    good = _registration(setup, world.alice)
    channel = good["channel"]
    malformed: list[tuple[dict[str, Any], str]] = [
        ({**good, "channel": {**channel, "a": "0x12"}}, "channel.a"),
        ({**good, "channel": {**channel, "challenge_period": 0}}, "channel.challenge_period"),
        ({**good, "channel": {**channel, "nonce": "-1"}}, "channel.nonce"),
        ({**good, "channel": {**channel, "b": channel["a"]}}, "channel.b"),
        ({**good, "issued_at": "now"}, "issued_at"),
        ({**good, "extra": 1}, "extra"),
        ({k: v for k, v in good.items() if k != "party"}, "party"),
    ]
    for body, field in malformed:
        error = await setup.refused(
            "POST", url, body, status=422, code=error_code(body), field=field
        )
        assert error["message"]
    await setup.refused("POST", url, raw=b"{", status=422, code="invalid_json", field="body")


def error_code(body: dict[str, Any]) -> str:
    if "extra" in body:
        return "unknown_field"
    if "party" not in body:
        return "missing_field"
    return "invalid_field"


async def test_a_replayed_registration_cannot_lock_the_party_out(setup: Setup) -> None:
    url = f"{setup.running.url}/v1/registrations"
    body = _registration(setup, setup.world.alice)
    status, created = await setup.request("POST", url, body)
    assert status == 201
    await setup.refused(
        "POST", url, body, status=409, code="registration_replayed", field="issued_at"
    )
    # The token from the first registration still works.
    alice_url = setup.proof_url.replace(
        str(setup.world.bob.address), str(setup.world.alice.address)
    )
    proof = {
        "transferred": "3",
        "signature": "0x"
        + setup.world.hub.sign_balance_proof(setup.world.bob, setup.channel.id, 3).hex(),
    }
    status, stored = await setup.request("PUT", alice_url, proof, token=created["token"])
    assert (status, stored["stored"]) == (200, True)
    # A newer registration by the party replaces its token.
    newer = await setup.running.client.register(
        setup.channel, setup.world.alice, issued_at=body["issued_at"] + 1
    )
    await setup.refused(
        "PUT",
        alice_url,
        {**proof, "transferred": "4"},
        token=created["token"],
        status=401,
        code="wrong_token",
    )
    four = setup.world.hub.sign_balance_proof(setup.world.bob, setup.channel.id, 4)
    await setup.running.client.update(setup.channel.id, setup.world.alice.address, newer, 4, four)
