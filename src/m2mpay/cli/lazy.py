"""Command groups loaded when they are run.

The daemon, the benchmarks, the demo and the ledger tools import the chain
(py-evm, web3) and the API server: over a second. The API clients' commands
(`wallet`, `channel`, …) need none of it, so the heavy groups are imported only
when their name is on the command line (or the root help lists them).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import typer
import typer.core
import typer.main

__all__ = ["LAZY_COMMANDS", "LazyCommand", "LazyGroup"]


@dataclass(frozen=True, slots=True)
class LazyCommand:
    module: str
    attribute: str  # a Typer app (a group) or a command function


LAZY_COMMANDS: dict[str, LazyCommand] = {
    "node": LazyCommand("m2mpay.cli.node", "node_command"),
    "demo": LazyCommand("m2mpay.cli.demo", "demo_command"),
    "ledger": LazyCommand("m2mpay.cli.ledger", "ledger_app"),
    "bench": LazyCommand("m2mpay.cli.bench", "bench_app"),
    "contracts": LazyCommand("m2mpay.cli.contracts", "contracts_app"),
    "watcher": LazyCommand("m2mpay.cli.watcher", "watcher_app"),
    "torture": LazyCommand("m2mpay.cli.torture", "torture_app"),
    "key": LazyCommand("m2mpay.cli.key", "key_app"),
    "audit": LazyCommand("m2mpay.cli.audit", "audit_app"),
    "dex": LazyCommand("m2mpay.cli.dex", "dex_app"),
    "token": LazyCommand("m2mpay.cli.token", "token_app"),
    "explorer": LazyCommand("m2mpay.cli.explorer", "explorer_app"),
    "paywall": LazyCommand("m2mpay.cli.paywall", "paywall_command"),
    "fetch": LazyCommand("m2mpay.cli.fetch", "fetch_command"),
}


class LazyGroup(typer.core.TyperGroup):
    """The root group: the eager commands, then those of `LAZY_COMMANDS`."""

    def list_commands(self, ctx: typer.Context) -> list[str]:  # type: ignore[override]
        eager = super().list_commands(ctx)
        return [*LAZY_COMMANDS, *(name for name in eager if name not in LAZY_COMMANDS)]

    def get_command(  # type: ignore[override]
        self, ctx: typer.Context, cmd_name: str
    ) -> typer.core.TyperCommand | typer.core.TyperGroup | None:
        if cmd_name not in self.commands and cmd_name in LAZY_COMMANDS:
            self.add_command(_load(cmd_name), cmd_name)
        return super().get_command(ctx, cmd_name)  # type: ignore[return-value]


def _load(name: str) -> typer.core.TyperCommand | typer.core.TyperGroup:
    lazy = LAZY_COMMANDS[name]
    target = getattr(importlib.import_module(lazy.module), lazy.attribute)
    if not isinstance(target, typer.Typer):
        wrapper = typer.Typer(add_completion=False)
        wrapper.command(name)(target)
        target = wrapper
    command = typer.main.get_command(target)
    command.name = name
    return command  # type: ignore[return-value]
