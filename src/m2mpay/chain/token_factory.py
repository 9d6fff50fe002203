"""Binding of the TokenFactory contract: anyone creates a named ERC-20 with permit (a copy
of the Token contract, made from its ERC-5202 blueprint), and the list of every token
it made."""

from __future__ import annotations

from typing import Final

from m2mpay.chain.artifacts import load_artifact
from m2mpay.chain.binding import ContractBinding, deploy_binding
from m2mpay.chain.ledger import BlockTag, Ledger, LogEntry, Receipt
from m2mpay.chain.market_events import NO_MINT_OWNER, CreatedToken, decode_factory_event
from m2mpay.chain.token import TokenContract
from m2mpay.crypto import Address, PrivateKey
from m2mpay.errors import ContractError

__all__ = [
    "MAX_DECIMALS",
    "NO_MINT_OWNER",
    "TOKEN_FACTORY_GAS",
    "CreatedToken",
    "TokenFactory",
    "blueprint_init_code",
    "deploy_token_blueprint",
    "deploy_token_factory",
]

# About 1.25x what each step measures (`m2mpay bench gas`: `token_create`), so no
# transaction pays a round trip for estimation; `create` is mostly the new token's code.
TOKEN_FACTORY_GAS: Final = {
    "deploy_blueprint": 1_600_000,
    "deploy": 500_000,
    "create": 1_700_000,
}
MAX_DECIMALS: Final = 77  # 10**78 does not fit in a uint256
_MAX_NAME_BYTES: Final = 64  # the contract's String[64]
_MAX_SYMBOL_BYTES: Final = 32  # and String[32]
_UINT256_LIMIT: Final = 1 << 256

# ERC-5202: a blueprint is code that cannot be called (0xFE) or run, only copied as the
# init code of contracts made from it. The deployer below returns it as the runtime code:
# PUSH2 <length>, RETURNDATASIZE, DUP2, PUSH1 10, RETURNDATASIZE, CODECOPY, RETURN.
_BLUEPRINT_PREAMBLE: Final = b"\xfe\x71\x00"
_BLUEPRINT_DEPLOYER_LENGTH: Final = 10


def blueprint_init_code(init_code: bytes) -> bytes:
    """The init code that deploys `init_code` as an ERC-5202 blueprint."""
    blueprint = _BLUEPRINT_PREAMBLE + init_code
    if len(blueprint) >= 1 << 16:
        raise ContractError("a blueprint is under 64 KiB")
    deployer = (
        b"\x61" + len(blueprint).to_bytes(2, "big") + b"\x3d\x81\x60"
        + _BLUEPRINT_DEPLOYER_LENGTH.to_bytes(1, "big") + b"\x3d\x39\xf3"
    )  # fmt: skip
    assert len(deployer) == _BLUEPRINT_DEPLOYER_LENGTH
    return deployer + blueprint


