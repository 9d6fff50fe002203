"""The hand-rolled EIP-712 digests equal eth-account's generic encoder, for random statements."""

from __future__ import annotations

from eth_account import Account
from eth_account.messages import encode_typed_data
from hypothesis import given, settings
from hypothesis import strategies as st

from m2mpay.crypto import (
    Address,
    Eip712Domain,
    PrivateKey,
    TransferAuthorization,
    balance_proof_digest,
    balance_proof_typed_data,
    channel_domain,
    channel_id,
    keccak256,
    permit_digest,
    permit_typed_data,
    recover_signer,
    session_receipt_digest,
    session_receipt_typed_data,
    settlement_digest,
    settlement_typed_data,
    watch_registration_digest,
    watch_registration_typed_data,
)
from m2mpay.crypto.eip712 import (
    TRANSFER_AUTHORIZATION_TYPES,
    cancel_authorization_digest,
    meter_reading_digest,
    meter_reading_typed_data,
)

uint256 = st.integers(min_value=0, max_value=2**256 - 1)
addresses = st.binary(min_size=20, max_size=20).map(Address)
chain_ids = st.integers(min_value=1, max_value=2**64)
domains = st.builds(channel_domain, chain_ids, addresses)
channel_ids = st.binary(min_size=32, max_size=32)


def _reference(typed: dict[str, object]) -> bytes:
    signable = encode_typed_data(full_message=typed)
    return keccak256(b"\x19" + signable.version + signable.header + signable.body)


@settings(max_examples=200)
@given(domain=domains, channel=channel_ids, transferred=uint256)
def test_balance_proof_digest_matches_eth_account(
    domain: Eip712Domain, channel: bytes, transferred: int
) -> None:
    typed = balance_proof_typed_data(domain, channel, transferred)
    assert balance_proof_digest(domain, channel, transferred) == _reference(typed)


@settings(max_examples=100)
@given(domain=domains, escrow=channel_ids, reading=uint256)
def test_meter_reading_digest_matches_eth_account(
    domain: Eip712Domain, escrow: bytes, reading: int
) -> None:
    typed = meter_reading_typed_data(domain, escrow, reading)
    assert meter_reading_digest(domain, escrow, reading) == _reference(typed)


@settings(max_examples=100)
@given(domain=domains, channel=channel_ids, balance_a=uint256, balance_b=uint256)
def test_settlement_digest_matches_eth_account(
    domain: Eip712Domain, channel: bytes, balance_a: int, balance_b: int
) -> None:
    typed = settlement_typed_data(domain, channel, balance_a, balance_b)
    assert settlement_digest(domain, channel, balance_a, balance_b) == _reference(typed)


@settings(max_examples=100)
@given(
    name=st.text(max_size=40),
    chain_id=chain_ids,
    token=addresses,
    owner=addresses,
    spender=addresses,
    value=uint256,
    nonce=uint256,
    deadline=uint256,
)
def test_permit_digest_matches_eth_account(
    name: str,
    chain_id: int,
    token: Address,
    owner: Address,
    spender: Address,
    value: int,
    nonce: int,
    deadline: int,
) -> None:
    domain = Eip712Domain(name, "1", chain_id, token)
    typed = permit_typed_data(domain, owner, spender, value, nonce, deadline)
    assert permit_digest(domain, owner, spender, value, nonce, deadline) == _reference(typed)


@settings(max_examples=100)
@given(
    domain=st.builds(Eip712Domain, st.text(max_size=40), st.just("1"), chain_ids, addresses),
    authorization=st.builds(
        TransferAuthorization,
        addresses,
        addresses,
        uint256,
        uint256,
        uint256,
        channel_ids,
        st.sampled_from(["transfer", "receive"]),
    ),
)
def test_transfer_authorization_digest_matches_eth_account(
    domain: Eip712Domain, authorization: TransferAuthorization
) -> None:
    assert authorization.digest(domain) == _reference(authorization.typed_data(domain))


