"""How JSON-RPC answers and errors read as m2mpay's types (logs, topic filters, reverts)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from m2mpay.chain.ledger import LogEntry, Topics
from m2mpay.crypto import Address

__all__ = ["log_entry", "revert_reason", "topic_filter"]

_REVERT_PREFIXES: Final = (
    "execution reverted: ",
    "execution reverted",
    "VM Exception while processing",
)


def revert_reason(exc: BaseException) -> str | None:
    """The contract's revert message inside a client's exception, or None if it is not a revert.

    web3 raises `ContractLogicError` for JSON-RPC nodes, eth-tester raises its own
    `TransactionFailed`; both carry "execution reverted: <reason>".
    """
    name = type(exc).__name__
    if name not in ("ContractLogicError", "TransactionFailed", "ContractPanicError"):
        return None
    message = exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)
    for prefix in _REVERT_PREFIXES:
        if message.startswith(prefix):
            message = message[len(prefix) :]
            break
    return message.strip() or "execution reverted"


def topic_filter(topics: Topics | None) -> list[Any] | None:
    if topics is None:
        return None
    converted: list[Any] = []
    for topic in topics:
        if topic is None:
            converted.append(None)
        elif isinstance(topic, bytes):
            converted.append("0x" + topic.hex())
        else:
            converted.append(["0x" + t.hex() for t in topic])
    return converted


def log_entry(raw: Mapping[str, Any]) -> LogEntry:
    return LogEntry(
        address=Address(raw["address"]),
        topics=tuple(bytes(t) for t in raw["topics"]),
        data=bytes(raw["data"]),
        block_number=int(raw["blockNumber"]),
        tx_hash=bytes(raw["transactionHash"]),
        log_index=int(raw["logIndex"]),
        block_hash=bytes(raw.get("blockHash") or b""),
    )
