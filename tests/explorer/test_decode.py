"""Decoding against the deployment's contracts: a call reads as its function with named
arguments (structs as objects by their parts' names), a log as its event; an unknown
emitter's ERC-20 `Transfer` still reads as one; what no contract declares stays raw."""

from __future__ import annotations

from typing import Final

from eth_abi.abi import encode

from m2mpay.chain import Deployment, LogEntry, MarketContracts, load_artifact
from m2mpay.crypto import Address
from m2mpay.explorer import KnownContracts, decode_call, decode_log

HUB: Final = Address(bytes([1]) * 20)
TOKEN: Final = Address(bytes([2]) * 20)
MADE: Final = Address(bytes([9]) * 20)  # a token the factory made
ALICE: Final = Address(bytes([0xA1]) * 20)
BOB: Final = Address(bytes([0xB0]) * 20)
KNOWN: Final = KnownContracts.of(
    Deployment(
        1337,
        HUB,
        TOKEN,
        "M2M",
        ALICE,
        1,
        1,
        anchor=Address(bytes([4]) * 20),
        market=MarketContracts(*(Address(bytes([n]) * 20) for n in (5, 6, 7, 8))),
    ),
    [MADE],
)
_TOKEN: Final = load_artifact("Token").interface
_HUB: Final = load_artifact("ChannelHub").interface


def _log(emitter: Address, topics: list[bytes], data: bytes) -> LogEntry:
    return LogEntry(emitter, tuple(topics), data, 7, bytes([3]) * 32, 0)


def test_known_contracts_name_every_deployed_one() -> None:
    names = {KNOWN.name_of(Address(bytes([n]) * 20)) for n in (1, 2, 4, 5, 6, 7, 8, 9)}
    assert names == {
        "ChannelHub",
        "Token",
        "TelemetryAnchor",
        "TokenFactory",
        "Exchange",
        "ServiceRegistry",
        "MeteredEscrow",
    }
    assert KNOWN.name_of(BOB) is None


def test_a_token_transfer_call_reads_by_name_with_its_amount_as_a_string() -> None:
    call = decode_call(MADE, _TOKEN.encode_call("transfer", BOB, 10**30), KNOWN)
    assert (call.contract, call.function) == ("Token", "transfer")
    assert call.args == {"receiver": BOB.checksum, "amount": str(10**30)}
    assert call.selector == "0x" + _TOKEN.encode_call("transfer", BOB, 1)[:4].hex()


def test_the_hub_s_open_reads_its_channel_struct_by_field() -> None:
    channel = (ALICE.checksum, BOB.checksum, TOKEN.checksum, 100, 7, 5_000, 0)
    call = decode_call(HUB, _HUB.encode_call("open", channel), KNOWN)
    assert (call.contract, call.function) == ("ChannelHub", "open")
    struct = call.args["ch"]
    assert isinstance(struct, dict)
    assert (struct["a"], struct["b"], struct["token"]) == (
        ALICE.checksum,
        BOB.checksum,
        TOKEN.checksum,
    )
    assert (struct["challenge_period"], struct["nonce"], struct["deposit_a"]) == (
        "100",
        "7",
        "5000",
    )


def test_unknown_calls_stay_raw() -> None:
    assert decode_call(BOB, _TOKEN.encode_call("transfer", BOB, 1), KNOWN).function is None
    unknown = decode_call(HUB, b"\xde\xad\xbe\xef" + bytes(64), KNOWN)
    assert (unknown.contract, unknown.function, unknown.args) == ("ChannelHub", None, {})
    cut = decode_call(MADE, _TOKEN.encode_call("transfer", BOB, 1)[:20], KNOWN)
    assert (cut.function, cut.selector[:2]) == (None, "0x")
    assert decode_call(None, b"\x60\x80", KNOWN).selector == "0x"


def test_a_transfer_log_reads_from_a_known_and_an_unknown_token() -> None:
    topics = [_TOKEN.event_topic("Transfer"), bytes(12) + ALICE, bytes(12) + BOB]
    data = encode(["uint256"], [42])
    for emitter, contract in ((TOKEN, "Token"), (BOB, None)):
        event = decode_log(_log(emitter, topics, data), KNOWN)
        assert (event.contract, event.event) == (contract, "Transfer")
        assert event.args == {"sender": ALICE.checksum, "receiver": BOB.checksum, "value": "42"}


def test_a_hub_event_reads_with_its_channel_id_as_hex() -> None:
    channel_id = bytes([0xCC]) * 32
    topics = [_HUB.event_topic("ChannelOpened"), channel_id, bytes(12) + ALICE, bytes(12) + BOB]
    data = encode(["address", "uint256", "uint256", "uint256"], [TOKEN.checksum, 100, 1, 9])
    event = decode_log(_log(HUB, topics, data), KNOWN)
    assert event.event == "ChannelOpened"
    assert event.args["channel_id"] == "0x" + channel_id.hex()
    assert event.args["deposit_a"] == "9"


def test_a_log_no_contract_declares_or_that_is_cut_stays_raw() -> None:
    raw = decode_log(_log(HUB, [bytes(32)], b"\x01"), KNOWN)
    assert (raw.event, raw.args, raw.data) == (None, {}, b"\x01")
    topics = [_TOKEN.event_topic("Transfer"), bytes(12) + ALICE, bytes(12) + BOB]
    cut = decode_log(_log(TOKEN, topics, b"\x00" * 5), KNOWN)
    assert (cut.contract, cut.event) == ("Token", None)