def test_cancel_authorization_digest_is_eip_3009s() -> None:
    domain = Eip712Domain("M2M Token", "1", 1337, Address(bytes(range(20))))
    authorizer, nonce = Address(bytes([7]) * 20), bytes([9]) * 32
    typed: dict[str, object] = {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "CancelAuthorization": [
                {"name": "authorizer", "type": "address"},
                {"name": "nonce", "type": "bytes32"},
            ],
        },
        "primaryType": "CancelAuthorization",
        "domain": domain.as_dict(),
        "message": {"authorizer": authorizer.checksum, "nonce": "0x" + nonce.hex()},
    }
    assert cancel_authorization_digest(domain, authorizer, nonce) == _reference(typed)
    # The type hashes EIP-3009 publishes.
    hashes = {kind: keccak256(t).hex() for kind, t in TRANSFER_AUTHORIZATION_TYPES.items()}
    assert hashes == {
        "transfer": "7c7c6cdb67a18743f49ec6fa9b35f50d52ed05cbed4cc592e13b44501c1a2267",
        "receive": "d099cc98ef71107a616c4f0f941f04c322d8e254fe26b3c6668db87aae413de8",
    }


@settings(max_examples=100)
@given(domain=domains, channel=channel_ids, party=addresses, watcher=addresses, issued=uint256)
def test_watch_registration_digest_matches_eth_account(
    domain: Eip712Domain, channel: bytes, party: Address, watcher: Address, issued: int
) -> None:
    typed = watch_registration_typed_data(domain, channel, party, watcher, issued)
    assert watch_registration_digest(domain, channel, party, watcher, issued) == _reference(typed)


@settings(max_examples=100)
@given(
    domain=domains,
    session=channel_ids,
    channel=channel_ids,
    forward=st.tuples(uint256, uint256, uint256),
    backward=st.tuples(uint256, uint256, uint256),
    started=uint256,
    stopped=uint256,
)
def test_session_receipt_digest_matches_eth_account(
    domain: Eip712Domain,
    session: bytes,
    channel: bytes,
    forward: tuple[int, int, int],
    backward: tuple[int, int, int],
    started: int,
    stopped: int,
) -> None:
    args = (domain, session, channel, forward, backward, started, stopped)
    assert session_receipt_digest(*args) == _reference(session_receipt_typed_data(*args))


@settings(max_examples=25, deadline=None)
@given(domain=domains, channel=channel_ids, transferred=uint256)
def test_signature_over_digest_equals_eth_account_signature(
    domain: Eip712Domain, channel: bytes, transferred: int
) -> None:
    key = PrivateKey.generate()
    digest = balance_proof_digest(domain, channel, transferred)
    ours = key.sign_digest(digest)
    theirs = Account.sign_typed_data(
        key.secret, full_message=balance_proof_typed_data(domain, channel, transferred)
    )
    assert bytes(ours) == bytes(theirs.signature)
    assert recover_signer(digest, ours) == key.address


def test_digest_changes_with_every_binding() -> None:
    hub = Address("0x" + "11" * 20)
    base = balance_proof_digest(channel_domain(1, hub), b"\x01" * 32, 5)
    assert balance_proof_digest(channel_domain(2, hub), b"\x01" * 32, 5) != base
    assert (
        balance_proof_digest(channel_domain(1, Address("0x" + "12" * 20)), b"\x01" * 32, 5) != base
    )
    assert balance_proof_digest(channel_domain(1, hub), b"\x02" * 32, 5) != base
    assert balance_proof_digest(channel_domain(1, hub), b"\x01" * 32, 6) != base


def test_channel_id_depends_on_every_parameter() -> None:
    a, b, t = (Address(bytes([i]) * 20) for i in (1, 2, 3))
    ids = {
        channel_id(a, b, t, 100, 1),
        channel_id(b, a, t, 100, 1),
        channel_id(a, b, a, 100, 1),
        channel_id(a, b, t, 101, 1),
        channel_id(a, b, t, 100, 2),
    }
    assert len(ids) == 5


def test_amounts_outside_uint256_are_refused() -> None:
    domain = channel_domain(1, Address("0x" + "11" * 20))
    import pytest

    with pytest.raises(ValueError, match="uint256"):
        balance_proof_digest(domain, bytes(32), -1)
    with pytest.raises(ValueError, match="uint256"):
        balance_proof_digest(domain, bytes(32), 2**256)
