"""`m2mpay bench gas`: the gas of every channel step, read from receipts."""

from __future__ import annotations

import secrets
from typing import Any, Final

from m2mpay.bench.gas_exchange import measure_exchange_gas
from m2mpay.bench.gas_registry import measure_registry_gas
from m2mpay.bench.rig import Progress, narrator
from m2mpay.chain.deploy import deploy_contracts
from m2mpay.chain.escrow import EscrowTerms, MeteredEscrow, deploy_escrow
from m2mpay.chain.events import ChannelClosing
from m2mpay.chain.hub import NATIVE_TOKEN, ChannelHub, Closing, OnchainChannel, deploy_hub
from m2mpay.chain.ledger import Ledger, Receipt
from m2mpay.chain.token import TokenContract
from m2mpay.chain.token_factory import deploy_token_factory
from m2mpay.crypto import PrivateKey, TransferAuthorization
from m2mpay.errors import LedgerError

__all__ = ["GAS_BUDGET", "GAS_REFERENCE", "measure_gas"]

# Published figures for the same steps in other systems.
GAS_REFERENCE: Final = {
    "uraiden_lifecycle_cooperative": 191_272,  # approve + open + cooperative close
    "raiden_lifecycle_cooperative": 305_000,
    "raiden_close_update_settle": 317_586,
    "uniswap_v2_router_swap": 135_000,  # the smart-order-router's model of a V2 swap
}
GAS_BUDGET: Final = {
    "lifecycle_cooperative": 175_000,
    "lifecycle_dispute": 300_000,
    "swap": 100_000,
}

_UNIT: Final = 10**18
_CHALLENGE_PERIOD: Final = 60


async def _open_with_permit(
    hub: ChannelHub, token: TokenContract, funder: PrivateKey, channel: OnchainChannel
) -> Receipt:
    deadline = await hub.ledger.block_timestamp() + 3600
    permit = await token.sign_permit(funder, hub.address, channel.deposit_a, deadline)
    return await hub.open(funder, channel, permit=permit, permit_deadline=deadline)


async def _cooperative_close(
    hub: ChannelHub, payer: PrivateKey, payee: PrivateKey, channel: OnchainChannel, paid: int
) -> Receipt:
    balance_a, balance_b = channel.deposit_a - paid, channel.deposit_b + paid
    return await hub.cooperative_close(
        payee,
        channel,
        balance_a,
        balance_b,
        hub.sign_settlement(payer, channel.id, balance_a, balance_b),
        hub.sign_settlement(payee, channel.id, balance_a, balance_b),
    )


async def _escrow_lifecycle(
    escrow: MeteredEscrow,
    token: TokenContract | None,
    buyer: PrivateKey,
    seller: PrivateKey,
    meter: PrivateKey,
    nonce: int,
    *,
    claim: bool = True,
) -> list[Receipt]:
    """Deposit (a token's with permit, as a channel opens) and the seller's claim of a third."""
    ledger = escrow.ledger
    now = await ledger.block_timestamp()
    terms = EscrowTerms(
        buyer.address,
        seller.address,
        meter.address,
        token.address if token is not None else NATIVE_TOKEN,
        price=10**15,
        deposit=_UNIT,
        deadline=now + 3600,
        nonce=nonce,
    )
    if token is None:
        receipts = [await escrow.deposit(buyer, terms)]
    else:
        permit = await token.sign_permit(buyer, escrow.address, _UNIT, now + 3600)
        receipts = [await escrow.deposit(buyer, terms, permit=permit, permit_deadline=now + 3600)]
    if claim:
        reading = terms.max_reading // 3
        signature = escrow.sign_reading(meter, terms.id, reading)
        receipts.append(await escrow.claim(seller, terms, reading, signature))
    return receipts


async def _token_gas(
    say: Progress,
    owner: PrivateKey,
    token: TokenContract,
    creator: PrivateKey,
    payee: PrivateKey,
    supply: int,
) -> dict[str, int]:
    """What creating a machine's own token costs, by a factory that made one before; and
    a transfer of `token` by EIP-3009 authorization."""
    say("token factory: a machine's own token created")
    holder = payee.address
    factory, _ = await deploy_token_factory(token.ledger, owner)
    # The factory's first token also fills its empty count; a later one is what it costs.
    await factory.create(creator, "IoT-Light", "LIGHT", supply=supply, mint_owner=creator.address)
    _, created = await factory.create(
        creator, "IoT-Heat", "HEAT", supply=supply, holder=holder, mint_owner=creator.address
    )
    return {
        "token_create": created.gas_used,
        "transfer_with_authorization": await _authorization_gas(say, token, creator, payee, owner),
    }


