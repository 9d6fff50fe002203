"""The node's event stream (Server-Sent Events) as an async iterator.

    async with client.events() as events:
        async for event in events:
            ...

Entering the `async with` returns once the node has answered, and the node
subscribes the stream before it answers: anything that happens after `__aenter__`
returns is in the stream. Leaving it closes the connection. Events are
`{"kind": "channel" | "session" | "device", "t": <event type>, ...fields}` (a device's:
`dev.state` with `device_id`, `name`, `online`, `state`); amounts are
integer strings and ids 0x-hex, as everywhere in the API. An event larger than
`MAX_EVENT_BYTES`, or not a JSON object, raises `MalformedMessage`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any, Final, Self

import httpx
import orjson

from m2mpay.client.base import ApiBase, read_answer, refusal_from
from m2mpay.errors import MalformedMessage, NodeUnreachable

__all__ = ["MAX_EVENT_BYTES", "Event", "EventApi", "EventStream"]

MAX_EVENT_BYTES: Final = 1024 * 1024
"""Largest event (its data lines together); events are a few hundred bytes."""


@dataclass(frozen=True, slots=True)
class Event:
    kind: str  # the SSE event name: `channel`, `session` or `device`
    type: str  # e.g. `ev.opened`, `ev.payment_received`, `sev.stopped`
    data: Mapping[str, Any] = field(hash=False)

    @property
    def channel_id(self) -> str | None:
        value = self.data.get("channel_id")
        return value if isinstance(value, str) else None

    @property
    def session_id(self) -> str | None:
        value = self.data.get("session_id")
        return value if isinstance(value, str) else None


class EventStream:
    """One subscription to `/v1/events`; see the module docstring."""

    def __init__(self, http: httpx.AsyncClient, url: str) -> None:
        self._http = http
        self._url = url
        self._stack = AsyncExitStack()
        self._response: httpx.Response | None = None

    async def __aenter__(self) -> Self:
        # No read timeout: the node sends a comment every 15 s, but a quiet stream
        # is normal and must not end by itself.
        request = self._http.build_request(
            "GET",
            "/v1/events",
            headers={"Accept": "text/event-stream"},
            timeout=httpx.Timeout(10.0, read=None),
        )
        try:
            response = await self._http.send(request, stream=True)
        except httpx.TransportError as exc:
            raise NodeUnreachable(f"GET {self._url}/v1/events: {exc}") from exc
        self._stack.push_async_callback(response.aclose)
        if not response.is_success:
            try:
                raw = await read_answer(response, "GET /v1/events")
            finally:
                await self._stack.aclose()
            raise refusal_from(response.status_code, response.reason_phrase, raw)
        self._response = response
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        self._response = None
        await self._stack.aclose()

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._events()

    async def _events(self) -> AsyncIterator[Event]:
        if self._response is None:
            raise RuntimeError("use the event stream inside `async with`")
        name = ""
        data: list[str] = []
        size = 0
        try:
            async for line in self._response.aiter_lines():
                if not line:  # a blank line ends an event
                    if data:
                        yield _event(name or "message", "\n".join(data))
                    name, data, size = "", [], 0
                    continue
                if line.startswith(":"):  # a comment: the node's keep-alive
                    continue
                key, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if key == "event":
                    name = value
                elif key == "data":
                    size += len(value) + 1
                    if size > MAX_EVENT_BYTES:
                        raise MalformedMessage(f"an event above {MAX_EVENT_BYTES} bytes")
                    data.append(value)
        except httpx.TransportError as exc:
            raise NodeUnreachable(f"the event stream of {self._url} broke: {exc}") from exc


def _event(name: str, text: str) -> Event:
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise MalformedMessage(f"an event that is not JSON: {text[:80]!r}") from None
    if not isinstance(data, dict):
        raise MalformedMessage(f"an event that is not a JSON object: {text[:80]!r}")
    return Event(kind=name, type=str(data.get("t", "")), data=data)


class EventApi(ApiBase):
    def events(self) -> EventStream:
        """Subscribe to the node's channel and session events; see the module docstring."""
        return EventStream(self._http, self.url)
