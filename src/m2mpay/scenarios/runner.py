"""Run scenarios one after another on one stage, live with Rich, then report."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from m2mpay.scenarios.base import Play, Scenario
from m2mpay.scenarios.data_feed import PaidData
from m2mpay.scenarios.ev_charging import EvCharging
from m2mpay.scenarios.ev_malicious import MaliciousCar
from m2mpay.scenarios.lamp import PaidLight
from m2mpay.scenarios.report import DemoReport, ScenarioReport
from m2mpay.scenarios.stage import Stage
from m2mpay.scenarios.vehicle_to_grid import VehicleToGrid
from m2mpay.scenarios.wind_to_car import WindToCar

__all__ = ["SCENARIOS", "render", "run_scenarios"]

SCENARIOS: dict[str, type[Scenario]] = {
    s.name: s for s in (EvCharging, MaliciousCar, PaidLight, WindToCar, VehicleToGrid, PaidData)
}
TOKEN = 10**18
SCENARIO_TIMEOUT_S = 120


async def run_scenarios(
    names: Sequence[str], work_dir: Path, *, rpc_url: str | None, console: Console
) -> DemoReport:
    console.print("starting the chain and deploying the contracts …")
    async with Stage.open(work_dir, rpc_url=rpc_url) as stage:
        demo = DemoReport(stage.ledger.caip2, stage.ledger.description, stage.deployment.hub)
        console.print(f"chain {demo.chain} ({demo.ledger}); ChannelHub {demo.hub.checksum}")
        for name in names:
            demo.scenarios.append(await _run_one(SCENARIOS[name](), stage, console))
    return demo


async def _run_one(scenario: Scenario, stage: Stage, console: Console) -> ScenarioReport:
    report = ScenarioReport(scenario.name, scenario.title, scenario.unit)
    console.rule(f"[bold]{scenario.name}[/]: {scenario.title}")
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:>7.0f}/{task.total:.0f} " + scenario.unit),
        TextColumn("{task.fields[paid]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        bar = progress.add_task(scenario.name, total=1, paid="")

        def show(units: int, total: int, paid: int) -> None:
            # A meter overshoots its target by up to one reading: the bar ends full.
            whole = max(total, units, 1)
            progress.update(
                bar, completed=units, total=whole, paid=f"{paid / TOKEN:.4f} tokens paid"
            )

        play = Play(stage, report, show)
        play.on_story(lambda line: progress.console.print(f"  · {line}"))
        stage.scene = scenario.name
        await stage.mark()
        started = time.monotonic()
        try:
            async with asyncio.timeout(SCENARIO_TIMEOUT_S):
                await scenario.play(play)
        except Exception as exc:
            report.error = f"{type(exc).__name__}: {exc}"
        finally:
            report.wall_s = round(time.monotonic() - started, 2)
            await play.unplug_all()
            await stage.dismiss()
    books = await stage.books()
    report.txs, report.gas = books.txs, books.gas
    if any(p.after == 0 for p in report.parties):
        await play.settle_balances()
    render(report, console)
    return report


def render(report: ScenarioReport, console: Console) -> None:
    summary = Table(title=f"{report.name}: {report.title}", show_header=False)
    summary.add_row("payments", f"{report.payments:,}")
    summary.add_row("delivered", f"{report.units:,} {report.unit}")
    summary.add_row("paid off chain", f"{report.paid / TOKEN:.6f} tokens")
    summary.add_row("on-chain transactions", f"{report.txs} ({report.gas:,} gas)")
    summary.add_row("wall time", f"{report.wall_s:.1f} s")
    for key, value in report.extra.items():
        summary.add_row(key.replace("_", " "), str(value))
    console.print(summary)
    balances = Table("party", "address", "tokens before", "after", "change")
    for p in report.parties:
        balances.add_row(
            p.name,
            p.address.checksum[:10] + "…",
            f"{p.before / TOKEN:.6f}",
            f"{p.after / TOKEN:.6f}",
            f"{p.change / TOKEN:+.6f}",
        )
    console.print(balances)
    checks = Table("check", "", "detail")
    for check in report.checks:
        checks.add_row(check.what, "[green]ok[/]" if check.ok else "[red]WRONG[/]", check.detail)
    console.print(checks)
    if report.error:
        console.print(f"[red]error:[/] {report.error}")
    verdict = "[bold green]PASS[/]" if report.passed else "[bold red]FAIL[/]"
    console.print(f"{report.name}: {verdict}")
