"""What an error means to the person at the command line, and what to do about it.

Every error a command ends with passes through `explain`: the project's exception
tree (`m2mpay.errors`, the node API's refusals as the SDK raises them, the keystore's)
mapped to one line naming the problem and, where there is one, a line naming the fix.
Kept free of the chain and of the SDK's imports, as `m2mpay.cli.common` is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit, urlunsplit

from m2mpay.errors import (
    ApiInvalidInput,
    ApiNotFound,
    ApiRefusal,
    ApiUnauthorized,
    InvalidAddress,
    M2MPayError,
    MalformedMessage,
    NodeUnreachable,
    WrongPassphrase,
)

__all__ = ["CliProblem", "Explained", "NodeTarget", "explain"]

DEFAULT_NODE_URL: Final = "http://127.0.0.1:8402"  # as `m2mpay node` serves by default

_TOKEN_FIX: Final = (
    "give it with --token or $M2MPAY_TOKEN: `m2mpay node` prints it once, on its first "
    "start; lost it? restart that node with `m2mpay node --new-token` (same --data-dir) and "
    "use the new one it prints (the node keeps only its hash, in DATA_DIR/api-token.sha256)"
)
_URL_FIX: Final = (
    "give --url (or $M2MPAY_URL) the API address `m2mpay node` prints after `API` "
    f"(default {DEFAULT_NODE_URL}), without /v1"
)
_ADDRESS_FIX: Final = (
    "an address is 0x and 40 hex digits (20 bytes), e.g. "
    "0x5FbDB2315678afecb367f032d93F642f64180aa3: copy it whole from `m2mpay wallet show` "
    "or `m2mpay status`"
)
# The market's refusals (`m2mpay token`, `m2mpay dex`) and what to do about each.
_MARKET_FIXES: Final = {
    "slippage": "the pool pays less than the minimum: `m2mpay dex quote` shows what it pays "
    "now; allow more with --slippage-bps, or lower --min-out (--min-shares, --min-a, --min-b)",
    "deadline_passed": "give it more time with --deadline-s (seconds of the chain's clock)",
    "no_pool": "`m2mpay dex pools` lists the pools; `m2mpay dex add` makes one",
    "insufficient_shares": "`m2mpay dex pools` shows the node's shares of each pool",
    "amount_too_small": "a pool's first deposit buys the square root of the two amounts' "
    "product in shares, which must be above the 1,000 locked for ever; a swap must pay "
    "out something",
    "not_a_factory_token": "`m2mpay token list` lists the tokens the factory made",
    "no_market": "the node's deployment was recorded before the market's contracts existed: "
    "a node on a dev chain adds them when it starts again; on another chain only a new "
    "deployment has them (`m2mpay ledger deploy`, with a hub of its own)",
}
# pydantic's message for a field constrained to 0x-hex of a fixed length.
_HEX_PATTERN: Final = re.compile(r"should match pattern '\^0\[xX\]\[0-9a-fA-F\]\{(\d+)\}\$'")


@dataclass(frozen=True, slots=True)
class NodeTarget:
    """The node a command talked to: its API's URL and the token given, if any."""

    url: str
    token: str | None


@dataclass(frozen=True, slots=True)
class Explained:
    problem: str
    fix: str | None = None
    code: str = "cli_error"  # the `code` of the error under --json


class CliProblem(M2MPayError):
    """A problem a command found itself, with the fix it knows of."""

    def __init__(self, problem: str, fix: str | None = None, code: str = "cli_error") -> None:
        super().__init__(problem)
        self.explained = Explained(problem, fix, code)


def explain(exc: BaseException, node: NodeTarget | None = None) -> Explained:
    """`exc` for people: the problem and how to fix it."""
    if isinstance(exc, CliProblem):
        return exc.explained
    if isinstance(exc, ApiRefusal) and node is not None:
        return _refusal(exc, node)
    if isinstance(exc, NodeUnreachable) and node is not None:
        fix = "is `m2mpay node` running? " + _URL_FIX
        return Explained(f"cannot reach the node at {node.url}: {exc}", fix, "node_unreachable")
    if isinstance(exc, MalformedMessage) and node is not None:
        return _not_a_node(node, f"{node.url} answered something that is not the node API's JSON")
    if isinstance(exc, WrongPassphrase):
        return Explained(
            f"wrong passphrase for the keystore {exc.path}",
            "give the passphrase the key was saved with ($M2MPAY_PASSPHRASE, --passphrase-file "
            "or the prompt); it cannot be recovered, and without it that key's funds are lost",
        )
    if isinstance(exc, InvalidAddress):
        return Explained(str(exc), _ADDRESS_FIX)
    if isinstance(exc, M2MPayError | OSError):
        return Explained(str(exc))
    return Explained(
        f"unexpected {type(exc).__name__}: {exc}",
        "run the command again as `m2mpay --debug …` for the traceback, and report it",
    )


def _refusal(exc: ApiRefusal, node: NodeTarget) -> Explained:
    said = f"{exc.code}: {exc.message}"
    if isinstance(exc, ApiUnauthorized):
        if node.token:
            problem = f"the node at {node.url} refused the API token given ({said})"
        else:
            problem = f"the node at {node.url} needs its API token ({said})"
        return Explained(problem, _TOKEN_FIX, exc.code)
    if exc.code.startswith("http_"):  # not the API's error shape: something else answers
        return _not_a_node(node, f"{node.url} answered {exc.status}, not as an m2mpay node")
    if isinstance(exc, ApiNotFound) and exc.code == "not_found" and _ends_in_v1(node.url):
        return Explained(
            f"{node.url} ends in /v1, which the commands add themselves ({said})",
            f"use --url {_without_v1(node.url)}",
            exc.code,
        )
    if isinstance(exc, ApiInvalidInput) and (length := _hex_length(exc.message)):
        field = f"`{exc.field}`" if exc.field else "a value"
        if length == 40:
            return Explained(f"{exc.code}: {field} is not an address", _ADDRESS_FIX, exc.code)
        return Explained(
            f"{exc.code}: {field} is not 0x and {length} hex digits",
            "copy the whole id, or give a unique prefix to the commands that take one",
            exc.code,
        )
    where = f" (field `{exc.field}`)" if exc.field and exc.field not in exc.message else ""
    return Explained(said + where, _MARKET_FIXES.get(exc.code), exc.code)


def _hex_length(message: str) -> int:
    found = _HEX_PATTERN.search(message)
    return int(found.group(1)) if found else 0


def _ends_in_v1(url: str) -> bool:
    return urlsplit(url).path.rstrip("/").endswith("/v1")


def _without_v1(url: str) -> str:
    parts = urlsplit(url)
    path = parts.path.rstrip("/").removesuffix("/v1")
    return urlunsplit(parts._replace(path=path))


def _not_a_node(node: NodeTarget, problem: str) -> Explained:
    chain_id = _json_rpc_chain_id(node.url)
    if chain_id is not None:
        problem = (
            f"{node.url} is a chain's JSON-RPC endpoint (chain id {chain_id}), "
            "not an m2mpay node's API"
        )
    elif _ends_in_v1(node.url):
        return Explained(f"{problem}: it ends in /v1", f"use --url {_without_v1(node.url)}")
    return Explained(problem, _URL_FIX, "not_a_node")


def _json_rpc_chain_id(url: str) -> int | None:
    """The chain id if `url` answers Ethereum JSON-RPC, else None."""
    import httpx  # only on this error path: the commands' start stays quick

    ask = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
    try:
        answer = httpx.post(url, json=ask, timeout=3.0).json()
        return int(answer["result"], 16)
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return None
