# pragma version ~=0.4.3
# pragma optimize gas
"""
@title m2mpay Exchange
@notice Constant-product pools (x * y = k) for token/ETH and token/token pairs, all
        held by this one contract: a swap touches one storage slot of reserves and
        makes no call to a pair contract, which keeps it under 100,000 gas.
        ETH is the zero address, always token0 of its pairs, paid in as msg.value.
        Reserves are tracked here, never read from balanceOf, so a donation moves
        no price; the first MINIMUM_SHARES of every pool are locked for ever, so the
        first depositor cannot inflate the share price. Tokens that deliver less
        than was sent (a fee on transfer) are refused.
"""

from ethereum.ercs import IERC20

interface IERC20Permit:
    def permit(
        owner: address,
        spender: address,
        amount: uint256,
        deadline: uint256,
        v: uint8,
        r: bytes32,
        s: bytes32,
    ): nonpayable

struct Signature:
    v: uint8
    r: bytes32
    s: bytes32

struct Pair:
    token0: address
    token1: address

event PoolCreated:
    pool: indexed(bytes32)
    token0: indexed(address)
    token1: indexed(address)

event LiquidityAdded:
    pool: indexed(bytes32)
    provider: indexed(address)
    amount0: uint256
    amount1: uint256
    shares: uint256
    reserve0: uint256
    reserve1: uint256

event LiquidityRemoved:
    pool: indexed(bytes32)
    provider: indexed(address)
    amount0: uint256
    amount1: uint256
    shares: uint256
    reserve0: uint256
    reserve1: uint256

event Swapped:
    pool: indexed(bytes32)
    trader: indexed(address)
    receiver: indexed(address)
    token_in: address
    amount_in: uint256
    amount_out: uint256
    reserve0: uint256
    reserve1: uint256

# Reserves fit 112 bits (as in Uniswap V2) so amount * 997 * reserve cannot overflow.
MAX_RESERVE: constant(uint256) = 2**112 - 1
RESERVE_MASK: constant(uint256) = 2**128 - 1
MINIMUM_SHARES: constant(uint256) = 1000
FEE_NUMERATOR: constant(uint256) = 997  # 0.3 % stays in the pool for its providers
FEE_DENOMINATOR: constant(uint256) = 1000

# Both reserves of a pool in one slot (reserve0 low, reserve1 high): one read, one write a swap.
_reserves: HashMap[bytes32, uint256]
total_shares: public(HashMap[bytes32, uint256])
shares: public(HashMap[bytes32, HashMap[address, uint256]])
pairs: public(HashMap[bytes32, Pair])
pool_ids: public(HashMap[uint256, bytes32])
pool_count: public(uint256)


@pure
@internal
def _order(token_a: address, token_b: address) -> (address, address, bool):
    assert token_a != token_b, "Exchange: identical tokens"
    if convert(token_a, uint256) < convert(token_b, uint256):
        return token_a, token_b, False
    return token_b, token_a, True


@pure
@internal
def _pool_id(token0: address, token1: address) -> bytes32:
    return keccak256(concat(convert(token0, bytes20), convert(token1, bytes20)))


@view
@internal
def _load(pool: bytes32) -> (uint256, uint256):
    packed: uint256 = self._reserves[pool]
    return packed & RESERVE_MASK, packed >> 128


@internal
def _store(pool: bytes32, reserve0: uint256, reserve1: uint256):
    assert reserve0 <= MAX_RESERVE and reserve1 <= MAX_RESERVE, "Exchange: reserve overflow"
    self._reserves[pool] = reserve0 | (reserve1 << 128)


@pure
@internal
def _amount_out(amount_in: uint256, reserve_in: uint256, reserve_out: uint256) -> uint256:
    # Rounded down: the trader never gets the remainder, the pool keeps it.
    with_fee: uint256 = amount_in * FEE_NUMERATOR
    return with_fee * reserve_out // (reserve_in * FEE_DENOMINATOR + with_fee)


@pure
@internal
def _ceil_div(numerator: uint256, denominator: uint256) -> uint256:
    return (numerator + denominator - 1) // denominator


@view
@external
def pool_id(token_a: address, token_b: address) -> bytes32:
    token0: address = empty(address)
    token1: address = empty(address)
    flipped: bool = False
    token0, token1, flipped = self._order(token_a, token_b)
    return self._pool_id(token0, token1)


@view
@external
def reserves(token_a: address, token_b: address) -> (uint256, uint256, uint256):
    """@notice The reserves of token_a and token_b in their pool and its total shares."""
    token0: address = empty(address)
    token1: address = empty(address)
    flipped: bool = False
    token0, token1, flipped = self._order(token_a, token_b)
    pool: bytes32 = self._pool_id(token0, token1)
    reserve0: uint256 = 0
    reserve1: uint256 = 0
    reserve0, reserve1 = self._load(pool)
    if flipped:
        return reserve1, reserve0, self.total_shares[pool]
    return reserve0, reserve1, self.total_shares[pool]


