"""Options and helpers of the commands that talk to a running node over its HTTP API
(`wallet`, `channel`, `offer`, `session`, `device`, `data`, `token`, `dex`).

Every such command takes `--url` (`$M2MPAY_URL`) and `--token` (`$M2MPAY_TOKEN`),
prints Rich tables for people or, with `--json`, one JSON object in the API's own
form (amounts as integer strings). A refusal prints the API's code and message on
stderr (as the API's error object with `--json`) and exits with 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, is_dataclass
from typing import Annotated, Any, Final, NoReturn, TypeVar, overload

import typer
from rich.markup import escape
from rich.table import Table

from m2mpay.cli.common import JsonOption, NodeTarget, console, err_console, report_error
from m2mpay.cli.units import Units
from m2mpay.client import DEFAULT_URL, NodeClient, encode
from m2mpay.crypto import Address
from m2mpay.errors import M2MPayError

__all__ = [
    "ADDRESS_LENGTH",
    "FULL_ID_LENGTH",
    "AmountArg",
    "AssetOption",
    "Remote",
    "TokenOption",
    "UrlOption",
    "asset_named",
    "busy",
    "emit",
    "fail",
    "id_of",
    "is_full_id",
    "kv_table",
    "listing",
    "on_named",
    "remote_command",
    "reply",
    "resolve_id",
    "short",
    "table",
]

T = TypeVar("T")
G = TypeVar("G")

UrlOption = Annotated[
    str,
    typer.Option("--url", envvar="M2MPAY_URL", help="The node's API.", show_default=True),
]
TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="M2MPAY_TOKEN",
        help="The node's API token (shown once when the node first starts).",
        show_default=False,
    ),
]

AssetOption = Annotated[
    str | None, typer.Option(help="Token address or symbol (default: the node's token).")
]

AmountArg = Annotated[int, typer.Argument(min=1, help="Integer, in the smallest unit.")]

FULL_ID_LENGTH: Final = 66  # 0x + 32 bytes of hex
ADDRESS_LENGTH: Final = 42  # 0x + 20 bytes of hex: a device's id


@dataclass(frozen=True, slots=True)
class Remote:
    """The running node a command talks to (`--url`, `--token`) and whether it answers
    people or, with `--json`, programs."""

    url: str
    token: str | None
    as_json: bool

    def call(self, work: Callable[[NodeClient], Awaitable[None]]) -> None:
        """Run `work` with a client of the node; errors become a message and exit 1."""

        async def go() -> None:
            async with NodeClient(self.url, self.token) as node:
                await work(node)

        try:
            asyncio.run(go())
        except M2MPayError as exc:
            report_error(exc, NodeTarget(self.url, self.token), as_json=self.as_json)

    def answer(
        self,
        fetch: Callable[[NodeClient], Awaitable[T]],
        show: Callable[[T], None],
        *,
        key: str | None = None,
    ) -> None:
        """Run `fetch` with a client of the node and print what it returns: one JSON
        object with `--json` (a list under `key`, as the API answers lists), else `show`
        it."""

        async def work(node: NodeClient) -> None:
            value = await fetch(node)
            if self.as_json:
                emit({key: value} if key else value)
            else:
                show(value)

        self.call(work)

    def answer_in_units(
        self,
        fetch: Callable[[NodeClient], Awaitable[T]],
        show: Callable[[T, Units], None],
        *,
        key: str | None = None,
    ) -> None:
        """As `answer`, and people see amounts in the assets the node names (`Units`,
        asked beside `fetch`); `--json` is the API's exact integers."""

        async def work(node: NodeClient) -> None:
            if self.as_json:
                value = await fetch(node)
                emit({key: value} if key else value)
            else:
                value, units = await asyncio.gather(fetch(node), Units.load(node))
                show(value, units)

        self.call(work)

    def answer_with(
        self,
        given: Callable[[NodeClient], Awaitable[G]],
        fetch: Callable[[NodeClient, G], Awaitable[T]],
        show: Callable[[T, G], None],
    ) -> None:
        """As `answer`, for a command that must first learn from the node (`given`: its
        info, its assets by symbol) what it asks and how people read the answer: both
        `fetch` and `show` are handed it."""

        async def work(node: NodeClient) -> None:
            known = await given(node)
            self.reply(await fetch(node, known), lambda value: show(value, known))

        self.call(work)

    def answer_list(
        self,
        what: str,
        fetch: Callable[[NodeClient], Awaitable[Sequence[T]]],
        row: Callable[[T, Units], Sequence[str]],
        **columns: str,
    ) -> None:
        """The `what`s that `fetch` returns: a table of a `row` each (`listing` with
        `columns`, amounts in `Units`), or with `--json` the API's form of a list,
        `{"<what>s": [...]}`."""

        def show(items: Sequence[T], units: Units) -> None:
            listing(what, items, lambda item: row(item, units), **columns)

        self.answer_in_units(fetch, show, key=f"{what}s")

    def answer_rows(
        self,
        what: str,
        fetch: Callable[[NodeClient], Awaitable[Sequence[T]]],
        row: Callable[[T], Sequence[str]],
        **columns: str,
    ) -> None:
        """As `answer_list`, for things whose rows hold no amount in the node's token
        (pools in their own tokens' decimals, streams' counts): no `/v1/info` is asked."""
        self.answer(fetch, lambda items: listing(what, items, row, **columns), key=f"{what}s")

    def reply(self, value: T, show: Callable[[T], None]) -> None:
        """One JSON object with `--json`, else `show` the value for people."""
        reply(value, show, as_json=self.as_json)


