"""Merkle roots and inclusion proofs over every tree shape up to 33 leaves, any tree
hypothesis draws, and the leaves of each kind that provenance anchors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from m2mpay.crypto import Address, keccak256, merkle_proof, merkle_root, verify_merkle_proof
from m2mpay.provenance.records import STREAM_LEAF_DOMAIN, stream_leaf, telemetry_leaf

LEAVES = [keccak256(bytes([i])) for i in range(33)]


@pytest.mark.parametrize("count", range(1, 34))
def test_every_leaf_proves_and_only_in_its_place(count: int) -> None:
    leaves = LEAVES[:count]
    root = merkle_root(leaves)
    stranger = keccak256(b"not a leaf")
    for index, leaf in enumerate(leaves):
        proof = merkle_proof(leaves, index)
        assert len(proof) <= count.bit_length()
        assert verify_merkle_proof(leaf, index, count, proof, root)
        assert not verify_merkle_proof(stranger, index, count, proof, root)
        assert not verify_merkle_proof(leaf, index, count, [*proof, leaf], root)
        if count > 1:
            assert not verify_merkle_proof(leaf, (index + 1) % count, count, proof, root)


def test_shapes_and_refusals() -> None:
    assert merkle_root(LEAVES[:1]) == LEAVES[0]
    two = keccak256(b"\x01" + LEAVES[0] + LEAVES[1])
    assert merkle_root(LEAVES[:2]) == two
    # An odd node is carried up, not paired with itself.
    assert merkle_root(LEAVES[:3]) == keccak256(b"\x01" + two + LEAVES[2])
    assert merkle_root(LEAVES[:3]) != merkle_root([*LEAVES[:3], LEAVES[2]])
    assert not verify_merkle_proof(LEAVES[0], 0, 0, [], LEAVES[0])
    assert not verify_merkle_proof(LEAVES[0], -1, 2, [LEAVES[1]], two)
    assert not verify_merkle_proof(LEAVES[0], 0, 2, [], two)
    with pytest.raises(ValueError, match="at least one"):
        merkle_root([])
    with pytest.raises(ValueError, match="32-byte"):
        merkle_root([b"short"])
    with pytest.raises(ValueError, match="outside"):
        merkle_proof(LEAVES[:2], 2)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=300, unique=True),
    st.data(),
)
def test_any_tree_proves_each_leaf_and_nothing_else(
    leaves: list[bytes], data: st.DataObject
) -> None:
    root = merkle_root(leaves)
    count = len(leaves)
    index = data.draw(st.integers(0, count - 1), label="index")
    proof = merkle_proof(leaves, index)
    assert verify_merkle_proof(leaves[index], index, count, proof, root)
    # No other leaf proves in its place, and the leaf proves under no other root.
    other = data.draw(
        st.integers(0, count - 1).filter(lambda i: i != index) if count > 1 else st.none()
    )
    if other is not None:
        assert not verify_merkle_proof(leaves[other], index, count, proof, root)
    stranger = data.draw(st.binary(min_size=32, max_size=32).filter(lambda b: b not in leaves))
    assert not verify_merkle_proof(stranger, index, count, proof, root)
    assert not verify_merkle_proof(leaves[index], index, count, proof, keccak256(root))
    assert merkle_root([*leaves, stranger]) != root


def test_a_stream_leaf_is_never_a_telemetry_leaf() -> None:
    # The same 32 + 8 + 32 bytes of input under each domain: different leaves.
    stream = stream_leaf(bytes(32), 1, bytes(32))
    assert stream != stream_leaf(bytes(32), 2, bytes(32))
    assert stream != telemetry_leaf(Address(bytes(20)), 1, 0, b"")
    assert stream == keccak256(STREAM_LEAF_DOMAIN + bytes(32) + (1).to_bytes(8, "big") + bytes(32))
