"""What the exchange's tests share: a market (an exchange, two permit tokens, funded
traders) and a token that attacks on demand (`tests/contracts/HostileToken.vy`)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import vyper

from m2mpay.chain import Ledger, TokenContract, deploy_token
from m2mpay.chain.abi import ContractInterface
from m2mpay.chain.exchange import Exchange, deploy_exchange
from m2mpay.crypto import Address, PrivateKey

UNIT = 10**18


@dataclass
class Market:
    ledger: Ledger
    exchange: Exchange
    light: TokenContract  # a machine's own token
    m2m: TokenContract
    owner: PrivateKey
    alice: PrivateKey  # the first provider
    bob: PrivateKey  # a trader
    carol: PrivateKey  # a second provider, or an attacker

    async def deadline(self, ahead: int = 600) -> int:
        return await self.ledger.block_timestamp() + ahead


async def open_market(ledger: Ledger) -> Market:
    owner, alice, bob, carol = ledger.dev_accounts()[:4]
    exchange, _ = await deploy_exchange(ledger, owner)
    light, _ = await deploy_token(ledger, owner, "IoT-Light", "LIGHT")
    m2m, _ = await deploy_token(ledger, owner, "M2M Token", "M2M")
    for token in (light, m2m):
        for holder in (alice, bob, carol):
            await token.mint(owner, holder.address, 1_000 * UNIT)
    return Market(ledger, exchange, light, m2m, owner, alice, bob, carol)


@lru_cache(maxsize=1)
def _hostile_token() -> tuple[ContractInterface, bytes]:
    source = (Path(__file__).parents[1] / "contracts" / "HostileToken.vy").read_text()
    out = vyper.compile_code(source, output_formats=["abi", "bytecode"])
    return ContractInterface(out["abi"]), bytes.fromhex(out["bytecode"].removeprefix("0x"))


class HostileToken:
    """An ERC-20 without permit that keeps a fee or reenters when told to."""

    def __init__(self, ledger: Ledger, address: Address) -> None:
        self.ledger = ledger
        self.address = address
        self.abi = _hostile_token()[0]

    @classmethod
    async def deploy(cls, ledger: Ledger, deployer: PrivateKey) -> HostileToken:
        receipt = await ledger.deploy(deployer, _hostile_token()[1], gas=1_500_000)
        assert receipt.contract_address is not None
        return cls(ledger, receipt.contract_address)

    async def call(self, signer: PrivateKey, name: str, *args: Any) -> None:
        data = self.abi.encode_call(name, *args)
        await self.ledger.transact(signer, self.address, data, gas=500_000)

    async def view(self, name: str, *args: Any) -> Any:
        data = await self.ledger.call(self.address, self.abi.encode_call(name, *args))
        return self.abi.decode_output(name, data)[0]
