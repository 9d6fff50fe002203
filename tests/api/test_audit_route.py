"""`POST /v1/audit` over a node's stream store: the signed report as JSON, HTML by
Accept, PDF by format; the token required; bad input refused with the one error shape."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette

from m2mpay.api import Credentials
from m2mpay.api.errors import install_error_handlers
from m2mpay.api.routes_audit import audit_routes
from m2mpay.client import NodeClient
from m2mpay.errors import ApiNotFound
from m2mpay.provenance import MemoryStreamStore
from m2mpay.provenance.audit_html import Wording, signed_report_in_html
from m2mpay.provenance.audit_report import DiscrepancyCode, read_signed_report
from m2mpay.provenance.audit_sources import fetch_from
from m2mpay.provenance.reader_app import reader_mount
from m2mpay.provenance.streams import ProvenanceStream
from tests.api.conftest import ApiFactory
from tests.provenance.audit_kit import CHARGER, START_MS, ValueChain, write_chain

TOKEN = "m2m_audit-token"


async def _m2m() -> Wording:
    return Wording(decimals=18, symbol="M2M")


@dataclass
class Served:
    http: httpx.AsyncClient  # with the token
    chain: ValueChain
    transport: httpx.ASGITransport


@pytest.fixture
async def node() -> AsyncIterator[Served]:
    async with MemoryStreamStore() as store:
        chain = await write_chain(store)
        app = FastAPI()
        install_error_handlers(app)
        credentials = Credentials.for_token(TOKEN, public_reads=True)
        app.include_router(audit_routes(credentials, store, CHARGER, words=_m2m))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://node.test",
            headers={"Authorization": f"Bearer {TOKEN}"},
        ) as http:
            yield Served(http, chain, transport)


async def test_the_report_is_signed_json_by_default(
    node: Served,
) -> None:
    http, chain = node.http, node.chain
    answer = await http.post(
        "/v1/audit",
        json={"stream": "0x" + chain.downstream.stream_id.hex(), "from_ms": START_MS},
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    signed = read_signed_report(answer.content)
    signed.check(CHARGER.address)
    assert signed.report.from_ms == START_MS
    assert [h.units for h in signed.report.hops] == [100, 100]
    assert {d.code for d in signed.report.discrepancies} == {DiscrepancyCode.UNANCHORED}


async def test_html_by_accept_and_pdf_by_format(
    node: Served,
) -> None:
    http, chain = node.http, node.chain
    stream = "0x" + chain.downstream.stream_id.hex()
    page = await http.post("/v1/audit", json={"stream": stream}, headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "0.00002 M2M" in page.text  # the charger's commission, in the node's token
    signed_report_in_html(page.content).check(CHARGER.address)
    pdf = await http.post("/v1/audit", json={"stream": stream, "format": "pdf"})
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-")


async def test_the_sdk_saves_the_page_a_demo_leaves(node: Served, tmp_path: Path) -> None:
    chain = node.chain
    async with NodeClient("http://node.test", TOKEN, transport=node.transport) as client:
        path = await client.save_audit(chain.downstream.stream_id, tmp_path / "audit.html")
        assert path == tmp_path / "audit.html"
        signed_report_in_html(path.read_bytes()).check(CHARGER.address)
        with pytest.raises(ApiNotFound):
            await client.audit("0x" + "cd" * 32)
        with pytest.raises(ValueError, match="a report is"):
            await client.save_audit(chain.downstream.stream_id, tmp_path / "audit.txt")


async def test_refusals(node: Served) -> None:
    http, chain = node.http, node.chain
    stream = "0x" + chain.downstream.stream_id.hex()
    anonymous = await http.post("/v1/audit", json={"stream": stream}, headers={"Authorization": ""})
    assert anonymous.status_code == 401  # the node signs: reads being public is not enough
    unknown = await http.post("/v1/audit", json={"stream": "0x" + "ab" * 32})
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "unknown_stream"
    for body, field in (
        ({"stream": "0x12"}, "stream"),
        ({"stream": stream, "extra": 1}, "extra"),
        ({"stream": stream, "from_ms": 10, "to_ms": 5}, "to_ms"),
        ({"stream": stream, "format": "docx"}, "format"),
        ({"stream": stream, "from_ms": 0, "interval_ms": 1000}, "interval_ms"),
        ({"stream": stream, "keys": {"0x00": "0x00"}}, "keys"),
    ):
        refused = await http.post("/v1/audit", json=body)
        assert refused.status_code == 422, (body, refused.text)
        assert refused.json()["error"]["code"] == "invalid_input"
        assert field in str(refused.json()["error"].get("field")), (body, refused.json())


async def test_upstream_streams_the_store_lacks_are_fetched_from_the_sellers_node() -> None:
    async with MemoryStreamStore() as turbine_store, MemoryStreamStore() as charger_store:
        chain = await write_chain(turbine_store)
        sale = await ProvenanceStream.load(turbine_store, chain.downstream.stream_id)
        await charger_store.add_root(sale.root)  # the charger keeps only its own sale
        await charger_store.append(list(sale.messages))
        turbine_node = httpx.ASGITransport(app=Starlette(routes=[reader_mount(turbine_store)]))
        async with httpx.AsyncClient(transport=turbine_node) as to_turbine:
            fetch = fetch_from(to_turbine, ["http://turbine.test/provenance/streams"])
            app = FastAPI()
            install_error_handlers(app)
            credentials = Credentials.for_token(TOKEN)
            app.include_router(audit_routes(credentials, charger_store, CHARGER, fetch=fetch))
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="http://charger.test",
                headers={"Authorization": f"Bearer {TOKEN}"},
            ) as http:
                answer = await http.post(
                    "/v1/audit", json={"stream": "0x" + chain.downstream.stream_id.hex()}
                )
    assert answer.status_code == 200, answer.text
    report = read_signed_report(answer.content).report
    assert report.chain == (chain.upstream.stream_id, chain.downstream.stream_id)
    assert DiscrepancyCode.BROKEN_LINK not in {d.code for d in report.discrepancies}
    assert report.resellers[0].bought == 100


async def test_the_nodes_api_audits_the_streams_it_keeps_in_its_token(make_api: ApiFactory) -> None:
    api = await make_api(0)
    body = {"stream": "0x" + "ab" * 32}
    refused = await api.http.post("/v1/audit", json=body)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "no_streams"
    async with MemoryStreamStore() as store:
        chain = await write_chain(store)
        api.gateway.streams = store
        stream = "0x" + chain.downstream.stream_id.hex()
        as_json = await api.http.post("/v1/audit", json={"stream": stream})
        page = await api.http.post("/v1/audit", json={"stream": stream, "format": "html"})
        api.gateway.streams = None
    assert as_json.status_code == 200, as_json.text
    signed = read_signed_report(as_json.content)
    signed.check(api.address)  # issued by the node, with its own key
    # The node's chain was asked: the kit's channels are at no hub of it.
    assert signed.report.checks[2].done
    assert DiscrepancyCode.CHANNEL_UNKNOWN in {d.code for d in signed.report.discrepancies}
    assert "0.00002 M2M" in page.text  # the commission in the node's token, 18 decimals
