"""Merkle roots and inclusion proofs over every tree shape up to 33 leaves."""

from __future__ import annotations

import pytest

from m2mpay.crypto import keccak256, merkle_proof, merkle_root, verify_merkle_proof

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
