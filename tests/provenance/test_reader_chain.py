"""The web reader checks a file's anchor proofs against the chain when given a ledger's
JSON-RPC URL (the embedded chain served by `EmbeddedLedgerServer`), in headless Chromium:
a genuine proof is said "checked against the chain"; a forgery that holds offline (the
real head in the forger's own Merkle tree, claiming the genuine block) or a proof of
another chain or contract is refused with the code Python's `verify_anchor` gives it,
nothing shown anchored; a ledger that cannot be reached is said, the offline verdict kept
with its caveat. The page asks the ledger only read-only methods, never with the key."""

from __future__ import annotations

import dataclasses
import json
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page

from m2mpay.ports import free_port
from m2mpay.provenance.anchor_proof import AnchorProof, verify_anchor
from m2mpay.provenance.anchoring import AnchorProblem
from tests.provenance.reader_kit import (
    ANCHORED,
    Served,
    never_verified,
    offline_page,
    settled,
    shows_anchors,
)
from tests.provenance.streams_kit import OTHER

ROOT = Path(__file__).parents[2]
ASKED = {"eth_chainId", "eth_getCode", "eth_blockNumber", "eth_getLogs"}


class Asked:
    """The page, what it reached beyond the two servers, and the JSON-RPC bodies it sent."""

    def __init__(self, page: Page, elsewhere: list[str]) -> None:
        self.page = page
        self.elsewhere = elsewhere
        self.bodies: list[str] = []
        page.on("request", self._sent)

    def _sent(self, request: object) -> None:
        body = getattr(request, "post_data", None)
        if getattr(request, "method", "") == "POST" and body:
            self.bodies.append(body)

    def methods(self) -> set[str]:
        return {json.loads(body)["method"] for body in self.bodies}


@pytest.fixture
async def asked(browser: Browser, served: Served) -> AsyncIterator[Asked]:
    elsewhere: list[str] = []
    page = await offline_page(browser, served.url, elsewhere, also=[served.rpc])
    try:
        yield Asked(page, elsewhere)
    finally:
        await page.context.close()


async def python_says(served: Served, proof: AnchorProof) -> str | None:
    check = await verify_anchor(proof, served.ledger)
    return None if check.problem is None else check.problem.value


async def test_a_genuine_proof_given_the_ledger_by_hand_is_checked_against_the_chain(
    asked: Asked, served: Served
) -> None:
    assert await python_says(served, served.anchored) is None
    page = asked.page
    await page.goto(served.reader)
    await page.get_by_label("Stream id").fill(served.stream.stream_id.hex())
    await page.get_by_label("Where to fetch it").fill(f"{served.url}/tampered/anchored.jsonl")
    await page.get_by_label("Key").fill(served.key.hex())
    await page.get_by_label("Ledger JSON-RPC URL").fill(served.rpc)
    await page.get_by_label("Ledger JSON-RPC URL").press("Enter")
    assert await settled(page) == "verified", await page.locator("#status").inner_text()
    status = await page.locator("#anchor-status").inner_text()
    summary = await page.locator("#anchors").inner_text()
    block = served.anchored.block_number
    assert f"Anchored: {ANCHORED} of" in status
    assert f"in block {block} (tx 0x" in status
    assert "checked against the chain" in status
    assert "not checked" not in status
    assert f"checked against the chain (chain id {served.anchored.chain_id})" in summary
    assert "not checked" not in summary
    cells = page.locator('#records td[data-anchor="anchored"]')
    assert await cells.count() == ANCHORED
    assert await page.locator('#records td[data-chain="checked"]').count() == ANCHORED
    assert (await cells.first.get_attribute("title") or "").endswith(", checked against the chain")
    assert asked.methods() == ASKED
    assert not any(served.key.hex() in body for body in asked.bodies)
    assert asked.elsewhere == []


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("own-tree", "wrong_root"),
        ("other-chain", "wrong_chain"),
        ("other-contract", "wrong_chain"),
    ],
)
async def test_a_proof_the_chain_refutes_fails_the_file_with_pythons_code(
    asked: Asked, served: Served, name: str, code: str
) -> None:
    proof = served.anchored
    forged = {
        "own-tree": served.own_tree,
        "other-chain": dataclasses.replace(proof, chain_id=proof.chain_id + 1),
        "other-contract": dataclasses.replace(proof, anchor=OTHER.address),
    }[name]
    assert await python_says(served, forged) == code  # the reader names what Python names
    page = asked.page
    await page.goto(served.tampered(f"anchor-{name}", served.key, rpc=served.rpc))
    await never_verified(page, code, ANCHORED - 1)
    assert "the chain refutes an anchor proof" in await page.locator("#status").inner_text()
    assert await page.locator("#anchors").inner_text() == (
        "none shown: the chain refutes an anchor proof of the file"
    )
    assert served.rpc in await page.locator("#problem-detail").inner_text()
    assert asked.elsewhere == []


async def test_the_own_tree_forgery_holds_offline_and_only_the_chain_refutes_it(
    asked: Asked, served: Served
) -> None:
    # What the chain check closes: offline the forgery reads as anchored, with the caveat.
    forged = served.own_tree
    assert forged.check_offline()[1] is None
    assert await python_says(served, forged) == "wrong_root"
    page = asked.page
    await page.goto(served.tampered("anchor-own-tree", served.key))
    assert await settled(page) == "verified"
    assert "not checked against the chain" in await page.locator("#anchor-status").inner_text()
    assert asked.bodies == []  # no URL given: no chain asked


async def test_an_unreachable_ledger_is_said_and_the_offline_verdict_keeps_its_caveat(
    browser: Browser, served: Served
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    elsewhere: list[str] = []
    page = await offline_page(browser, served.url, elsewhere, also=[nowhere])
    try:
        await page.goto(served.tampered("anchored", served.key, rpc=nowhere))
        assert await settled(page) == "verified"
        status = await page.locator("#anchor-status").inner_text()
        assert f"could not check against the chain: {nowhere}: eth_chainId:" in status
        assert "checked against the chain." not in status.replace("not checked", "")
        await shows_anchors(page, served, ANCHORED)
        assert await page.locator('#records td[data-chain="checked"]').count() == 0
    finally:
        await page.context.close()
    # Chromium logs the refused connection, and nothing else went wrong.
    assert all("ERR_CONNECTION_REFUSED" in said for said in elsewhere), elsewhere


def test_the_readers_anchor_codes_are_pythons() -> None:
    # Every code the reader may name is one of AnchorProblem's; all but the trusted-submitter
    # list's, which the page does not take.
    script = (
        'import { ANCHOR_PROBLEM_CODES } from "./web/reader/anchor.js";'
        "console.log(JSON.stringify(ANCHOR_PROBLEM_CODES));"
    )
    ran = subprocess.run(
        ["node", "--input-type=module", "-e", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    python = {p.value for p in AnchorProblem} - {AnchorProblem.UNTRUSTED_SUBMITTER.value}
    assert set(json.loads(ran.stdout)) == python
