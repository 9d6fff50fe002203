"""Proof updates over HTTP: bad ones get clear errors and change nothing; the client
raises typed errors; what the service answers matches its OpenAPI models.

Every refusal has the one error shape and names its field; the client raises the same
typed error the service raised. After each refused request the watcher's whole durable
state is what it was before.
"""

from __future__ import annotations

import orjson
import pytest

from m2mpay.chain import OnchainChannel
from m2mpay.crypto import balance_proof_digest, channel_domain
from m2mpay.errors import AuthenticationFailed, ProtocolError
from m2mpay.watcher import InvalidInput, NotFound, StaleSubmission, Unauthorized
from m2mpay.watcher.models import ChannelView, DisputeList, Info
from m2mpay.watcher_client import WatcherClient, WatcherUnavailable
from tests.conftest import UNIT
from tests.watcher.conftest import Setup


async def test_proof_updates_refused(setup: Setup) -> None:
    world, url, token = setup.world, setup.proof_url, setup.token
    put = "PUT"
    # Who signed: the party itself, a stranger, nobody valid.
    for signer in (world.bob, world.carol):
        error = await setup.refused(
            put,
            url,
            setup.proof(6, signer),
            token=token,
            status=422,
            code="wrong_signer",
            field="signature",
        )
        assert str(signer.address) in error["message"]
    # Not newer than what is held (5), or nothing at all.
    for total in (5, 4, 0):
        await setup.refused(
            put,
            url,
            setup.proof(total),
            token=token,
            status=409,
            code="stale_proof",
            field="transferred",
        )
    # Signed by the right key, for another channel, hub or chain.
    other = OnchainChannel(world.alice.address, world.bob.address, world.token.address, 100, 999)
    mainnet = channel_domain(1, world.hub.address)
    not_the_hub = channel_domain(world.ledger.chain_id, world.token.address)
    elsewhere = {
        "another channel": balance_proof_digest(world.hub.domain, other.id, 6),
        "another chain": balance_proof_digest(mainnet, setup.channel.id, 6),
        "another hub": balance_proof_digest(not_the_hub, setup.channel.id, 6),
    }
    for digest in elsewhere.values():
        body = {"transferred": "6", "signature": "0x" + world.alice.sign_digest(digest).hex()}
        await setup.refused(
            put, url, body, token=token, status=422, code="wrong_signer", field="signature"
        )
    # Tokens.
    await setup.refused(put, url, setup.proof(6), status=401, code="missing_token")
    await setup.refused(put, url, setup.proof(6), token="nope", status=401, code="wrong_token")
    await setup.refused(
        put, url, setup.proof(6), raw=None, token="", status=401, code="missing_token"
    )
    # Nothing registered there.
    alice_url = url.replace(str(world.bob.address), str(world.alice.address))
    await setup.refused(
        put, alice_url, setup.proof(6), token=token, status=404, code="unknown_registration"
    )
    unknown_url = url.replace(setup.channel.id.hex(), "ab" * 32)
    await setup.refused(
        put, unknown_url, setup.proof(6), token=token, status=404, code="unknown_registration"
    )
    await setup.refused(
        put,
        url.replace(setup.channel.id.hex(), "abc"),
        setup.proof(6),
        token=token,
        status=422,
        code="invalid_field",
        field="channel_id",
    )
    await setup.refused(
        put,
        url.replace(str(world.bob.address), "0x1234"),
        setup.proof(6),
        token=token,
        status=422,
        code="invalid_field",
        field="party",
    )


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        (b"not json", "invalid_json", "body"),
        (b"[1, 2]", "invalid_field", "body"),
        (b'{"signature": "0x00"}', "missing_field", "transferred"),
        (b'{"transferred": "6"}', "missing_field", "signature"),
        (b'{"transferred": "6", "signature": "0x00", "version": 1}', "unknown_field", "version"),
        (b'{"transferred": 6, "signature": "0x00"}', "invalid_field", "transferred"),
        (b'{"transferred": "-6", "signature": "0x00"}', "invalid_field", "transferred"),
        (b'{"transferred": "6.0", "signature": "0x00"}', "invalid_field", "transferred"),
        (b'{"transferred": "%d", "signature": "0x00"}' % 2**256, "invalid_field", "transferred"),
        (b'{"transferred": "6", "signature": "0x00"}', "bad_signature", "signature"),
        (
            b'{"transferred": "6", "signature": "' + b"0x" + b"zz" * 65 + b'"}',
            "bad_signature",
            "signature",
        ),
        (b'{"transferred": "6", "signature": 12}', "invalid_field", "signature"),
    ],
)
async def test_garbage_proof_bodies_are_refused(
    setup: Setup, body: bytes, code: str, field: str
) -> None:
    await setup.refused(
        "PUT", setup.proof_url, raw=body, token=setup.token, status=422, code=code, field=field
    )


