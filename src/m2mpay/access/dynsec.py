"""`DynsecBroker`: the `Broker` on Mosquitto's dynamic-security plugin (2.0.x).

The node administers the broker over MQTT: commands go to
`$CONTROL/dynamic-security/v1` (several in one message where it saves a round trip),
answers come back on `…/v1/response`, each matched to its request by the
`correlationData` the plugin echoes; every call is bounded by a timeout, and the
administrator's connection is made again when it drops (the calls in flight then
fail with `broker_unreachable`: the caller retries; allow and revoke are idempotent).

How the ACLs are laid out, and why (measured on Mosquitto 2.0.11, read in its source):

- Default access denies `subscribe`, `publishClientSend` and `publishClientReceive`
  (the plugin allows receiving by default: a revoked client with a persistent session
  would still get what it subscribed to). The plugin checks `publishClientReceive` on
  every delivery, so a revoke stops messages published after it, to connected
  clients and offline persistent sessions alike, without touching subscriptions.
  Mosquitto also checks again what it queued for an offline session when it comes
  back: messages queued while the client could read, but not delivered before its
  access ended, are dropped then. A subscription refused while the client could not
  read stays refused: it subscribes again once allowed.
- Each client has a role of its own, `m2mpay-client-<username>`, given at creation with
  the shared `m2mpay-public` role (the public filters; the anonymous group has it too).
- A grant changes the client's role with `modifyRole`, which replaces the role's whole
  ACL list at once and disconnects no one. `addRoleACL` and `removeRoleACL` are not
  used: they disconnect every client holding the role (and so do `addClientRole`,
  `removeClientRole`, `addGroupClient`), which would cut a paying reader off at each
  renewal and lose what is published while it reconnects. (On 2.0.11 they do so only
  for clients the broker loaded from its file: one created with its roles inline is
  linked to them at the next restart, so a test must restart the broker to tell the
  two apart; `tests/access/test_mosquitto_clients.py` does.) Mosquitto's development
  branch (2.1) makes `modifyRole` disconnect too; this layout is for the 2.0.x that
  Debian ships.
- Because `modifyRole` sends the whole list, the node keeps each client's list (read
  once from `getRole`) and changes one client at a time: the node must be the broker's
  only administrator.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import secrets
import socket
from collections.abc import Iterable, Sequence
from typing import Any, Final

import aiomqtt

from m2mpay.access.broker import Broker, TopicAccess, check_new_client, check_public
from m2mpay.access.mosquitto import BrokerAddress
from m2mpay.access.topics import suback_refused, validate_filter, validate_username
from m2mpay.errors import AccessError
from m2mpay.lifecycle import cancel_and_wait, raise_if_cancelling

__all__ = ["ANONYMOUS_GROUP", "CLIENT_ROLE_PREFIX", "PUBLIC_ROLE", "DynsecBroker", "role_of"]

_log = logging.getLogger(__name__)

CONTROL_TOPIC: Final = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC: Final = CONTROL_TOPIC + "/response"
CLIENT_ROLE_PREFIX: Final = "m2mpay-client-"
PUBLIC_ROLE: Final = "m2mpay-public"
ANONYMOUS_GROUP: Final = "m2mpay-anonymous"

Command = dict[str, Any]
Response = dict[str, Any]


def role_of(username: str) -> str:
    return CLIENT_ROLE_PREFIX + username


def acls_of(accesses: Iterable[TopicAccess]) -> list[dict[str, Any]]:
    """A role's ACL list for these accesses: read is subscribe and receive, write publish."""
    acls: list[dict[str, Any]] = []
    for access in sorted(accesses, key=lambda a: a.topic):
        if access.read:
            acls.append({"acltype": "subscribePattern", "topic": access.topic, "allow": True})
            acls.append({"acltype": "publishClientReceive", "topic": access.topic, "allow": True})
        if access.write:
            acls.append({"acltype": "publishClientSend", "topic": access.topic, "allow": True})
    return acls


def accesses_of(acls: Iterable[dict[str, Any]]) -> dict[str, TopicAccess]:
    """The accesses a role's ACL list gives, filter by filter."""
    reads: set[str] = set()
    writes: set[str] = set()
    for acl in acls:
        if acl.get("allow") is not True:
            continue
        if acl.get("acltype") == "publishClientReceive":
            reads.add(str(acl["topic"]))
        elif acl.get("acltype") == "publishClientSend":
            writes.add(str(acl["topic"]))
    return {topic: TopicAccess(topic, topic in reads, topic in writes) for topic in reads | writes}


