"""MQTT names as the broker's administrator checks them: usernames, topics, topic filters.

Matching follows MQTT and Mosquitto's dynamic-security plugin (2.0.x) so that
`MemoryBroker` answers as the real broker does:

- `matches(filter, topic)`: may a message on `topic` pass an ACL on `filter` (publish
  and receive checks): `+` is one level, `#` the rest (and the parent level itself);
  a wildcard first level never matches a `$` topic.
- `covers(acl, subscription)`: may a client subscribe to the filter `subscription`
  under an ACL `acl` (the plugin's `subscribePattern`): each level of the
  subscription must be the same level or fall under a wildcard of the ACL.

A filter the node grants must start with a literal first level that is not a `$`
topic: the plugin's subscribe check lets an ACL of `#` or `+/…` cover `$CONTROL/#`
(only the publish and receive checks exempt `$` topics), so such a grant would let
a client subscribe there.
"""

from __future__ import annotations

import re
from typing import Final

from paho.mqtt.reasoncodes import ReasonCode

from m2mpay.errors import AccessError

__all__ = [
    "MAX_PASSWORD_CHARS",
    "MAX_TOPIC_CHARS",
    "covers",
    "matches",
    "suback_refused",
    "validate_filter",
    "validate_grantable",
    "validate_password",
    "validate_topic",
    "validate_username",
]

_USERNAME: Final = re.compile(r"[A-Za-z0-9_.-]{3,64}")
MAX_TOPIC_CHARS: Final = 256
MAX_PASSWORD_CHARS: Final = 256


def validate_username(username: str) -> str:
    """`username` if it is a name a client may have: 3 to 64 of `A-Z a-z 0-9 _ . -`."""
    if not isinstance(username, str) or _USERNAME.fullmatch(username) is None:
        raise AccessError(
            "bad_username", "a username is 3 to 64 characters of A-Z, a-z, 0-9, '_', '.', '-'"
        )
    return username


def validate_password(password: str) -> str:
    """`password` if a client may log in with it (1 to 256 characters, no NUL)."""
    if (
        not isinstance(password, str)
        or not 1 <= len(password) <= MAX_PASSWORD_CHARS
        or "\0" in password
    ):
        raise AccessError(
            "bad_password", f"a password is 1 to {MAX_PASSWORD_CHARS} characters, without NUL"
        )
    return password


def _check_text(text: str, what: str) -> list[str]:
    if not isinstance(text, str) or not 1 <= len(text) <= MAX_TOPIC_CHARS or "\0" in text:
        raise AccessError(
            "bad_topic", f"a {what} is 1 to {MAX_TOPIC_CHARS} characters, without NUL"
        )
    return text.split("/")


def validate_topic(topic: str) -> str:
    """`topic` if it names one topic (no wildcards), as a publish does."""
    levels = _check_text(topic, "topic")
    if any("+" in level or "#" in level for level in levels):
        raise AccessError("bad_topic", f"{topic!r} is a filter; a topic has no '+' or '#'")
    return topic


def validate_filter(topic_filter: str) -> str:
    """`topic_filter` if it is a well-formed MQTT filter: `+` a whole level, `#` the last."""
    levels = _check_text(topic_filter, "topic filter")
    for index, level in enumerate(levels):
        if ("+" in level and level != "+") or ("#" in level and level != "#"):
            raise AccessError("bad_topic", f"{topic_filter!r}: a wildcard must be a whole level")
        if level == "#" and index != len(levels) - 1:
            raise AccessError("bad_topic", f"{topic_filter!r}: '#' must be the last level")
    return topic_filter


def validate_grantable(topic_filter: str) -> str:
    """`topic_filter` if the node may grant it: a filter whose first level is literal and
    not a `$` topic (see the module docstring)."""
    first = validate_filter(topic_filter).split("/")[0]
    if first in ("+", "#") or first.startswith("$") or first == "":
        raise AccessError(
            "bad_topic",
            f"{topic_filter!r}: a granted filter starts with a literal level, never '$', "
            "'+' or '#'",
        )
    return topic_filter


def matches(topic_filter: str, topic: str) -> bool:
    """Whether a message on `topic` falls under `topic_filter` (MQTT's matching)."""
    wanted = topic_filter.split("/")
    levels = topic.split("/")
    if topic.startswith("$") and wanted[0] in ("+", "#"):
        return False
    for index, part in enumerate(wanted):
        if part == "#":
            return True
        if index >= len(levels):
            return False
        if part != "+" and part != levels[index]:
            return False
    return len(levels) == len(wanted)


def covers(acl: str, subscription: str) -> bool:
    """Whether an ACL filter lets a client subscribe to the filter `subscription`
    (the plugin's `subscribePattern` check)."""
    if acl == "#":
        return True
    acl_levels = acl.split("/")
    sub_levels = subscription.split("/")
    acl_hash = acl_levels[-1] == "#"
    if acl_hash:
        acl_levels = acl_levels[:-1]
    if sub_levels[-1] == "#":
        if not acl_hash:
            return False
        sub_levels = sub_levels[:-1]
    if len(acl_levels) > len(sub_levels) or (len(sub_levels) > len(acl_levels) and not acl_hash):
        return False
    return all(part in ("+", sub_levels[index]) for index, part in enumerate(acl_levels))


def suback_refused(code: int | ReasonCode) -> bool:
    """Whether a SUBACK refused a subscription (0x80 and above; MQTT 3.1.1 and 5)."""
    return (code.value if isinstance(code, ReasonCode) else code) >= 0x80
