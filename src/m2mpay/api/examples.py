"""Examples of the API's bodies, shown in /docs and /openapi.json (`example` puts one on a
model). One charging session tells them all: a car's node buys energy from a charger's
node over a channel in the deployment's token (18 decimals). Each example is a valid
instance of its model (tests/api/test_docs.py checks it).
"""

from __future__ import annotations

from typing import Any, Final

from pydantic import ConfigDict

from m2mpay.crypto import Address, keccak256

__all__ = ["example"]


def example(*bodies: dict[str, Any]) -> ConfigDict:
    """A model's config carrying `bodies` as its JSON schema's examples."""
    return ConfigDict(json_schema_extra={"examples": list(bodies)})


def _address(name: str) -> str:
    return Address(keccak256(name.encode())[:20]).checksum


def _hex32(name: str) -> str:
    return "0x" + keccak256(name.encode()).hex()


NATIVE: Final = "0x" + "00" * 20
CAR: Final = _address("car")
CHARGER: Final = _address("charger")
TOKEN: Final = _address("token")
HUB: Final = _address("hub")
CHARGE_POINT: Final = _address("charge point")
CHANNEL_ID: Final = _hex32("channel")
OFFER_ID: Final = _hex32("offer")
SESSION_ID: Final = _hex32("session")
TX_HASH: Final = _hex32("transaction")
ONE_TOKEN: Final = "1000000000000000000"
STARTED_MS: Final = 1_767_225_600_000  # 2026-01-01 00:00 UTC
SIGNATURE: Final = "0x" + keccak256(b"r").hex() + keccak256(b"s").hex() + "1b"

