"""One suite for every `Broker`: `MemoryBroker`, and `DynsecBroker` on the node's Mosquitto.

Each case asks a `Probe` what clients can do: the memory broker's answers, or real
MQTT clients trying it on the real broker.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest

from m2mpay.access.broker import MemoryBroker, TopicAccess
from m2mpay.access.dynsec import DynsecBroker
from m2mpay.access.mosquitto import ManagedMosquitto
from m2mpay.errors import AccessError
from tests.access.conftest import unique
from tests.access.probes import MemoryProbe, MqttProbe, Probe

LIVE = "m2m/{}/live"
FREE = "m2m/+/1m"


@pytest.fixture(params=["memory", "dynsec"])
async def probe(request: pytest.FixtureRequest) -> AsyncIterator[Probe]:
    if request.param == "memory":
        memory = MemoryBroker()
        await memory.prepare()
        yield MemoryProbe(memory)
        return
    mosquitto: ManagedMosquitto = request.getfixturevalue("managed_mosquitto")
    async with DynsecBroker(mosquitto.address) as dynsec:
        await dynsec.prepare()
        real = MqttProbe(dynsec)
        await real.setup()
        yield real


async def client(probe: Probe, prefix: str = "buyer") -> tuple[str, str]:
    user = (unique(prefix), secrets.token_urlsafe(16))
    await probe.broker.add_client(*user)
    return user


def device() -> str:
    return f"plug{secrets.token_hex(3)}"


def read(topic: str) -> TopicAccess:
    return TopicAccess(topic, read=True, write=False)


async def test_a_new_client_and_an_anonymous_one_may_do_nothing(probe: Probe) -> None:
    await probe.set_public()
    user = await client(probe)
    live = LIVE.format(device())
    for who in (user, None):
        assert not await probe.subscribes(who, live)
        assert not await probe.receives(who, live, live)
        assert not await probe.publishes(who, live)
    assert await probe.broker.access_of(user[0]) == frozenset()


async def test_the_public_topics_are_readable_by_anyone_and_replaced_as_a_set(
    probe: Probe,
) -> None:
    await probe.set_public(FREE)
    user = await client(probe)
    plug = device()
    free, live = f"m2m/{plug}/1m", LIVE.format(plug)
    for who in (user, None):
        assert await probe.subscribes(who, free)
        assert await probe.receives(who, free, free)
        assert await probe.receives(who, FREE, free)
        assert not await probe.receives(who, live, live)
        assert not await probe.publishes(who, free)
    assert FREE in await probe.broker.public()

    await probe.set_public("m2m/+/5m")
    assert not await probe.receives(None, free, free)
    assert await probe.receives(None, f"m2m/{plug}/5m", f"m2m/{plug}/5m")
    assert FREE not in await probe.broker.public()


async def test_allow_then_revoke(probe: Probe) -> None:
    await probe.set_public()
    user = await client(probe)
    live = LIVE.format(device())
    await probe.broker.allow(user[0], read(live))
    assert await probe.broker.access_of(user[0]) == {read(live)}
    assert await probe.subscribes(user, live)
    assert await probe.receives(user, live, live)

    await probe.broker.revoke(user[0], live)
    assert await probe.broker.access_of(user[0]) == frozenset()
    assert not await probe.subscribes(user, live)
    assert not await probe.receives(user, live, live)
    await probe.broker.revoke(user[0], live)  # nothing to take back: nothing happens


async def test_two_clients_and_two_topics_are_kept_apart(probe: Probe) -> None:
    await probe.set_public()
    alice, bob = await client(probe, "alice"), await client(probe, "bob")
    first, second = LIVE.format(device()), LIVE.format(device())
    await probe.broker.allow(alice[0], read(first))
    await probe.broker.allow(bob[0], read(second))
    assert await probe.receives(alice, first, first)
    assert not await probe.receives(alice, second, second)
    assert await probe.receives(bob, second, second)
    assert not await probe.receives(bob, first, first)
    assert not await probe.receives(alice, "m2m/+/live", second)

    await probe.broker.revoke(alice[0], first)
    assert await probe.receives(bob, second, second)
    assert await probe.broker.access_of(bob[0]) == {read(second)}


async def test_every_clients_access_is_read_at_once_as_one_by_one(probe: Probe) -> None:
    alice, bob, carol = [await client(probe, name) for name in ("alice", "bob", "carol")]
    plug = device()
    await probe.broker.allow(alice[0], read(LIVE.format(plug)))
    await probe.broker.allow(alice[0], TopicAccess(f"m2m/{plug}/1m", read=True, write=True))
    await probe.broker.allow(bob[0], TopicAccess(LIVE.format(plug), read=False, write=True))
    await probe.broker.allow(carol[0], read(LIVE.format(plug)))
    await probe.broker.revoke(carol[0], LIVE.format(plug))
    await probe.broker.remove_client(bob[0])

    everyone = await probe.broker.accesses()
    assert everyone.keys() == await probe.broker.clients()
    assert bob[0] not in everyone
    assert everyone[carol[0]] == frozenset()
    assert everyone[alice[0]] == await probe.broker.access_of(alice[0])
    assert everyone[alice[0]] == {
        read(LIVE.format(plug)),
        TopicAccess(f"m2m/{plug}/1m", read=True, write=True),
    }


async def test_a_wildcard_grant_reads_what_it_matches_and_no_more(probe: Probe) -> None:
    await probe.set_public()
    user = await client(probe)
    plug = device()
    await probe.broker.allow(user[0], read(f"m2m/{plug}/#"))
    assert await probe.receives(user, f"m2m/{plug}/#", f"m2m/{plug}/live")
    assert await probe.receives(user, f"m2m/{plug}/+", f"m2m/{plug}/1m")
    assert not await probe.subscribes(user, "m2m/#")
    assert not await probe.receives(user, LIVE.format(device()), LIVE.format(device()))


async def test_no_client_reaches_control_topics(probe: Probe) -> None:
    await probe.set_public(FREE)
    user = await client(probe)
    await probe.broker.allow(user[0], TopicAccess("m2m/#", read=True, write=True))
    for who in (user, None):
        assert not await probe.reaches_control(who)
        assert not await probe.subscribes(who, "$CONTROL/dynamic-security/v1/response")
        assert not await probe.subscribes(who, "#")
    for topic in ("$CONTROL/#", "#", "+/dynamic-security/#", "$SYS/#"):
        with pytest.raises(AccessError) as refused:
            TopicAccess(topic, read=True, write=False)
        assert refused.value.code == "bad_topic"
    with pytest.raises(AccessError) as refused:
        await probe.broker.set_public(["#"])
    assert refused.value.code == "bad_topic"


async def test_a_taken_name_is_refused_and_keeps_its_password(probe: Probe) -> None:
    await probe.set_public()
    user = await client(probe)
    with pytest.raises(AccessError) as taken:
        await probe.broker.add_client(user[0], "another password")
    assert taken.value.code == "name_taken"
    assert await probe.connects(*user)
    assert not await probe.connects(user[0], "another password")
    assert user[0] in await probe.broker.clients()


async def test_remove_client_is_idempotent_and_frees_the_name(probe: Probe) -> None:
    await probe.set_public()
    user = await client(probe)
    live = LIVE.format(device())
    await probe.broker.allow(user[0], read(live))
    await probe.broker.remove_client(user[0])
    await probe.broker.remove_client(user[0])
    assert user[0] not in await probe.broker.clients()
    assert not await probe.connects(*user)
    with pytest.raises(AccessError) as unknown:
        await probe.broker.allow(user[0], read(live))
    assert unknown.value.code == "unknown_client"
    with pytest.raises(AccessError) as unknown:
        await probe.broker.access_of(user[0])
    assert unknown.value.code == "unknown_client"

    await probe.broker.add_client(user[0], "a new password")
    assert await probe.broker.access_of(user[0]) == frozenset()  # nothing of the old grant
    assert not await probe.receives((user[0], "a new password"), live, live)


async def test_a_client_cannot_publish_where_it_only_reads(probe: Probe) -> None:
    await probe.set_public()
    user = await client(probe)
    live = LIVE.format(device())
    await probe.broker.allow(user[0], read(live))
    assert not await probe.publishes(user, live)

    await probe.broker.allow(user[0], TopicAccess(live, read=False, write=True))  # replaces
    assert await probe.publishes(user, live)
    assert not await probe.receives(user, live, live)
    assert await probe.broker.access_of(user[0]) == {TopicAccess(live, read=False, write=True)}


async def test_a_device_publishes_on_its_own_topics_only(probe: Probe) -> None:
    await probe.set_public(FREE)
    own, other = device(), device()
    plug = await client(probe, "plug")
    await probe.broker.allow(plug[0], TopicAccess(f"m2m/{own}/#", read=False, write=True))
    assert await probe.publishes(plug, f"m2m/{own}/live")
    assert await probe.publishes(plug, f"m2m/{own}/1m")
    assert not await probe.publishes(plug, f"m2m/{other}/live")
    assert not await probe.publishes(plug, f"m2m/{other}/1m")
    assert not await probe.receives(plug, f"m2m/{own}/live", f"m2m/{own}/live")


async def test_bad_names_are_refused_with_their_code(probe: Probe) -> None:
    for username, code in (
        ("ab", "bad_username"),
        ("a b c", "bad_username"),
        ("x" * 65, "bad_username"),
    ):
        with pytest.raises(AccessError) as refused:
            await probe.broker.add_client(username, "password")
        assert refused.value.code == code
    with pytest.raises(AccessError) as refused:
        await probe.broker.add_client("good-name", "")
    assert refused.value.code == "bad_password"
    for topic in ("m2m/a+/live", "m2m/#/live", "", "m2m/\0"):
        with pytest.raises(AccessError) as refused:
            TopicAccess(topic, read=True, write=False)
        assert refused.value.code == "bad_topic"
    with pytest.raises(AccessError) as refused:
        TopicAccess("m2m/x/live", read=False, write=False)
    assert refused.value.code == "no_access"
    assert "good-name" not in await probe.broker.clients()
