"""The provenance stream routes of the real app over a real node, SQLite stream store and
anchorer on an embedded chain: a stream the node writes is listed (with its session),
shown, paged, exported as a version 2 file whose messages verify with the stream's key
and whose anchor proofs hold on chain, and verified by the node itself; a stream whose
stored message another key signed is reported with its problem code and position; the
QR code the owner gets leads, through the reader page the node serves, to that file and
key; bad ids are 422, unknown ones 404, and who may read what is as documented."""

from __future__ import annotations

import html
import io
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from m2mpay.chain import deploy_anchor
from m2mpay.provenance import (
    AccessMode,
    MeterUnit,
    SessionRecord,
    SqliteStreamStore,
    StreamAnchorer,
    StreamWriter,
    parse_stream_code,
    read_stream_file,
    verify_anchor,
)
from m2mpay.provenance.anchoring import AnchorConfig
from m2mpay.provenance.reader_app import READER_ASSETS
from tests.api.conftest import Api, ApiFactory, Chain
from tests.provenance.qr_kit import png_grey
from tests.provenance.streams_kit import Clock, forge, records
from tests.provenance.test_qr import _in_js

SESSION = bytes([5]) * 32
CHANNEL = bytes([6]) * 32
UNKNOWN = "0x" + "ab" * 32
PUBLIC = AccessMode.PUBLIC
MANUAL = AnchorConfig(batch_records=10**6, batch_interval_s=3600.0)


@dataclass
class Served:
    api: Api
    writer: StreamWriter  # restricted, by the node's own key, 7 messages, all anchored
    anchorer: StreamAnchorer
    store: SqliteStreamStore


@pytest.fixture
async def served(chain: Chain, make_api: ApiFactory, tmp_path: Path) -> AsyncIterator[Served]:
    anchor, _ = await deploy_anchor(chain.ledger, chain.keys[0])
    async with SqliteStreamStore(tmp_path / "streams.db") as store:
        anchorer = StreamAnchorer(store, anchor=anchor, signer=chain.keys[1], config=MANUAL)
        await anchorer.start()
        try:
            api = await make_api(1, streams=store, stream_anchorer=anchorer)
            writer = await StreamWriter.create(
                store, api.node.key, purpose="charging session", now_ms=Clock()
            )
            session = SessionRecord(
                SESSION,
                CHANNEL,
                chain.ledger.chain_id,
                chain.hub.address,
                api.address,
                chain.keys[2].address,
                MeterUnit.WH,
            )
            await writer.append(session)
            await writer.append_many(records(6))
            await anchorer.flush()
            yield Served(api, writer, anchorer, store)
        finally:
            await anchorer.stop()


def _id(writer: StreamWriter) -> str:
    return "0x" + writer.stream_id.hex()


async def test_a_stream_is_listed_shown_paged_exported_and_verified(
    served: Served, chain: Chain
) -> None:
    http, writer = served.api.http, served.writer
    listed = (await http.get("/v1/streams")).json()["streams"]
    assert [s["stream_id"] for s in listed] == [_id(writer)]
    (summary,) = listed
    assert summary["session"] == "0x" + SESSION.hex()
    assert summary["author"] == served.api.address.checksum
    assert (summary["access"], summary["count"], summary["anchored_to"]) == ("restricted", 7, 6)
    assert summary["head"] == "0x" + writer.head.hash.hex()  # type: ignore[union-attr]
    by_session = await http.get("/v1/streams", params={"session": "0x" + SESSION.hex()})
    assert [s["stream_id"] for s in by_session.json()["streams"]] == [_id(writer)]
    other = await http.get("/v1/streams", params={"session": UNKNOWN})
    assert other.json()["streams"] == []

    shown = (await http.get(f"/v1/streams/{_id(writer)}")).json()
    assert shown["root"] == "0x" + writer.root.raw.hex()
    (anchor,) = shown["anchors"]
    assert anchor["anchored"]
    assert anchor["head_index"] == 6
    assert anchor["block_number"] > 0
    assert shown["file"] == f"/v1/streams/{_id(writer)}.jsonl"

    first = (await http.get(f"/v1/streams/{_id(writer)}/messages", params={"limit": 4})).json()
    assert [m["index"] for m in first["messages"]] == [0, 1, 2, 3]
    assert first["next"] == 4
    rest = await http.get(f"/v1/streams/{_id(writer)}/messages", params={"start": 4})
    assert [m["index"] for m in rest.json()["messages"]] == [4, 5, 6]
    assert rest.json()["next"] is None
    assert all(m["sealed"] for m in first["messages"])

    served_file = await served.api.anonymous.get(shown["file"])
    assert served_file.status_code == 200
    assert served_file.headers["content-type"] == "application/x-ndjson"
    assert served_file.headers["access-control-allow-origin"] == "*"
    read = read_stream_file(io.BytesIO(served_file.content))
    verified = read.verify(writer.key())
    assert verified.ok
    assert len(verified.messages) == 7
    assert isinstance(verified.records[0], SessionRecord)
    assert len(read.anchors) == 1
    proof = read.anchor_proof(0)
    assert proof is not None
    assert (await verify_anchor(proof, chain.ledger)).ok

    report = (await http.get(f"/v1/streams/{_id(writer)}/verify")).json()
    assert report["ok"]
    assert report["payloads_checked"]
    assert (report["verified"], report["count"], report["problem"]) == (7, 7, None)
    assert [(a["head_index"], a["ok"]) for a in report["anchors"]] == [(6, True)]


