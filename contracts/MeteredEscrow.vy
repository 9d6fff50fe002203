# pragma version ~=0.4.3
# pragma optimize gas
# pragma nonreentrancy on
"""
@title m2mpay MeteredEscrow
@notice A discrete escrow for a buyer who will not open a channel. The buyer
        deposits a maximum (ETH or an ERC-20) for a seller, at a price per unit,
        naming the seller's meter (an oracle key) and a deadline. The meter signs
        its final reading as EIP-712 `MeterReading(escrowId, reading)`; until the
        deadline anyone may claim with it, which pays the seller reading x price
        and refunds the rest to the buyer. After the deadline with no claim, the
        buyer takes the deposit back. One claim or one refund, never both.

        The escrow id is the hash of all its terms, so a reading signed for one
        escrow names its buyer, seller, meter, token, price, deposit, deadline and
        nonce, and applies to no other. Storage holds one word per escrow (its
        state); callers pass the terms, events carry them.

        The meter signs one reading per escrow, the final one: anyone holding a
        signed reading may claim with it.
"""

from ethereum.ercs import IERC20


struct Escrow:
    buyer: address
    seller: address
    meter: address  # the oracle key whose signed reading releases the deposit
    token: address  # empty(address) for native ETH
    price: uint256  # per unit
    deposit: uint256  # the most the buyer can pay
    deadline: uint256  # claims until then (inclusive), refunds after
    nonce: uint256  # makes the id unique for the same terms


struct Signature:
    r: bytes32
    s: bytes32
    v: uint8


event EscrowOpened:
    escrow_id: indexed(bytes32)
    buyer: indexed(address)
    seller: indexed(address)
    meter: address
    token: address
    price: uint256
    deposit: uint256
    deadline: uint256
    nonce: uint256


event EscrowClaimed:
    escrow_id: indexed(bytes32)
    claimer: indexed(address)
    reading: uint256
    paid: uint256
    refunded: uint256


event EscrowRefunded:
    escrow_id: indexed(bytes32)
    amount: uint256


event PayoutDeferred:
    recipient: indexed(address)
    token: indexed(address)
    amount: uint256


event Withdrawn:
    recipient: indexed(address)
    token: indexed(address)
    receiver: address
    amount: uint256


interface IERC20Permit:
    def permit(
        owner: address, spender: address, amount: uint256, deadline: uint256, v: uint8, r: bytes32, s: bytes32
    ): nonpayable


# escrow id -> UNKNOWN, OPEN, CLAIMED or REFUNDED; never back to UNKNOWN, so an
# id is never reused and a signed reading can never apply twice.
escrows: public(HashMap[bytes32, uint256])
# token -> recipient -> amount whose push payment failed, claimable by withdraw
deferred: public(HashMap[address, HashMap[address, uint256]])

OPEN: constant(uint256) = 1
CLAIMED: constant(uint256) = 2
REFUNDED: constant(uint256) = 3
# A deadline further out than this is a typo that would lock the deposit.
MAX_TIMEOUT: constant(uint256) = 31536000  # one year
# Enough for a smart-contract wallet's receive hook, too little to grief a claim.
ETH_PAYOUT_GAS: constant(uint256) = 50000

