# pragma version ~=0.4.3
# pragma optimize gas
# pragma nonreentrancy on
"""
@title m2mpay ServiceRegistry
@notice Machines list the services they sell (kind, unit, price, asset, endpoint,
        location, watcher) and rate each other after a session.

        A listing belongs to the key that made it: only that key updates or
        withdraws it. Every change is an event, so a node rebuilds the registry
        from the logs alone.
@dev    Storage holds one word per listing, its provider: the terms live in the
        events only, which the block's receipts root makes as permanent as
        storage. Storing them too would cost a fresh slot (~22,100 gas) for every
        32 bytes of unit, endpoint and location, about 330,000 gas a listing
        instead of about 70,000, for the benefit of on-chain readers, and none
        needs them.

        A rating is accepted only with proof that the session happened: the
        session receipt both parties signed (EIP-712, in the domain of the
        ChannelHub whose channel the session ran over, exactly as the nodes sign
        it), and that channel's state as the hub holds it. The rater is one of the
        channel's parties and rates the other; one rating per party per session. A
        rating weighs the value paid in the session (both directions' `paid`), but
        one party's ratings over one channel never weigh more than the channel's
        deposits; an address's score in an asset is the value-weighted average
        sum(rating * value) / sum(value) over the channels in that asset.
"""


interface IChannelHub:
    def channels(channel_id: bytes32) -> bytes32: view


struct Flow:
    units: uint256
    value: uint256
    paid: uint256


# The fields of `SessionReceipt` as the nodes sign it (m2mpay.crypto.eip712).
struct SessionReceipt:
    session_id: bytes32
    channel_id: bytes32
    forward: Flow
    backward: Flow
    started_ms: uint256
    stopped_ms: uint256


# A ChannelHub channel and its closing data, laid out as the hub hashes them.
struct Channel:
    a: address
    b: address
    token: address
    challenge_period: uint256
    nonce: uint256
    deposit_a: uint256
    deposit_b: uint256


struct Closing:
    deadline: uint256
    transferred_a: uint256
    transferred_b: uint256


struct Signature:
    r: bytes32
    s: bytes32
    v: uint8


struct Reputation:
    weighted: uint256  # sum of rating * value paid
    value: uint256  # sum of value paid
    ratings: uint256


event ServiceListed:
    listing_id: indexed(uint256)
    provider: indexed(address)
    kind: indexed(uint8)
    unit: String[16]
    price: uint256
    asset: address
    endpoint: String[256]
    location: String[12]
    watcher: address


event ServiceUpdated:
    listing_id: indexed(uint256)
    provider: indexed(address)
    kind: indexed(uint8)
    unit: String[16]
    price: uint256
    asset: address
    endpoint: String[256]
    location: String[12]
    watcher: address


event ServiceWithdrawn:
    listing_id: indexed(uint256)
    provider: indexed(address)


event Rated:
    rated: indexed(address)
    rater: indexed(address)
    session_id: indexed(bytes32)
    channel_id: bytes32
    asset: address
    rating: uint8
    value: uint256  # the weight counted: what was paid, at most the deposits left to back it
    paid: uint256  # what the receipt says was paid, both ways


HUB: public(immutable(address))
# listing id (from 1) -> who listed it; empty once withdrawn
providers: public(HashMap[uint256, address])
listing_count: public(uint256)
# rated party -> asset (the channel's token, empty for ETH) -> its reputation in it.
# Kept apart by asset because a value is only worth its asset: anyone can mint a
# token of their own and fund a channel with as much of it as they like.
reputation: public(HashMap[address, HashMap[address, Reputation]])
# keccak(channel id, session id) -> party -> rated
rated: public(HashMap[bytes32, HashMap[address, bool]])
# channel id -> rated party -> value its ratings over the channel weigh in all
backed: public(HashMap[bytes32, HashMap[address, uint256]])

MAX_KIND: constant(uint8) = 15
MAX_RATING: constant(uint8) = 5