async def _authorization_gas(
    say: Progress,
    token: TokenContract,
    payer: PrivateKey,
    payee: PrivateKey,
    submitter: PrivateKey,
) -> int:
    """One EIP-3009 transfer by signed authorization (what x402's exact scheme settles),
    submitted by a third party, to a payee that holds tokens already."""
    say("token: a transfer by EIP-3009 authorization, submitted by a third party")
    now = await token.ledger.block_timestamp()
    authorization = TransferAuthorization(
        payer.address, payee.address, _UNIT // 10, 0, now + 3600, secrets.token_bytes(32)
    )
    signature = await token.sign_authorization(payer, authorization)
    receipt = await token.transfer_with_authorization(submitter, authorization, signature)
    return receipt.gas_used


async def _escrow_gas(
    say: Progress,
    ledger: Ledger,
    owner: PrivateKey,
    token: TokenContract,
    buyer: PrivateKey,
    seller: PrivateKey,
    meter: PrivateKey,
) -> tuple[dict[str, int], int]:
    """The escrow's steps in a token (steady state), and its native ETH lifecycle."""
    say("metered escrow: deposit with permit, the meter's reading claimed")
    escrow, _ = await deploy_escrow(ledger, owner)
    # Steady state as for channels: the escrow already holds another buyer's deposit.
    await _escrow_lifecycle(escrow, token, seller, buyer, meter, 0, claim=False)
    deposited, claimed = await _escrow_lifecycle(escrow, token, buyer, seller, meter, 1)
    native = await _escrow_lifecycle(escrow, None, buyer, seller, meter, 2)
    steps = {
        "escrow_deposit": deposited.gas_used,
        "escrow_claim": claimed.gas_used,
        "escrow_lifecycle": deposited.gas_used + claimed.gas_used,
    }
    return steps, sum(receipt.gas_used for receipt in native)


