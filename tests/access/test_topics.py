"""MQTT names and matching as the broker's administrator checks them."""

from __future__ import annotations

import pytest

from m2mpay.access.topics import (
    covers,
    matches,
    validate_filter,
    validate_grantable,
    validate_password,
    validate_topic,
    validate_username,
)
from m2mpay.errors import AccessError


@pytest.mark.parametrize(
    ("topic_filter", "topic", "expected"),
    [
        ("m2m/plug/live", "m2m/plug/live", True),
        ("m2m/plug/live", "m2m/plug/1m", False),
        ("m2m/+/live", "m2m/plug/live", True),
        ("m2m/+/live", "m2m/plug/x/live", False),
        ("m2m/#", "m2m", True),
        ("m2m/#", "m2m/plug/live", True),
        ("m2m/plug/+", "m2m/plug", False),
        ("+/+", "/x", True),
        ("#", "$CONTROL/dynamic-security/v1", False),
        ("+/dynamic-security/v1", "$CONTROL/dynamic-security/v1", False),
        ("$CONTROL/#", "$CONTROL/dynamic-security/v1", True),
    ],
)
def test_matches_as_mqtt_does(topic_filter: str, topic: str, expected: bool) -> None:
    assert matches(topic_filter, topic) is expected


@pytest.mark.parametrize(
    ("acl", "subscription", "expected"),
    [
        ("m2m/+/1m", "m2m/plug/1m", True),
        ("m2m/+/1m", "m2m/+/1m", True),
        ("m2m/plug/1m", "m2m/+/1m", False),
        ("m2m/plug/#", "m2m/plug/#", True),
        ("m2m/plug/#", "m2m/plug/+", True),
        ("m2m/plug/#", "m2m/plug", True),
        ("m2m/plug/+", "m2m/plug/#", False),
        ("m2m/plug/live", "m2m/#", False),
        ("m2m/#", "#", False),
        ("#", "$CONTROL/#", True),  # why a granted filter never starts with a wildcard
    ],
)
def test_covers_as_the_plugins_subscribe_check_does(
    acl: str, subscription: str, expected: bool
) -> None:
    assert covers(acl, subscription) is expected


@pytest.mark.parametrize("name", ["abc", "buyer-1.a_B", "x" * 64])
def test_usernames_that_are_accepted(name: str) -> None:
    assert validate_username(name) == name


@pytest.mark.parametrize("name", ["ab", "x" * 65, "with space", "slash/name", "é-accent", "a\0b"])
def test_usernames_that_are_refused(name: str) -> None:
    with pytest.raises(AccessError) as refused:
        validate_username(name)
    assert refused.value.code == "bad_username"


def test_passwords_are_bounded() -> None:
    assert validate_password("p") == "p"
    for bad in ("", "x" * 257, "a\0b"):
        with pytest.raises(AccessError) as refused:
            validate_password(bad)
        assert refused.value.code == "bad_password"


def test_topics_filters_and_what_may_be_granted() -> None:
    assert validate_topic("m2m/plug/live") == "m2m/plug/live"
    assert validate_filter("m2m/+/#") == "m2m/+/#"
    assert validate_grantable("m2m/+/1m") == "m2m/+/1m"
    refusals = [
        (validate_topic, "m2m/+/live"),
        (validate_topic, "m2m/#"),
        (validate_topic, ""),
        (validate_topic, "x" * 257),
        (validate_filter, "m2m/a#"),
        (validate_filter, "m2m/#/live"),
        (validate_filter, "m2m/pl+ug"),
        (validate_grantable, "$SYS/#"),
        (validate_grantable, "+/plug/live"),
        (validate_grantable, "#"),
        (validate_grantable, "/m2m"),
    ]
    for check, topic in refusals:
        with pytest.raises(AccessError) as refused:
            check(topic)
        assert refused.value.code == "bad_topic", topic