def _remote_options(
    url: UrlOption = DEFAULT_URL, token: TokenOption = None, as_json: JsonOption = False
) -> None:
    """Only its signature is used: the options `remote_command` puts in place of `remote`."""


# Keyword-only: they follow the command's own options, some of which have defaults.
_REMOTE_OPTIONS: Final = tuple(
    option.replace(kind=inspect.Parameter.KEYWORD_ONLY)
    for option in inspect.signature(_remote_options, eval_str=True).parameters.values()
)

Command = TypeVar("Command", bound=Callable[..., None])


def remote_command(app: typer.Typer, name: str) -> Callable[[Command], Command]:
    """Register a command of a running node as `name` in `app`.

    The command takes a last parameter `remote: Remote` (keyword-only after options
    with defaults); on the command line it is the options `--url`, `--token` and
    `--json`, after the command's own, so that every such command reads them the same
    way."""

    def register(command: Command) -> Command:
        own = inspect.signature(command, eval_str=True)
        if list(own.parameters)[-1] != "remote":
            raise TypeError(f"{command.__name__} must take `remote: Remote` last")

        def with_options(
            *args: Any, url: str, token: str | None, as_json: bool, **kwargs: Any
        ) -> None:
            command(*args, **kwargs, remote=Remote(url, token, as_json))

        with_options.__name__ = command.__name__
        with_options.__doc__ = command.__doc__
        with_options.__signature__ = own.replace(  # type: ignore[attr-defined]
            parameters=[*list(own.parameters.values())[:-1], *_REMOTE_OPTIONS]
        )
        app.command(name)(with_options)
        return command

    return register


@contextlib.contextmanager
def busy(message: str, quiet: bool) -> Iterator[None]:
    """A spinner on stderr while the node works on chain (not with --json)."""
    if quiet:
        yield
        return
    with err_console.status(message):
        yield


def fail(message: str, code: str = "cli_error", *, as_json: bool = False) -> NoReturn:
    """Print an error for people, or with `--json` in the API's error shape, and exit 1."""
    if as_json:
        typer.echo(json.dumps({"error": {"code": code, "message": message}}), err=True)
    else:
        err_console.print(f"[bold red]error:[/] {escape(message)}")
    raise typer.Exit(1)


def emit(value: Any) -> None:
    """Print one JSON object: client dataclasses in the API's form."""
    typer.echo(json.dumps(_plain(value)))


