# pragma version ~=0.4.3
# pragma optimize gas
"""
@title m2mpay Token
@notice ERC-20 with EIP-2612 permit, so a channel can be opened and funded in
        one transaction; EIP-3009 transfers by signed authorization, so a payer with
        no gas pays over HTTP (x402's exact scheme) and the payee submits; and an
        owner-only mint for dev networks and demos.
"""

from ethereum.ercs import IERC20

implements: IERC20

event Transfer:
    sender: indexed(address)
    receiver: indexed(address)
    value: uint256

event Approval:
    owner: indexed(address)
    spender: indexed(address)
    value: uint256

event AuthorizationUsed:
    authorizer: indexed(address)
    nonce: indexed(bytes32)

event AuthorizationCanceled:
    authorizer: indexed(address)
    nonce: indexed(bytes32)

event OwnershipTransferred:
    previous_owner: indexed(address)
    new_owner: indexed(address)

name: public(String[64])
symbol: public(String[32])
decimals: public(uint8)
totalSupply: public(uint256)
balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])
nonces: public(HashMap[address, uint256])
# EIP-3009: an authorizer's random nonces, used or cancelled, never twice.
authorizationState: public(HashMap[address, HashMap[bytes32, bool]])
owner: public(address)

EIP712_DOMAIN_TYPEHASH: constant(bytes32) = keccak256(
    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
PERMIT_TYPEHASH: constant(bytes32) = keccak256(
    "Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)"
)
TRANSFER_WITH_AUTHORIZATION_TYPEHASH: constant(bytes32) = keccak256(
    "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
)
RECEIVE_WITH_AUTHORIZATION_TYPEHASH: constant(bytes32) = keccak256(
    "ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
)
CANCEL_AUTHORIZATION_TYPEHASH: constant(bytes32) = keccak256(
    "CancelAuthorization(address authorizer,bytes32 nonce)"
)
VERSION_HASH: constant(bytes32) = keccak256("1")
# Signatures with s above half the curve order are the malleable twin of a valid one.
SECP256K1N_HALF: constant(uint256) = (
    57896044618658097711785492504343953926418782139537452191302581570759080747168
)

_NAME_HASH: immutable(bytes32)
_CACHED_CHAIN_ID: immutable(uint256)
_CACHED_DOMAIN_SEPARATOR: immutable(bytes32)


@deploy
def __init__(name_: String[64], symbol_: String[32], decimals_: uint8):
    self.name = name_
    self.symbol = symbol_
    self.decimals = decimals_
    self.owner = msg.sender
    _NAME_HASH = keccak256(name_)
    _CACHED_CHAIN_ID = chain.id
    _CACHED_DOMAIN_SEPARATOR = self._build_domain_separator()
    log OwnershipTransferred(previous_owner=empty(address), new_owner=msg.sender)


@view
@internal
def _build_domain_separator() -> bytes32:
    return keccak256(
        abi_encode(EIP712_DOMAIN_TYPEHASH, _NAME_HASH, VERSION_HASH, chain.id, self)
    )


@view
@external
def DOMAIN_SEPARATOR() -> bytes32:
    return self._domain_separator()


@view
@internal
def _domain_separator() -> bytes32:
    # Recomputed after a chain split so permits cannot be replayed across forks.
    if chain.id == _CACHED_CHAIN_ID:
        return _CACHED_DOMAIN_SEPARATOR
    return self._build_domain_separator()


@internal
def _transfer(sender: address, receiver: address, amount: uint256):
    assert receiver != empty(address), "Token: transfer to zero address"
    self.balanceOf[sender] -= amount
    self.balanceOf[receiver] += amount
    log Transfer(sender=sender, receiver=receiver, value=amount)


@external
def transfer(receiver: address, amount: uint256) -> bool:
    self._transfer(msg.sender, receiver, amount)
    return True


@external
def transferFrom(sender: address, receiver: address, amount: uint256) -> bool:
    allowed: uint256 = self.allowance[sender][msg.sender]
    if allowed != max_value(uint256):
        assert allowed >= amount, "Token: allowance exceeded"
        self.allowance[sender][msg.sender] = allowed - amount
    self._transfer(sender, receiver, amount)
    return True


@external
def approve(spender: address, amount: uint256) -> bool:
    self.allowance[msg.sender][spender] = amount
    log Approval(owner=msg.sender, spender=spender, value=amount)
    return True


@external
def permit(
    owner: address,
    spender: address,
    amount: uint256,
    deadline: uint256,
    v: uint8,
    r: bytes32,
    s: bytes32,
):
    assert owner != empty(address), "Token: permit for zero address"
    assert block.timestamp <= deadline, "Token: permit expired"
    nonce: uint256 = self.nonces[owner]
    struct_hash: bytes32 = keccak256(
        abi_encode(PERMIT_TYPEHASH, owner, spender, amount, nonce, deadline)
    )
    assert self._signer(struct_hash, v, r, s) == owner, "Token: invalid permit signature"
    self.nonces[owner] = nonce + 1
    self.allowance[owner][spender] = amount
    log Approval(owner=owner, spender=spender, value=amount)


@view
@internal
def _signer(struct_hash: bytes32, v: uint8, r: bytes32, s: bytes32) -> address:
    assert convert(s, uint256) <= SECP256K1N_HALF, "Token: malleable signature"
    digest: bytes32 = keccak256(concat(b"\x19\x01", self._domain_separator(), struct_hash))
    return ecrecover(digest, v, r, s)


@internal
def _use_authorization(
    typehash: bytes32,
    sender: address,
    receiver: address,
    amount: uint256,
    valid_after: uint256,
    valid_before: uint256,
    nonce: bytes32,
    v: uint8,
    r: bytes32,
    s: bytes32,
):
    assert block.timestamp > valid_after, "Token: authorization not yet valid"
    assert block.timestamp < valid_before, "Token: authorization expired"
    assert not self.authorizationState[sender][nonce], "Token: authorization used"
    struct_hash: bytes32 = keccak256(
        abi_encode(typehash, sender, receiver, amount, valid_after, valid_before, nonce)
    )
    signer: address = self._signer(struct_hash, v, r, s)
    assert signer != empty(address) and signer == sender, "Token: invalid authorization signature"
    self.authorizationState[sender][nonce] = True
    log AuthorizationUsed(authorizer=sender, nonce=nonce)
    self._transfer(sender, receiver, amount)


@external
def transferWithAuthorization(
    sender: address,
    receiver: address,
    amount: uint256,
    valid_after: uint256,
    valid_before: uint256,
    nonce: bytes32,
    v: uint8,
    r: bytes32,
    s: bytes32,
):
    """@notice EIP-3009: move `amount` from `sender` as it signed; anyone may submit."""
    self._use_authorization(
        TRANSFER_WITH_AUTHORIZATION_TYPEHASH,
        sender,
        receiver,
        amount,
        valid_after,
        valid_before,
        nonce,
        v,
        r,
        s,
    )


@external
def receiveWithAuthorization(
    sender: address,
    receiver: address,
    amount: uint256,
    valid_after: uint256,
    valid_before: uint256,
    nonce: bytes32,
    v: uint8,
    r: bytes32,
    s: bytes32,
):
    """@notice EIP-3009: as transferWithAuthorization, submitted by the receiver only, so
    no one can front-run the receiver's own call that the transfer is part of."""
    assert msg.sender == receiver, "Token: caller must be the payee"
    self._use_authorization(
        RECEIVE_WITH_AUTHORIZATION_TYPEHASH,
        sender,
        receiver,
        amount,
        valid_after,
        valid_before,
        nonce,
        v,
        r,
        s,
    )


@external
def cancelAuthorization(authorizer: address, nonce: bytes32, v: uint8, r: bytes32, s: bytes32):
    """@notice EIP-3009: the authorizer withdraws an authorization not used yet."""
    assert not self.authorizationState[authorizer][nonce], "Token: authorization used"
    struct_hash: bytes32 = keccak256(abi_encode(CANCEL_AUTHORIZATION_TYPEHASH, authorizer, nonce))
    signer: address = self._signer(struct_hash, v, r, s)
    assert signer != empty(address) and signer == authorizer, "Token: invalid cancel signature"
    self.authorizationState[authorizer][nonce] = True
    log AuthorizationCanceled(authorizer=authorizer, nonce=nonce)


@external
def mint(receiver: address, amount: uint256):
    assert msg.sender == self.owner, "Token: only owner can mint"
    assert receiver != empty(address), "Token: mint to zero address"
    self.totalSupply += amount
    self.balanceOf[receiver] += amount
    log Transfer(sender=empty(address), receiver=receiver, value=amount)


@external
def transfer_ownership(new_owner: address):
    assert msg.sender == self.owner, "Token: only owner"
    log OwnershipTransferred(previous_owner=self.owner, new_owner=new_owner)
    self.owner = new_owner
