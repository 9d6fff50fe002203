"""The well-known development accounts, identical on every dev ledger.

Anvil, Hardhat and the embedded ledger all fund the accounts of the mnemonic
"test test … junk" at m/44'/60'/0'/0/i, so one set of dev keys works on any of
them. These keys are public: never use them on a real network.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Final

from m2mpay.crypto import PrivateKey

__all__ = ["DEV_HD_PATH", "DEV_MNEMONIC", "dev_keys"]

DEV_MNEMONIC: Final = "test test test test test test test test test test test junk"
DEV_HD_PATH: Final = "m/44'/60'/0'/0"


@lru_cache(maxsize=4)
def _derive(mnemonic: str, count: int) -> tuple[PrivateKey, ...]:
    from eth_tester.backends.pyevm.main import get_account_keys_from_mnemonic

    keys = get_account_keys_from_mnemonic(mnemonic, quantity=count, hd_path=DEV_HD_PATH)
    return tuple(PrivateKey(key.to_bytes()) for key in keys)


def dev_keys(count: int = 10, mnemonic: str = DEV_MNEMONIC) -> list[PrivateKey]:
    """The first `count` keys of the development mnemonic."""
    if count < 1:
        raise ValueError("count must be at least 1")
    return list(_derive(mnemonic, count))
