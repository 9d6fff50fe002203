"""`m2mpay ledger …`: deploy the contracts, inspect a chain, run a local Anvil."""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer
from rich.table import Table

from m2mpay.chain.anvil import AnvilNode
from m2mpay.chain.deploy import (
    deploy_contracts,
    load_deployment,
    save_deployment,
    verify_deployment,
)
from m2mpay.cli.common import (
    DEFAULT_DATA_DIR,
    DataDirOption,
    JsonOption,
    KeyEnvOption,
    RpcUrlOption,
    console,
    err_console,
    run,
)
from m2mpay.cli.ledger_access import DEV_CHAIN_IDS, open_ledger, signing_key
from m2mpay.cli.remote import reply
from m2mpay.cli.units import local_time
from m2mpay.errors import DeploymentNotFound

__all__ = ["ledger_app"]

ledger_app = typer.Typer(help="Deploy the contracts and inspect the ledger.", no_args_is_help=True)

_TOKEN_UNIT = 10**18


@ledger_app.command("deploy")
def deploy(
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    rpc_url: RpcUrlOption = None,
    key_env: KeyEnvOption = "M2MPAY_PRIVATE_KEY",
    mint: Annotated[
        int,
        typer.Option(
            help="Whole tokens to mint to each dev account but the deployer (dev chains)."
        ),
    ] = 1_000,
    token_name: Annotated[str, typer.Option(help="Name of the token.")] = "M2M Token",
    token_symbol: Annotated[str, typer.Option(help="Symbol of the token.")] = "M2M",
    as_json: JsonOption = False,
) -> None:
    """Deploy ChannelHub, a Token, the TelemetryAnchor and the market's contracts (token
    factory, exchange, service registry, metered escrow), and record them in the data dir."""
    if mint < 0:
        raise typer.BadParameter("--mint cannot be negative")

    async def go() -> None:
        async with open_ledger(data_dir, rpc_url) as ledger:
            deployer = signing_key(ledger, key_env)
            holders = {}
            if ledger.chain_id in DEV_CHAIN_IDS and mint:
                holders = {k.address: mint * _TOKEN_UNIT for k in ledger.dev_accounts()[1:5]}
            if not as_json:
                err_console.print(f"deploying on {ledger.description} ({ledger.caip2}) …")
            started = time.perf_counter()
            deployment, _, token = await deploy_contracts(
                ledger,
                deployer,
                token_name=token_name,
                token_symbol=token_symbol,
                mint=holders,
            )
            elapsed = time.perf_counter() - started
            path = save_deployment(data_dir, deployment)
            if as_json:
                print(json.dumps({**deployment.to_dict(), "deploymentsFile": str(path)}))
                return
            table = Table(title="m2mpay contracts deployed", show_header=False)
            table.add_row("ledger", ledger.description)
            table.add_row("chain", deployment.caip2)
            table.add_row("deployer", deployment.deployer.checksum)
            table.add_row("ChannelHub", deployment.hub.checksum)
            table.add_row(f"Token ({token_symbol})", deployment.token.checksum)
            if deployment.anchor is not None:
                table.add_row("TelemetryAnchor", deployment.anchor.checksum)
            for name, address in deployment.market.named() if deployment.market else []:
                table.add_row(name, address.checksum)
            for holder, amount in holders.items():
                balance = await token.balance_of(holder)
                table.add_row(
                    "minted",
                    f"{amount // _TOKEN_UNIT} {token_symbol} to {holder.checksum} "
                    f"(balance {balance // _TOKEN_UNIT})",
                )
            table.add_row("gas used", f"{deployment.gas_used:,}")
            table.add_row("block", str(deployment.block_number))
            table.add_row("took", f"{elapsed * 1000:.0f} ms")
            table.add_row("recorded in", str(path))
            console.print(table)

    run(go())


@ledger_app.command("info")
def info(
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    rpc_url: RpcUrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show the chain, its clock and the recorded deployment, verified against the chain."""

    async def go() -> None:
        async with open_ledger(data_dir, rpc_url) as ledger:
            block = await ledger.block_number()
            timestamp = await ledger.block_timestamp()
            result: dict[str, object] = {
                "ledger": ledger.description,
                "chain": ledger.caip2,
                "block": block,
                "timestamp": timestamp,
            }
            try:
                deployment = load_deployment(data_dir, ledger.chain_id)
                await verify_deployment(ledger, deployment)
                result["deployment"] = deployment.to_dict()
            except DeploymentNotFound as exc:
                result["deployment"] = None
                result["note"] = str(exc)
            reply(result, _show_info, as_json=as_json)

    run(go())


def _show_info(result: dict[str, object]) -> None:
    table = Table(title="m2mpay ledger", show_header=False)
    for key, value in result.items():
        if key == "deployment" and isinstance(value, dict):
            for name, field in value.items():
                table.add_row(f"deployment.{name}", str(field))
        elif key == "timestamp" and isinstance(value, int):
            # Epoch seconds for programs, a local time for people.
            table.add_row(key, local_time(value * 1000))
        else:
            table.add_row(key, str(value))
    console.print(table)


@ledger_app.command("anvil")
def anvil(
    seconds: Annotated[
        float, typer.Option(help="Stop after this many seconds (0: run until Ctrl-C).")
    ] = 0,
) -> None:
    """Run a local Anvil node (dev accounts funded) until interrupted."""
    with AnvilNode() as node:
        console.print(f"anvil running at [bold]{node.url}[/] (pid {node.pid}); Ctrl-C stops it")
        deadline = time.monotonic() + seconds if seconds > 0 else None
        try:
            while deadline is None or time.monotonic() < deadline:
                time.sleep(0.2)
        except KeyboardInterrupt:
            pass