INFO: Final = {
    "address": CHARGER,
    "chain": "eip155:1337",
    "genesis_hash": _hex32("genesis"),
    "ledger": "embedded",
    "contracts": {
        "hub": HUB,
        "token": TOKEN,
        "token_symbol": "M2M",
        "token_decimals": 18,
        "anchor": _address("anchor"),
        "token_factory": _address("token factory"),
        "exchange": _address("exchange"),
        "registry": _address("registry"),
        "escrow": _address("escrow"),
    },
    "peer_endpoint": "ws://127.0.0.1:8403",
    "version": "0.1.0",
    "dev_chain": True,
    "public_reads": False,
}
WALLET: Final = {
    "address": CAR,
    "balances": [
        {
            "asset": NATIVE,
            "symbol": "ETH",
            "decimals": 18,
            "on_chain": ONE_TOKEN,
            "in_channels": "0",
        },
        {
            "asset": TOKEN,
            "symbol": "M2M",
            "decimals": 18,
            "on_chain": "999000000000000000000",
            "in_channels": "993250000000000000",
        },
    ],
}
TRANSFER_REQUEST: Final = {"to": CHARGER, "asset": TOKEN, "amount": "250000000000000000"}
TRANSFER: Final = {"tx_hash": TX_HASH, "block": 42, "gas_used": 34_507}
FAUCET_REQUEST: Final = {"amount": "1000000000000000000000"}
CHANNEL_OPEN: Final = {
    "peer": CHARGER,
    "endpoint": "ws://192.168.1.20:8403",
    "deposit": ONE_TOKEN,
}
CHANNEL: Final = {
    "channel_id": CHANNEL_ID,
    "peer": CHARGER,
    "phase": "open",
    "asset": TOKEN,
    "challenge_period": 3600,
    "deposit_mine": ONE_TOKEN,
    "deposit_peer": "0",
    "balance_mine": "993250000000000000",
    "balance_peer": "6750000000000000",
    "sent_total": "6750000000000000",
    "received_total": "0",
    "in_flight": 0,
    "payments_sent": 27,
    "payments_received": 0,
    "final_balance_mine": None,
}
PAYMENT_REQUEST: Final = {"amount": "250000000000000"}
CHANNEL_TOP_UP: Final = {"amount": "5000000000000000000"}
PAYMENT: Final = {
    "channel_id": CHANNEL_ID,
    "amount": "250000000000000",
    "sent_total": "7000000000000000",
    "seq": 28,
    "acknowledged": True,
}
COMMITMENT: Final = {
    "channel_id": CHANNEL_ID,
    "chain_id": 1337,
    "hub": HUB,
    "payer": CAR,
    "amount": "250000000000000",
    "total": "7000000000000000",
    "seq": 28,
    "signature": SIGNATURE,
}
OFFER_CREATE: Final = {
    "kind": "energy",
    "unit": "Wh",
    "price": "250000000000000",
    "window": 50,
    "batch": 10,
    "device": f"{CHARGE_POINT}/charging",
}
OFFER: Final = {
    "offer_id": OFFER_ID,
    "seller": CHARGER,
    "kind": "energy",
    "unit": "Wh",
    "price": "250000000000000",
    "asset": TOKEN,
    "min_units": 0,
    "max_units": 0,
    "window": 50,
    "leader": "deliverer",
    "batch": 10,
    "reverse_price": "0",
    "valid_until_ms": STARTED_MS + 86_400_000,
}
SESSION_START: Final = {
    "offer": OFFER,
    "endpoint": "ws://192.168.1.20:8403",
    "deposit": ONE_TOKEN,
    "target_units": 2000,
    "limit_price": "300000000000000",
}
SESSION_STOP: Final = {"reason": "battery full", "wait": True}
_FLOWS: Final = {
    "forward": {"units": 27, "value": "6750000000000000", "paid": "6750000000000000"},
    "backward": {"units": 0, "value": "0", "paid": "0"},
}
RECEIPT: Final = {
    "session_id": SESSION_ID,
    "channel_id": CHANNEL_ID,
    **_FLOWS,
    "started_ms": STARTED_MS,
    "stopped_ms": STARTED_MS + 1_620_000,
    "signature": SIGNATURE,
}
SESSION: Final = {
    "session_id": SESSION_ID,
    "offer_id": OFFER_ID,
    "channel_id": CHANNEL_ID,
    "peer": CHARGER,
    "role": "buyer",
    "phase": "stopped",
    "price": "250000000000000",
    "reversed": False,
    "unit": "Wh",
    "window": 10,
    "asset": TOKEN,
    **_FLOWS,
    "started_ms": STARTED_MS,
    "stopped_ms": STARTED_MS + 1_620_000,
    "stop_reason": "battery full",
    "countersigned": True,
    "receipt": RECEIPT,
    "peer_receipt": {**RECEIPT, "signature": "0x" + SIGNATURE[2:][::-1]},
    "supplies": None,
}
DEVICE: Final = {
    "device_id": CHARGE_POINT,
    "name": "bay 2 charger",
    "online": True,
    "state": "charging",
    "services": [
        {
            "name": "charging",
            "unit": "Wh",
            "price": "250000000000000",
            "asset": TOKEN,
            "kind": "energy",
        }
    ],
    "registered_ms": STARTED_MS - 3_600_000,
    "last_seen_ms": STARTED_MS + 60_000,
    "detail": {"power_w": 11000, "plug": "type 2"},
}
ERROR: Final = {
    "error": {
        "code": "insufficient_funds",
        "message": "the channel holds 993250000000000000 of ours, not 2000000000000000000",
        "field": "amount",
    }
}

# -- paid live data: a smart plug's feed, sold by its owner's node to a reader's

PLUG: Final = "plug-kitchen"
FEED_ID: Final = _hex32("feed")
READER: Final = _address("reader")
FEED_CREATE: Final = {
    "device_id": PLUG,
    "price_per_hour": "500",
    "min_seconds": 60,
    "max_seconds": 86_400,
}
FEED: Final = {
    "feed_id": FEED_ID,
    "offer": {
        **OFFER,
        "offer_id": FEED_ID,
        "kind": "data",
        "unit": "s",
        "price": "1",
        "min_units": 60,
        "max_units": 86_400,
        "window": 86_400,
        "leader": "payer",
        "batch": 10,
    },
    "device_id": PLUG,
    "price_per_second": "1",
    "price_per_hour": "3600",
    "min_seconds": 60,
    "max_seconds": 86_400,
    "asset": TOKEN,
    "access_key": _hex32("access key"),
    "broker": "192.168.1.20:1883",
    "live_topic": f"m2m/{PLUG}/live",
    "free_topic": f"m2m/{PLUG}/1m",
}
FEED_PUBLISHED: Final = {
    "feed": FEED,
    "device": {
        "username": f"m2mpay-{PLUG}",
        "password": "kJ3vQ9xLmP2wZr8TnB5yHc7dFg4sAe6U",
        "host": "192.168.1.20",
        "port": 1883,
    },
}
GRANT_BUY: Final = {
    "seller": "http://192.168.1.20:8402",
    "feed_id": FEED_ID,
    "seconds": 3600,
    "deposit": ONE_TOKEN,
}
GRANT: Final = {
    "session_id": SESSION_ID,
    "role": "buyer",
    "peer": CHARGER,
    "feed_id": FEED_ID,
    "device_id": PLUG,
    "broker": "192.168.1.20:1883",
    "live_topic": f"m2m/{PLUG}/live",
    "username": "buyer-5f2a9c41d0e3",
    "phase": "running",
    "seconds": 3600,
    "paid": "3600",
    "asset": TOKEN,
    "paid_until_ms": STARTED_MS + 3_600_000,
    "seller_url": "http://192.168.1.20:8402",
}
GRANT_BOUGHT: Final = {
    "grant": GRANT,
    "host": "192.168.1.20",
    "port": 1883,
    "username": "buyer-5f2a9c41d0e3",
    "password": "Xw4Rt7Yp2Lq9Zm3Nb6Vc8Kd5Hf1Gs0Ja",
    "readable": True,
}

