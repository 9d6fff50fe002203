"""The API's docs as the node serves them, in-process on a real node: `/` leads to the web app,
Swagger UI and its assets come from the node (nothing from elsewhere), the schema
declares the bearer token exactly where the node enforces it, and its examples are
valid bodies. (Rendered in a browser with no network: test_docs_browser.py.)"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel

from m2mpay.api import models, models_devices
from m2mpay.api.auth import BEARER
from m2mpay.api.docs import DOCS_ASSETS, SWAGGER_UI_FILES, install_docs
from tests.api.conftest import TOKEN, ApiFactory

PUBLIC = {
    ("get", "/v1/info"),
    ("get", "/v1/offers"),
    ("get", "/v1/feeds"),
    ("get", "/v1/feeds/{feed_id}"),
    ("get", "/v1/streams/{stream_id}"),
    ("get", "/v1/streams/{stream_id}.jsonl"),
    ("get", "/v1/streams/{stream_id}/messages"),
}
# Operations whose bodies a newcomer reads first: their request and 2xx answers carry examples.
MAIN = [
    ("get", "/v1/info"),
    ("get", "/v1/wallet"),
    ("post", "/v1/wallet/transfers"),
    ("post", "/v1/wallet/faucet"),
    ("post", "/v1/channels"),
    ("get", "/v1/channels"),
    ("get", "/v1/channels/{channel_id}"),
    ("post", "/v1/channels/{channel_id}/payments"),
    ("post", "/v1/channels/{channel_id}/commitments"),
    ("get", "/v1/offers"),
    ("post", "/v1/offers"),
    ("post", "/v1/sessions"),
    ("get", "/v1/sessions"),
    ("get", "/v1/sessions/{session_id}"),
    ("post", "/v1/sessions/{session_id}/stop"),
    ("get", "/v1/sessions/{session_id}/receipt"),
    ("get", "/v1/feeds"),
    ("post", "/v1/feeds"),
    ("post", "/v1/grants"),
    ("get", "/v1/grants"),
]


def _operations(schema: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method, path): operation
        for path, item in schema["paths"].items()
        for method, operation in item.items()
    }


def _resolved(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        name = node["$ref"].removeprefix("#/components/schemas/")
        node = schema["components"]["schemas"][name]
    return node


async def test_the_root_leads_to_the_web_app_and_the_docs_stay_out_of_the_schema(
    make_api: ApiFactory,
) -> None:
    api = await make_api(1)
    response = await api.anonymous.get("/")
    assert response.status_code == 307
    assert response.headers["location"] == "/app/"
    schema = (await api.anonymous.get("/openapi.json")).json()
    assert not {"/", "/docs", "/asyncapi.json", "/redoc"} & set(schema["paths"])
    assert (await api.anonymous.get("/redoc")).status_code == 404  # FastAPI's, from a CDN


async def test_swagger_ui_and_its_assets_come_from_the_node(make_api: ApiFactory) -> None:
    api = await make_api(1)
    page = await api.anonymous.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    linked = re.findall(r"""(?:src|href)="([^"]+)\"""", page.text)
    assert sorted(linked) == sorted(f"/docs/assets/{name}" for name in SWAGGER_UI_FILES)
    assert "://" not in page.text  # nothing from another host: no CDN, no validator
    assert "url: '/openapi.json'" in page.text
    for name in SWAGGER_UI_FILES:
        asset = await api.anonymous.get(f"/docs/assets/{name}")
        assert asset.status_code == 200, name
        assert asset.content == (DOCS_ASSETS / name).read_bytes()
    bundle = await api.anonymous.get("/docs/assets/swagger-ui-bundle.js")
    assert "javascript" in bundle.headers["content-type"]
    assert b"SwaggerUIBundle" in bundle.content
    assert (await api.anonymous.get("/docs/assets/../models.py")).status_code == 404


async def test_without_the_assets_the_docs_say_how_to_get_them(tmp_path: Path) -> None:
    app = FastAPI(docs_url=None, redoc_url=None)
    install_docs(app, assets=tmp_path / "empty")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://node.test"
    ) as http:
        page = await http.get("/docs")
        assert page.status_code == 503
        assert "swagger-ui-bundle.js" in page.text
        assert "make test" in page.text
        assert "swagger-ui-dist" in page.text
        assert (await http.get("/openapi.json")).status_code == 200  # the schema all the same


async def test_the_schema_asks_for_the_token_exactly_where_the_node_does(
    make_api: ApiFactory,
) -> None:
    api = await make_api(1)
    schema = (await api.anonymous.get("/openapi.json")).json()
    assert schema["components"]["securitySchemes"][BEARER] == {
        "type": "http",
        "scheme": "bearer",
        "description": schema["components"]["securitySchemes"][BEARER]["description"],
    }
    assert "M2MPAY_TOKEN" in schema["components"]["securitySchemes"][BEARER]["description"]
    operations = _operations(schema)
    assert len(operations) >= 15
    for (method, path), operation in operations.items():
        if (method, path) in PUBLIC:
            assert "security" not in operation, path
        else:
            assert operation["security"] == [{BEARER: []}], (method, path)
    # What the schema says is what the node does: an operation it marks is refused
    # without the token and answered with it.
    assert (await api.anonymous.get("/v1/wallet")).status_code == 401
    assert (await api.http.get("/v1/wallet")).status_code == 200
    assert (await api.anonymous.get("/v1/offers")).status_code == 200
    assert (await api.anonymous.get("/v1/feeds")).status_code == 200
    assert (await api.anonymous.get("/v1/grants")).status_code == 401


async def test_each_operation_is_listed_once_under_one_tag(make_api: ApiFactory) -> None:
    api = await make_api(1)
    schema = (await api.anonymous.get("/openapi.json")).json()
    tagged = {key: operation.get("tags", []) for key, operation in _operations(schema).items()}
    assert {key: tags for key, tags in tagged.items() if len(tags) != 1} == {}
    assert tagged[("get", "/v1/wallet")] == ["wallet"]
    assert tagged[("get", "/v1/info")] == ["node"]


async def test_with_public_reads_the_token_is_optional_for_reads_only(
    make_api: ApiFactory,
) -> None:
    api = await make_api(1, public_reads=True)
    operations = _operations((await api.anonymous.get("/openapi.json")).json())
    assert operations[("get", "/v1/wallet")]["security"] == [{BEARER: []}, {}]
    assert operations[("post", "/v1/channels")]["security"] == [{BEARER: []}]
    assert operations[("post", "/v1/wallet/faucet")]["security"] == [{BEARER: []}]
    # A stream's QR code holds its key: the owner's, public reads or not.
    for path in ("/v1/streams/{stream_id}/qr.png", "/v1/sessions/{session_id}/qr"):
        assert operations[("get", path)]["security"] == [{BEARER: []}]
    assert (await api.anonymous.get("/v1/wallet")).status_code == 200
    assert (await api.anonymous.post("/v1/wallet/faucet", json={})).status_code == 401


def _example_models() -> list[type[BaseModel]]:
    found = [
        value
        for module in (models, models_devices)
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, BaseModel)
        and value.model_config.get("json_schema_extra")
    ]
    assert len(found) >= 20
    return found


@pytest.mark.parametrize("model", _example_models(), ids=lambda model: model.__name__)
def test_every_example_is_a_valid_body(model: type[BaseModel]) -> None:
    extra = model.model_config.get("json_schema_extra")
    assert isinstance(extra, dict)
    examples = extra["examples"]
    assert isinstance(examples, list)
    assert examples
    for body in examples:
        assert isinstance(body, dict)
        # As JSON, the way a client sends and reads it; what it says is kept as it is.
        parsed = model.model_validate_json(httpx.Response(200, json=body).content)
        dumped = parsed.model_dump(mode="json")
        assert dumped == {**dumped, **body}


async def test_the_main_operations_show_examples_of_what_goes_in_and_comes_out(
    make_api: ApiFactory,
) -> None:
    api = await make_api(1)
    schema = (await api.http.get("/openapi.json")).json()
    operations = _operations(schema)
    for key in MAIN:
        operation = operations[key]
        body = operation.get("requestBody")
        if body is not None:
            request = _resolved(schema, body["content"]["application/json"]["schema"])
            assert request.get("examples"), (key, "request")
        (answer,) = (answer for status, answer in operation["responses"].items() if status < "300")
        response = _resolved(schema, answer["content"]["application/json"]["schema"])
        assert response.get("examples"), (key, "response")
    refused = operations[("post", "/v1/channels")]["responses"]["409"]
    error = _resolved(schema, refused["content"]["application/json"]["schema"])
    assert error["examples"][0]["error"]["code"] == "insufficient_funds"
    assert TOKEN not in str(schema)
