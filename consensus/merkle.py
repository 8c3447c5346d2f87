"""The block's Merkle tree: RFC 6962 / RFC 9162 Merkle Tree Hash and inclusion proofs.

Rules (design §3, normative):

- leaf hash ``SHA-256(0x00 || leaf)``, node hash ``SHA-256(0x01 || left || right)``: the
  distinct prefixes keep a leaf from passing for an inner node (second preimages);
- a tree of n > 1 leaves splits at k, the largest power of two below n: root =
  ``node_hash(MTH(D[0:k]), MTH(D[k:n]))``; one leaf: its leaf hash; no leaves:
  ``SHA-256(b"")``;
- a last node without a partner is never paired with itself. Bitcoin's tree duplicates
  it, which lets two different transaction lists share a root (CVE-2012-2459).

The trees here are built bottom-up: hash neighbours pairwise, carry an unpaired last node
up a level unchanged, repeat. That is exactly RFC 6962's tree. Its split puts the first
k = 2**j leaves in a perfect subtree, and recursing, every subtree off the right edge is
perfect and starts at a multiple of its size: pairwise hashing builds those level by
level. Right-edge subtrees are the ragged remainder; a node carried up unpaired is such a
remainder's root, and it meets its left sibling at the first level where one exists,
just as the recursion joins them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

__all__ = ["inclusion_proof", "leaf_hash", "merkle_root", "node_hash", "verify_inclusion"]

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"
_EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(leaf: bytes) -> bytes:
    """``SHA-256(0x00 || leaf)``."""
    return hashlib.sha256(_LEAF_PREFIX + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def _parent_level(level: list[bytes]) -> list[bytes]:
    """Hash neighbours pairwise; an unpaired last node moves up as it is (no duplication)."""
    sha256 = hashlib.sha256
    prefix = _NODE_PREFIX
    parents = [
        sha256(prefix + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)
    ]
    if len(level) % 2:
        parents.append(level[-1])
    return parents


def _levels(leaves: Sequence[bytes]) -> list[list[bytes]]:
    """Every level of the tree over ``leaves`` (at least one), leaf hashes first, root last."""
    sha256 = hashlib.sha256
    prefix = _LEAF_PREFIX
    levels = [[sha256(prefix + leaf).digest() for leaf in leaves]]
    while len(levels[-1]) > 1:
        levels.append(_parent_level(levels[-1]))
    return levels


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """RFC 6962 Merkle Tree Hash of ``leaves`` in order; ``SHA-256(b"")`` for none."""
    if not leaves:
        return _EMPTY_ROOT
    return _levels(leaves)[-1][0]


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """The audit path for ``leaves[index]`` (RFC 9162 §2.1.3.1), ordered leaf to root.

    It lists the sibling at each level where the node on the leaf's path has one; a level
    where that node is carried up unpaired contributes nothing. Raises ``IndexError``
    unless ``0 <= index < len(leaves)`` (no negative indexing).
    """
    if not 0 <= index < len(leaves):
        raise IndexError(f"leaf index {index} out of range for {len(leaves)} leaves")
    path = []
    for level in _levels(leaves)[:-1]:
        sibling = index ^ 1
        if sibling < len(level):
            path.append(level[sibling])
        index >>= 1
    return path


def _is_bytes(value: object) -> bool:
    return isinstance(value, bytes | bytearray)


def verify_inclusion(
    leaf: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """Whether ``proof`` shows ``leaf`` at ``index`` in the tree of ``tree_size`` leaves
    with ``root``: RFC 9162 §2.1.3.2 step by step.

    Returns False, never raises, for any bad input (wrong types, ``index >= tree_size``,
    a proof too short or too long). The root alone does not commit to ``tree_size``: a
    proof also verifies for another size whose audit path has the same shape (same length
    and sides), so the size and index are only as trustworthy as where they came from.
    """
    if type(index) is not int or type(tree_size) is not int or not 0 <= index < tree_size:
        return False
    if not (_is_bytes(leaf) and _is_bytes(root)):
        return False
    if not isinstance(proof, Sequence) or isinstance(proof, str | bytes | bytearray):
        return False
    fn, sn = index, tree_size - 1
    r = leaf_hash(bytes(leaf))
    for p in proof:
        if sn == 0 or not _is_bytes(p):
            return False
        if fn & 1 or fn == sn:
            r = node_hash(bytes(p), r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, bytes(p))
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root
