"""MeteredEscrow: a deposit released by the meter's signed final reading, or refunded after
its deadline; the attacks on it revert with the contract's reason and move nothing."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import pytest

from m2mpay.chain import Ledger, TokenContract, deploy_token
from m2mpay.chain.abi import ContractInterface
from m2mpay.chain.escrow import EscrowState, EscrowTerms, MeteredEscrow, deploy_escrow
from m2mpay.chain.hub import NATIVE_TOKEN
from m2mpay.crypto import Address, PrivateKey
from m2mpay.crypto.signature import SECP256K1_N
from m2mpay.errors import TransactionReverted
from tests.conformance.test_hub_attacks import _misbehaving_token

UNIT = 10**18
PRICE = 3 * 10**15  # per unit
DEPOSIT = 10**18  # pays for 333 units
TIMEOUT = 100  # seconds


@dataclass
class Market:
    ledger: Ledger
    escrow: MeteredEscrow
    token: TokenContract
    buyer: PrivateKey
    seller: PrivateKey
    meter: PrivateKey
    anyone: PrivateKey
    nonce: int = 0

    async def terms(self, *, token: bool = True, deposit: int = DEPOSIT) -> EscrowTerms:
        self.nonce += 1
        return EscrowTerms(
            buyer=self.buyer.address,
            seller=self.seller.address,
            meter=self.meter.address,
            token=self.token.address if token else NATIVE_TOKEN,
            price=PRICE,
            deposit=deposit,
            deadline=await self.ledger.block_timestamp() + TIMEOUT,
            nonce=self.nonce,
        )

    async def opened(self, *, token: bool = True) -> EscrowTerms:
        terms = await self.terms(token=token)
        if token:
            await self.token.approve(self.buyer, self.escrow.address, terms.deposit)
        await self.escrow.deposit(self.buyer, terms)
        return terms

    async def held(self) -> int:
        return await self.token.balance_of(self.escrow.address)


@pytest.fixture
async def market(ledger: Ledger) -> Market:
    owner, buyer, seller, meter, anyone = ledger.dev_accounts()[:5]
    token, _ = await deploy_token(ledger, owner, "M2M Token", "M2M")
    await token.mint(owner, buyer.address, 100 * UNIT)
    escrow, _ = await deploy_escrow(ledger, owner)
    return Market(ledger, escrow, token, buyer, seller, meter, anyone)


async def test_lifecycle_pays_the_reading_and_refunds_the_rest_once(market: Market) -> None:
    escrow, token = market.escrow, market.token
    terms = await market.opened()
    assert await escrow.state(terms.id) is EscrowState.OPEN
    assert await escrow.contract_escrow_id(terms) == terms.id
    assert await market.held() == DEPOSIT
    buyer_before = await token.balance_of(market.buyer.address)
    reading = 200
    signature = escrow.sign_reading(market.meter, terms.id, reading)
    # The seller claims; the payouts go to the escrow's parties.
    claimed = await escrow.claim(market.seller, terms, reading, signature)
    [event] = escrow.events_of(claimed)
    assert event.name == "EscrowClaimed"
    assert event.args == {
        "escrow_id": terms.id,
        "claimer": market.seller.address.checksum.lower(),  # as the ABI decoder gives it
        "reading": reading,
        "paid": reading * PRICE,
        "refunded": DEPOSIT - reading * PRICE,
    }
    assert await token.balance_of(market.seller.address) == reading * PRICE
    assert await token.balance_of(market.buyer.address) == buyer_before + DEPOSIT - reading * PRICE
    assert await market.held() == 0
    assert await escrow.state(terms.id) is EscrowState.CLAIMED
    with pytest.raises(TransactionReverted, match="escrow already claimed"):
        await escrow.claim(market.seller, terms, reading, signature)


async def test_eth_lifecycle_claimed_by_anyone_at_the_full_deposit(market: Market) -> None:
    escrow, ledger = market.escrow, market.ledger
    terms = await market.opened(token=False)
    assert await ledger.balance(escrow.address) == DEPOSIT
    seller_before = await ledger.balance(market.seller.address)
    buyer_before = await ledger.balance(market.buyer.address)
    reading = terms.max_reading
    signature = escrow.sign_reading(market.meter, terms.id, reading)
    await escrow.claim(market.anyone, terms, reading, signature)
    paid, refunded = terms.split(reading)
    assert await ledger.balance(market.seller.address) == seller_before + paid
    assert await ledger.balance(market.buyer.address) == buyer_before + refunded
    assert refunded == DEPOSIT - 333 * PRICE
    assert await ledger.balance(escrow.address) == 0


async def test_deposit_with_permit_opens_in_one_transaction(market: Market) -> None:
    escrow, token = market.escrow, market.token
    terms = await market.terms()
    deadline = await market.ledger.block_timestamp() + 600
    permit = await token.sign_permit(market.buyer, escrow.address, terms.deposit, deadline)
    opened = await escrow.deposit(market.buyer, terms, permit=permit, permit_deadline=deadline)
    # The event carries every term, so an indexer rebuilds the escrow from logs alone.
    [event] = escrow.events_of(opened)
    assert event.name == "EscrowOpened"
    assert event.args["escrow_id"] == terms.id
    assert (event.args["price"], event.args["deposit"]) == (PRICE, DEPOSIT)
    assert (event.args["deadline"], event.args["nonce"]) == (terms.deadline, terms.nonce)
    assert await escrow.state(terms.id) is EscrowState.OPEN
    assert await market.held() == DEPOSIT


async def test_reading_signed_by_another_key_is_refused(market: Market) -> None:
    terms = await market.opened()
    forged = market.escrow.sign_reading(market.seller, terms.id, 100)
    with pytest.raises(TransactionReverted, match="reading not signed by the meter"):
        await market.escrow.claim(market.seller, terms, 100, forged)
    assert await market.escrow.state(terms.id) is EscrowState.OPEN
    assert await market.held() == DEPOSIT


async def test_signature_replayed_on_another_escrow_is_refused(market: Market) -> None:
    first = await market.opened()
    second = await market.opened()  # the same parties and price, another nonce
    signature = market.escrow.sign_reading(market.meter, first.id, 10)
    await market.escrow.claim(market.seller, first, 10, signature)
    with pytest.raises(TransactionReverted, match="reading not signed by the meter"):
        await market.escrow.claim(market.seller, second, 10, signature)
    # Nor does it pass for another reading of the same escrow.
    with pytest.raises(TransactionReverted, match="reading not signed by the meter"):
        await market.escrow.claim(market.seller, second, 11, signature)
    assert await market.escrow.state(second.id) is EscrowState.OPEN
    assert await market.held() == DEPOSIT


async def test_reading_above_the_deposit_is_refused(market: Market) -> None:
    terms = await market.opened()
    for reading in (terms.max_reading + 1, 2**256 - 1):  # the second would overflow x price
        signature = market.escrow.sign_reading(market.meter, terms.id, reading)
        with pytest.raises(TransactionReverted, match="reading above the deposit"):
            await market.escrow.claim(market.seller, terms, reading, signature)
    assert await market.escrow.state(terms.id) is EscrowState.OPEN
    assert await market.held() == DEPOSIT


async def test_refund_before_the_deadline_is_refused(market: Market) -> None:
    terms = await market.opened()
    with pytest.raises(TransactionReverted, match="deadline not reached"):
        await market.escrow.refund(market.buyer, terms)
    assert await market.held() == DEPOSIT


async def test_refund_after_the_deadline_then_no_claim(market: Market) -> None:
    escrow, token = market.escrow, market.token
    terms = await market.opened()
    signature = escrow.sign_reading(market.meter, terms.id, 5)
    buyer_before = await token.balance_of(market.buyer.address)
    await market.ledger.advance_time(TIMEOUT + 1)
    with pytest.raises(TransactionReverted, match="escrow expired"):
        await escrow.claim(market.seller, terms, 5, signature)
    refunded = await escrow.refund(market.anyone, terms)
    assert [(e.name, e.args) for e in escrow.events_of(refunded)] == [
        ("EscrowRefunded", {"escrow_id": terms.id, "amount": DEPOSIT})
    ]
    assert await token.balance_of(market.buyer.address) == buyer_before + DEPOSIT
    assert await escrow.state(terms.id) is EscrowState.REFUNDED
    with pytest.raises(TransactionReverted, match="escrow already refunded"):
        await escrow.claim(market.seller, terms, 5, signature)
    with pytest.raises(TransactionReverted, match="escrow already refunded"):
        await escrow.refund(market.buyer, terms)
    assert await token.balance_of(market.seller.address) == 0


async def test_bad_deposits_are_refused(market: Market) -> None:
    escrow = market.escrow
    terms = await market.terms()
    await market.token.approve(market.buyer, escrow.address, 10 * DEPOSIT)
    now = await market.ledger.block_timestamp()
    cases = {
        "zero deposit": replace(terms, deposit=0),
        "zero price": replace(terms, price=0),
        "deposit buys no unit": replace(terms, deposit=PRICE - 1),
        "zero address meter": replace(terms, meter=NATIVE_TOKEN),
        "buyer is the seller": replace(terms, seller=market.buyer.address),
        "deadline in the past": replace(terms, deadline=now),
        "deadline too far": replace(terms, deadline=now + 2 * 31_536_000),
        "buyer must be the caller": replace(terms, buyer=market.anyone.address),
        "token is not a contract": replace(terms, token=market.anyone.address),
    }
    for reason, bad in cases.items():
        with pytest.raises(TransactionReverted, match=reason):
            await escrow.deposit(market.buyer, bad)
    await escrow.deposit(market.buyer, terms)
    with pytest.raises(TransactionReverted, match="escrow id already used"):
        await escrow.deposit(market.buyer, terms)
    assert await market.held() == DEPOSIT


async def test_eth_value_must_match_the_deposit(market: Market) -> None:
    terms = await market.terms(token=False)
    data = market.escrow._abi.encode_call("deposit", terms.as_abi())
    with pytest.raises(TransactionReverted, match="ETH value does not match deposit"):
        await market.ledger.transact(
            market.buyer, market.escrow.address, data, gas=120_000, value=DEPOSIT - 1
        )
    assert await market.escrow.state(terms.id) is EscrowState.UNKNOWN


async def test_unknown_escrow_and_malleable_reading_are_refused(market: Market) -> None:
    terms = await market.opened()
    good = market.escrow.sign_reading(market.meter, terms.id, 7)
    stranger = replace(terms, nonce=10**9)
    with pytest.raises(TransactionReverted, match="unknown escrow"):
        await market.escrow.claim(market.seller, stranger, 7, good)
    high_s = (SECP256K1_N - int.from_bytes(good.s, "big")).to_bytes(32, "big")
    # `Signature` refuses the high-s twin, so the call is encoded by hand.
    data = market.escrow._abi.encode_call("claim", terms.as_abi(), 7, (good.r, high_s, 55 - good.v))
    with pytest.raises(TransactionReverted, match="malleable signature"):
        await market.ledger.transact(market.seller, market.escrow.address, data, gas=110_000)
    assert await market.held() == DEPOSIT


# A contract whose every call reverts: a seller that refuses ETH.
_REFUSING_INIT_CODE = bytes.fromhex("625f5ffd5f526003601df3")


async def test_a_seller_refusing_its_payout_does_not_block_the_refund(market: Market) -> None:
    escrow, ledger = market.escrow, market.ledger
    refusing = await ledger.deploy(market.anyone, _REFUSING_INIT_CODE, gas=100_000)
    assert refusing.contract_address is not None
    terms = replace(await market.terms(token=False), seller=refusing.contract_address)
    await escrow.deposit(market.buyer, terms)
    buyer_before = await ledger.balance(market.buyer.address)
    signature = escrow.sign_reading(market.meter, terms.id, 100)
    await escrow.claim(market.anyone, terms, 100, signature)
    paid, refunded = terms.split(100)
    assert await ledger.balance(market.buyer.address) == buyer_before + refunded
    assert await escrow.deferred(NATIVE_TOKEN, refusing.contract_address) == paid
    assert await ledger.balance(escrow.address) == paid
    with pytest.raises(TransactionReverted, match="nothing to withdraw"):
        await escrow.withdraw(market.seller, NATIVE_TOKEN, market.seller.address)


async def _misbehaving(market: Market) -> tuple[ContractInterface, Address]:
    abi, bytecode = _misbehaving_token()
    receipt = await market.ledger.deploy(market.anyone, bytecode, gas=1_000_000)
    assert receipt.contract_address is not None
    return abi, receipt.contract_address


async def _call(
    market: Market, signer: PrivateKey, token: tuple[ContractInterface, Address], *call: Any
) -> None:
    abi, address = token
    await market.ledger.transact(signer, address, abi.encode_call(*call), gas=100_000)


async def test_a_token_that_takes_a_fee_on_transfer_is_refused(market: Market) -> None:
    bad = await _misbehaving(market)
    # It reports the transfer as done and moves nothing: the most a fee can take.
    await _call(market, market.anyone, bad, "set_fake_transfer_from", True)
    terms = replace(await market.terms(), token=bad[1])
    with pytest.raises(TransactionReverted, match="token took a fee on transfer"):
        await market.escrow.deposit(market.buyer, terms)
    assert await market.escrow.state(terms.id) is EscrowState.UNKNOWN


async def test_a_token_payout_refused_is_kept_for_withdraw(market: Market) -> None:
    escrow = market.escrow
    bad = await _misbehaving(market)
    abi, token = bad
    await _call(market, market.anyone, bad, "mint", market.buyer.address, DEPOSIT)
    await _call(market, market.buyer, bad, "approve", escrow.address, DEPOSIT)
    # Like a stablecoin's blocklist: the seller's address is refused the token.
    await _call(market, market.anyone, bad, "set_refuse_to", market.seller.address)
    terms = replace(await market.terms(), token=token)
    await escrow.deposit(market.buyer, terms)
    await escrow.claim(market.anyone, terms, 10, escrow.sign_reading(market.meter, terms.id, 10))
    paid, refunded = terms.split(10)

    async def balance(who: Address) -> int:
        data = await market.ledger.call(token, abi.encode_call("balanceOf", who))
        return int(abi.decode_output("balanceOf", data)[0])

    assert await balance(market.buyer.address) == refunded
    assert await escrow.deferred(token, market.seller.address) == paid
    # The seller takes its share to another of its addresses, once.
    await escrow.withdraw(market.seller, token, market.anyone.address)
    assert await balance(market.anyone.address) == paid
    assert await escrow.deferred(token, market.seller.address) == 0
    with pytest.raises(TransactionReverted, match="nothing to withdraw"):
        await escrow.withdraw(market.seller, token, market.anyone.address)