EIP712_DOMAIN_TYPEHASH: constant(bytes32) = keccak256(
    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
SESSION_RECEIPT_TYPEHASH: constant(bytes32) = keccak256(
    "SessionReceipt(bytes32 sessionId,bytes32 channelId,uint256 unitsForward,uint256 valueForward,uint256 paidForward,uint256 unitsBackward,uint256 valueBackward,uint256 paidBackward,uint256 startedMs,uint256 stoppedMs)"
)
NAME_HASH: constant(bytes32) = keccak256("m2mpay")
VERSION_HASH: constant(bytes32) = keccak256("1")
SETTLED: constant(bytes32) = 0x0000000000000000000000000000000000000000000000000000000000000001
SECP256K1N_HALF: constant(uint256) = (
    57896044618658097711785492504343953926418782139537452191302581570759080747168
)


@deploy
def __init__(hub: address):
    assert hub != empty(address), "ServiceRegistry: zero hub"
    HUB = hub


@external
def list_service(
    kind: uint8,
    unit: String[16],
    price: uint256,
    asset: address,
    endpoint: String[256],
    location: String[12],
    watcher: address,
) -> uint256:
    """
    @notice List a service sold by the caller; returns the listing's id.
    """
    self._check_terms(kind, unit, endpoint, location)
    listing_id: uint256 = self.listing_count + 1
    self.listing_count = listing_id
    self.providers[listing_id] = msg.sender
    log ServiceListed(
        listing_id=listing_id,
        provider=msg.sender,
        kind=kind,
        unit=unit,
        price=price,
        asset=asset,
        endpoint=endpoint,
        location=location,
        watcher=watcher,
    )
    return listing_id


@external
def update_service(
    listing_id: uint256,
    kind: uint8,
    unit: String[16],
    price: uint256,
    asset: address,
    endpoint: String[256],
    location: String[12],
    watcher: address,
):
    """
    @notice Replace the terms of one of the caller's listings.
    """
    self._expect_provider(listing_id)
    self._check_terms(kind, unit, endpoint, location)
    log ServiceUpdated(
        listing_id=listing_id,
        provider=msg.sender,
        kind=kind,
        unit=unit,
        price=price,
        asset=asset,
        endpoint=endpoint,
        location=location,
        watcher=watcher,
    )


@external
def withdraw_service(listing_id: uint256):
    """
    @notice Withdraw one of the caller's listings; its id is never reused.
    """
    self._expect_provider(listing_id)
    self.providers[listing_id] = empty(address)
    log ServiceWithdrawn(listing_id=listing_id, provider=msg.sender)


@external
def rate(
    receipt: SessionReceipt,
    channel: Channel,
    closing: Closing,
    signature_a: Signature,
    signature_b: Signature,
    rating: uint8,
):
    """
    @notice Rate the other party of a session, from 1 to 5, with the session's
            receipt signed by both parties of its channel, and the channel's state
            as the hub holds it now (before it settles).
    @dev    The weight is what the receipt says was paid, but the ratings of one
            party over one channel never weigh more than the channel's deposits:
            a receipt is only a signed number, and two keys of one owner could
            otherwise claim any value over a channel funded with one wei.
    """
    assert rating >= 1 and rating <= MAX_RATING, "ServiceRegistry: rating out of range"
    assert msg.sender == channel.a or msg.sender == channel.b, "ServiceRegistry: rater is not a party of the channel"
    assert keccak256(
        abi_encode(channel.a, channel.b, channel.token, channel.challenge_period, channel.nonce)
    ) == receipt.channel_id, "ServiceRegistry: receipt names another channel"
    stored: bytes32 = staticcall IChannelHub(HUB).channels(receipt.channel_id)
    if stored != keccak256(abi_encode(channel, closing)):
        assert stored != empty(bytes32), "ServiceRegistry: channel unknown to the hub"
        assert stored != SETTLED, "ServiceRegistry: channel already settled"
        raise "ServiceRegistry: stale or wrong channel state"
    assert receipt.stopped_ms >= receipt.started_ms, "ServiceRegistry: receipt stops before it starts"
    digest: bytes32 = self._receipt_digest(receipt)
    assert self._recover(digest, signature_a) == channel.a, "ServiceRegistry: receipt not signed by party a"
    assert self._recover(digest, signature_b) == channel.b, "ServiceRegistry: receipt not signed by party b"

    session_key: bytes32 = keccak256(abi_encode(receipt.channel_id, receipt.session_id))
    assert not self.rated[session_key][msg.sender], "ServiceRegistry: party already rated this session"
    paid_forward: uint256 = receipt.forward.paid
    paid_backward: uint256 = receipt.backward.paid
    assert paid_forward <= max_value(uint256) - paid_backward, "ServiceRegistry: paid total overflows"
    paid: uint256 = paid_forward + paid_backward
    assert paid != 0, "ServiceRegistry: nothing was paid in the session"

    rated: address = channel.b
    if msg.sender == channel.b:
        rated = channel.a
    # The hub accepted these deposits, so their sum fits.
    deposits: uint256 = channel.deposit_a + channel.deposit_b
    backed: uint256 = self.backed[receipt.channel_id][rated]
    assert backed < deposits, "ServiceRegistry: the channel's deposits back no more ratings"
    value: uint256 = min(paid, deposits - backed)
    score: Reputation = self.reputation[rated][channel.token]
    assert score.value <= max_value(uint256) - value, "ServiceRegistry: score overflows"
    assert value <= max_value(uint256) // convert(MAX_RATING, uint256), "ServiceRegistry: score overflows"
    weighted: uint256 = value * convert(rating, uint256)
    assert score.weighted <= max_value(uint256) - weighted, "ServiceRegistry: score overflows"

    self.rated[session_key][msg.sender] = True
    self.backed[receipt.channel_id][rated] = backed + value
    self.reputation[rated][channel.token] = Reputation(
        weighted=score.weighted + weighted, value=score.value + value, ratings=score.ratings + 1
    )
    log Rated(
        rated=rated,
        rater=msg.sender,
        session_id=receipt.session_id,
        channel_id=receipt.channel_id,
        asset=channel.token,
        rating=rating,
        value=value,
        paid=paid,
    )


@view
@external
def receipt_digest(receipt: SessionReceipt) -> bytes32:
    """
    @notice The EIP-712 digest both parties signed, in the hub's domain on this chain.
    """
    return self._receipt_digest(receipt)


@view
@internal
def _expect_provider(listing_id: uint256):
    provider: address = self.providers[listing_id]
    assert provider != empty(address), "ServiceRegistry: no such listing"
    assert provider == msg.sender, "ServiceRegistry: not the provider of the listing"


@pure
@internal
def _check_terms(kind: uint8, unit: String[16], endpoint: String[256], location: String[12]):
    assert kind <= MAX_KIND, "ServiceRegistry: unknown kind"
    assert len(unit) != 0, "ServiceRegistry: empty unit"
    assert len(endpoint) != 0, "ServiceRegistry: empty endpoint"
    place: Bytes[12] = convert(location, Bytes[12])
    for i: uint256 in range(12):
        if i >= len(place):
            break
        assert self._in_geohash_alphabet(convert(slice(place, i, 1), bytes1)), "ServiceRegistry: location is not a geohash"


@pure
@internal
def _in_geohash_alphabet(char: bytes1) -> bool:
    code: uint256 = convert(char, uint256)
    if code >= 48 and code <= 57:  # 0-9
        return True
    # b-z but i, l, o (and a, which is below b)
    return code >= 98 and code <= 122 and code != 105 and code != 108 and code != 111


@view
@internal
def _receipt_digest(receipt: SessionReceipt) -> bytes32:
    # The hub's domain, recomputed with this chain's id each time (a few hundred
    # gas), so a receipt signed on another chain or for another hub never verifies.
    separator: bytes32 = keccak256(
        abi_encode(EIP712_DOMAIN_TYPEHASH, NAME_HASH, VERSION_HASH, chain.id, HUB)
    )
    struct_hash: bytes32 = keccak256(
        abi_encode(
            SESSION_RECEIPT_TYPEHASH,
            receipt.session_id,
            receipt.channel_id,
            receipt.forward.units,
            receipt.forward.value,
            receipt.forward.paid,
            receipt.backward.units,
            receipt.backward.value,
            receipt.backward.paid,
            receipt.started_ms,
            receipt.stopped_ms,
        )
    )
    return keccak256(concat(b"\x19\x01", separator, struct_hash))


@pure
@internal
def _recover(digest: bytes32, sig: Signature) -> address:
    assert convert(sig.s, uint256) <= SECP256K1N_HALF, "ServiceRegistry: malleable signature"
    assert sig.v == 27 or sig.v == 28, "ServiceRegistry: bad signature v"
    signer: address = ecrecover(digest, sig.v, sig.r, sig.s)
    assert signer != empty(address), "ServiceRegistry: invalid signature"
    return signer