async def measure_gas(ledger: Ledger, progress: Progress | None = None) -> dict[str, Any]:
    """Run every contract path once on `ledger` (a dev chain) and report gas per step.

    Steady state is measured: both parties already hold tokens, the payer has
    signed a permit before and the hub holds other channels' deposits, as in any
    running system. First use (cold storage everywhere) is reported apart.
    """
    say = narrator(progress)
    keys = ledger.dev_accounts()
    if len(keys) < 5:
        raise LedgerError("the gas bench needs a dev chain with five funded accounts")
    owner, payer, payee, cold_payer, cold_payee = keys[:5]
    say("deploying ChannelHub and Token")
    supply = 1_000 * _UNIT
    _, hub, token = await deploy_contracts(
        ledger, owner, mint={k.address: supply for k in (payer, payee, cold_payer, cold_payee)}
    )

    def channel(nonce: int, token_address: Any = token.address) -> OnchainChannel:
        return OnchainChannel(
            payer.address, payee.address, token_address, _CHALLENGE_PERIOD, nonce, deposit_a=_UNIT
        )

    say("warming up: a channel that stays open")
    await _open_with_permit(hub, token, payer, channel(0))

    say("cooperative lifecycle: open with permit, top up, cooperative close")
    coop = channel(1)
    opened = await _open_with_permit(hub, token, payer, coop)
    deadline = await ledger.block_timestamp() + 3600
    permit = await token.sign_permit(payer, hub.address, _UNIT, deadline)
    topped = await hub.deposit(
        payer, coop, payer.address, _UNIT, permit=permit, permit_deadline=deadline
    )
    coop_topped = coop.with_deposit(payer.address, _UNIT)
    closed = await _cooperative_close(hub, payer, payee, coop_topped, _UNIT // 3)
    # The lifecycle total is open + close of one channel; measure that pair untouched.
    plain = channel(2)
    plain_open = await _open_with_permit(hub, token, payer, plain)
    plain_close = await _cooperative_close(hub, payer, payee, plain, _UNIT // 3)

    say("dispute lifecycle: open, stale unilateral close, challenge, settle")
    disputed = channel(3)
    dispute_open = await _open_with_permit(hub, token, payer, disputed)
    newest = _UNIT // 2
    proof = hub.sign_balance_proof(payer, disputed.id, newest)
    # The payer closes claiming it paid nothing; the payee proves otherwise.
    unilateral = await hub.close(payer, disputed, 0, 0, None)
    closing_event = next(
        e
        for e in await hub.events(unilateral.block_number, unilateral.block_number)
        if isinstance(e, ChannelClosing)
    )
    closing = Closing(closing_event.deadline, 0, 0)
    challenged = await hub.challenge(payee, disputed, closing, payer.address, newest, proof)
    await ledger.advance_time(_CHALLENGE_PERIOD + 1)
    settled = await hub.settle(payee, disputed, Closing(closing.deadline, newest, 0))

    say("native ETH lifecycle")
    native = channel(4, NATIVE_TOKEN)
    native_open = await hub.open(payer, native)
    native_close = await _cooperative_close(hub, payer, payee, native, _UNIT // 3)

    escrow_gas, native_escrow = await _escrow_gas(
        say, ledger, owner, token, payer, payee, cold_payee
    )

    say("first use: a fresh hub and the payer's first permit")
    cold_hub, _ = await deploy_hub(ledger, owner)
    cold = OnchainChannel(
        cold_payer.address,
        cold_payee.address,
        token.address,
        _CHALLENGE_PERIOD,
        0,
        deposit_a=_UNIT,
    )
    cold_open = await _open_with_permit(cold_hub, token, cold_payer, cold)
    cold_close = await _cooperative_close(cold_hub, cold_payer, cold_payee, cold, _UNIT // 3)

    tokens = await _token_gas(say, owner, token, payer, payee, supply)

    say("service registry: a listing, a rating of a session over the open channel")
    registry = await measure_registry_gas(hub, owner, payer, payee, channel(0))

    exchange = await measure_exchange_gas(ledger, owner, token, payer, payee, say)

    lifecycle_cooperative = plain_open.gas_used + plain_close.gas_used
    lifecycle_dispute = (
        dispute_open.gas_used + unilateral.gas_used + challenged.gas_used + settled.gas_used
    )
    return {
        "ledger": ledger.description,
        "chain": ledger.caip2,
        "open_with_deposit": opened.gas_used,
        "top_up": topped.gas_used,
        "cooperative_close": closed.gas_used,
        "unilateral_close": unilateral.gas_used,
        "challenge": challenged.gas_used,
        "settle": settled.gas_used,
        "lifecycle_cooperative": lifecycle_cooperative,
        "lifecycle_dispute": lifecycle_dispute,
        **escrow_gas,
        **registry,
        "native_eth": {
            "open_with_deposit": native_open.gas_used,
            "cooperative_close": native_close.gas_used,
            "lifecycle_cooperative": native_open.gas_used + native_close.gas_used,
            "escrow_lifecycle": native_escrow,
        },
        **tokens,
        "first_use": {
            "open_with_deposit": cold_open.gas_used,
            "cooperative_close": cold_close.gas_used,
            "lifecycle_cooperative": cold_open.gas_used + cold_close.gas_used,
        },
        **exchange,
        "budget": dict(GAS_BUDGET),
        "meets_budget": lifecycle_cooperative <= GAS_BUDGET["lifecycle_cooperative"]
        and lifecycle_dispute <= GAS_BUDGET["lifecycle_dispute"]
        and exchange["swap"] <= GAS_BUDGET["swap"],
        "reference": dict(GAS_REFERENCE),
        "notes": (
            "ERC-20 channels; open and top_up include the EIP-2612 permit that replaces "
            "approve, as does the escrow deposit. Steady state: parties hold tokens, payer has "
            "used permit before, hub and escrow hold other deposits. token_create: a token "
            "with its supply and a mint owner, by a factory that has made one before. "
            "transfer_with_authorization: EIP-3009, as x402's exact scheme settles a payment. "
            "Exchange: a token/token exact-in swap with an allowance "
            "left from before, the pool and the trader's balances existing; the second "
            "deposit of a provider holding shares; a quarter of its shares removed."
        ),
    }
