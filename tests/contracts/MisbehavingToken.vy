# pragma version ~=0.4.3
"""
Test-only ERC-20 that misbehaves on demand: it refuses transfers to one address
(as a blocklisting stablecoin does) and can report transferFrom as done without
moving anything (to reach the hub's overflow guards).
"""

balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])
refuse_to: public(address)
fake_transfer_from: public(bool)


@external
def mint(receiver: address, amount: uint256):
    self.balanceOf[receiver] += amount


@external
def set_refuse_to(receiver: address):
    self.refuse_to = receiver


@external
def set_fake_transfer_from(enabled: bool):
    self.fake_transfer_from = enabled


@external
def approve(spender: address, amount: uint256) -> bool:
    self.allowance[msg.sender][spender] = amount
    return True


@external
def transfer(receiver: address, amount: uint256) -> bool:
    if receiver == self.refuse_to:
        return False
    self.balanceOf[msg.sender] -= amount
    self.balanceOf[receiver] += amount
    return True


@external
def transferFrom(sender: address, receiver: address, amount: uint256) -> bool:
    if self.fake_transfer_from:
        return True
    self.allowance[sender][msg.sender] -= amount
    self.balanceOf[sender] -= amount
    self.balanceOf[receiver] += amount
    return True
