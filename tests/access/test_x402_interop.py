"""Interoperability with the official `x402` package (PyPI, pinned in the dev extras).

Its client (httpx transport, EVM `exact` signer over an eth-account key) pays our `exact`
paywall on the embedded chain, unchanged; our `X402Payer` pays a FastAPI server built
with its middleware, whose facilitator (its own classes, a web3 signer) runs here
against Anvil with our token (EIP-3009) as the asset; each side reads the other's
headers (base64 JSON, CAIP-2 networks, integer amount strings) and both refuse a bad
authorization with the same reason.

The package is imported by this module only: it declares nest-asyncio, which patches
asyncio globally once applied, so a test checks in a fresh interpreter that importing
what is used here applies nothing.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from eth_account import Account
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from x402 import x402Client, x402Facilitator, x402ResourceServer
from x402.http import PaymentOption, RouteConfig, x402HTTPClient
from x402.http.clients import x402HttpxClient
from x402.http.middleware.fastapi import payment_middleware
from x402.http.utils import (
    decode_payment_required_header,
    decode_payment_signature_header,
    encode_payment_signature_header,
)
from x402.mechanisms.evm.constants import (
    ERR_INSUFFICIENT_BALANCE,
    ERR_NONCE_ALREADY_USED,
    ERR_TRANSACTION_SIMULATION_FAILED,
)
from x402.mechanisms.evm.exact import (
    register_exact_evm_client,
    register_exact_evm_facilitator,
    register_exact_evm_server,
)
from x402.mechanisms.evm.signers import EthAccountSigner, FacilitatorWeb3Signer
from x402.schemas import AssetAmount
from x402.schemas import PaymentRequirements as TheirRequirements

from m2mpay.access.exact import ExactEvm
from m2mpay.access.nonce_book import NonceBook
from m2mpay.access.x402_wire import (
    PaymentPayload,
    PaymentRefused,
    PaymentRequired,
    SettleResponse,
    check_exact,
    decode_header,
)
from m2mpay.asgi import AsgiServer
from m2mpay.chain import AnvilNode, RpcLedger, dev_keys
from m2mpay.chain.deploy import deploy_contracts
from m2mpay.chain.ledger import Ledger
from m2mpay.chain.token import TokenContract
from m2mpay.client.x402 import OfferedPayment, X402Payer, read_payment_required
from m2mpay.crypto import Address, PrivateKey
from tests.access.paywall_rig import BODY, PRICE, UNIT, Rig, paywall_rig

_USED = (
    "x402",
    "x402.http",
    "x402.http.clients",
    "x402.http.middleware.fastapi",
    "x402.mechanisms.evm.exact",
    "x402.mechanisms.evm.signers",
)


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    async with paywall_rig(tmp_path) as made:
        yield made


def official_client(rig: Rig) -> x402Client:
    """The official client with the buyer's key; its spend controls pay only the
    well-known stablecoins unless told, so it is told of our token (and a cap)."""
    client = x402Client()
    register_exact_evm_client(client, EthAccountSigner(Account.from_key(rig.buyer.secret)))
    client.set_spend_controls(
        {
            "allowed_assets": [
                {
                    "network": rig.ledger.caip2,
                    "asset": rig.token.address.checksum,
                    "max_amount_per_payment": str(PRICE),
                }
            ]
        }
    )
    return client


def test_importing_the_official_package_patches_no_event_loop() -> None:
    probe = (
        "import asyncio, importlib, sys\n"
        "run, loop_run = asyncio.run, asyncio.BaseEventLoop.run_until_complete\n"
        f"for name in {_USED!r}: importlib.import_module(name)\n"
        "assert asyncio.run is run, 'asyncio.run replaced'\n"
        "assert asyncio.BaseEventLoop.run_until_complete is loop_run, 'loop patched'\n"
        "assert not hasattr(asyncio, '_nest_patched'), 'nest_asyncio applied'\n"
        "print('nest_asyncio' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"  # not even imported


async def test_the_official_client_pays_our_exact_paywall_once(rig: Rig) -> None:
    before = await rig.balances()
    client = official_client(rig)
    async with x402HttpxClient(client, base_url=rig.url, timeout=30) as http:
        answer = await http.get("/data")
    assert answer.status_code == 200
    assert answer.content == BODY
    settled = x402HTTPClient(client).get_payment_settle_response(answer.headers.get)
    assert settled.success
    assert settled.network == rig.ledger.caip2
    assert settled.payer == rig.buyer.address.checksum
    assert settled.amount == str(PRICE)
    receipt = await rig.ledger.wait_for_receipt(bytes.fromhex(settled.transaction[2:]))
    assert receipt.succeeded
    assert await rig.balances() == (before[0] + PRICE, before[1] - PRICE)
    assert rig.upstream.gets() == ["GET /data"]


async def test_the_official_client_reads_our_402_and_signs_what_we_check(rig: Rig) -> None:
    async with rig.client() as http:
        unpaid = await http.get("/data")
    ours = decode_header(unpaid.headers["PAYMENT-REQUIRED"], PaymentRequired)
    theirs = decode_payment_required_header(unpaid.headers["PAYMENT-REQUIRED"])
    assert theirs.x402_version == 2
    [offer], [read] = ours.accepts, theirs.accepts
    assert isinstance(read, TheirRequirements)  # v2's, not v1's
    assert (read.scheme, read.network, read.amount) == ("exact", rig.ledger.caip2, str(PRICE))
    assert (read.asset, read.pay_to) == (offer.asset, offer.pay_to)
    assert read.extra == offer.extra == {"name": "M2M Token", "version": "1"}
    # The 402's body is the same PaymentRequired: the official client reads it too.
    assert decode_payment_required_header(unpaid.headers["PAYMENT-REQUIRED"]) == theirs
    assert PaymentRequired.model_validate(unpaid.json()) == ours

    payment = await official_client(rig).create_payment_payload(theirs)
    header = encode_payment_signature_header(payment)
    decoded = decode_header(header, PaymentPayload)
    authorization, _ = check_exact(offer, decoded, rig.scheme.domain, int(time.time()))
    assert authorization.sender == rig.buyer.address
    assert (authorization.receiver, authorization.value) == (rig.seller.address, PRICE)
    assert decoded.payload["authorization"]["value"] == str(PRICE)


@dataclass(eq=False)
class OfficialServer:
    """A FastAPI app behind the official middleware, paid in `token` on `ledger`, its
    facilitator (the official classes, with the seller's key) in this process."""

    ledger: Ledger
    token: TokenContract
    seller: PrivateKey
    buyer: PrivateKey
    facilitator: x402Facilitator
    url: str = ""
    served: list[str] = field(default_factory=list)

    def requirements(self, payload: PaymentPayload) -> TheirRequirements:
        return TheirRequirements.model_validate(payload.accepted.model_dump(by_alias=True))


@pytest.fixture
async def official(anvil_node: AnvilNode) -> AsyncIterator[OfficialServer]:
    async with RpcLedger(anvil_node.url, dev_keys=dev_keys()) as ledger:
        owner, seller, buyer = ledger.dev_accounts()[:3]
        _, _, token = await deploy_contracts(ledger, owner, mint={buyer.address: 1_000 * UNIT})
        domain = await token.domain()
        facilitator = x402Facilitator()
        signer = FacilitatorWeb3Signer("0x" + seller.secret.hex(), anvil_node.url)
        register_exact_evm_facilitator(facilitator, signer, ledger.caip2)
        server = register_exact_evm_server(x402ResourceServer(facilitator), ledger.caip2)
        price = AssetAmount(
            amount=str(PRICE),
            asset=token.address.checksum,
            extra={"name": domain.name, "version": domain.version},
        )
        option = PaymentOption(
            scheme="exact", pay_to=seller.address.checksum, price=price, network=ledger.caip2
        )
        made = OfficialServer(ledger, token, seller, buyer, facilitator)
        app = FastAPI()

        @app.get("/data")
        async def data() -> PlainTextResponse:
            made.served.append("/data")
            return PlainTextResponse(BODY.decode())

        app.middleware("http")(payment_middleware({"GET /data": RouteConfig(option)}, server))
        web = AsgiServer(app, name="official x402 server")
        made.url = await web.start()
        try:
            yield made
        finally:
            await web.stop()


async def test_our_payer_pays_the_official_fastapi_middleware_on_anvil(
    official: OfficialServer,
) -> None:
    seller, buyer = official.seller.address, official.buyer.address
    before = (await official.token.balance_of(seller), await official.token.balance_of(buyer))
    async with httpx.AsyncClient(base_url=official.url, timeout=60) as http:
        unpaid = await http.get("/data")
    assert unpaid.status_code == 402
    required = decode_header(unpaid.headers["PAYMENT-REQUIRED"], PaymentRequired)
    [offer] = required.accepts
    assert (offer.network, offer.amount) == (official.ledger.caip2, str(PRICE))
    assert offer.extra == {"name": "M2M Token", "version": "1"}
    assert official.served == []

    payer = X402Payer(official.buyer, PRICE)
    async with httpx.AsyncClient(base_url=official.url, timeout=60, auth=payer) as http:
        paid = await http.get("/data")
    assert paid.status_code == 200
    assert paid.content == BODY
    settled = decode_header(paid.headers["PAYMENT-RESPONSE"], SettleResponse)
    assert settled.success
    assert (settled.network, settled.payer) == (official.ledger.caip2, buyer.checksum)
    [made] = payer.payments
    assert (made.amount, made.transaction) == (PRICE, settled.transaction)
    receipt = await official.ledger.wait_for_receipt(bytes.fromhex(settled.transaction[2:]))
    assert receipt.succeeded
    after = (await official.token.balance_of(seller), await official.token.balance_of(buyer))
    assert after == (before[0] + PRICE, before[1] - PRICE)
    assert official.served == ["/data"]


async def test_the_official_facilitator_and_ours_refuse_alike(
    official: OfficialServer, tmp_path: Path
) -> None:
    ours = ExactEvm(
        official.ledger, official.token, official.seller, NonceBook(tmp_path / "book.sqlite3")
    )
    await ours.start()
    try:
        async with httpx.AsyncClient(base_url=official.url, timeout=60) as http:
            unpaid = await http.get("/data")
        resource, [offered] = read_payment_required(unpaid.headers["PAYMENT-REQUIRED"])
        offer = decode_header(unpaid.headers["PAYMENT-REQUIRED"], PaymentRequired).accepts[0]
        buyer = official.buyer

        def signed(
            change: Callable[[OfferedPayment], OfferedPayment] = lambda o: o,
            key: PrivateKey = buyer,
            shift_s: float = 0,
        ) -> str:
            payer = X402Payer(key, 10**30, clock=lambda: time.time() + shift_s)
            return payer.pay(change(offered), resource)

        async def reasons(header: str) -> tuple[str | None, str | None]:
            payment = decode_header(header, PaymentPayload)
            theirs = await official.facilitator.verify(
                decode_payment_signature_header(header), official.requirements(payment)
            )
            try:
                await ours.verify(payment, offer)
            except PaymentRefused as refused:
                return theirs.invalid_reason, refused.code
            return theirs.invalid_reason, None

        paying = signed()
        assert await reasons(paying) == (None, None)
        cases = {
            "invalid_exact_evm_payload_authorization_value_mismatch": signed(
                lambda o: dataclasses.replace(o, amount=PRICE - 1)
            ),
            "invalid_exact_evm_payload_recipient_mismatch": signed(
                lambda o: dataclasses.replace(o, pay_to=Address("0x" + "11" * 20))
            ),
            "invalid_exact_evm_payload_authorization_valid_before": signed(shift_s=-1000),
            "invalid_exact_evm_payload_authorization_valid_after": signed(shift_s=1000),
        }
        for reason, header in cases.items():
            assert await reasons(header) == (reason, reason)
        # An empty purse: ours names it as x402 does since 2.17. Theirs diagnoses it with
        # Multicall3, which a bare Anvil lacks, so there it can only say the simulation failed.
        theirs, our = await reasons(signed(key=PrivateKey.generate()))
        assert our == ERR_INSUFFICIENT_BALANCE
        assert theirs in (ERR_INSUFFICIENT_BALANCE, ERR_TRANSACTION_SIMULATION_FAILED)
        # Replayed once settled (by their facilitator): ours finds the nonce used on chain;
        # theirs maps revert strings in USDC's words (ours differ), then asks Multicall3.
        payment = decode_header(paying, PaymentPayload)
        settled = await official.facilitator.settle(
            decode_payment_signature_header(paying), official.requirements(payment)
        )
        assert settled.success
        theirs, our = await reasons(paying)
        assert our == ERR_NONCE_ALREADY_USED
        assert theirs in (ERR_NONCE_ALREADY_USED, ERR_TRANSACTION_SIMULATION_FAILED)
    finally:
        await ours.stop()