@view
@external
def quote(token_in: address, token_out: address, amount_in: uint256) -> uint256:
    """@notice What a swap of amount_in would pay out now, the fee taken."""
    token0: address = empty(address)
    token1: address = empty(address)
    flipped: bool = False
    token0, token1, flipped = self._order(token_in, token_out)
    assert amount_in > 0, "Exchange: zero amount"
    assert amount_in <= MAX_RESERVE, "Exchange: amount too large"
    reserve0: uint256 = 0
    reserve1: uint256 = 0
    reserve0, reserve1 = self._load(self._pool_id(token0, token1))
    assert reserve0 > 0, "Exchange: no such pool"
    if flipped:
        return self._amount_out(amount_in, reserve1, reserve0)
    return self._amount_out(amount_in, reserve0, reserve1)


@internal
def _pull(token: address, amount: uint256):
    # ETH arrived as msg.value; a token is pulled and what arrived measured, so a token
    # that takes a fee on transfer is refused rather than leaving reserves above balances.
    if token == empty(address) or amount == 0:
        return
    before: uint256 = staticcall IERC20(token).balanceOf(self)
    assert extcall IERC20(token).transferFrom(msg.sender, self, amount, default_return_value=True), "Exchange: token transfer failed"
    assert staticcall IERC20(token).balanceOf(self) == before + amount, "Exchange: token takes a fee on transfer"


@internal
def _push(token: address, receiver: address, amount: uint256):
    if amount == 0:
        return
    if token == empty(address):
        raw_call(receiver, b"", value=amount)
    else:
        assert extcall IERC20(token).transfer(receiver, amount, default_return_value=True), "Exchange: token transfer failed"


@internal
def _swap(
    token_in: address,
    token_out: address,
    amount_in: uint256,
    min_out: uint256,
    receiver: address,
    deadline: uint256,
    eth_sent: uint256,
) -> uint256:
    assert block.timestamp <= deadline, "Exchange: deadline passed"
    assert receiver != empty(address), "Exchange: receiver is the zero address"
    assert amount_in > 0, "Exchange: zero amount"
    assert amount_in <= MAX_RESERVE, "Exchange: amount too large"
    token0: address = empty(address)
    token1: address = empty(address)
    flipped: bool = False
    token0, token1, flipped = self._order(token_in, token_out)
    if token_in == empty(address):
        assert eth_sent == amount_in, "Exchange: ETH sent differs from amount"
    else:
        assert eth_sent == 0, "Exchange: ETH sent with a token"
    pool: bytes32 = self._pool_id(token0, token1)
    reserve0: uint256 = 0
    reserve1: uint256 = 0
    reserve0, reserve1 = self._load(pool)
    assert reserve0 > 0, "Exchange: no such pool"
    amount_out: uint256 = 0
    if flipped:
        amount_out = self._amount_out(amount_in, reserve1, reserve0)
        reserve1 += amount_in
        reserve0 -= amount_out
    else:
        amount_out = self._amount_out(amount_in, reserve0, reserve1)
        reserve0 += amount_in
        reserve1 -= amount_out
    assert amount_out > 0, "Exchange: output is zero"
    assert amount_out >= min_out, "Exchange: output below minimum"
    # Effects before interactions: the reserves are written before any token moves.
    self._store(pool, reserve0, reserve1)
    log Swapped(
        pool=pool,
        trader=msg.sender,
        receiver=receiver,
        token_in=token_in,
        amount_in=amount_in,
        amount_out=amount_out,
        reserve0=reserve0,
        reserve1=reserve1,
    )
    self._pull(token_in, amount_in)
    self._push(token_out, receiver, amount_out)
    return amount_out


@payable
@external
@nonreentrant
def swap(
    token_in: address,
    token_out: address,
    amount_in: uint256,
    min_out: uint256,
    receiver: address,
    deadline: uint256,
) -> uint256:
    """@notice Swap exactly amount_in of token_in for at least min_out of token_out."""
    return self._swap(token_in, token_out, amount_in, min_out, receiver, deadline, msg.value)


@external
@nonreentrant
def swap_with_permit(
    token_in: address,
    token_out: address,
    amount_in: uint256,
    min_out: uint256,
    receiver: address,
    deadline: uint256,
    permit_deadline: uint256,
    permit: Signature,
) -> uint256:
    """@notice swap, its token_in allowance given by an EIP-2612 permit in the same call."""
    assert token_in != empty(address), "Exchange: permit needs a token"
    extcall IERC20Permit(token_in).permit(
        msg.sender, self, amount_in, permit_deadline, permit.v, permit.r, permit.s
    )
    return self._swap(token_in, token_out, amount_in, min_out, receiver, deadline, 0)


