"""What every binding of a deployed contract shares: its ledger, address and ABI, and how
one is deployed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any, ClassVar, Final, TypeVar

from m2mpay.chain.artifacts import load_artifact
from m2mpay.chain.ledger import BlockTag, Ledger, Receipt
from m2mpay.crypto import ZERO_ADDRESS, Address, PrivateKey, Signature
from m2mpay.errors import ContractError

__all__ = ["NATIVE_TOKEN", "AbiStruct", "ContractBinding", "deploy_binding", "signature_abi"]

NATIVE_TOKEN: Final = ZERO_ADDRESS  # the token of a deposit paid in ETH
# What our contracts read as no signature at all.
_NO_SIGNATURE: Final = (bytes(32), bytes(32), 0)


class ContractBinding:
    """Typed access to one deployed contract built from the artifact `ARTIFACT`."""

    ARTIFACT: ClassVar[str]
    # The gas each function is sent with, measured per binding, so that no transaction
    # pays a round trip for estimation.
    GAS: ClassVar[Mapping[str, int]]

    def __init__(self, ledger: Ledger, address: Address) -> None:
        self.ledger = ledger
        self.address = address
        self._abi = load_artifact(self.ARTIFACT).interface

    async def _outputs(self, name: str, *args: Any, block: BlockTag = "latest") -> tuple[Any, ...]:
        """What the view `name` returns at `block`, decoded."""
        data = await self.ledger.call(self.address, self._abi.encode_call(name, *args), block=block)
        return self._abi.decode_output(name, data)

    async def _output(self, name: str, *args: Any, block: BlockTag = "latest") -> Any:
        """The one value the view `name` returns at `block`."""
        return (await self._outputs(name, *args, block=block))[0]

    async def _transact(self, signer: PrivateKey, name: str, *args: Any, value: int = 0) -> Receipt:
        """Call `name` in a transaction signed by `signer` and wait for its receipt."""
        return await self.ledger.transact(
            signer,
            self.address,
            self._abi.encode_call(name, *args),
            gas=self.GAS[name],
            value=value,
        )

    async def _pay_in(
        self,
        payer: PrivateKey,
        name: str,
        args: tuple[Any, ...],
        *,
        token: Address,
        amount: int,
        permit: Signature | None,
        permit_deadline: int,
    ) -> Receipt:
        """Call `name` (or `name_with_permit`) paying in `amount` of `token`: as ETH, from
        an approved token allowance, or with a permit."""
        if permit is not None:
            return await self._transact(
                payer, f"{name}_with_permit", *args, permit_deadline, signature_abi(permit)
            )
        value = amount if token == NATIVE_TOKEN else 0
        return await self._transact(payer, name, *args, value=value)


B = TypeVar("B", bound=ContractBinding)


async def deploy_binding(
    binding: type[B], ledger: Ledger, deployer: PrivateKey, *constructor_args: Any, gas: int
) -> tuple[B, Receipt]:
    """Deploy a new `binding.ARTIFACT` contract; the binding to it and the receipt."""
    artifact = load_artifact(binding.ARTIFACT)
    init_code = artifact.bytecode
    if constructor_args:
        init_code += artifact.interface.encode_constructor(*constructor_args)
    receipt = await ledger.deploy(deployer, init_code, gas=gas)
    if receipt.contract_address is None:
        raise ContractError(f"{binding.ARTIFACT} deployment produced no contract address")
    return binding(ledger, receipt.contract_address), receipt


class AbiStruct:
    """A dataclass that mirrors a struct a contract takes: its fields, declared in the
    contract's order, are the tuple the ABI encodes."""

    __slots__ = ()

    def as_abi(self) -> tuple[Any, ...]:
        record: Any = self  # a dataclass, by the contract of this base
        return tuple(getattr(record, field.name) for field in fields(record))


def signature_abi(signature: Signature | None) -> tuple[bytes, bytes, int]:
    """A signature as our contracts take it: (r, s, v)."""
    if signature is None:
        return _NO_SIGNATURE
    return (signature.r, signature.s, signature.v)
