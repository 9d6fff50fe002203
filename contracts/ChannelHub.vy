# pragma version ~=0.4.3
# pragma optimize gas
# pragma nonreentrancy on
"""
@title m2mpay ChannelHub
@notice Many two-party payment channels in one contract, in native ETH or any
        ERC-20 token.

        Off-chain state is a pair of cumulative balance proofs: each party signs
        `BalanceProof(channelId, transferred)`, the total it has paid its peer so
        far. A payment is one signature by the payer; the newest proof is the one
        with the largest total, so no separate version counter is needed and a
        party can never be hurt by a proof it signed itself being replaced by a
        newer one.

        Storage holds one word per channel: the hash of its parameters, deposits
        and closing data. Callers pass the pre-image; events carry everything a
        watcher needs to rebuild it. This keeps a whole channel lifecycle at two
        fresh storage writes.
"""

from ethereum.ercs import IERC20


struct Channel:
    a: address
    b: address
    token: address  # empty(address) for native ETH
    challenge_period: uint256  # seconds
    nonce: uint256  # makes the id unique for the same pair, token and period
    deposit_a: uint256
    deposit_b: uint256


struct Closing:
    deadline: uint256  # 0 while the channel is open
    transferred_a: uint256  # total a has paid b
    transferred_b: uint256  # total b has paid a


struct Signature:
    r: bytes32
    s: bytes32
    v: uint8


event ChannelOpened:
    channel_id: indexed(bytes32)
    a: indexed(address)
    b: indexed(address)
    token: address
    challenge_period: uint256
    nonce: uint256
    deposit_a: uint256


event ChannelDeposited:
    channel_id: indexed(bytes32)
    participant: indexed(address)
    amount: uint256
    deposit_a: uint256
    deposit_b: uint256


event ChannelClosing:
    channel_id: indexed(bytes32)
    closer: indexed(address)
    transferred_a: uint256
    transferred_b: uint256
    deadline: uint256


event ChannelChallenged:
    channel_id: indexed(bytes32)
    challenger: indexed(address)
    transferred_a: uint256
    transferred_b: uint256
    deadline: uint256


event ChannelSettled:
    channel_id: indexed(bytes32)
    balance_a: uint256
    balance_b: uint256
    cooperative: bool


event PayoutDeferred:
    recipient: indexed(address)
    token: indexed(address)
    amount: uint256


event Withdrawn:
    recipient: indexed(address)
    token: indexed(address)
    receiver: address
    amount: uint256


# channel id -> hash of (Channel, Closing); SETTLED once paid out, so an id is
# never reused and old balance proofs can never apply to a new channel.
channels: public(HashMap[bytes32, bytes32])
# token -> recipient -> amount whose push payment failed, claimable by withdraw
deferred: public(HashMap[address, HashMap[address, uint256]])

SETTLED: constant(bytes32) = 0x0000000000000000000000000000000000000000000000000000000000000001
MAX_CHALLENGE_PERIOD: constant(uint256) = 31536000  # one year
# Enough for a smart-contract wallet's receive hook, too little to grief settlement.
ETH_PAYOUT_GAS: constant(uint256) = 50000

