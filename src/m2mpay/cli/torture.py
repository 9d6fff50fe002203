"""`m2mpay torture …`: kill real processes at random moments and check the invariants."""

from __future__ import annotations

import json
import random
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from m2mpay.cli.common import JsonOption, console, err_console, run
from m2mpay.torture.crash import PHASES, CrashReport, run_crash

__all__ = ["torture_app"]

torture_app = typer.Typer(
    help="Torture runs: SIGKILL real processes, check the invariants.", no_args_is_help=True
)


@torture_app.callback()
def _torture() -> None:
    """Torture runs: SIGKILL real processes, check the invariants (more kinds will come)."""


@torture_app.command("crash")
def crash(
    trials: Annotated[int, typer.Option(min=1, help="Trials, spread over the phases.")] = 100,
    seed: Annotated[
        int | None, typer.Option(help="First trial's seed (replays a trial); random if unset.")
    ] = None,
    phase: Annotated[
        list[str] | None,
        typer.Option("--phase", help=f"Only this phase (repeatable): {', '.join(PHASES)}."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """SIGKILL a process at a moment drawn from each trial's seed, restart it, and check
    that no acknowledged payment is lost, both sides agree and the chain pays what the
    newest proofs say. Exit code 1 if any trial fails."""
    for name in phase or ():
        if name not in PHASES:
            raise typer.BadParameter(f"no phase {name!r}; phases: {', '.join(PHASES)}")
    first = seed if seed is not None else random.randrange(2**31)
    report = run(_run(trials, first, phase, show=not as_json))
    if as_json:
        print(json.dumps(report.as_json()))
    else:
        _print(report)
    if report.failures:
        raise typer.Exit(1)


async def _run(trials: int, seed: int, phases: list[str] | None, *, show: bool) -> CrashReport:
    if not show:
        return await run_crash(trials, seed=seed, phases=phases)
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[failures]} failed"),
        TimeElapsedColumn(),
        console=err_console,
    ) as bar:
        task = bar.add_task(f"seed {seed}", total=trials, failures=0)
        failures = 0

        def progress(name: str, trial_seed: int, done: int, violation: str | None) -> None:
            nonlocal failures
            if violation is not None:
                failures += 1
                bar.console.print(f"[red]✗ {name} seed {trial_seed}:[/] {violation}")
            bar.update(task, completed=done, failures=failures, description=name)

        return await run_crash(trials, seed=seed, phases=phases, progress=progress)


def _print(report: CrashReport) -> None:
    table = Table(title=f"torture crash (first seed {report.seed})")
    table.add_column("phase")
    table.add_column("trials", justify="right")
    table.add_column("failures", justify="right")
    for name, counts in report.phases.items():
        table.add_row(name, str(counts["trials"]), str(counts["failures"]))
    table.add_row("[bold]all", str(report.trials), str(report.failures))
    console.print(table)
    if report.first_failing_seed is not None:
        console.print(f"[red]first failing seed: {report.first_failing_seed}[/]")
    console.print(f"{report.seconds:.0f} s, {60 * report.trials / report.seconds:.1f} trials/min")
