"""`m2mpay demo`: the machine economy scenarios, end to end, with a report."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from m2mpay.cli.common import JsonOption, RpcUrlOption, console, err_console, run
from m2mpay.scenarios.runner import SCENARIOS, run_scenarios

__all__ = ["demo_command"]


def demo_command(
    scenarios: Annotated[
        list[str] | None,
        typer.Argument(
            help=f"Scenarios to run (default: all): {', '.join(SCENARIOS)}.",
            show_default=False,
        ),
    ] = None,
    rpc_url: RpcUrlOption = None,
    work_dir: Annotated[
        Path | None,
        typer.Option(help="Keep the nodes' data dirs and logs here (default: a temporary dir)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Run the machine-economy scenarios; PASS or FAIL for each.

    Nodes in their own processes pay each other through their APIs, devices sit on
    their buses, and each scenario checks its own outcome. Exit code 1 if any fails.
    """
    names = scenarios or list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        raise typer.BadParameter(
            f"no scenario {', '.join(unknown)}; there are {', '.join(SCENARIOS)}",
            param_hint="SCENARIOS",
        )
    directory = work_dir or Path(tempfile.mkdtemp(prefix="m2mpay-demo-"))
    out = err_console if as_json else console
    demo = run(run_scenarios(names, directory, rpc_url=rpc_url, console=out))
    if as_json:
        print(json.dumps(demo.as_dict()))
    out.rule("summary")
    for report in demo.scenarios:
        verdict = "[bold green]PASS[/]" if report.passed else "[bold red]FAIL[/]"
        out.print(f"{verdict}  {report.name:<24} {report.wall_s:6.1f} s  {report.title}")
    if not demo.passed:
        out.print(f"nodes' data and logs kept in {directory}")
        raise typer.Exit(1)
    if work_dir is None:
        shutil.rmtree(directory, ignore_errors=True)
