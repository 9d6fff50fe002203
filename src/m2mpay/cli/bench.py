"""`m2mpay bench …`: measurements printed as JSON, never asserted on a clock in tests."""

from __future__ import annotations

import json
from collections.abc import Coroutine
from typing import Annotated, Any

import typer
from rich.table import Table

from m2mpay.bench.api import measure_api
from m2mpay.bench.channels import measure_channels
from m2mpay.bench.gas import GAS_BUDGET, GAS_REFERENCE, measure_gas
from m2mpay.bench.mqtt import measure_mqtt
from m2mpay.bench.pay import measure_pay
from m2mpay.bench.provenance import measure_provenance
from m2mpay.bench.sessions import measure_sessions
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
)


@bench_app.command("gas")
def gas(
    rpc_url: RpcUrlOption = None,
    anvil: AnvilOption = False,
    as_json: JsonOption = False,
) -> None:
    """Gas of every channel step, from receipts (embedded ledger unless told otherwise)."""

    async def go() -> None:
        async with _open_ledger(None, rpc_url, anvil) as ledger:
            result = await measure_gas(ledger, None if as_json else _say)
        if as_json:
            print(json.dumps(result))
            return
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

    run(go())


def _say(message: str) -> None:
    err_console.print(f"· {message}")


def _measure(title: str, measuring: Coroutine[Any, Any, dict[str, Any]], *, as_json: bool) -> None:
    """Run a benchmark; its result as one JSON object on stdout with --json, else as a
    table (its progress goes to stderr either way: stdout is the result)."""
    result = run(measuring)
    if as_json:
        print(json.dumps(result))
        return
    table = Table(title=title, show_header=False)
    for key, value in result.items():
        table.add_row(key, f"{value:,}" if isinstance(value, int) else str(value))
    console.print(table)


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
    as_json: JsonOption = False,
) -> None:
    """Provenance streams: durable signed sealed writes/s (SQLite), verifies/s, overhead."""
    _measure(
        "provenance streams (restricted, SQLite, one process)",
        measure_provenance(streams=streams, messages=messages, progress=_say),
        as_json=as_json,
    )
