"""How JSON-RPC answers and errors read as m2mpay's types (logs, topic filters, reverts)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from m2mpay.chain.ledger import BlockInfo, LogEntry, Receipt, Topics, TransactionInfo
from m2mpay.crypto import Address

__all__ = ["block_info", "log_entry", "revert_reason", "topic_filter", "transaction_info"]

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


def block_info(raw: Mapping[str, Any]) -> BlockInfo:
    """A block read without its transactions' bodies (their hashes only)."""
    return BlockInfo(
        number=int(raw["number"]),
        hash=bytes(raw["hash"]),
        parent_hash=bytes(raw["parentHash"]),
        timestamp=int(raw["timestamp"]),
        gas_used=int(raw["gasUsed"]),
        gas_limit=int(raw["gasLimit"]),
        transactions=tuple(bytes(t) for t in raw.get("transactions", ())),
    )


def transaction_info(
    tx: Mapping[str, Any], raw_receipt: Mapping[str, Any], receipt: Receipt
) -> TransactionInfo:
    """A mined transaction from its body and its receipt (raw, and as read)."""
    to = tx.get("to")
    return TransactionInfo(
        hash=receipt.tx_hash,
        sender=Address(tx["from"]),
        to=Address(to) if to else None,
        value=int(tx["value"]),
        input=bytes(tx["input"]),
        nonce=int(tx["nonce"]),
        gas=int(tx["gas"]),
        block_number=receipt.block_number,
        block_hash=bytes(raw_receipt["blockHash"]),
        index=int(raw_receipt["transactionIndex"]),
        succeeded=receipt.succeeded,
        gas_used=receipt.gas_used,
        effective_gas_price=receipt.effective_gas_price,
        contract_address=receipt.contract_address,
        logs=receipt.logs,
    )
