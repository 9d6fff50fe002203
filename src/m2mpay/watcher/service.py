"""`Watcher`: the watchtower service behind the HTTP API.

It holds, per (channel, party), the newest balance proof the party's peer signed, and
defends the party with it when the channel is closed with a smaller total. The
watcher only ever submits statements the parties signed, from a key of its own that
pays the gas: the hub lets no one but a party close, and accepts a challenge only with
a larger total signed by the party whose total it raises, so the worst a watcher can
do is nothing.

Python entry points take typed values (the API parses JSON into them) and raise the
refusals of `m2mpay.watcher.errors`; a refused request changes nothing. An accepted
update or registration returns only once it is durable.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from typing import Any

from m2mpay.chain.artifacts import load_artifact
from m2mpay.chain.hub import ChannelHub
from m2mpay.chain.ledger import Ledger
from m2mpay.crypto import (
    Address,
    Eip712Domain,
    PrivateKey,
    Signature,
    balance_proof_digest,
    channel_domain,
    recover_signer,
    watch_registration_digest,
)
from m2mpay.errors import ContractError, InvalidSignature
from m2mpay.lifecycle import Startable
from m2mpay.store import Store
from m2mpay.watcher.core import (
    ChannelParams,
    HeldProof,
    Phase,
    proof_refusal,
    registration_refusal,
)
from m2mpay.watcher.duty import ChainDuty, DutyConfig
from m2mpay.watcher.errors import InvalidInput, NotFound, StaleSubmission, Unauthorized
from m2mpay.watcher.journal import Journal
from m2mpay.watcher.state import Watched, WatcherState
from m2mpay.watcher.views import channel_json, info_json

__all__ = ["Watcher", "WatcherConfig"]

log = logging.getLogger("m2mpay.watcher")

WatcherConfig = DutyConfig


def _token_hash(token: str) -> bytes:
    # Tokens are 256 random bits: a plain hash is enough, no slow KDF needed.
    return hashlib.sha256(token.encode()).digest()


class Watcher(Startable):
    """A watchtower for the channels of one ChannelHub.

    `store` is unopened (`open_store(...)`); `start` opens it, rebuilds the state, catches
    up the chain from the durable cursor and starts defending; `stop` lets transactions
    in flight finish, snapshots and closes the store.
    """

    def __init__(
        self,
        ledger: Ledger,
        hub: Address,
        store: Store,
        key: PrivateKey,
        *,
        config: WatcherConfig | None = None,
        snapshot_every: int = 50_000,
    ) -> None:
        self._ledger = ledger
        self._hub = ChannelHub(ledger, hub)
        self._key = key
        self._config = config or WatcherConfig()
        self._journal = Journal(store, snapshot_every=snapshot_every)
        self._state: WatcherState | None = None
        self._duty: ChainDuty | None = None
        self._domain: Eip712Domain | None = None

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def address(self) -> Address:
        """The watcher's own address: it signs and pays for its transactions."""
        return self._key.address

    @property
    def hub(self) -> Address:
        return self._hub.address

    @property
    def ledger(self) -> Ledger:
        return self._ledger

    @property
    def store_location(self) -> str:
        """Where the watcher's state lives, for people (a URL without its password)."""
        return self._journal.location

    @property
    def domain(self) -> Eip712Domain:
        if self._domain is None:
            self._domain = channel_domain(self._ledger.chain_id, self._hub.address)
        return self._domain

    @property
    def state(self) -> WatcherState:
        if self._state is None:
            raise RuntimeError("the watcher is not started")
        return self._state

    @property
    def duty(self) -> ChainDuty:
        if self._duty is None:
            raise RuntimeError("the watcher is not started")
        return self._duty

    async def start(self) -> None:
        code = await self._ledger.code(self._hub.address)
        if not code.startswith(load_artifact("ChannelHub").runtime_bytecode):
            raise ContractError(
                f"{self._hub.address} on {self._ledger.caip2} is not a ChannelHub of this build"
            )
        self._state = await self._journal.open(self._config.start_block)
        self._duty = ChainDuty(
            self._ledger, self._hub, self._key, self._state, self._journal, self._config
        )
        self._duty.start()
        log.info(
            "watcher %s on %s, hub %s, store %s",
            self.address,
            self._ledger.caip2,
            self._hub.address,
            self._journal.location,
        )

    async def wait_caught_up(self) -> None:
        """Return once the chain has been read up to the head seen at start."""
        await self.duty.caught_up.wait()

    async def stop(self, grace_s: float = 10.0) -> None:
        if self._duty is not None:
            await self._duty.stop(grace_s)
            self._duty = None
        await self._journal.close(self._state)
        self._state = None

    # -- registrations and proofs --------------------------------------------------------

    async def register(
        self,
        params: ChannelParams,
        party: Address,
        issued_at: int,
        signature: Signature,
        *,
        now: int | None = None,
    ) -> str:
        """Accept `party`'s signed request to watch its channel; returns its bearer token.

        The token is returned once and kept only as a hash. A newer registration by the
        same party replaces the token (a lost device re-registers); replaying an old one
        is refused, so a captured registration cannot lock the party out.
        """
        state = self.state
        now = int(time.time()) if now is None else now
        refusal = registration_refusal(params, party, issued_at, now)
        if refusal is not None:
            raise InvalidInput(*refusal)
        digest = watch_registration_digest(self.domain, params.id, party, self.address, issued_at)
        signer = self._recover(digest, signature)
        if signer != party:
            raise InvalidInput(
                "wrong_signer",
                f"signed by {signer}, not by {party} for this watcher ({self.address}),"
                f" hub and chain",
                "signature",
            )
        watched = state.channels.get(params.id)
        entry = watched.parties.get(party) if watched is not None else None
        if entry is not None and issued_at <= entry.issued_at:
            raise StaleSubmission(
                "registration_replayed",
                f"a registration issued at {entry.issued_at} is already held; sign a newer one",
                "issued_at",
            )
        token = secrets.token_urlsafe(32)
        watched, record = state.register(params, party, _token_hash(token), issued_at)
        self._journal.append(record)
        if not watched.backfilled:
            self.duty.want_backfill(watched)
        await self._journal.flush()
        return token

    def authorize(self, channel_id: bytes, party: Address, token: str) -> Watched:
        """The registration `token` opens; raises `NotFound` or `Unauthorized`."""
        watched = self.state.channels.get(channel_id)
        entry = watched.parties.get(party) if watched is not None else None
        if watched is None or entry is None:
            raise NotFound(
                "unknown_registration",
                f"{party} has not registered channel 0x{channel_id.hex()} with this watcher",
            )
        if not hmac.compare_digest(_token_hash(token), entry.token_hash):
            raise Unauthorized("wrong_token", "the bearer token is not this registration's")
        return watched

    async def update(
        self,
        channel_id: bytes,
        party: Address,
        token: str,
        transferred: int,
        signature: Signature,
    ) -> HeldProof:
        """Hold `party`'s peer's newer proof; returns once it is durable.

        Cheap refusals come first (token, staleness), then the one signature recovery.
        """
        watched = self.authorize(channel_id, party, token)
        entry = watched.parties[party]
        stale = proof_refusal(entry.proof, transferred)
        if stale is not None:
            raise StaleSubmission(
                "stale_proof", f"transferred {transferred} is {stale}", "transferred"
            )
        peer = watched.params.peer(party)
        signer = self._recover(
            balance_proof_digest(self.domain, channel_id, transferred), signature
        )
        if signer != peer:
            raise InvalidInput(
                "wrong_signer",
                f"the proof is signed by {signer}, not by {party}'s peer {peer}"
                " over this channel, hub and chain",
                "signature",
            )
        proof = HeldProof(transferred, signature)
        self._journal.append(self.state.set_proof(watched, party, proof))
        await self._journal.flush()
        if watched.view.phase is Phase.CLOSING:
            self.duty.replan(watched)  # a proof arriving during a close is used at once
        return proof

    @staticmethod
    def _recover(digest: bytes, signature: Signature) -> Address:
        try:
            return recover_signer(digest, signature)
        except InvalidSignature as exc:
            raise InvalidInput("bad_signature", str(exc), "signature") from None

    # -- what the watcher knows ----------------------------------------------------------

    def info(self) -> dict[str, Any]:
        return info_json(
            address=self.address,
            chain_id=self._ledger.chain_id,
            hub=self._hub.address,
            state=self.state,
            cursor=self._journal.cursor,
        )

    def channel(self, channel_id: bytes) -> dict[str, Any]:
        watched = self.state.channels.get(channel_id)
        if watched is None:
            raise NotFound("unknown_channel", f"channel 0x{channel_id.hex()} is not watched here")
        return channel_json(watched)

    def disputes(self) -> list[dict[str, Any]]:
        return [d.to_json() for d in self.state.disputes.values()]
