"""What only the real `Broker` has to get right: the administrator's connection (answers
matched to concurrent requests, timeouts, reconnecting) and a broker shared with
clients and roles that are not the node's."""

from __future__ import annotations

import asyncio
import secrets
import socket

import pytest

from m2mpay.access.broker import TopicAccess
from m2mpay.access.dynsec import ANONYMOUS_GROUP, PUBLIC_ROLE, DynsecBroker, role_of
from m2mpay.access.mosquitto import BrokerAddress, ManagedMosquitto
from m2mpay.errors import AccessError
from tests.access.conftest import unique
from tests.conftest import Broker as PlainMosquitto
from tests.waiting import eventually_async


def read(topic: str) -> TopicAccess:
    return TopicAccess(topic, read=True, write=False)


async def test_concurrent_requests_get_their_own_answers(dynsec: DynsecBroker) -> None:
    names = [unique("many") for _ in range(20)]
    await asyncio.gather(*(dynsec.add_client(name, "password") for name in names))
    await asyncio.gather(
        *(dynsec.allow(name, read(f"m2m/{name}/live")) for name in names),
        *(dynsec.allow(name, read(f"m2m/{name}/1m")) for name in names),
    )
    held = await asyncio.gather(*(dynsec.access_of(name) for name in names))
    for name, accesses in zip(names, held, strict=True):
        assert accesses == {read(f"m2m/{name}/live"), read(f"m2m/{name}/1m")}
    assert set(names) <= await dynsec.clients()


async def test_concurrent_grants_to_one_client_are_all_kept(
    dynsec: DynsecBroker, managed_mosquitto: ManagedMosquitto
) -> None:
    name = unique("busy")
    await dynsec.add_client(name, "password")
    topics = [f"m2m/plug{index}/live" for index in range(15)]
    await asyncio.gather(*(dynsec.allow(name, read(topic)) for topic in topics))
    await asyncio.gather(*(dynsec.revoke(name, topic) for topic in topics[:5]))
    expected = {read(topic) for topic in topics[5:]}
    assert await dynsec.access_of(name) == expected
    async with DynsecBroker(managed_mosquitto.address) as fresh:  # as the broker holds it
        assert await fresh.access_of(name) == expected


async def test_the_administrator_reconnects_after_the_broker_restarts(
    managed_mosquitto: ManagedMosquitto,
) -> None:
    async with DynsecBroker(managed_mosquitto.address, timeout=0.5, reconnect_delay=0.05) as dynsec:
        name = unique("survivor")
        await dynsec.add_client(name, "password")
        managed_mosquitto.stop()
        try:
            with pytest.raises(AccessError) as down:
                await dynsec.access_of(unique("nobody"))
            assert down.value.code in ("broker_unreachable", "broker_timeout")
        finally:
            managed_mosquitto.start()  # the session's other tests use it

        async def answers() -> bool:
            try:
                return name in await dynsec.clients()
            except AccessError:
                return False

        await eventually_async(answers, timeout=10)


async def test_a_broker_that_is_not_there_is_unreachable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dynsec = DynsecBroker(BrokerAddress("127.0.0.1", port, "admin", "secret"), timeout=0.5)
    with pytest.raises(AccessError) as refused:
        await dynsec.start()
    assert refused.value.code == "broker_unreachable"
    assert f"127.0.0.1:{port}" in refused.value.message


async def test_wrong_admin_credentials_are_unreachable_with_the_reason(
    managed_mosquitto: ManagedMosquitto,
) -> None:
    address = managed_mosquitto.address
    wrong = BrokerAddress(address.host, address.port, address.admin_username, "not it")
    with pytest.raises(AccessError) as refused:
        async with DynsecBroker(wrong, timeout=0.5):
            pass
    assert refused.value.code == "broker_unreachable"
    assert "not it" not in refused.value.message


async def test_a_broker_without_the_plugin_times_out(mosquitto: PlainMosquitto) -> None:
    # Mosquitto without dynamic security: anyone connects, no one answers commands.
    address = BrokerAddress(mosquitto.host, mosquitto.port, "admin", "secret")
    async with DynsecBroker(address, timeout=0.3) as dynsec:
        with pytest.raises(AccessError) as silent:
            await dynsec.clients()
        assert silent.value.code == "broker_timeout"


async def test_prepare_is_idempotent_and_keeps_the_public_filters(dynsec: DynsecBroker) -> None:
    await dynsec.set_public(["m2m/+/1m"])
    await dynsec.prepare()
    await dynsec.prepare()
    assert await dynsec.public() == {"m2m/+/1m"}
    group = await dynsec._ask({"command": "getAnonymousGroup"})
    assert group["data"]["group"]["groupname"] == ANONYMOUS_GROUP
    found = await dynsec._ask({"command": "getGroup", "groupname": ANONYMOUS_GROUP})
    assert [role["rolename"] for role in found["data"]["group"]["roles"]] == [PUBLIC_ROLE]


async def test_clients_that_are_not_the_nodes_are_left_alone(dynsec: DynsecBroker) -> None:
    stranger = unique("stranger")
    made = await dynsec._ask(
        {"command": "createClient", "username": stranger, "password": secrets.token_hex(8)}
    )
    assert "error" not in made
    assert stranger not in await dynsec.clients()
    assert dynsec.address.admin_username not in await dynsec.clients()
    for attempt in (
        dynsec.remove_client(stranger),
        dynsec.allow(stranger, read("m2m/x/live")),
        dynsec.remove_client(dynsec.address.admin_username),
    ):
        with pytest.raises(AccessError) as refused:
            await attempt
        assert refused.value.code == "unknown_client"
    with pytest.raises(AccessError) as taken:
        await dynsec.add_client(stranger, "password")
    assert taken.value.code == "name_taken"
    with pytest.raises(AccessError) as taken:
        await dynsec.add_client(dynsec.address.admin_username, "password")
    assert taken.value.code == "name_taken"
    still = await dynsec._ask({"command": "getClient", "username": stranger})
    assert "error" not in still
    assert "error" in await dynsec._ask({"command": "getRole", "rolename": role_of(stranger)})


async def test_a_role_left_by_a_half_done_add_gives_the_new_client_nothing(
    dynsec: DynsecBroker,
) -> None:
    name = unique("heir")
    left = await dynsec._ask(
        {
            "command": "createRole",
            "rolename": role_of(name),
            "acls": [{"acltype": "publishClientReceive", "topic": "m2m/#", "allow": True}],
        }
    )
    assert "error" not in left
    await dynsec.add_client(name, "password")
    assert await dynsec.access_of(name) == frozenset()
