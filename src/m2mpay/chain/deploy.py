"""Deploying the contracts and remembering where they are, per chain, in the data dir."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from m2mpay.chain.anchor import TelemetryAnchor, deploy_anchor
from m2mpay.chain.artifacts import load_artifact
from m2mpay.chain.escrow import deploy_escrow
from m2mpay.chain.exchange import deploy_exchange
from m2mpay.chain.hub import ChannelHub, deploy_hub
from m2mpay.chain.ledger import Ledger, Receipt
from m2mpay.chain.registry import deploy_registry
from m2mpay.chain.token import TokenContract, deploy_token
from m2mpay.chain.token_factory import deploy_token_blueprint, deploy_token_factory
from m2mpay.crypto import Address, PrivateKey
from m2mpay.errors import ContractError, DeploymentNotFound

__all__ = [
    "DEPLOYMENTS_FILE",
    "Deployment",
    "MarketContracts",
    "deploy_contracts",
    "deploy_market",
    "load_deployment",
    "save_deployment",
    "verify_deployment",
]

DEPLOYMENTS_FILE: Final = "deployments.json"


@dataclass(frozen=True, slots=True)
class MarketContracts:
    """Where the market's contracts live: the token factory, the exchange, the service
    registry (bound to the deployment's hub) and the metered escrow."""

    token_factory: Address
    exchange: Address
    registry: Address
    escrow: Address

    def to_dict(self) -> dict[str, str]:
        return {
            "tokenFactory": self.token_factory.checksum,
            "exchange": self.exchange.checksum,
            "registry": self.registry.checksum,
            "escrow": self.escrow.checksum,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> MarketContracts:
        return cls(
            token_factory=Address(raw["tokenFactory"]),
            exchange=Address(raw["exchange"]),
            registry=Address(raw["registry"]),
            escrow=Address(raw["escrow"]),
        )

    def named(self) -> list[tuple[str, Address]]:
        """(contract name, address) of each, as the artifacts name them."""
        return [
            ("TokenFactory", self.token_factory),
            ("Exchange", self.exchange),
            ("ServiceRegistry", self.registry),
            ("MeteredEscrow", self.escrow),
        ]


@dataclass(frozen=True, slots=True)
class Deployment:
    """Where ChannelHub, the Token, the TelemetryAnchor and the market's contracts live
    on one chain.

    `anchor` is None in deployments recorded before the anchor existed, `market` in
    those recorded before the market's contracts did (a dev chain's node adds them).
    """

    chain_id: int
    hub: Address
    token: Address
    token_symbol: str
    deployer: Address
    block_number: int
    gas_used: int
    anchor: Address | None = None
    market: MarketContracts | None = None

    @property
    def caip2(self) -> str:
        return f"eip155:{self.chain_id}"

    def to_dict(self) -> dict[str, Any]:
        raw: dict[str, Any] = {
            "chainId": self.chain_id,
            "hub": self.hub.checksum,
            "token": self.token.checksum,
            "tokenSymbol": self.token_symbol,
            "deployer": self.deployer.checksum,
            "blockNumber": self.block_number,
            "gasUsed": self.gas_used,
        }
        if self.anchor is not None:
            raw["anchor"] = self.anchor.checksum
        if self.market is not None:
            raw["market"] = self.market.to_dict()
        return raw

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Deployment:
        return cls(
            chain_id=int(raw["chainId"]),
            hub=Address(raw["hub"]),
            token=Address(raw["token"]),
            token_symbol=str(raw["tokenSymbol"]),
            deployer=Address(raw["deployer"]),
            block_number=int(raw["blockNumber"]),
            gas_used=int(raw["gasUsed"]),
            anchor=Address(raw["anchor"]) if raw.get("anchor") else None,
            market=MarketContracts.from_dict(raw["market"]) if raw.get("market") else None,
        )


async def deploy_contracts(
    ledger: Ledger,
    deployer: PrivateKey,
    *,
    token_name: str = "M2M Token",
    token_symbol: str = "M2M",
    decimals: int = 18,
    mint: dict[Address, int] | None = None,
    telemetry_anchor: bool = True,
    market: bool = True,
) -> tuple[Deployment, ChannelHub, TokenContract]:
    """Deploy ChannelHub and a Token owned by `deployer`, minting `mint` to the given
    holders, then (unless told not to) the TelemetryAnchor and the market's contracts,
    last so that the hub's and the token's addresses are what they were before they
    existed."""
    hub, hub_receipt = await deploy_hub(ledger, deployer)
    token, token_receipt = await deploy_token(ledger, deployer, token_name, token_symbol, decimals)
    receipts = [hub_receipt, token_receipt]
    for holder, amount in (mint or {}).items():
        receipts.append(await token.mint(deployer, holder, amount))
    anchor: TelemetryAnchor | None = None
    if telemetry_anchor:
        anchor, anchor_receipt = await deploy_anchor(ledger, deployer)
        receipts.append(anchor_receipt)
    market_contracts: MarketContracts | None = None
    if market:
        market_contracts, market_receipts = await deploy_market(ledger, deployer, hub.address)
        receipts.extend(market_receipts)
    deployment = Deployment(
        chain_id=ledger.chain_id,
        hub=hub.address,
        token=token.address,
        token_symbol=token_symbol,
        deployer=deployer.address,
        block_number=receipts[-1].block_number,
        gas_used=sum(r.gas_used for r in receipts),
        anchor=anchor.address if anchor is not None else None,
        market=market_contracts,
    )
    return deployment, hub, token


async def deploy_market(
    ledger: Ledger, deployer: PrivateKey, hub: Address
) -> tuple[MarketContracts, list[Receipt]]:
    """Deploy the token factory (with its Token blueprint), the exchange, the service
    registry rating sessions of `hub`, and the metered escrow."""
    blueprint, blueprint_receipt = await deploy_token_blueprint(ledger, deployer)
    factory, factory_receipt = await deploy_token_factory(ledger, deployer, blueprint)
    exchange, exchange_receipt = await deploy_exchange(ledger, deployer)
    registry, registry_receipt = await deploy_registry(ledger, deployer, hub)
    escrow, escrow_receipt = await deploy_escrow(ledger, deployer)
    contracts = MarketContracts(
        token_factory=factory.address,
        exchange=exchange.address,
        registry=registry.address,
        escrow=escrow.address,
    )
    receipts = [
        blueprint_receipt,
        factory_receipt,
        exchange_receipt,
        registry_receipt,
        escrow_receipt,
    ]
    return contracts, receipts


def _deployments_path(data_dir: Path) -> Path:
    return data_dir / DEPLOYMENTS_FILE


def save_deployment(data_dir: Path, deployment: Deployment) -> Path:
    """Record `deployment` in `<data_dir>/deployments.json`, keyed by CAIP-2 chain id."""
    path = _deployments_path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    known: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    known[deployment.caip2] = deployment.to_dict()
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(known, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)
    return path


def load_deployment(data_dir: Path, chain_id: int) -> Deployment:
    path = _deployments_path(data_dir)
    try:
        known = json.loads(path.read_text())
        return Deployment.from_dict(known[f"eip155:{chain_id}"])
    except (FileNotFoundError, KeyError):
        raise DeploymentNotFound(
            f"no deployment for eip155:{chain_id} in {path}: run `m2mpay ledger deploy`"
        ) from None


async def verify_deployment(ledger: Ledger, deployment: Deployment) -> None:
    """Raise `ContractError` unless the recorded addresses hold our contracts' code."""
    if deployment.chain_id != ledger.chain_id:
        raise ContractError(f"deployment is for {deployment.caip2}, the ledger is {ledger.caip2}")
    contracts = [("ChannelHub", deployment.hub), ("Token", deployment.token)]
    if deployment.anchor is not None:
        contracts.append(("TelemetryAnchor", deployment.anchor))
    if deployment.market is not None:
        contracts.extend(deployment.market.named())
    for name, address in contracts:
        code = await ledger.code(address)
        # Vyper appends immutables after the runtime code, so compare the prefix.
        if not code.startswith(load_artifact(name).runtime_bytecode):
            raise ContractError(f"{address} does not hold the {name} contract of this build")
