"""`m2mpay fetch URL --max-price N`: an HTTP GET that pays a 402 the x402 way.

The payer's key is read from `--key-env` (never from the command line, where other
users of the machine could read it). The body goes to stdout as it is; what was paid
goes to stderr, or with `--json` everything is one JSON object. Kept free of the chain:
the payment is signed here, the seller settles it. With `--node URL` (the buyer's own
node's API, its `--token`), a seller offering `batch-settlement` is paid from a channel
with it, which `--open-deposit` lets the node open from the 402's hint; `exact` (with the
key) is the fallback.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Annotated

import httpx
import typer

from m2mpay.cli.common import JsonOption, KeyEnvOption, err_console, run
from m2mpay.cli.explain import CliProblem
from m2mpay.cli.remote import TokenOption
from m2mpay.client.node import NodeClient
from m2mpay.client.x402 import BATCH_SETTLEMENT, PaymentDeclined, X402Payer
from m2mpay.client.x402_channels import NodeChannels
from m2mpay.crypto import PrivateKey
from m2mpay.errors import CryptoError, M2MPayError

__all__ = ["fetch_command"]


def fetch_command(
    url: Annotated[str, typer.Argument(help="The URL to GET, e.g. http://127.0.0.1:8403/data")],
    max_price: Annotated[
        int, typer.Option(min=0, help="Pay at most this much (smallest unit) for the request.")
    ],
    key_env: KeyEnvOption = "M2MPAY_PRIVATE_KEY",
    node: Annotated[
        str | None,
        typer.Option(help="Pay from a channel of this node (its API URL), when offered."),
    ] = None,
    token: TokenOption = None,
    open_deposit: Annotated[
        int, typer.Option(min=0, help="With --node: open a channel with this deposit if none.")
    ] = 0,
    as_json: JsonOption = False,
) -> None:
    """GET a URL, paying its 402 (x402: `batch-settlement` from a channel with --node,
    else `exact`) up to --max-price."""
    if not url.startswith(("http://", "https://")):
        raise typer.BadParameter(f"{url!r} is not an http(s) URL")
    if node is not None and not node.startswith(("http://", "https://")):
        raise typer.BadParameter(f"--node {node!r} is not an http(s) URL")
    secret = os.environ.get(key_env)
    if not secret and node is None:
        raise CliProblem(
            f"no payer's key in ${key_env}",
            f"put the hex private key that pays in ${key_env} (or name another with --key-env)",
        )
    try:
        key = PrivateKey.from_hex(secret.strip()) if secret else PrivateKey.generate()
    except CryptoError as exc:
        raise typer.BadParameter(f"${key_env}: {exc}") from None
    # Without a key only the channel can pay: a throwaway key never signs for `exact`.
    schemes = (BATCH_SETTLEMENT, "exact") if secret else (BATCH_SETTLEMENT,)
    payer = X402Payer(key, max_price, schemes=schemes)
    answer = run(_get(url, payer, node, token, open_deposit))
    paid = [
        {"amount": str(p.amount), "asset": p.asset, "network": p.network, "payTo": p.pay_to,
         "scheme": p.scheme, "transaction": p.transaction}
        for p in payer.payments
    ]  # fmt: skip
    if as_json:
        body = answer.content.decode("utf-8", errors="replace")
        print(json.dumps({"status": answer.status_code, "body": body, "paid": paid}))
    else:
        sys.stdout.buffer.write(answer.content)
        sys.stdout.flush()
        for p in paid:
            err_console.print(
                f"paid {p['amount']} of {p['asset']} to {p['payTo']} on {p['network']}"
                f" (tx {p['transaction']})",
                soft_wrap=True,
            )
        if not paid:
            err_console.print(f"paid nothing (HTTP {answer.status_code})")
    if answer.status_code >= 400:
        raise typer.Exit(1)


async def _get(
    url: str, payer: X402Payer, node: str | None, token: str | None, open_deposit: int
) -> httpx.Response:
    client = NodeClient(node, token) if node is not None else None
    if client is not None:
        payer.channels = NodeChannels(client, open_deposit)
    try:
        async with httpx.AsyncClient(auth=payer, timeout=60) as http:
            return await http.get(url)
    except httpx.HTTPError as exc:
        raise CliProblem(f"cannot reach {url}: {exc}") from None
    except PaymentDeclined as exc:
        fix = "raise --max-price" if exc.code == "too_expensive" else None
        raise CliProblem(exc.message, fix, exc.code) from None
    except M2MPayError as exc:  # the buyer's node refused or could not be reached
        raise CliProblem(f"--node {node}: {exc}") from None
    finally:
        if client is not None:
            await client.aclose()