class TokenFactory(ContractBinding):
    ARTIFACT = "TokenFactory"

    def __init__(self, ledger: Ledger, address: Address) -> None:
        super().__init__(ledger, address)
        self._topic = self._abi.event_topic("TokenCreated")

    async def create(
        self,
        creator: PrivateKey,
        name: str,
        symbol: str,
        *,
        decimals: int = 18,
        supply: int = 0,
        holder: Address | None = None,
        mint_owner: Address | None = None,
    ) -> tuple[TokenContract, Receipt]:
        """Create a token: `supply` to `holder` (the creator when not given); `mint_owner`
        may mint more later, no one when None. The new token's binding and the receipt.

        What the ABI cannot carry is refused here; the rest the contract refuses, with
        its reason (`TransactionReverted`)."""
        texts = (("name", name, _MAX_NAME_BYTES), ("symbol", symbol, _MAX_SYMBOL_BYTES))
        for label, text, limit in texts:
            if len(text.encode()) > limit:
                raise ContractError(f"a token's {label} is at most {limit} bytes of UTF-8")
        if not 0 <= decimals < 256:
            raise ContractError("a token's decimals are a uint8 (the contract takes 0 to 77)")
        if not 0 <= supply < _UINT256_LIMIT:
            raise ContractError("a token's supply is a uint256")
        data = self._abi.encode_call(
            "create",
            name,
            symbol,
            decimals,
            supply,
            holder if holder is not None else creator.address,
            mint_owner if mint_owner is not None else NO_MINT_OWNER,
        )
        receipt = await self.ledger.transact(
            creator, self.address, data, gas=TOKEN_FACTORY_GAS["create"]
        )
        created = next((c for log in receipt.logs if (c := self.decode(log)) is not None), None)
        if created is None:
            raise ContractError("the factory's receipt announces no TokenCreated")
        return TokenContract(self.ledger, created.token), receipt

    async def count(self) -> int:
        """How many tokens the factory has made."""
        return int(await self._output("count"))

    async def token_at(self, index: int) -> Address:
        """The `index`th token made (from 0); the zero address past the end."""
        return Address(await self._output("tokens", index))

    async def tokens(self, start: int = 0, limit: int | None = None) -> list[Address]:
        """The tokens made, in order, from `start`, at most `limit` of them."""
        end = await self.count()
        if limit is not None:
            end = min(end, start + limit)
        return [await self.token_at(index) for index in range(start, end)]

    async def is_token(self, token: Address) -> bool:
        """Whether this factory made `token`."""
        return bool(await self._output("is_token", token))

    async def blueprint(self) -> Address:
        return Address(await self._output("TOKEN_BLUEPRINT"))

    def decode(self, log: LogEntry) -> CreatedToken | None:
        """The token a `TokenCreated` log of this factory announces; None for other logs."""
        return decode_factory_event(log, self.address)

    async def created(self, from_block: int, to_block: BlockTag = "latest") -> list[CreatedToken]:
        """The tokens made in a block range, as their events tell."""
        logs = await self.ledger.get_logs(
            address=self.address, from_block=from_block, to_block=to_block, topics=[self._topic]
        )
        return [found for log in logs if (found := self.decode(log)) is not None]

    async def creation_of(self, token: Address) -> CreatedToken | None:
        """How `token` was made, if this factory made it (its `TokenCreated`, found by
        the token's indexed topic)."""
        logs = await self.ledger.get_logs(
            address=self.address, from_block=0, topics=[self._topic, bytes(12) + token]
        )
        return next((found for log in logs if (found := self.decode(log)) is not None), None)


def _token_init_code() -> bytes:
    return load_artifact(TokenContract.ARTIFACT).bytecode


async def deploy_token_blueprint(ledger: Ledger, deployer: PrivateKey) -> tuple[Address, Receipt]:
    """Deploy the Token contract's init code as a blueprint the factory copies."""
    init_code = blueprint_init_code(_token_init_code())
    receipt = await ledger.deploy(deployer, init_code, gas=TOKEN_FACTORY_GAS["deploy_blueprint"])
    if receipt.contract_address is None:
        raise ContractError("the Token blueprint's deployment produced no contract address")
    return receipt.contract_address, receipt


async def deploy_token_factory(
    ledger: Ledger, deployer: PrivateKey, blueprint: Address | None = None
) -> tuple[TokenFactory, Receipt]:
    """Deploy a TokenFactory over the Token blueprint at `blueprint`, deployed first when
    not given; the factory's receipt."""
    if blueprint is None:
        blueprint, _ = await deploy_token_blueprint(ledger, deployer)
    elif await ledger.code(blueprint) != _BLUEPRINT_PREAMBLE + _token_init_code():
        # The contract checks only that there is code: a factory over anything else
        # would hand out tokens that are not ours.
        raise ContractError(f"{blueprint} is not the Token contract's blueprint")
    return await deploy_binding(
        TokenFactory, ledger, deployer, blueprint, gas=TOKEN_FACTORY_GAS["deploy"]
    )