async def test_malleable_and_invalid_signatures_are_refused(setup: Setup) -> None:
    good = bytes.fromhex(setup.proof(6)["signature"][2:])
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    high_s = good[:32] + (n - int.from_bytes(good[32:64], "big")).to_bytes(32, "big")
    twin = high_s + bytes([55 - good[64]])  # the malleable twin of a valid signature
    for signature in (twin, good[:64] + b"\x00", bytes(65)):
        body = {"transferred": "6", "signature": "0x" + signature.hex()}
        await setup.refused(
            "PUT",
            setup.proof_url,
            body,
            token=setup.token,
            status=422,
            code="bad_signature",
            field="signature",
        )


async def test_client_raises_typed_errors(setup: Setup) -> None:
    client, world, channel = setup.running.client, setup.world, setup.channel
    six = world.hub.sign_balance_proof(world.alice, channel.id, 6)
    with pytest.raises(Unauthorized) as unauthorized:
        await client.update(channel.id, world.bob.address, "wrong", 6, six)
    assert isinstance(unauthorized.value, AuthenticationFailed)
    with pytest.raises(StaleSubmission) as stale:
        await client.update(channel.id, world.bob.address, setup.token, 5, six)
    assert (stale.value.code, stale.value.field) == ("stale_proof", "transferred")
    with pytest.raises(InvalidInput) as invalid:
        await client.update(channel.id, world.bob.address, setup.token, 7, six)
    assert (invalid.value.code, invalid.value.field) == ("wrong_signer", "signature")
    assert isinstance(invalid.value, ProtocolError)
    with pytest.raises(NotFound):
        await client.channel(bytes(32))
    with pytest.raises(InvalidInput):
        await client.register(channel, world.carol)
    stored = await client.update(channel.id, world.bob.address, setup.token, 6, six)
    assert (stored.channel_id, stored.party, stored.transferred) == (
        channel.id,
        world.bob.address,
        6,
    )
    async with WatcherClient("http://127.0.0.1:9", timeout=2) as nowhere:
        with pytest.raises(WatcherUnavailable):
            await nowhere.info()


async def test_schema_and_answers_match_the_models(setup: Setup) -> None:
    status, schema = await setup.request("GET", f"{setup.running.url}/openapi.json")
    assert status == 200
    assert {
        "/v1/info",
        "/v1/registrations",
        "/v1/disputes",
        "/v1/channels/{channel_id}",
        "/v1/channels/{channel_id}/proofs/{party}",
    } <= set(schema["paths"])
    put = schema["paths"]["/v1/channels/{channel_id}/proofs/{party}"]["put"]
    assert put["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "ProofUpdate"
    )
    components = schema["components"]["schemas"]
    assert {"ProofUpdate", "RegistrationRequest", "ChannelParamsModel", "ErrorBody"} <= set(
        components
    )

    info = Info.model_validate((await setup.request("GET", f"{setup.running.url}/v1/info"))[1])
    assert info.chain == f"eip155:{setup.world.ledger.chain_id}"
    assert (info.channels, info.proofs, info.registrations) == (1, 1, 1)
    assert info.address == str(setup.running.watcher.address)
    channel_url = f"{setup.running.url}/v1/channels/0x{setup.channel.id.hex()}"
    view = ChannelView.model_validate((await setup.request("GET", channel_url))[1])
    # Registered after the open: the watcher read the channel's past events.
    assert view.onchain.phase == "open"
    assert view.onchain.deposit_a == str(10 * UNIT)
    assert [(p.party, p.role, p.held_transferred) for p in view.parties] == [
        (str(setup.world.bob.address), "b", "5")
    ]
    assert setup.token not in orjson.dumps(view.model_dump()).decode()  # never the secret
    DisputeList.model_validate((await setup.request("GET", f"{setup.running.url}/v1/disputes"))[1])
    await setup.refused("GET", f"{setup.running.url}/v2/nothing", status=404, code="not_found")
    await setup.refused(
        "DELETE", f"{setup.running.url}/v1/info", status=405, code="method_not_allowed"
    )