@payable
@external
@nonreentrant
def add_liquidity(
    token_a: address,
    token_b: address,
    max_a: uint256,
    max_b: uint256,
    min_shares: uint256,
    deadline: uint256,
) -> uint256:
    """
    @notice Deposit up to max_a and max_b at the pool's price for shares of it; the
            first deposit sets the price and creates the pool. ETH sent is max of its
            side; what the price does not take is sent back.
    """
    assert block.timestamp <= deadline, "Exchange: deadline passed"
    assert max_a > 0 and max_b > 0, "Exchange: zero amount"
    assert max_a <= MAX_RESERVE and max_b <= MAX_RESERVE, "Exchange: amount too large"
    token0: address = empty(address)
    token1: address = empty(address)
    flipped: bool = False
    token0, token1, flipped = self._order(token_a, token_b)
    max0: uint256 = max_a
    max1: uint256 = max_b
    if flipped:
        max0 = max_b
        max1 = max_a
    if token0 == empty(address):
        assert msg.value == max0, "Exchange: ETH sent differs from amount"
    else:
        assert msg.value == 0, "Exchange: ETH sent with a token"
    assert token1.is_contract, "Exchange: token is not a contract"
    assert token0 == empty(address) or token0.is_contract, "Exchange: token is not a contract"
    pool: bytes32 = self._pool_id(token0, token1)
    reserve0: uint256 = 0
    reserve1: uint256 = 0
    reserve0, reserve1 = self._load(pool)
    total: uint256 = self.total_shares[pool]
    amount0: uint256 = 0
    amount1: uint256 = 0
    minted: uint256 = 0
    if total == 0:
        amount0 = max0
        amount1 = max1
        minted = isqrt(amount0 * amount1)
        assert minted > MINIMUM_SHARES, "Exchange: initial liquidity too small"
        # Locked for ever: owned by no one, so the share price cannot be driven up from 1.
        total = MINIMUM_SHARES
        minted -= MINIMUM_SHARES
        self.pairs[pool] = Pair(token0=token0, token1=token1)
        self.pool_ids[self.pool_count] = pool
        self.pool_count += 1
        log PoolCreated(pool=pool, token0=token0, token1=token1)
    else:
        # Shares rounded down, the amounts they cost rounded up: the pool gains, never loses.
        minted = min(max0 * total // reserve0, max1 * total // reserve1)
        amount0 = self._ceil_div(minted * reserve0, total)
        amount1 = self._ceil_div(minted * reserve1, total)
    assert minted > 0, "Exchange: deposit buys no shares"
    assert minted >= min_shares, "Exchange: shares below minimum"
    reserve0 += amount0
    reserve1 += amount1
    self._store(pool, reserve0, reserve1)
    self.total_shares[pool] = total + minted
    self.shares[pool][msg.sender] += minted
    log LiquidityAdded(
        pool=pool,
        provider=msg.sender,
        amount0=amount0,
        amount1=amount1,
        shares=minted,
        reserve0=reserve0,
        reserve1=reserve1,
    )
    self._pull(token0, amount0)
    self._pull(token1, amount1)
    if token0 == empty(address):
        self._push(empty(address), msg.sender, max0 - amount0)
    return minted


@external
@nonreentrant
def remove_liquidity(
    token_a: address,
    token_b: address,
    burned: uint256,
    min_a: uint256,
    min_b: uint256,
    deadline: uint256,
) -> (uint256, uint256):
    """@notice Give back `burned` shares for their part of both reserves (rounded down)."""
    assert block.timestamp <= deadline, "Exchange: deadline passed"
    assert burned > 0, "Exchange: zero amount"
    token0: address = empty(address)
    token1: address = empty(address)
    flipped: bool = False
    token0, token1, flipped = self._order(token_a, token_b)
    pool: bytes32 = self._pool_id(token0, token1)
    held: uint256 = self.shares[pool][msg.sender]
    assert burned <= held, "Exchange: not enough shares"
    total: uint256 = self.total_shares[pool]
    reserve0: uint256 = 0
    reserve1: uint256 = 0
    reserve0, reserve1 = self._load(pool)
    amount0: uint256 = burned * reserve0 // total
    amount1: uint256 = burned * reserve1 // total
    amount_a: uint256 = amount0
    amount_b: uint256 = amount1
    if flipped:
        amount_a = amount1
        amount_b = amount0
    assert amount_a >= min_a and amount_b >= min_b, "Exchange: output below minimum"
    reserve0 -= amount0
    reserve1 -= amount1
    self._store(pool, reserve0, reserve1)
    self.total_shares[pool] = total - burned
    self.shares[pool][msg.sender] = held - burned
    log LiquidityRemoved(
        pool=pool,
        provider=msg.sender,
        amount0=amount0,
        amount1=amount1,
        shares=burned,
        reserve0=reserve0,
        reserve1=reserve1,
    )
    self._push(token0, msg.sender, amount0)
    self._push(token1, msg.sender, amount1)
    return amount_a, amount_b
