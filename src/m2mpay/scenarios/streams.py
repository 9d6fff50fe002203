"""A buyer in a scenario follows its purchase's provenance streams back to the source.

What the buyer's node learned from its seller is in its data dir (`streams-bought.json`,
the keys wrapped for its reader key, which only its node key derives): the stage holds
the demo keystores' passphrase, so it reads them as the buyer's owner would. The stream
files are fetched over HTTP from where each seller said they are, then the chain is
checked (`check_value_chain`).
"""

from __future__ import annotations

import contextlib
import io

import httpx

from m2mpay.crypto.keystore import find_keystore, load_keystore
from m2mpay.provenance.session_chain import BoughtStreams, Hop, check_value_chain
from m2mpay.provenance.session_streams import KnownStream, open_shares, reader_key
from m2mpay.provenance.stream_file import StreamFile, read_stream_file
from m2mpay.scenarios.stage import PASSPHRASE, Actor, ScenarioFailed, until

__all__ = ["follow_streams"]


def _known(buyer: Actor, seller: Actor, session_id: bytes) -> list[KnownStream]:
    given = BoughtStreams(buyer.process.data_dir / "streams-bought.json").load().get(session_id)
    if given is None:
        return []
    keystore = find_keystore(buyer.process.data_dir / "keystore")
    if keystore is None:
        raise ScenarioFailed(f"{buyer.name} has no keystore")
    key = load_keystore(keystore, PASSPHRASE)
    return open_shares(given, seller.address, reader_key(key))


async def _fetch(http: httpx.AsyncClient, known: KnownStream) -> StreamFile:
    answer = await http.get(known.url)
    answer.raise_for_status()
    return read_stream_file(io.BytesIO(answer.content))


async def follow_streams(
    buyer: Actor, seller: Actor, session_id: bytes, hops: int
) -> tuple[list[Hop], str | None]:
    """The streams of `buyer`'s purchase `session_id` from `seller`, `hops` of them,
    fetched once each ends with its receipt (written as its sale stops), and checked."""
    known: list[KnownStream] = []

    async def learned() -> bool:
        nonlocal known
        known = _known(buyer, seller, session_id)
        return len(known) == hops

    await until(learned, f"{buyer.name} to learn {hops} streams of its purchase")
    files: list[StreamFile] = []
    async with httpx.AsyncClient(timeout=30) as http:

        async def ended() -> bool:
            nonlocal files
            files = [await _fetch(http, k) for k in known]
            return check_value_chain(known, files)[1] is None

        with contextlib.suppress(ScenarioFailed):  # checked below, naming what is wrong
            await until(ended, "every stream of the chain to end with its receipt", 30)
    return check_value_chain(known, files)
