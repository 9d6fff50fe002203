"""What every binding of a deployed contract shares: its ledger, address and ABI, and how
one is deployed."""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

from m2mpay.chain.artifacts import load_artifact
from m2mpay.chain.ledger import Ledger, Receipt
from m2mpay.crypto import Address, PrivateKey
from m2mpay.errors import ContractError

__all__ = ["ContractBinding", "deploy_binding"]


class ContractBinding:
    """Typed access to one deployed contract built from the artifact `ARTIFACT`."""

    ARTIFACT: ClassVar[str]

    def __init__(self, ledger: Ledger, address: Address) -> None:
        self.ledger = ledger
        self.address = address
        self._abi = load_artifact(self.ARTIFACT).interface


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