def _failure(response: Response) -> AccessError:
    error = str(response.get("error"))
    command = str(response.get("command"))
    if error == "Client already exists":
        return AccessError("name_taken", "a client with this username exists")
    if error == "Client not found":
        return AccessError("unknown_client", "no such client on the broker")
    return AccessError("broker_refused", f"the broker refused {command}: {error}")


def _ok(response: Response, *tolerated: str) -> bool:
    """True if the command succeeded, False if it failed with a tolerated error."""
    error = response.get("error")
    if error is None:
        return True
    if error in tolerated:
        return False
    raise _failure(response)


class DynsecBroker(Broker):
    """The node's `Broker` on Mosquitto's dynamic-security plugin; see the module docstring.

    `timeout` bounds each call (reaching the broker included); `reconnect_delay` is the
    pause before the administrator's connection is made again after it dropped.
    """

    def __init__(
        self, address: BrokerAddress, *, timeout: float = 5.0, reconnect_delay: float = 0.2
    ) -> None:
        self._address = address
        self._timeout = timeout
        self._reconnect_delay = reconnect_delay
        self._identifier = f"m2mpay-admin-{secrets.token_hex(6)}"
        self._ids = itertools.count(1)
        self._pending: dict[str, asyncio.Future[Response]] = {}
        self._client: aiomqtt.Client | None = None
        self._connected = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._last_failure = "not connected yet"
        self._serving = False
        self._held: dict[str, dict[str, TopicAccess]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    @property
    def address(self) -> BrokerAddress:
        return self._address

    # -- the administrator's connection -----------------------------------------------

    async def start(self) -> None:
        if self._runner is not None:
            return
        self._runner = asyncio.ensure_future(self._run())
        try:
            async with asyncio.timeout(self._timeout):
                await self._connected.wait()
        except TimeoutError:
            await self.stop()
            raise AccessError(
                "broker_unreachable",
                f"cannot administer the broker at {self._address.url}: {self._last_failure}",
            ) from None

    async def stop(self) -> None:
        await cancel_and_wait(self._runner)
        self._runner = None
        self._fail_pending("the broker's administrator stopped")

    async def _run(self) -> None:
        while True:
            try:
                await self._serve()
            except aiomqtt.MqttError as exc:
                raise_if_cancelling()
                self._failed(str(exc))
            finally:
                self._client = None
                self._connected.clear()
                self._fail_pending(f"lost the broker at {self._address.url}")
            await asyncio.sleep(self._reconnect_delay)

    async def _serve(self) -> None:
        async with aiomqtt.Client(
            self._address.host,
            self._address.port,
            identifier=self._identifier,
            username=self._address.admin_username,
            password=self._address.admin_password,
            clean_session=True,
            timeout=self._timeout,
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
        ) as client:
            client.pending_calls_threshold = 1_000
            granted = await client.subscribe(RESPONSE_TOPIC, qos=1)
            if any(suback_refused(code) for code in granted):
                self._failed(f"{self._address.admin_username!r} may not read {RESPONSE_TOPIC}")
                return
            self._client = client
            self._connected.set()
            self._serving = True
            async for message in client.messages:
                self._on_response(message.payload)

    def _failed(self, reason: str) -> None:
        self._last_failure = reason
        if self._serving:  # said once when a connection is lost, not at every retry
            _log.warning("lost the broker at %s: %s; reconnecting", self._address.url, reason)
        self._serving = False

    def _on_response(self, payload: object) -> None:
        try:
            responses = json.loads(payload)["responses"]  # type: ignore[arg-type]
        except (TypeError, ValueError, KeyError):
            _log.warning("an answer of the broker that is not dynsec JSON was ignored")
            return
        for response in responses if isinstance(responses, list) else []:
            if not isinstance(response, dict):
                continue
            waiting = self._pending.get(str(response.get("correlationData")))
            if waiting is not None and not waiting.done():
                waiting.set_result(response)

    def _fail_pending(self, reason: str) -> None:
        for waiting in self._pending.values():
            if not waiting.done():
                waiting.set_exception(AccessError("broker_unreachable", reason))

    async def _call(self, *commands: Command) -> list[Response]:
        """Send `commands` in one message; their answers, in order."""
        loop = asyncio.get_running_loop()
        ids = [f"{self._identifier}-{next(self._ids)}" for _ in commands]
        answers: list[asyncio.Future[Response]] = []
        for request_id in ids:
            answers.append(loop.create_future())
            self._pending[request_id] = answers[-1]
        body = json.dumps(
            {
                "commands": [
                    {**command, "correlationData": request_id}
                    for command, request_id in zip(commands, ids, strict=True)
                ]
            }
        )
        try:
            async with asyncio.timeout(self._timeout):
                while (client := self._client) is None:
                    await self._connected.wait()
                await client.publish(CONTROL_TOPIC, body, qos=1)
                return [await answer for answer in answers]
        except TimeoutError:
            if self._client is None:
                raise AccessError(
                    "broker_unreachable",
                    f"cannot reach the broker at {self._address.url}: {self._last_failure}",
                ) from None
            raise AccessError(
                "broker_timeout",
                f"the broker at {self._address.url} did not answer within {self._timeout:g} s",
            ) from None
        except aiomqtt.MqttError as exc:
            raise AccessError("broker_unreachable", f"{self._address.url}: {exc}") from None
        finally:
            for request_id, answer in zip(ids, answers, strict=True):
                self._pending.pop(request_id, None)
                if answer.done() and not answer.cancelled():
                    answer.exception()  # a lost connection fails them all; it is raised once

    async def _ask(self, command: Command) -> Response:
        (response,) = await self._call(command)
        return response

    # -- the Broker -------------------------------------------------------------------

    async def prepare(self) -> None:
        defaults, public, anonymous = await self._call(
            {
                "command": "setDefaultACLAccess",
                "acls": [
                    {"acltype": "publishClientSend", "allow": False},
                    {"acltype": "publishClientReceive", "allow": False},
                    {"acltype": "subscribe", "allow": False},
                    {"acltype": "unsubscribe", "allow": True},
                ],
            },
            {"command": "createRole", "rolename": PUBLIC_ROLE},
            {"command": "getAnonymousGroup"},
        )
        _ok(defaults)
        _ok(public, "Role already exists")
        group = str(anonymous.get("data", {}).get("group", {}).get("groupname") or "")
        if not group:
            # A broker with no anonymous group: ours. One that has one (a broker we were
            # given) keeps it, and its anonymous clients get our public role besides.
            group = ANONYMOUS_GROUP
            created, chosen = await self._call(
                {"command": "createGroup", "groupname": group},
                {"command": "setAnonymousGroup", "groupname": group},
            )
            _ok(created, "Group already exists")
            _ok(chosen)
        found = await self._ask({"command": "getGroup", "groupname": group})
        _ok(found)
        roles = found.get("data", {}).get("group", {}).get("roles", [])
        if not any(role.get("rolename") == PUBLIC_ROLE for role in roles):
            _ok(
                await self._ask(
                    {"command": "addGroupRole", "groupname": group, "rolename": PUBLIC_ROLE}
                ),
                "Group is already in this role",
            )

    async def set_public(self, topics: Sequence[str]) -> None:
        public = check_public(topics)
        acls = acls_of(TopicAccess(topic, read=True, write=False) for topic in public)
        _ok(await self._ask({"command": "modifyRole", "rolename": PUBLIC_ROLE, "acls": acls}))

    async def public(self) -> frozenset[str]:
        found = await self._ask({"command": "getRole", "rolename": PUBLIC_ROLE})
        _ok(found)
        return frozenset(accesses_of(found["data"]["role"].get("acls", [])))

    async def add_client(self, username: str, password: str) -> None:
        check_new_client(username, password)
        self._refuse_admin(username, "name_taken")
        async with self._lock(username):
            role, client = await self._call(
                {"command": "createRole", "rolename": role_of(username)},
                {
                    "command": "createClient",
                    "username": username,
                    "password": password,
                    "roles": [
                        {"rolename": role_of(username), "priority": 1},
                        {"rolename": PUBLIC_ROLE, "priority": 0},
                    ],
                },
            )
            role_made = _ok(role, "Role already exists")
            if client.get("error") is not None:
                if role_made:
                    await self._ask({"command": "deleteRole", "rolename": role_of(username)})
                raise _failure(client)
            self._held[username] = {}
            if not role_made:
                # A role left by an add that stopped half-way must give the new client nothing.
                await self._set_role(username, {})

    async def remove_client(self, username: str) -> None:
        validate_username(username)
        self._refuse_admin(username, "unknown_client")
        async with self._lock(username):
            found = await self._ask({"command": "getClient", "username": username})
            if _ok(found, "Client not found"):
                roles = found["data"]["client"].get("roles", [])
                if not any(role.get("rolename") == role_of(username) for role in roles):
                    raise AccessError("unknown_client", f"{username!r} is not one of the node's")
                _ok(
                    await self._ask({"command": "deleteClient", "username": username}),
                    "Client not found",
                )
            # The role goes after its client (deleting it first would disconnect the client
            # without removing it); a role left by a half-done add goes too.
            _ok(
                await self._ask({"command": "deleteRole", "rolename": role_of(username)}),
                "Role not found",
            )
            self._held.pop(username, None)

    async def allow(self, username: str, access: TopicAccess) -> None:
        validate_username(username)
        async with self._lock(username):
            held = await self._held_by(username)
            if held.get(access.topic) != access:
                await self._set_role(username, {**held, access.topic: access})

    async def revoke(self, username: str, topic: str) -> None:
        validate_username(username)
        validate_filter(topic)
        async with self._lock(username):
            held = await self._held_by(username)
            if topic in held:
                await self._set_role(username, {k: v for k, v in held.items() if k != topic})

    async def clients(self) -> frozenset[str]:
        return frozenset(await self._listed(verbose=False))

    async def accesses(self) -> dict[str, frozenset[TopicAccess]]:
        # What the broker's roles hold now, not the lists kept for `modifyRole`.
        listed = (await self._listed(verbose=True)).items()
        return {
            name: frozenset(accesses_of(role.get("acls", [])).values()) for name, role in listed
        }

    async def access_of(self, username: str) -> frozenset[TopicAccess]:
        validate_username(username)
        async with self._lock(username):
            return frozenset((await self._held_by(username)).values())

    async def _listed(self, *, verbose: bool) -> dict[str, dict[str, Any]]:
        """The node's clients (with a role of ours; not the administrator), each with its
        role's entry in `listRoles` (with its ACLs if `verbose`)."""
        listed, roles = await self._call(
            {"command": "listClients", "verbose": False},
            {"command": "listRoles", "verbose": verbose},
        )
        _ok(listed)
        _ok(roles)
        names = {_name(entry, "username") for entry in listed["data"]["clients"]}
        by_role = {
            _name(e, "rolename"): e if isinstance(e, dict) else {} for e in roles["data"]["roles"]
        }
        mine = names - {self._address.admin_username}
        return {name: by_role[role_of(name)] for name in mine if role_of(name) in by_role}

    # -- a client's role --------------------------------------------------------------

    def _refuse_admin(self, username: str, code: str) -> None:
        if username == self._address.admin_username:
            raise AccessError(code, f"{username!r} is the broker's administrator")

    def _lock(self, username: str) -> asyncio.Lock:
        return self._locks.setdefault(username, asyncio.Lock())

    async def _held_by(self, username: str) -> dict[str, TopicAccess]:
        held = self._held.get(username)
        if held is None:
            found = await self._ask({"command": "getRole", "rolename": role_of(username)})
            if not _ok(found, "Role not found"):
                raise AccessError("unknown_client", f"no client named {username!r}")
            held = accesses_of(found["data"]["role"].get("acls", []))
            self._held[username] = held
        return held

    async def _set_role(self, username: str, held: dict[str, TopicAccess]) -> None:
        # If the answer is lost, what the role holds is unknown: read it again next time.
        self._held.pop(username, None)
        answer = await self._ask(
            {"command": "modifyRole", "rolename": role_of(username), "acls": acls_of(held.values())}
        )
        if not _ok(answer, "Role does not exist"):
            raise AccessError("unknown_client", f"no client named {username!r}")
        self._held[username] = held


def _name(entry: object, key: str) -> str:
    """A name in a list answer: a plain string, or an object's `key` (verbose answers)."""
    if isinstance(entry, dict):
        return str(entry.get(key, ""))
    return str(entry)