EIP712_DOMAIN_TYPEHASH: constant(bytes32) = keccak256(
    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
BALANCE_PROOF_TYPEHASH: constant(bytes32) = keccak256(
    "BalanceProof(bytes32 channelId,uint256 transferred)"
)
SETTLEMENT_TYPEHASH: constant(bytes32) = keccak256(
    "Settlement(bytes32 channelId,uint256 balanceA,uint256 balanceB)"
)
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


@view
@external
def channel_id(ch: Channel) -> bytes32:
    return self._channel_id(ch)


@view
@external
def state_hash(ch: Channel, closing: Closing) -> bytes32:
    return self._state_hash(ch, closing)


# ---------------------------------------------------------------- funding


@payable
@external
def open(ch: Channel) -> bytes32:
    """
    @notice Open a channel funded by the caller with `ch.deposit_a` for party a.
            The caller need not be a party: a host may fund a device's channel.
            `ch.deposit_b` must be zero; b funds later with `deposit`.
    """
    channel_id: bytes32 = self._open(ch)
    self._pull(ch.token, ch.deposit_a, msg.value)
    return channel_id


@external
def open_with_permit(ch: Channel, permit_deadline: uint256, permit: Signature) -> bytes32:
    """
    @notice `open` for an ERC-20 channel, approving the deposit with an
            EIP-2612 permit in the same transaction.
    """
    assert ch.token != empty(address), "ChannelHub: permit needs a token"
    channel_id: bytes32 = self._open(ch)
    extcall IERC20Permit(ch.token).permit(
        msg.sender, self, ch.deposit_a, permit_deadline, permit.v, permit.r, permit.s
    )
    self._pull(ch.token, ch.deposit_a, 0)
    return channel_id


@payable
@external
def deposit(ch: Channel, participant: address, amount: uint256):
    """
    @notice Add `amount`, paid by the caller, to `participant`'s deposit of an
            open channel: a top-up, or the second party's funding.
    """
    self._deposit(ch, participant, amount)
    self._pull(ch.token, amount, msg.value)


@external
def deposit_with_permit(
    ch: Channel, participant: address, amount: uint256, permit_deadline: uint256, permit: Signature
):
    assert ch.token != empty(address), "ChannelHub: permit needs a token"
    self._deposit(ch, participant, amount)
    extcall IERC20Permit(ch.token).permit(
        msg.sender, self, amount, permit_deadline, permit.v, permit.r, permit.s
    )
    self._pull(ch.token, amount, 0)


# ---------------------------------------------------------------- closing


@external
def cooperative_close(
    ch: Channel, balance_a: uint256, balance_b: uint256, sig_a: Signature, sig_b: Signature
):
    """
    @notice Pay both parties at once with a final split both of them signed.
            Anyone may submit it.
    """
    channel_id: bytes32 = self._channel_id(ch)
    self._expect_state(channel_id, self._state_hash(ch, empty(Closing)))
    assert balance_a + balance_b == ch.deposit_a + ch.deposit_b, "ChannelHub: split does not match deposits"
    digest: bytes32 = self._typed_digest(
        keccak256(abi_encode(SETTLEMENT_TYPEHASH, channel_id, balance_a, balance_b))
    )
    assert self._recover(digest, sig_a) == ch.a, "ChannelHub: settlement not signed by a"
    assert self._recover(digest, sig_b) == ch.b, "ChannelHub: settlement not signed by b"
    self.channels[channel_id] = SETTLED
    log ChannelSettled(channel_id=channel_id, balance_a=balance_a, balance_b=balance_b, cooperative=True)
    self._pay(ch.token, ch.a, balance_a)
    self._pay(ch.token, ch.b, balance_b)


@external
def close(ch: Channel, transferred_a: uint256, transferred_b: uint256, peer_proof: Signature):
    """
    @notice Start a unilateral close. The caller, a party, states its own paid
            total and submits the newest balance proof its peer signed (none is
            needed for a zero total). Either total can be raised by a newer
            proof until the challenge deadline.
    """
    channel_id: bytes32 = self._channel_id(ch)
    self._expect_state(channel_id, self._state_hash(ch, empty(Closing)))
    if msg.sender == ch.a:
        if transferred_b != 0:
            assert self._proof_signer(channel_id, transferred_b, peer_proof) == ch.b, "ChannelHub: proof not signed by b"
    else:
        assert msg.sender == ch.b, "ChannelHub: only a party can close"
        if transferred_a != 0:
            assert self._proof_signer(channel_id, transferred_a, peer_proof) == ch.a, "ChannelHub: proof not signed by a"
    closing: Closing = Closing(
        deadline=block.timestamp + ch.challenge_period,
        transferred_a=transferred_a,
        transferred_b=transferred_b,
    )
    self.channels[channel_id] = self._state_hash(ch, closing)
    log ChannelClosing(
        channel_id=channel_id,
        closer=msg.sender,
        transferred_a=transferred_a,
        transferred_b=transferred_b,
        deadline=closing.deadline,
    )


@external
def challenge(
    ch: Channel, closing: Closing, participant: address, transferred: uint256, proof: Signature
):
    """
    @notice During the challenge period, replace `participant`'s paid total by a
            larger one it signed. Anyone holding the proof may submit it: the
            other party or a watcher on its behalf.
    """
    channel_id: bytes32 = self._channel_id(ch)
    assert closing.deadline != 0, "ChannelHub: channel is not closing"
    self._expect_state(channel_id, self._state_hash(ch, closing))
    assert block.timestamp <= closing.deadline, "ChannelHub: challenge period is over"
    updated: Closing = closing
    if participant == ch.a:
        assert transferred > closing.transferred_a, "ChannelHub: proof is not newer"
        updated.transferred_a = transferred
    else:
        assert participant == ch.b, "ChannelHub: not a party of the channel"
        assert transferred > closing.transferred_b, "ChannelHub: proof is not newer"
        updated.transferred_b = transferred
    assert self._proof_signer(channel_id, transferred, proof) == participant, "ChannelHub: proof not signed by the party"
    self.channels[channel_id] = self._state_hash(ch, updated)
    log ChannelChallenged(
        channel_id=channel_id,
        challenger=msg.sender,
        transferred_a=updated.transferred_a,
        transferred_b=updated.transferred_b,
        deadline=updated.deadline,
    )


@external
def settle(ch: Channel, closing: Closing):
    """
    @notice After the challenge deadline, pay both parties from the final
            totals. Anyone may call it.
    """
    channel_id: bytes32 = self._channel_id(ch)
    assert closing.deadline != 0, "ChannelHub: channel is not closing"
    self._expect_state(channel_id, self._state_hash(ch, closing))
    assert block.timestamp > closing.deadline, "ChannelHub: challenge period not over"
    balance_a: uint256 = self._final_balance_a(ch, closing)
    balance_b: uint256 = ch.deposit_a + ch.deposit_b - balance_a
    self.channels[channel_id] = SETTLED
    log ChannelSettled(channel_id=channel_id, balance_a=balance_a, balance_b=balance_b, cooperative=False)
    self._pay(ch.token, ch.a, balance_a)
    self._pay(ch.token, ch.b, balance_b)


@external
def withdraw(token: address, receiver: address):
    """
    @notice Claim payouts that could not be pushed (a reverting receiver, a
            token that refused the transfer), sent to `receiver`.
    """
    amount: uint256 = self.deferred[token][msg.sender]
    assert amount != 0, "ChannelHub: nothing to withdraw"
    assert receiver != empty(address), "ChannelHub: withdraw to zero address"
    self.deferred[token][msg.sender] = 0
    log Withdrawn(recipient=msg.sender, token=token, receiver=receiver, amount=amount)
    if token == empty(address):
        raw_call(receiver, b"", value=amount)
    else:
        assert extcall IERC20(token).transfer(receiver, amount, default_return_value=True), "ChannelHub: token transfer failed"


# ---------------------------------------------------------------- internals


interface IERC20Permit:
    def permit(
        owner: address, spender: address, amount: uint256, deadline: uint256, v: uint8, r: bytes32, s: bytes32
    ): nonpayable


@view
@internal
def _build_domain_separator() -> bytes32:
    return keccak256(abi_encode(EIP712_DOMAIN_TYPEHASH, NAME_HASH, VERSION_HASH, chain.id, self))


@view
@internal
def _domain_separator() -> bytes32:
    # Recomputed after a chain split so states cannot be replayed across forks.
    if chain.id == _CACHED_CHAIN_ID:
        return _CACHED_DOMAIN_SEPARATOR
    return self._build_domain_separator()


@view
@internal
def _typed_digest(struct_hash: bytes32) -> bytes32:
    return keccak256(concat(b"\x19\x01", self._domain_separator(), struct_hash))


@pure
@internal
def _channel_id(ch: Channel) -> bytes32:
    return keccak256(abi_encode(ch.a, ch.b, ch.token, ch.challenge_period, ch.nonce))


@pure
@internal
def _state_hash(ch: Channel, closing: Closing) -> bytes32:
    return keccak256(abi_encode(ch, closing))


@view
@internal
def _expect_state(channel_id: bytes32, expected: bytes32):
    stored: bytes32 = self.channels[channel_id]
    if stored != expected:
        assert stored != empty(bytes32), "ChannelHub: unknown channel"
        assert stored != SETTLED, "ChannelHub: channel already settled"
        raise "ChannelHub: stale or wrong channel state"


@pure
@internal
def _recover(digest: bytes32, sig: Signature) -> address:
    assert convert(sig.s, uint256) <= SECP256K1N_HALF, "ChannelHub: malleable signature"
    assert sig.v == 27 or sig.v == 28, "ChannelHub: bad signature v"
    signer: address = ecrecover(digest, sig.v, sig.r, sig.s)
    assert signer != empty(address), "ChannelHub: invalid signature"
    return signer


@view
@internal
def _proof_signer(channel_id: bytes32, transferred: uint256, proof: Signature) -> address:
    return self._recover(
        self._typed_digest(keccak256(abi_encode(BALANCE_PROOF_TYPEHASH, channel_id, transferred))),
        proof,
    )


@pure
@internal
def _final_balance_a(ch: Channel, closing: Closing) -> uint256:
    # A party cannot pay more than it holds: totals beyond that are clamped, and
    # the arithmetic never overflows whatever totals were signed.
    if closing.transferred_b >= closing.transferred_a:
        return ch.deposit_a + min(closing.transferred_b - closing.transferred_a, ch.deposit_b)
    return ch.deposit_a - min(closing.transferred_a - closing.transferred_b, ch.deposit_a)


@internal
def _open(ch: Channel) -> bytes32:
    assert ch.a != empty(address) and ch.b != empty(address), "ChannelHub: zero address party"
    assert ch.a != ch.b, "ChannelHub: parties must differ"
    assert ch.challenge_period != 0, "ChannelHub: zero challenge period"
    assert ch.challenge_period <= MAX_CHALLENGE_PERIOD, "ChannelHub: challenge period too long"
    assert ch.deposit_a != 0, "ChannelHub: zero deposit"
    assert ch.deposit_b == 0, "ChannelHub: b funds with deposit"
    channel_id: bytes32 = self._channel_id(ch)
    assert self.channels[channel_id] == empty(bytes32), "ChannelHub: channel id already used"
    self.channels[channel_id] = self._state_hash(ch, empty(Closing))
    log ChannelOpened(
        channel_id=channel_id,
        a=ch.a,
        b=ch.b,
        token=ch.token,
        challenge_period=ch.challenge_period,
        nonce=ch.nonce,
        deposit_a=ch.deposit_a,
    )
    return channel_id


@internal
def _deposit(ch: Channel, participant: address, amount: uint256) -> bytes32:
    assert amount != 0, "ChannelHub: zero deposit"
    channel_id: bytes32 = self._channel_id(ch)
    self._expect_state(channel_id, self._state_hash(ch, empty(Closing)))
    funded: Channel = ch
    if participant == ch.a:
        funded.deposit_a += amount
    else:
        assert participant == ch.b, "ChannelHub: not a party of the channel"
        funded.deposit_b += amount
    # Settlement adds both deposits; refuse a total that would not fit.
    total: uint256 = funded.deposit_a + funded.deposit_b
    self.channels[channel_id] = self._state_hash(funded, empty(Closing))
    log ChannelDeposited(
        channel_id=channel_id,
        participant=participant,
        amount=amount,
        deposit_a=funded.deposit_a,
        deposit_b=funded.deposit_b,
    )
    return channel_id


@internal
def _pull(token: address, amount: uint256, eth_sent: uint256):
    # `eth_sent` is msg.value, passed in because permit entry points are not payable.
    if token == empty(address):
        assert eth_sent == amount, "ChannelHub: ETH value does not match deposit"
    else:
        assert eth_sent == 0, "ChannelHub: ETH sent to a token channel"
        assert extcall IERC20(token).transferFrom(msg.sender, self, amount, default_return_value=True), "ChannelHub: token transfer failed"


@internal
def _pay(token: address, receiver: address, amount: uint256):
    # A receiver that refuses its payout must not block the other party's, so a
    # failed push is kept for `withdraw` instead of reverting the settlement.
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