async def test_a_message_signed_by_another_key_is_named_where_it_is(
    served: Served, chain: Chain
) -> None:
    writer = served.writer
    head = writer.head
    assert head is not None
    # The store checks continuity, not signatures: what an import skipped, say.
    await served.store.append([forge(chain.keys[3], writer.stream_id, 7, head.hash)])
    report = (await served.api.http.get(f"/v1/streams/{_id(writer)}/verify")).json()
    assert not report["ok"]
    assert report["problem"]["code"] == "wrong_author"
    assert (report["problem"]["position"], report["problem"]["index"]) == (7, 7)
    assert (report["verified"], report["count"]) == (7, 8)


async def test_the_owners_qr_code_leads_to_the_reader_the_file_and_the_key(
    served: Served,
) -> None:
    api, writer = served.api, served.writer
    png = await api.http.get(f"/v1/streams/{_id(writer)}/qr.png")
    assert png.status_code == 200
    assert png.headers["content-type"] == "image/png"
    assert png.headers["cache-control"] == "no-store"
    width, height, rows = png_grey(png.content)
    (text,) = _in_js([{"pixels": b"".join(rows).hex(), "width": width, "height": height}])
    assert text.startswith("http://node.test/provenance/reader/#")
    code = parse_stream_code(text)
    assert (code.stream_id, code.key) == (writer.stream_id, writer.key())
    fetched = await api.anonymous.get(code.src)
    assert read_stream_file(io.BytesIO(fetched.content)).verify(code.key).ok

    assert (READER_ASSETS / "reader.js").is_file(), "run make test: it builds the reader's assets"
    reader = await api.anonymous.get("/provenance/reader/")
    assert reader.status_code == 200
    assert "reader.js" in reader.text
    # One file per stream: the API's, with its proofs; the reader's mount serves only the page.
    assert code.src.startswith("http://node.test/v1/streams/")
    beside = await api.anonymous.get(f"/provenance/streams/{_id(writer)}.jsonl")
    assert beside.status_code == 404

    svg = await api.http.get(f"/v1/streams/{_id(writer)}/qr.svg")
    assert svg.headers["content-type"] == "image/svg+xml"
    assert b"<svg" in svg.content
    page = await api.http.get(f"/v1/sessions/0x{SESSION.hex()}/qr")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "data:image/svg+xml;base64," in page.text
    assert _id(writer) in page.text
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert code.rpc is None  # the node names no ledger unless it has one to name
    api.gateway.public_rpc = "http://127.0.0.1:8545"
    named = await api.http.get(f"/v1/sessions/0x{SESSION.hex()}/qr")
    link = re.search(r'href="([^"]+)"', named.text)
    assert link is not None
    assert parse_stream_code(html.unescape(link.group(1))).rpc == "http://127.0.0.1:8545"
    missing = await api.http.get(f"/v1/sessions/{UNKNOWN}/qr")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "unknown_stream"


async def test_the_reader_link_is_the_qr_codes_url_for_the_owner_only(
    served: Served, make_api: ApiFactory
) -> None:
    """What the web app links to: the URL the QR code holds, a restricted stream's key
    in its fragment only; a public stream's without a key; never without the token."""
    api, writer = served.api, served.writer
    answer = await api.http.get(f"/v1/streams/{_id(writer)}/reader")
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["referrer-policy"] == "no-referrer"
    link = answer.json()
    assert (link["stream_id"], link["keyed"]) == (_id(writer), True)
    page, fragment = link["url"].split("#", 1)
    assert page == "http://node.test/provenance/reader/"
    assert writer.key().hex() not in page  # the key after the '#' only
    assert f"key={writer.key().hex()}" in fragment
    code = parse_stream_code(link["url"])
    assert (code.stream_id, code.key) == (writer.stream_id, writer.key())
    png = await api.http.get(f"/v1/streams/{_id(writer)}/qr.png")
    width, height, rows = png_grey(png.content)
    (text,) = _in_js([{"pixels": b"".join(rows).hex(), "width": width, "height": height}])
    assert text == link["url"]

    public = await StreamWriter.create(served.store, api.node.key, purpose="lamp", access=PUBLIC)
    await public.append_many(records(1))
    plain = (await api.http.get(f"/v1/streams/{_id(public)}/reader")).json()
    assert plain["keyed"] is False
    assert parse_stream_code(plain["url"]).key is None

    assert (await api.anonymous.get(f"/v1/streams/{_id(writer)}/reader")).status_code == 401
    open_node = await make_api(2, public_reads=True, streams=served.store)
    refused = await open_node.anonymous.get(f"/v1/streams/{_id(writer)}/reader")
    assert refused.status_code == 401