def reply(value: T, show: Callable[[T], None], *, as_json: bool) -> None:
    """What a command answers, remote or local (`bench`, `ledger`, …): one JSON object
    on stdout with `--json`, else `show`n to people; progress goes to stderr either
    way, so that stdout is the answer."""
    if as_json:
        emit(value)
    else:
        show(value)


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return encode(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def short(text: str, keep: int = 10) -> str:
    """A long 0x id or address cut for a table; commands accept such prefixes back."""
    return text if len(text) <= keep + 1 else text[:keep] + "…"


def is_full_id(given: str, length: int = FULL_ID_LENGTH) -> bool:
    """Whether `given` is a whole id (`length` characters with 0x: a channel's, a
    session's, an offer's; `ADDRESS_LENGTH` for a device), not a prefix: no need to
    ask the node what it names."""
    return len(given) == length


def resolve_id(given: str, known: Iterable[str], what: str) -> str:
    """A full 0x id from a full id or a unique prefix of one of `known` (as shown in
    tables), so that people need not paste 66 characters. An unknown or ambiguous
    prefix is one line that says how many ids it matched among how many."""
    ids = list(known)
    wanted = given.lower() if given.lower().startswith("0x") else "0x" + given.lower()
    exact = [k for k in ids if k.lower() == wanted]
    matches = exact or [k for k in ids if k.lower().startswith(wanted)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise M2MPayError(
            f"no {what} starts with {given}, of the node's {len(ids)} (`m2mpay {what} list`)"
        )
    raise M2MPayError(f"{len(matches)} {what}s start with {given}: give more of the id")


@overload
async def id_of(
    given: str,
    what: str,
    listed: Callable[[], Awaitable[Iterable[str]]],
    *,
    length: int = FULL_ID_LENGTH,
) -> str: ...


@overload
async def id_of(
    given: str,
    what: str,
    listed: Callable[[], Awaitable[Iterable[T]]],
    *,
    key: Callable[[T], str],
    length: int = FULL_ID_LENGTH,
) -> str: ...


async def id_of(
    given: str,
    what: str,
    listed: Callable[[], Awaitable[Iterable[Any]]],
    *,
    key: Callable[[Any], str] = str,
    length: int = FULL_ID_LENGTH,
) -> str:
    """The one rule for ids on the command line: a whole id as given, else the one id
    among those `listed` (asked of the node only then) that `given` starts. `listed`
    may give the node's views of the things, whose id `key` reads (`node.channels`,
    `lambda c: c.channel_id`)."""
    if is_full_id(given, length):
        return given
    return resolve_id(given, (key(item) for item in await listed()), what)


def on_named(
    given: str,
    full_id: Callable[[NodeClient, str], Awaitable[str]],
    act: Callable[[NodeClient, str], Awaitable[T]],
) -> Callable[[NodeClient], Awaitable[T]]:
    """`act` on the thing `given` names (a full id, or a prefix), once `full_id` (its
    kind's lookup: `channel_id_of`, `device_id_of`, …) has found its id."""

    async def acted(node: NodeClient) -> T:
        return await act(node, await full_id(node, given))

    return acted


async def asset_named(node: NodeClient, text: str | None) -> Address | None:
    """`--asset` as given: an address, `ETH` for the chain's coin, or the symbol of the
    node's token or of a token its factory made; None when not given (the node's
    default, its token)."""
    return None if text is None else (await Units.load(node)).asset(text)


def table(title: str, *, keep: str = "", fold: str = "", numbers: str = "") -> Table:
    """A table whose columns are named, space-separated (`_` for a space), in this order:
    `keep` (short words and cut ids, never wrapped), `fold` (longer text), `numbers`
    (right-aligned).

    In a narrow terminal Rich shrinks columns and cuts their text; an amount or an
    address cut short would be wrong, so such text folds onto the next line instead.
    """
    made = Table(title=title, title_justify="left")
    for name in keep.split():
        made.add_column(name.replace("_", " "), no_wrap=True)
    for name in fold.split():
        made.add_column(name.replace("_", " "), overflow="fold")
    for name in numbers.split():
        made.add_column(name.replace("_", " "), justify="right", overflow="fold")
    return made


def kv_table(title: str, rows: Iterable[tuple[str, object]]) -> None:
    """A two-column table of one thing's fields."""
    made = Table(title=title, show_header=False, title_justify="left")
    made.add_column(style="bold")
    made.add_column(overflow="fold")
    for key, value in rows:
        made.add_row(key, escape("—" if value is None else str(value)))
    console.print(made)


def listing(
    what: str,
    items: Sequence[T],
    row: Callable[[T], Sequence[str]],
    *,
    title: str | None = None,
    empty: str | None = None,
    keep: str = "",
    fold: str = "",
    numbers: str = "",
) -> None:
    """A table of `items`, a row each (columns as in `table`), or a line saying there
    are none; both say what the items are (`what`) unless `title` and `empty` do."""
    if not items:
        console.print(empty or f"no {what}s")
        return
    shown = table(title or f"{len(items)} {what}(s)", keep=keep, fold=fold, numbers=numbers)
    for item in items:
        shown.add_row(*row(item))
    console.print(shown)
