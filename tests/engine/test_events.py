"""`EventFanOut`: listeners hear of an event with what it is about, subscribers each
read their own bounded queue and lose the oldest when they fall behind."""

from __future__ import annotations

import asyncio
import gc

from m2mpay.engine import EventFanOut


def test_listeners_hear_an_event_only_with_what_it_is_about() -> None:
    fanout: EventFanOut[str, int] = EventFanOut()
    heard: list[tuple[str, int]] = []

    def listener(event: str, about: int) -> None:
        heard.append((event, about))

    fanout.add_listener(listener)
    fanout.publish("opened", 1)
    fanout.publish("unrelated", None)
    fanout.remove_listener(listener)
    fanout.remove_listener(listener)  # an unknown listener is ignored
    fanout.publish("closed", 2)
    assert heard == [("opened", 1)]


async def test_a_subscriber_reads_every_event_and_a_slow_one_loses_the_oldest() -> None:
    fanout: EventFanOut[str, int] = EventFanOut()
    events = fanout.events(buffer=2)
    first = asyncio.ensure_future(anext(events))
    await asyncio.sleep(0)  # subscribed now
    fanout.publish("a", None)  # told even without anything it is about
    assert await first == "a"
    for name in ("b", "c", "d"):
        fanout.publish(name, 0)
    assert [await anext(events), await anext(events)] == ["c", "d"]


async def test_a_subscriber_hears_events_published_before_its_first_read() -> None:
    fanout: EventFanOut[str, int] = EventFanOut()
    events = fanout.events(buffer=10)
    fanout.publish("before the first read", None)
    assert await anext(events) == "before the first read"
    await events.aclose()
    fanout.publish("after", None)
    assert len(fanout._subscribers) == 0


def test_a_subscription_dropped_unread_does_not_stay_subscribed() -> None:
    fanout: EventFanOut[str, int] = EventFanOut()
    events = fanout.events(buffer=10)
    assert len(fanout._subscribers) == 1
    del events
    gc.collect()
    assert len(fanout._subscribers) == 0