# -- the market: the lamp's owner makes IoT-Light and pools it against ETH
LIGHT: Final = _address("IoT-Light")
LIGHT_POOL_ID: Final = _hex32("ETH/LIGHT")
TOKEN_CREATE: Final = {
    "name": "IoT-Light",
    "symbol": "LIGHT",
    "decimals": 18,
    "supply": "1000000000000000000000000",
    "mintable": False,
}
TOKEN_MADE: Final = {
    "address": LIGHT,
    "name": "IoT-Light",
    "symbol": "LIGHT",
    "decimals": 18,
    "supply": "1000000000000000000000000",
    "creator": CHARGER,
    "holder": CHARGER,
    "mint_owner": None,
    "block": 57,
    "tx_hash": TX_HASH,
}
TOKEN_DETAIL: Final = {
    "token": TOKEN_MADE,
    "total_supply": "1000000000000000000000000",
    "balance": "999000000000000000000000",
}
POOL: Final = {
    "pool_id": LIGHT_POOL_ID,
    "token0": NATIVE,
    "token1": LIGHT,
    "symbol0": "ETH",
    "symbol1": "LIGHT",
    "decimals0": 18,
    "decimals1": 18,
    "reserve0": "10000000000000000000",
    "reserve1": "1000000000000000000000",
    "total_shares": "100000000000000000000",
    "shares": "99999999999999999000",
    "price0": "100",
    "price1": "0.01",
    "fee_bps": 30,
}
QUOTE: Final = {
    "sell": NATIVE,
    "buy": LIGHT,
    "amount_in": "100000000000000000",
    "amount_out": "9871580343970612988",
    "fee": "300000000000000",
    "fee_bps": 30,
    "price_impact_bps": 99,
}
SWAP_REQUEST: Final = {
    "sell": NATIVE,
    "buy": LIGHT,
    "amount_in": "100000000000000000",
    "slippage_bps": 50,
    "deadline_s": 300,
}
SWAP: Final = {
    "sell": NATIVE,
    "buy": LIGHT,
    "amount_in": "100000000000000000",
    "amount_out": "9871580343970612988",
    "min_out": "9822222442250759923",
    "tx_hash": TX_HASH,
    "block": 60,
    "gas_used": 71_204,
}
LIQUIDITY_ADD: Final = {
    "asset_a": NATIVE,
    "asset_b": LIGHT,
    "amount_a": "10000000000000000000",
    "amount_b": "1000000000000000000000",
    "min_shares": "0",
    "deadline_s": 300,
}
LIQUIDITY_REMOVE: Final = {
    "asset_a": NATIVE,
    "asset_b": LIGHT,
    "shares": "50000000000000000000",
    "min_a": "0",
    "min_b": "0",
}
LIQUIDITY: Final = {
    "pool_id": LIGHT_POOL_ID,
    "asset_a": NATIVE,
    "asset_b": LIGHT,
    "amount_a": "10000000000000000000",
    "amount_b": "1000000000000000000000",
    "shares": "99999999999999999000",
    "shares_held": "99999999999999999000",
    "tx_hash": TX_HASH,
    "block": 58,
    "gas_used": 205_311,
}