async def test_a_public_stream_or_one_of_subscribers_has_no_key_in_its_code(
    served: Served,
) -> None:
    node_key = served.api.node.key
    writer = await StreamWriter.create(served.store, node_key, purpose="lamp", access=PUBLIC)
    await writer.append_many(records(2))
    subscribed = await StreamWriter.create(
        served.store, node_key, purpose="feed", access=AccessMode.SUBSCRIBERS
    )
    await subscribed.append_many(records(1))
    cases = []
    for stream in (writer, subscribed):
        png = await served.api.http.get(f"/v1/streams/{_id(stream)}/qr.png")
        width, height, rows = png_grey(png.content)
        cases.append({"pixels": b"".join(rows).hex(), "width": width, "height": height})
    texts = _in_js(cases)
    assert [parse_stream_code(text).key for text in texts] == [None, None]
    shown = (await served.api.anonymous.get(f"/v1/streams/{_id(writer)}/messages")).json()
    assert [m["sealed"] for m in shown["messages"]] == [False, False]


@pytest.mark.parametrize(
    "suffix", ["", ".jsonl", "/messages", "/verify", "/qr.svg", "/qr.png", "/reader"]
)
async def test_bad_ids_are_422_and_unknown_ones_404(served: Served, suffix: str) -> None:
    http = served.api.http
    for bad in ("0x1234", "ab" * 32, "0x" + "zz" * 32):
        answer = await http.get(f"/v1/streams/{bad}{suffix}")
        assert answer.status_code in (404, 422), answer.text  # 404: no route by that name
        if answer.status_code == 422:
            assert answer.json()["error"]["field"] == "stream_id"
    unknown = await http.get(f"/v1/streams/{UNKNOWN}{suffix}")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "unknown_stream"


async def test_bad_queries_are_422_naming_the_field(served: Served) -> None:
    http, stream = served.api.http, _id(served.writer)
    for path, params, field in [
        ("/v1/streams", {"author": "0x12"}, "author"),
        ("/v1/streams", {"session": "0x12"}, "session"),
        ("/v1/streams", {"limit": "0"}, "limit"),
        (f"/v1/streams/{stream}/messages", {"start": "-1"}, "start"),
        (f"/v1/streams/{stream}/messages", {"limit": "1001"}, "limit"),
    ]:
        answer = await http.get(path, params=params)
        assert answer.status_code == 422, (path, params)
        assert answer.json()["error"]["field"] == field


async def test_by_id_is_public_the_listing_a_read_and_the_qr_codes_the_owners(
    served: Served, make_api: ApiFactory
) -> None:
    anonymous, stream = served.api.anonymous, _id(served.writer)
    for path in ("", ".jsonl", "/messages"):
        assert (await anonymous.get(f"/v1/streams/{stream}{path}")).status_code == 200
    assert (await anonymous.get("/v1/streams")).status_code == 401
    assert (await anonymous.get(f"/v1/streams/{stream}/verify")).status_code == 401
    device = "/v1/devices/0x" + "ab" * 20 + "/qr"
    for path in (f"/v1/streams/{stream}/qr.svg", f"/v1/sessions/0x{SESSION.hex()}/qr", device):
        assert (await anonymous.get(path)).status_code == 401
    # A device that sold nothing here has no stream to show (its sales: tests/scenarios).
    unsold = await served.api.http.get(device)
    assert (unsold.status_code, unsold.json()["error"]["code"]) == (404, "no_sale")
    open_node = await make_api(2, public_reads=True, streams=served.store)
    assert (await open_node.anonymous.get("/v1/streams")).status_code == 200
    assert (await open_node.anonymous.get(f"/v1/streams/{stream}/verify")).status_code == 200
    # Public reads never hand out a stream's key.
    assert (await open_node.anonymous.get(f"/v1/streams/{stream}/qr.png")).status_code == 401


async def test_a_node_without_streams_says_so(make_api: ApiFactory) -> None:
    api = await make_api(1)
    answer = await api.http.get("/v1/streams")
    assert answer.status_code == 409
    assert answer.json()["error"]["code"] == "no_streams"
    assert (await api.anonymous.get("/provenance/reader/")).status_code == 404
