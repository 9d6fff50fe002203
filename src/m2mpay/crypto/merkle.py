"""Binary Merkle trees over 32-byte leaf hashes (Keccak-256), with inclusion proofs.

Interior nodes are `keccak256(0x01 || left || right)`; the 0x01 prefix keeps a node
from ever being taken for a leaf, whose hash callers compute with their own domain
prefix (never a single 0x01 byte followed by 64 bytes). A level with an odd number of
nodes carries its last node up unchanged rather than pairing it with itself, so no two
different leaf lists share a root through duplication. A proof is the list of
siblings from the leaf up; checking it needs the leaf's index and the leaf count,
which an anchor commits to alongside the root.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from m2mpay.crypto.hashing import keccak256

__all__ = ["merkle_proof", "merkle_root", "verify_merkle_proof"]

_NODE: Final = b"\x01"


def _node(left: bytes, right: bytes) -> bytes:
    return keccak256(_NODE + left + right)


def _check_leaves(leaves: Sequence[bytes]) -> None:
    if not leaves:
        raise ValueError("a Merkle tree needs at least one leaf")
    if any(len(leaf) != 32 for leaf in leaves):
        raise ValueError("Merkle leaves are 32-byte hashes")


def _up(level: Sequence[bytes]) -> list[bytes]:
    parents = [_node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
    if len(level) % 2:
        parents.append(level[-1])
    return parents


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """The root of the tree over `leaves`, in order."""
    _check_leaves(leaves)
    level = list(leaves)
    while len(level) > 1:
        level = _up(level)
    return level[0]


def merkle_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """The siblings on the path from `leaves[index]` to the root, bottom up."""
    _check_leaves(leaves)
    if not 0 <= index < len(leaves):
        raise ValueError(f"leaf index {index} is outside 0..{len(leaves) - 1}")
    siblings: list[bytes] = []
    level = list(leaves)
    while len(level) > 1:
        if index % 2:
            siblings.append(level[index - 1])
        elif index + 1 < len(level):
            siblings.append(level[index + 1])
        level = _up(level)
        index //= 2
    return siblings


def verify_merkle_proof(
    leaf: bytes, index: int, count: int, siblings: Sequence[bytes], root: bytes
) -> bool:
    """Whether `leaf` is leaf number `index` of a `count`-leaf tree with `root`."""
    if not 0 <= index < count or len(leaf) != 32:
        return False
    node = leaf
    remaining = iter(siblings)
    try:
        while count > 1:
            if index % 2:
                node = _node(next(remaining), node)
            elif index + 1 < count:
                node = _node(node, next(remaining))
            index //= 2
            count = (count + 1) // 2
    except StopIteration:
        return False
    return next(remaining, None) is None and node == root
