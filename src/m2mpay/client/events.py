"""The node's event stream (Server-Sent Events) as an async iterator.

    async with client.events() as events:
        async for event in events:
            ...

Entering the `async with` returns once the node has answered, and the node
subscribes the stream before it answers: anything that happens after `__aenter__`
returns is in the stream. Leaving it closes the connection. Events are
`{"kind": "channel" | "session", "t": <event type>, ...fields}`; amounts are
integer strings and ids 0x-hex, as everywhere in the API.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any, Self

import httpx

from m2mpay.client.base import ApiBase, refusal_of
from m2mpay.errors import MalformedMessage, NodeUnreachable

__all__ = ["Event", "EventApi", "EventStream"]


@dataclass(frozen=True, slots=True)
class Event:
    kind: str  # the SSE event name: `channel` or `session`
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
            await response.aread()
            await self._stack.aclose()
            raise refusal_of(response)
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
        try:
            async for line in self._response.aiter_lines():
                if not line:  # a blank line ends an event
                    if data:
                        yield _event(name or "message", "\n".join(data))
                    name, data = "", []
                    continue
                if line.startswith(":"):  # a comment: the node's keep-alive
                    continue
                key, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if key == "event":
                    name = value
                elif key == "data":
                    data.append(value)
        except httpx.TransportError as exc:
            raise NodeUnreachable(f"the event stream of {self._url} broke: {exc}") from exc


def _event(name: str, text: str) -> Event:
    try:
        data = json.loads(text)
    except ValueError:
        raise MalformedMessage(f"an event that is not JSON: {text[:80]!r}") from None
    if not isinstance(data, dict):
        raise MalformedMessage(f"an event that is not a JSON object: {text[:80]!r}")
    return Event(kind=name, type=str(data.get("t", "")), data=data)


class EventApi(ApiBase):
    def events(self) -> EventStream:
        """Subscribe to the node's channel and session events; see the module docstring."""
        return EventStream(self._http, self.url)
