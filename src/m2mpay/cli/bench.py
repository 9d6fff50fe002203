"""`m2mpay bench …`: measurements printed as JSON, never asserted on a clock in tests."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Annotated, Any

import typer
from rich.table import Table

from m2mpay.bench.api import measure_api
from m2mpay.bench.channels import measure_channels
from m2mpay.bench.explorer import measure_explorer
from m2mpay.bench.gas import GAS_BUDGET, GAS_REFERENCE, measure_gas
from m2mpay.bench.mqtt import measure_mqtt
from m2mpay.bench.pay import measure_pay
from m2mpay.bench.paywall import measure_paywall
from m2mpay.bench.provenance import measure_provenance
from m2mpay.bench.sessions import measure_sessions
from m2mpay.bench.ui import measure_ui
from m2mpay.bench.watcher import measure_watcher
from m2mpay.cli.common import (
    AnvilOption,
    BatchOption,
    JsonOption,
    RpcUrlOption,
    WindowOption,
    console,
    err_console,
    run,
)
from m2mpay.cli.ledger_access import open_ledger as _open_ledger
from m2mpay.cli.remote import reply

__all__ = ["bench_app"]

bench_app = typer.Typer(
    help="Benchmarks; each prints one JSON object with --json.", no_args_is_help=True
)

_STEPS = (
    "open_with_deposit",
    "top_up",
    "cooperative_close",
    "unilateral_close",
    "challenge",
    "settle",
    "lifecycle_cooperative",
    "lifecycle_dispute",
    "swap",
    "add_liquidity",
    "remove_liquidity",
)


@bench_app.command("gas")
def gas(
    rpc_url: RpcUrlOption = None,
    anvil: AnvilOption = False,
    as_json: JsonOption = False,
) -> None:
    """Gas of every channel step, from receipts (embedded ledger unless told otherwise)."""

    async def measured() -> dict[str, Any]:
        async with _open_ledger(None, rpc_url, anvil) as ledger:
            return await measure_gas(ledger, None if as_json else _say)

    reply(run(measured()), _show_gas, as_json=as_json)


def _show_gas(result: dict[str, Any]) -> None:
    table = Table(title=f"gas per step on {result['ledger']} ({result['chain']})")
    table.add_column("step")
    table.add_column("gas", justify="right")
    table.add_column("budget / reference", justify="right")
    for step in _STEPS:
        budget = GAS_BUDGET.get(step)
        table.add_row(step, f"{result[step]:,}", f"≤ {budget:,}" if budget else "")
    for name, value in GAS_REFERENCE.items():
        table.add_row(f"[dim]{name}[/]", "", f"{value:,}")
    for group in ("native_eth", "first_use"):
        for step, value in result[group].items():
            table.add_row(f"{group}.{step}", f"{value:,}", "")
    console.print(table)
    verdict = "[green]within budget[/]" if result["meets_budget"] else "[red]over budget[/]"
    console.print(verdict)


def _say(message: str) -> None:
    err_console.print(f"· {message}")


def _measure(title: str, measuring: Coroutine[Any, Any, dict[str, Any]], *, as_json: bool) -> None:
    """Run a benchmark and answer its result; people see it as a table of its fields."""

    def show(result: dict[str, Any]) -> None:
        table = Table(title=title, show_header=False)
        for key, value in result.items():
            table.add_row(key, f"{value:,}" if isinstance(value, int) else str(value))
        console.print(table)

    reply(run(measuring), show, as_json=as_json)


@bench_app.command("pay")
def pay(
    payments: Annotated[int, typer.Option(min=1, help="Payments to stream.")] = 100_000,
    window: Annotated[
        int, typer.Option(min=1, help="Payments in flight before the payer waits.")
    ] = 512,
    codec: Annotated[str, typer.Option(help="Wire codec: cbor or json.")] = "cbor",
    as_json: JsonOption = False,
) -> None:
    """Payments per second and latency between two node processes over WebSocket."""
    if codec not in ("cbor", "json"):
        raise typer.BadParameter("codec must be cbor or json")
    progress = None if as_json else _say
    _measure(
        "payment throughput (two processes, WebSocket, SQLite)",
        measure_pay(payments=payments, window=window, codec=codec, progress=progress),
        as_json=as_json,
    )


@bench_app.command("channels")
def channels(
    count: Annotated[int, typer.Option("--channels", min=1, help="Channels to open.")] = 10_000,
    concurrency: Annotated[int, typer.Option(min=1, help="Opens in flight at once.")] = 64,
    as_json: JsonOption = False,
) -> None:
    """Resident memory per open channel in one node (its own process, on Anvil)."""
    progress = None if as_json else _say
    _measure(
        "memory per channel",
        measure_channels(channels=count, concurrency=concurrency, progress=progress),
        as_json=as_json,
    )


@bench_app.command("watcher")
def watcher(
    count: Annotated[int, typer.Option("--channels", min=1, help="Channels registered.")] = 10_000,
    opened: Annotated[
        int, typer.Option(min=1, help="Of those, channels opened on chain and closed stale.")
    ] = 100,
    updates: Annotated[int, typer.Option(min=1, help="Proof updates per channel.")] = 3,
    concurrency: Annotated[int, typer.Option(min=1, help="HTTP requests in flight.")] = 64,
    as_json: JsonOption = False,
) -> None:
    """Watcher update throughput over HTTP, dispute latency and memory (its own process)."""
    _measure(
        "watcher (own process, HTTP, SQLite, embedded chain)",
        measure_watcher(
            channels=count,
            opened=opened,
            updates_per_channel=updates,
            concurrency=concurrency,
            progress=_say,
        ),
        as_json=as_json,
    )


@bench_app.command("sessions")
def sessions(
    count: Annotated[int, typer.Option("--sessions", min=1, help="Concurrent sessions.")] = 1_000,
    seconds: Annotated[float, typer.Option(min=1, help="How long they all run.")] = 30.0,
    rate: Annotated[float, typer.Option(min=0.1, help="Units per second per meter.")] = 8.0,
    window: WindowOption = 20,
    batch: BatchOption = 5,
    leader: Annotated[str, typer.Option(help="Who goes first: deliverer or payer.")] = "deliverer",
    as_json: JsonOption = False,
) -> None:
    """Concurrent metered sessions between two node processes: units/s, exposure, memory."""
    if leader not in ("deliverer", "payer"):
        raise typer.BadParameter("leader must be deliverer or payer")
    if batch > window:
        raise typer.BadParameter("a batch cannot be larger than the window")
    measuring = measure_sessions(
        sessions=count,
        seconds=seconds,
        rate=rate,
        window=window,
        batch=batch,
        leader=leader,
        progress=_say,
    )
    _measure("metered sessions (two processes, WebSocket, SQLite)", measuring, as_json=as_json)


@bench_app.command("api")
def api(
    payments: Annotated[int, typer.Option(min=1, help="Payments to post.")] = 20_000,
    concurrency: Annotated[int, typer.Option(min=1, help="Clients, one connection each.")] = 8,
    wait: Annotated[
        bool, typer.Option(help="Answer once the payee holds the payment durably.")
    ] = True,
    as_json: JsonOption = False,
) -> None:
    """Payments per second and latency through the node daemon's HTTP API."""
    _measure(
        "payments through the HTTP API",
        measure_api(payments=payments, concurrency=concurrency, wait=wait, progress=_say),
        as_json=as_json,
    )