EIP712_DOMAIN_TYPEHASH: constant(bytes32) = keccak256(
    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
METER_READING_TYPEHASH: constant(bytes32) = keccak256("MeterReading(bytes32 escrowId,uint256 reading)")
NAME_HASH: constant(bytes32) = keccak256("m2mpay")
VERSION_HASH: constant(bytes32) = keccak256("1")
# Signatures with s above half the curve order are the malleable twin of a valid one.
SECP256K1N_HALF: constant(uint256) = (
    57896044618658097711785492504343953926418782139537452191302581570759080747168
)

_CACHED_CHAIN_ID: immutable(uint256)
_CACHED_DOMAIN_SEPARATOR: immutable(bytes32)


@deploy
def __init__():
    _CACHED_CHAIN_ID = chain.id
    _CACHED_DOMAIN_SEPARATOR = self._build_domain_separator()


# ---------------------------------------------------------------- views


@view
@external
def domain_separator() -> bytes32:
    return self._domain_separator()


@pure
@external
def escrow_id(e: Escrow) -> bytes32:
    return self._escrow_id(e)


# ---------------------------------------------------------------- funding


@payable
@external
def deposit(e: Escrow) -> bytes32:
    """
    @notice Open escrow `e`, paid by its buyer (the caller): `e.deposit` in ETH
            with the call, or taken from the buyer's token allowance.
    """
    escrow_id: bytes32 = self._open(e)
    self._pull(e.token, e.deposit, msg.value)
    return escrow_id


@external
def deposit_with_permit(e: Escrow, permit_deadline: uint256, permit: Signature) -> bytes32:
    """
    @notice `deposit` in an ERC-20, approved by an EIP-2612 permit in the same
            transaction.
    """
    assert e.token != empty(address), "MeteredEscrow: permit needs a token"
    escrow_id: bytes32 = self._open(e)
    extcall IERC20Permit(e.token).permit(
        msg.sender, self, e.deposit, permit_deadline, permit.v, permit.r, permit.s
    )
    self._pull(e.token, e.deposit, 0)
    return escrow_id


# ---------------------------------------------------------------- releasing


@external
def claim(e: Escrow, reading: uint256, meter_signature: Signature):
    """
    @notice Until the deadline, pay the seller `reading` x price, as the meter
            signed it, and refund the rest of the deposit to the buyer. Anyone
            may submit it: the payouts go to the escrow's parties only.
    """
    escrow_id: bytes32 = self._escrow_id(e)
    self._expect_open(escrow_id)
    assert block.timestamp <= e.deadline, "MeteredEscrow: escrow expired"
    # reading x price <= deposit, compared by division so no reading overflows.
    assert reading <= e.deposit // e.price, "MeteredEscrow: reading above the deposit"
    digest: bytes32 = keccak256(
        concat(
            b"\x19\x01",
            self._domain_separator(),
            keccak256(abi_encode(METER_READING_TYPEHASH, escrow_id, reading)),
        )
    )
    assert self._recover(digest, meter_signature) == e.meter, "MeteredEscrow: reading not signed by the meter"
    paid: uint256 = reading * e.price
    refunded: uint256 = e.deposit - paid
    self.escrows[escrow_id] = CLAIMED
    log EscrowClaimed(escrow_id=escrow_id, claimer=msg.sender, reading=reading, paid=paid, refunded=refunded)
    self._pay(e.token, e.seller, paid)
    self._pay(e.token, e.buyer, refunded)


@external
def refund(e: Escrow):
    """
    @notice After the deadline with no claim, return the whole deposit to the
            buyer. Anyone may call it.
    """
    escrow_id: bytes32 = self._escrow_id(e)
    self._expect_open(escrow_id)
    assert block.timestamp > e.deadline, "MeteredEscrow: deadline not reached"
    self.escrows[escrow_id] = REFUNDED
    log EscrowRefunded(escrow_id=escrow_id, amount=e.deposit)
    self._pay(e.token, e.buyer, e.deposit)


@external
def withdraw(token: address, receiver: address):
    """
    @notice Claim payouts that could not be pushed (a reverting receiver, a
            token that refused the transfer), sent to `receiver`.
    """
    amount: uint256 = self.deferred[token][msg.sender]
    assert amount != 0, "MeteredEscrow: nothing to withdraw"
    assert receiver != empty(address), "MeteredEscrow: withdraw to zero address"
    self.deferred[token][msg.sender] = 0
    log Withdrawn(recipient=msg.sender, token=token, receiver=receiver, amount=amount)
    if token == empty(address):
        raw_call(receiver, b"", value=amount)
    else:
        assert extcall IERC20(token).transfer(receiver, amount, default_return_value=True), "MeteredEscrow: token transfer failed"


# ---------------------------------------------------------------- internals


@view
@internal
def _build_domain_separator() -> bytes32:
    return keccak256(abi_encode(EIP712_DOMAIN_TYPEHASH, NAME_HASH, VERSION_HASH, chain.id, self))


@view
@internal
def _domain_separator() -> bytes32:
    # Recomputed after a chain split so readings cannot be replayed across forks.
    if chain.id == _CACHED_CHAIN_ID:
        return _CACHED_DOMAIN_SEPARATOR
    return self._build_domain_separator()


@pure
@internal
def _escrow_id(e: Escrow) -> bytes32:
    return keccak256(abi_encode(e))


@view
@internal
def _expect_open(escrow_id: bytes32):
    state: uint256 = self.escrows[escrow_id]
    if state != OPEN:
        assert state != empty(uint256), "MeteredEscrow: unknown escrow"
        assert state != CLAIMED, "MeteredEscrow: escrow already claimed"
        raise "MeteredEscrow: escrow already refunded"


@pure
@internal
def _recover(digest: bytes32, sig: Signature) -> address:
    assert convert(sig.s, uint256) <= SECP256K1N_HALF, "MeteredEscrow: malleable signature"
    assert sig.v == 27 or sig.v == 28, "MeteredEscrow: bad signature v"
    signer: address = ecrecover(digest, sig.v, sig.r, sig.s)
    assert signer != empty(address), "MeteredEscrow: invalid signature"
    return signer


@internal
def _open(e: Escrow) -> bytes32:
    # The buyer is the caller: no one else can open (or squat) an escrow in its name.
    assert e.buyer == msg.sender, "MeteredEscrow: buyer must be the caller"
    assert e.seller != empty(address), "MeteredEscrow: zero address seller"
    assert e.seller != e.buyer, "MeteredEscrow: buyer is the seller"
    # ecrecover yields the zero address for garbage: a zero meter would accept anything.
    assert e.meter != empty(address), "MeteredEscrow: zero address meter"
    assert e.deposit != 0, "MeteredEscrow: zero deposit"
    assert e.price != 0, "MeteredEscrow: zero price"
    assert e.deposit >= e.price, "MeteredEscrow: deposit buys no unit"
    assert e.deadline > block.timestamp, "MeteredEscrow: deadline in the past"
    assert e.deadline <= block.timestamp + MAX_TIMEOUT, "MeteredEscrow: deadline too far"
    escrow_id: bytes32 = self._escrow_id(e)
    assert self.escrows[escrow_id] == empty(uint256), "MeteredEscrow: escrow id already used"
    self.escrows[escrow_id] = OPEN
    log EscrowOpened(
        escrow_id=escrow_id,
        buyer=e.buyer,
        seller=e.seller,
        meter=e.meter,
        token=e.token,
        price=e.price,
        deposit=e.deposit,
        deadline=e.deadline,
        nonce=e.nonce,
    )
    return escrow_id


@internal
def _pull(token: address, amount: uint256, eth_sent: uint256):
    # `eth_sent` is msg.value, passed in because the permit entry point is not payable.
    if token == empty(address):
        assert eth_sent == amount, "MeteredEscrow: ETH value does not match deposit"
        return
    assert eth_sent == 0, "MeteredEscrow: ETH sent to a token escrow"
    # A call to an address without code would revert with no reason at all.
    assert token.is_contract, "MeteredEscrow: token is not a contract"
    # A token that takes a fee on transfer would leave less than the deposit the
    # payouts count on, paid then out of other escrows: refuse it.
    before: uint256 = staticcall IERC20(token).balanceOf(self)
    assert extcall IERC20(token).transferFrom(msg.sender, self, amount, default_return_value=True), "MeteredEscrow: token transfer failed"
    assert staticcall IERC20(token).balanceOf(self) == before + amount, "MeteredEscrow: token took a fee on transfer"


@internal
def _pay(token: address, receiver: address, amount: uint256):
    # A receiver that refuses its payout must not block the other party's, so a
    # failed push is kept for `withdraw` instead of reverting the claim.
    if amount == 0:
        return
    ok: bool = False
    if token == empty(address):
        ok = raw_call(receiver, b"", value=amount, gas=ETH_PAYOUT_GAS, revert_on_failure=False)
    else:
        response: Bytes[32] = b""
        ok, response = raw_call(
            token,
            abi_encode(receiver, amount, method_id=method_id("transfer(address,uint256)")),
            max_outsize=32,
            revert_on_failure=False,
        )
        if ok and len(response) != 0:
            ok = convert(response, uint256) == 1
    if not ok:
        self.deferred[token][receiver] += amount
        log PayoutDeferred(recipient=receiver, token=token, amount=amount)
