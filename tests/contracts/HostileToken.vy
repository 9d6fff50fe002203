# pragma version ~=0.4.3
"""
Test-only ERC-20 that attacks the exchange on demand: it can keep a fee on every
transfer (so less arrives than was sent), and it can call back into a contract
from inside transferFrom, recording whether the reentering call went through.
"""

balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])
fee_bps: public(uint256)
reenter_target: public(address)
reenter_data: public(Bytes[512])
reentry_attempted: public(bool)
reentry_succeeded: public(bool)


@external
def mint(receiver: address, amount: uint256):
    self.balanceOf[receiver] += amount


@external
def set_fee_bps(fee_bps: uint256):
    self.fee_bps = fee_bps


@external
def set_reentry(target: address, data: Bytes[512]):
    self.reenter_target = target
    self.reenter_data = data


@external
def forward(target: address, data: Bytes[512]):
    # Lets the token act as an account of its own (approve, swap) with its own balances.
    raw_call(target, data)


@external
def approve(spender: address, amount: uint256) -> bool:
    self.allowance[msg.sender][spender] = amount
    return True


@internal
def _move(sender: address, receiver: address, amount: uint256):
    fee: uint256 = amount * self.fee_bps // 10000
    self.balanceOf[sender] -= amount
    self.balanceOf[receiver] += amount - fee


@external
def transfer(receiver: address, amount: uint256) -> bool:
    self._move(msg.sender, receiver, amount)
    return True


@external
def transferFrom(sender: address, receiver: address, amount: uint256) -> bool:
    self.allowance[sender][msg.sender] -= amount
    self._move(sender, receiver, amount)
    if self.reenter_target != empty(address):
        self.reentry_attempted = True
        self.reentry_succeeded = raw_call(
            self.reenter_target, self.reenter_data, revert_on_failure=False
        )
    return True