@bench_app.command("explorer")
def explorer(
    blocks: Annotated[int, typer.Option(min=1, help="Blocks on the chain first.")] = 10_000,
    page: Annotated[int, typer.Option(min=1, max=100, help="Blocks a page.")] = 25,
    requests: Annotated[int, typer.Option(min=1, help="Pages asked, one after another.")] = 200,
    as_json: JsonOption = False,
) -> None:
    """A page of the explorer's blocks over HTTP on a long chain: median and p99 in ms."""
    _measure(
        "the explorer's page of blocks (GET /v1/explorer/blocks)",
        measure_explorer(blocks=blocks, page=page, requests=requests, progress=_say),
        as_json=as_json,
    )


@bench_app.command("mqtt")
def mqtt(
    subscribers: Annotated[
        int, typer.Option(min=1, help="Paid subscribers, one channel and MQTT client each.")
    ] = 1_000,
    samples: Annotated[
        int, typer.Option(min=1, help="Of those, grants bought one at a time for latency.")
    ] = 100,
    paid_seconds: Annotated[int, typer.Option(min=1, help="Shortest paid time (s).")] = 60,
    stagger_seconds: Annotated[
        int, typer.Option(min=0, help="Paid times spread over this much more (s).")
    ] = 60,
    concurrency: Annotated[int, typer.Option(min=1, help="Grants bought at once.")] = 50,
    buyers: Annotated[
        int, typer.Option(min=1, max=4, help="Buyer processes the subscribers are dealt to.")
    ] = 2,
    publish_hz: Annotated[
        float, typer.Option(min=0.1, help="Messages a second on the live topic (the plug: 2).")
    ] = 2.0,
    tolerance_ms: Annotated[
        int, typer.Option(min=0, help="How late after the end a message may still arrive.")
    ] = 250,
    as_json: JsonOption = False,
) -> None:
    """Paid MQTT access on a real Mosquitto: grant latency and rate, expiry exactness, memory."""
    _measure(
        "paid live data (seller and buyer processes, Mosquitto, SQLite)",
        measure_mqtt(
            subscribers=subscribers,
            samples=samples,
            paid_seconds=paid_seconds,
            stagger_seconds=stagger_seconds,
            concurrency=concurrency,
            buyers=buyers,
            publish_hz=publish_hz,
            tolerance_ms=tolerance_ms,
            progress=_say,
        ),
        as_json=as_json,
    )


