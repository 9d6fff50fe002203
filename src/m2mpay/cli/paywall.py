"""`m2mpay paywall`: any HTTP service behind an x402 paywall, paid in the `exact` scheme.

A reverse proxy (`UpstreamProxy`) forwards paid requests to `--upstream`; the seller's
key (from `--key-env`, never on the command line; a dev chain's first dev account when
unset) receives each payment and pays the gas of settling it, as its own facilitator.
Its book of payments is `DATA_DIR/paywall.sqlite3`, reconciled with the chain at start.
Per byte, a request costs the upstream's declared Content-Length (asked with HEAD); an
upstream that declares none is refused (502 `unpriceable`) rather than guessed at.
"""

from __future__ import annotations

from typing import Annotated

import typer

from m2mpay.access.exact import ExactEvm
from m2mpay.access.nonce_book import NonceBook
from m2mpay.access.paywall import Paywall
from m2mpay.access.pricing import DEFAULT_SECONDS, Per, Price, PricedRoute, PriceList
from m2mpay.access.proxy import UpstreamProxy
from m2mpay.asgi import AsgiServer
from m2mpay.chain.deploy import load_deployment
from m2mpay.chain.token import TokenContract
from m2mpay.cli.common import (
    DEFAULT_DATA_DIR,
    DataDirOption,
    KeyEnvOption,
    ReadyJsonOption,
    RpcUrlOption,
    err_console,
    require_free_port,
    run,
    serve_until,
    stop_on_signals,
)
from m2mpay.cli.explain import CliProblem
from m2mpay.cli.ledger_access import open_ledger, signing_key
from m2mpay.crypto import Address
from m2mpay.errors import ContractError, CryptoError

__all__ = ["paywall_command"]


def paywall_command(
    upstream: Annotated[
        str, typer.Option(help="The HTTP service to sell, e.g. http://127.0.0.1:8080")
    ],
    price: Annotated[int, typer.Option(min=1, help="Price in the asset's smallest unit.")],
    per: Annotated[Per, typer.Option(help="What the price is for.")] = Per.REQUEST,
    asset: Annotated[
        str | None,
        typer.Option(help="The token paid in (default: the data dir's deployment's token)."),
    ] = None,
    seconds: Annotated[
        int, typer.Option(min=1, max=86_400, help="Seconds one payment buys (--per second).")
    ] = DEFAULT_SECONDS,
    path: Annotated[
        list[str] | None,
        typer.Option(help="Priced path pattern (fnmatch, e.g. '/data/*'); repeat; default all."),
    ] = None,
    host: Annotated[str, typer.Option(help="Address the paywall listens on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (0: any).")] = 8403,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    rpc_url: RpcUrlOption = None,
    key_env: KeyEnvOption = "M2MPAY_PRIVATE_KEY",
    as_json: ReadyJsonOption = False,
) -> None:
    """Sell an HTTP service over x402: 402 until paid, then the upstream's answer."""
    if not upstream.startswith(("http://", "https://")):
        raise typer.BadParameter(f"--upstream {upstream!r} is not an http(s) URL")
    require_free_port(host, port, "--port")
    run(_serve(upstream, price, per, asset, seconds, path or ["*"], host, port, data_dir,
               rpc_url, key_env, as_json))  # fmt: skip


async def _serve(
    upstream: str,
    amount: int,
    per: Per,
    asset: str | None,
    seconds: int,
    patterns: list[str],
    host: str,
    port: int,
    data_dir: DataDirOption,
    rpc_url: str | None,
    key_env: str,
    as_json: bool,
) -> None:
    async with open_ledger(data_dir, rpc_url) as ledger:
        seller = signing_key(ledger, key_env, what="the seller's key (it is paid, and pays gas)")
        token = TokenContract(ledger, _asset(asset, data_dir, ledger.chain_id))
        try:
            symbol = await token.symbol()
        except Exception as exc:  # a revert, or no contract at all, answers nothing useful
            raise CliProblem(
                f"--asset {token.address.checksum} is not a token on {ledger.caip2}: {exc}",
                "give the address of an ERC-20 with EIP-3009 (`m2mpay token list`)",
            ) from None
        price = Price(amount, token.address, per, seconds)
        prices = PriceList([PricedRoute(pattern, price) for pattern in patterns])
        scheme = ExactEvm(ledger, token, seller, NonceBook(data_dir / "paywall.sqlite3"))
        reconciled = await scheme.start()
        proxy = UpstreamProxy(upstream)
        server = AsgiServer(
            # Settled once the upstream answered below 400: no charge for its errors.
            Paywall(proxy, prices, [scheme], size_of=proxy.size_of, settle_on_success=True),
            host=host, port=port, name="paywall",
        )  # fmt: skip
        try:
            url = await server.start()
            ready = {
                "url": url,
                "upstream": upstream,
                "network": ledger.caip2,
                "asset": token.address.checksum,
                "payTo": seller.address.checksum,
                "price": str(amount),
                "per": per.value,
                "paths": patterns,
                "reconciled": {"settled": reconciled.settled, "forgotten": reconciled.forgotten},
            }
            people = [
                f"paywall on {url} in front of {upstream}",
                f"  {amount} of {symbol} ({token.address.checksum}) per {per.value}"
                + (f" ({seconds} s a payment)" if per is Per.SECOND else ""),
                f"  paid to {seller.address.checksum} on {ledger.caip2}",
                f"  try: m2mpay fetch {url}/ --max-price {price.purchase(1).amount}",
            ]
            await serve_until(stop_on_signals(), ready, people, as_json=as_json, what="paywall")
        finally:
            await server.stop()
            await proxy.aclose()
            await scheme.stop()


def _asset(given: str | None, data_dir: DataDirOption, chain_id: int) -> Address:
    if given is not None:
        try:
            return Address(given)
        except CryptoError as exc:
            raise typer.BadParameter(f"--asset: {exc}") from None
    try:
        return load_deployment(data_dir, chain_id).token
    except ContractError:
        err_console.print(f"no deployment for chain {chain_id} in {data_dir}")
        raise typer.BadParameter("give --asset, the token's address") from None
