# pragma version ~=0.4.3
# pragma optimize gas
"""
@title m2mpay TokenFactory
@notice Anyone creates a named ERC-20 with EIP-2612 permit (a copy of the m2mpay
        Token, made from its ERC-5202 blueprint), so a machine's own token works
        at once in channels and sessions. Every token made is recorded, in order,
        for the node's token list.
"""

interface Token:
    def mint(receiver: address, amount: uint256): nonpayable
    def transfer_ownership(new_owner: address): nonpayable

event TokenCreated:
    token: indexed(address)
    creator: indexed(address)
    name: String[64]
    symbol: String[32]
    decimals: uint8
    supply: uint256
    holder: address
    mint_owner: address

# 10**78 does not fit in a uint256: a token with more decimals could not hold one
# whole unit.
MAX_DECIMALS: constant(uint8) = 77

TOKEN_BLUEPRINT: public(immutable(address))

tokens: public(HashMap[uint256, address])
count: public(uint256)
# Whether this factory made a token: what it guarantees (plain ERC-20 transfers, no fee
# on transfer, permit) a contract can rely on.
is_token: public(HashMap[address, bool])


@deploy
def __init__(token_blueprint: address):
    assert token_blueprint.is_contract, "TokenFactory: blueprint is not a contract"
    TOKEN_BLUEPRINT = token_blueprint


@external
@nonreentrant
def create(
    name_: String[64],
    symbol_: String[32],
    decimals_: uint8,
    supply: uint256,
    holder: address,
    mint_owner: address,
) -> address:
    """
    @notice Create a token; `supply` goes to `holder`. `mint_owner` may mint more
            later; the zero address disables minting for ever.
    """
    assert len(name_) > 0, "TokenFactory: empty name"
    assert len(symbol_) > 0, "TokenFactory: empty symbol"
    assert decimals_ <= MAX_DECIMALS, "TokenFactory: decimals above 77"
    assert holder != empty(address) or supply == 0, "TokenFactory: supply to zero holder"

    # The new token's owner is this factory until the end of this call.
    token: address = create_from_blueprint(TOKEN_BLUEPRINT, name_, symbol_, decimals_)

    # Recorded before the calls below, though they only reach the code just created.
    index: uint256 = self.count
    self.tokens[index] = token
    self.count = index + 1
    self.is_token[token] = True
    log TokenCreated(
        token=token,
        creator=msg.sender,
        name=name_,
        symbol=symbol_,
        decimals=decimals_,
        supply=supply,
        holder=holder,
        mint_owner=mint_owner,
    )

    if supply > 0:
        extcall Token(token).mint(holder, supply)
    # Handing ownership to the zero address leaves no one who can mint.
    extcall Token(token).transfer_ownership(mint_owner)
    return token