@bench_app.command("provenance")
def provenance(
    streams: Annotated[int, typer.Option(min=1, help="Streams written at once.")] = 64,
    messages: Annotated[int, typer.Option(min=1, help="Messages in all.")] = 20_000,
    browser_messages: Annotated[
        int, typer.Option(min=1, help="Messages the web reader verifies in Chromium.")
    ] = 10_000,
    as_json: JsonOption = False,
) -> None:
    """Provenance streams: durable signed sealed writes/s (SQLite), verifies/s, overhead,
    and the web reader's verify time in Chromium."""
    _measure(
        "provenance streams (restricted, SQLite, one process)",
        measure_provenance(
            streams=streams, messages=messages, progress=_say, browser_messages=browser_messages
        ),
        as_json=as_json,
    )


@bench_app.command("ui")
def ui(
    runs: Annotated[
        int, typer.Option(min=1, help="Cold loads of each page; the median is kept.")
    ] = 5,
    explorer_blocks: Annotated[
        int, typer.Option(min=1, help="Blocks on the chain for explorer_page_ms.")
    ] = 10_000,
    as_json: JsonOption = False,
) -> None:
    """The web app in Chromium against a node process: time to interactive and the
    JavaScript shipped (gzip), per page; the explorer's blocks page on a long chain."""
    _measure(
        "the web app (Chromium, one node process, loopback)",
        measure_ui(runs=runs, explorer_blocks=explorer_blocks, progress=None if as_json else _say),
        as_json=as_json,
    )


@bench_app.command("paywall")
def paywall(
    requests: Annotated[int, typer.Option(min=10, help="Requests timed, unpaid and paid.")] = 200,
    rpc_url: RpcUrlOption = None,
    anvil: AnvilOption = False,
    block_time: Annotated[
        float | None,
        typer.Option(
            min=0.1,
            help="With --anvil: a block every this many seconds, as a real chain mines "
            "(`exact` then waits a block a request), instead of one at once a transaction.",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """The HTTP 402 paywall: paid requests per second and the latency it adds (p50, p99)
    to the same request unpaid, per scheme (`exact`: one transaction a request)."""

    async def go() -> dict[str, Any]:
        if rpc_url is None and not anvil:
            if block_time is not None:
                raise typer.BadParameter("--block-time goes with --anvil")
            return await measure_paywall(requests=requests)
        async with _open_ledger(None, rpc_url, anvil, block_time=block_time) as ledger:
            return await measure_paywall(requests=requests, ledger=ledger)

    _measure("the HTTP 402 paywall (reverse proxy, one client)", go(), as_json=as_json)
