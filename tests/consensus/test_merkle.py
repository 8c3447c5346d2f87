"""RFC 6962 Merkle roots and RFC 9162 inclusion proofs (consensus/merkle.py).

Checked three ways: published vectors (Certificate Transparency's reference test data),
an independent implementation (the ``pymerkle`` package) and a slow recursive transcription
of the RFC, plus properties a user relies on (any change to the leaves changes the root;
a proof verifies only for its own leaf, index and tree).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pymerkle import InmemoryTree  # type: ignore[import-untyped]

from consensus.merkle import (
    inclusion_proof,
    leaf_hash,
    merkle_root,
    node_hash,
    verify_inclusion,
)

leaf_lists = st.lists(st.binary(max_size=40), max_size=70)
nonempty_leaf_lists = st.lists(st.binary(max_size=40), min_size=1, max_size=70)


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def reference_root(leaves: Sequence[bytes]) -> bytes:
    """RFC 6962 §2.1 MTH, transcribed literally (recursive split at the largest 2**j < n)."""
    n = len(leaves)
    if n == 0:
        return sha256(b"")
    if n == 1:
        return sha256(b"\x00" + leaves[0])
    k = 1 << ((n - 1).bit_length() - 1)
    return sha256(b"\x01" + reference_root(leaves[:k]) + reference_root(leaves[k:]))


def reference_path(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """RFC 9162 §2.1.3.1 PATH(m, D[n]), transcribed literally."""
    n = len(leaves)
    if n == 1:
        return []
    k = 1 << ((n - 1).bit_length() - 1)
    if index < k:
        return [*reference_path(index, leaves[:k]), reference_root(leaves[k:])]
    return [*reference_path(index - k, leaves[k:]), reference_root(leaves[:k])]


def path_sides(index: int, size: int) -> list[str] | None:
    """Which side each audit-path node sits on, leaf to root, per RFC 9162's recursion;
    None when ``index`` is outside the tree."""
    if not 0 <= index < size:
        return None
    sides: list[str] = []
    while size > 1:
        k = 1 << ((size - 1).bit_length() - 1)
        if index < k:
            sides.insert(0, "right")
            size = k
        else:
            sides.insert(0, "left")
            index, size = index - k, size - k
    return sides


def pymerkle_tree(leaves: Sequence[bytes]) -> InmemoryTree:
    # sha256 with pymerkle's default security mode: leaf prefix 0x00, node prefix 0x01,
    # empty root SHA-256(b"") -- RFC 6962 exactly.
    tree = InmemoryTree(algorithm="sha256")
    for leaf in leaves:
        tree.append_entry(leaf)
    return tree


# --- hand-checked vectors ----------------------------------------------------------------

# Certificate Transparency's reference leaves and the roots of their first n (RFC 6962).
CT_LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    bytes(range(0x50, 0x58)),
    bytes(range(0x60, 0x70)),
]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def test_empty_tree_root_is_sha256_of_nothing() -> None:
    assert (
        merkle_root([]).hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )


def test_one_leaf_root_is_its_leaf_hash() -> None:
    assert merkle_root([b"tx"]) == sha256(b"\x00tx") == leaf_hash(b"tx")


def test_two_and_three_leaf_roots_by_hand() -> None:
    a, b, c = (leaf_hash(x) for x in (b"a", b"b", b"c"))
    assert node_hash(a, b) == sha256(b"\x01" + a + b)
    assert merkle_root([b"a", b"b"]) == node_hash(a, b)
    # The last node is carried up, not paired with a copy of itself.
    assert merkle_root([b"a", b"b", b"c"]) == node_hash(node_hash(a, b), c)


def test_last_leaf_is_never_duplicated() -> None:
    # CVE-2012-2459: with Bitcoin's duplication these two lists would share a root.
    assert merkle_root([b"a", b"b", b"c"]) != merkle_root([b"a", b"b", b"c", b"c"])


@pytest.mark.parametrize("size", range(1, len(CT_LEAVES) + 1))
def test_certificate_transparency_vectors(size: int) -> None:
    assert merkle_root(CT_LEAVES[:size]).hex() == CT_ROOTS[size - 1]


def test_a_leaf_is_not_mistaken_for_an_inner_node() -> None:
    # Without the 0x00/0x01 prefixes, a leaf equal to left||right would collide.
    a, b = leaf_hash(b"a"), leaf_hash(b"b")
    assert merkle_root([a + b]) != merkle_root([b"a", b"b"])


# --- cross-checks ------------------------------------------------------------------------


@given(leaf_lists)
def test_root_matches_pymerkle(leaves: list[bytes]) -> None:
    assert merkle_root(leaves) == pymerkle_tree(leaves).get_root()


@given(leaf_lists)
def test_root_matches_the_rfc_recursion(leaves: list[bytes]) -> None:
    assert merkle_root(leaves) == reference_root(leaves)


@given(nonempty_leaf_lists, st.data())
def test_proof_matches_the_rfc_and_pymerkle(leaves: list[bytes], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(leaves) - 1))
    proof = inclusion_proof(leaves, index)
    assert proof == reference_path(index, leaves)
    # pymerkle's path is the leaf hash followed by the audit path (1-based index).
    assert pymerkle_tree(leaves).prove_inclusion(index + 1).path == [
        leaf_hash(leaves[index]),
        *proof,
    ]


# --- properties --------------------------------------------------------------------------


@given(nonempty_leaf_lists, st.data())
def test_changing_any_leaf_changes_the_root(leaves: list[bytes], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(leaves) - 1))
    replacement = data.draw(st.binary(max_size=40).filter(lambda b: b != leaves[index]))
    changed = [*leaves[:index], replacement, *leaves[index + 1 :]]
    assert merkle_root(changed) != merkle_root(leaves)


@given(leaf_lists, st.binary(max_size=40))
def test_appending_or_removing_a_leaf_changes_the_root(leaves: list[bytes], extra: bytes) -> None:
    assert merkle_root([*leaves, extra]) != merkle_root(leaves)
    if leaves:
        assert merkle_root(leaves[:-1]) != merkle_root(leaves)
        assert merkle_root(leaves[1:]) != merkle_root(leaves)


@given(st.lists(st.binary(max_size=40), min_size=2, max_size=70, unique=True), st.data())
def test_swapping_two_leaves_changes_the_root(leaves: list[bytes], data: st.DataObject) -> None:
    i = data.draw(st.integers(0, len(leaves) - 1))
    j = data.draw(st.integers(0, len(leaves) - 1).filter(lambda j: j != i))
    swapped = list(leaves)
    swapped[i], swapped[j] = swapped[j], swapped[i]
    assert merkle_root(swapped) != merkle_root(leaves)


def test_every_proof_verifies_for_every_index_and_size() -> None:
    leaves = [f"leaf {i}".encode() for i in range(65)]
    for size in range(1, len(leaves) + 1):
        tree = leaves[:size]
        root = merkle_root(tree)
        for index in range(size):
            proof = inclusion_proof(tree, index)
            assert len(proof) <= (size - 1).bit_length()
            assert verify_inclusion(tree[index], index, size, proof, root), (size, index)


def test_every_proof_fails_for_another_leaf_or_index() -> None:
    leaves = [f"leaf {i}".encode() for i in range(33)]
    for size in range(1, len(leaves) + 1):
        tree = leaves[:size]
        root = merkle_root(tree)
        for index in range(size):
            proof = inclusion_proof(tree, index)
            assert not verify_inclusion(b"forged", index, size, proof, root)
            for other in range(size + 2):
                if other != index:
                    assert not verify_inclusion(tree[index], other, size, proof, root)


def test_another_tree_size_verifies_only_where_the_path_has_the_same_shape() -> None:
    # The root does not commit to the tree size: leaf 0's path in a tree of 3 is
    # [h1, h2], exactly its path in a tree of 4 whose last two leaves hash to h2. RFC 9162
    # verification binds the size only through the path's shape (length and sides), so a
    # claimed size is only as trustworthy as its source. Check that shape rule exactly.
    leaves = [f"leaf {i}".encode() for i in range(33)]
    for size in range(1, len(leaves) + 1):
        tree = leaves[:size]
        root = merkle_root(tree)
        for index in range(size):
            proof = inclusion_proof(tree, index)
            for other_size in range(1, size + 3):
                same_shape = path_sides(index, other_size) == path_sides(index, size)
                verified = verify_inclusion(tree[index], index, other_size, proof, root)
                assert verified == same_shape, (size, index, other_size)
    three = leaves[:3]
    proof, root = inclusion_proof(three, 0), merkle_root(three)
    assert verify_inclusion(three[0], 0, 4, proof, root)  # same shape: [right, right]
    assert not verify_inclusion(three[0], 0, 5, proof, root)  # [right, right, right]


@given(nonempty_leaf_lists, st.data())
def test_a_tampered_proof_fails(leaves: list[bytes], data: st.DataObject) -> None:
    size = len(leaves)
    index = data.draw(st.integers(0, size - 1))
    root = merkle_root(leaves)
    proof = inclusion_proof(leaves, index)
    assert verify_inclusion(leaves[index], index, size, proof, root)
    assert not verify_inclusion(
        leaves[index], index, size, [*proof, proof[-1] if proof else root], root
    )
    assert not verify_inclusion(leaves[index], index, size, [*proof, bytes(32)], root)
    if proof:
        assert not verify_inclusion(leaves[index], index, size, proof[:-1], root)
        position = data.draw(st.integers(0, len(proof) - 1))
        flipped = bytes([proof[position][0] ^ 1]) + proof[position][1:]
        tampered = [*proof[:position], flipped, *proof[position + 1 :]]
        assert not verify_inclusion(leaves[index], index, size, tampered, root)
    wrong_root = bytes([root[0] ^ 1]) + root[1:]
    assert not verify_inclusion(leaves[index], index, size, proof, wrong_root)


def test_proof_for_a_single_leaf_is_empty() -> None:
    assert inclusion_proof([b"only"], 0) == []
    assert verify_inclusion(b"only", 0, 1, [], merkle_root([b"only"]))


@pytest.mark.parametrize("index", [-1, 3, 4, 100])
def test_inclusion_proof_rejects_an_index_outside_the_tree(index: int) -> None:
    with pytest.raises(IndexError):
        inclusion_proof([b"a", b"b", b"c"], index)


def test_inclusion_proof_of_an_empty_tree_raises() -> None:
    with pytest.raises(IndexError):
        inclusion_proof([], 0)


BAD_INPUTS = [
    ("index >= size", (b"a", 2, 2, "PROOF", "ROOT")),
    ("negative index", (b"a", -1, 2, "PROOF", "ROOT")),
    ("zero size", (b"a", 0, 0, [], "ROOT")),
    ("float index", (b"a", 0.0, 2, "PROOF", "ROOT")),
    ("bool size", (b"a", 0, True, [], "ROOT")),
    ("str leaf", ("a", 0, 2, "PROOF", "ROOT")),
    ("str root", (b"a", 0, 2, "PROOF", "ff" * 32)),
    ("None proof", (b"a", 0, 2, None, "ROOT")),
    ("bytes proof", (b"a", 0, 2, b"\x00" * 32, "ROOT")),
    ("str in proof", (b"a", 0, 2, ["ff" * 32], "ROOT")),
    ("None in proof", (b"a", 0, 2, [None], "ROOT")),
    ("proof too long", (b"a", 0, 2, "PROOF+", "ROOT")),
    ("proof too short", (b"a", 0, 2, [], "ROOT")),
]


@pytest.mark.parametrize(("case", "args"), BAD_INPUTS, ids=[c for c, _ in BAD_INPUTS])
def test_verify_inclusion_returns_false_and_never_raises(
    case: str, args: tuple[object, ...]
) -> None:
    leaves = [b"a", b"b"]
    good_proof, good_root = inclusion_proof(leaves, 0), merkle_root(leaves)
    substitutes = {"PROOF": good_proof, "PROOF+": [*good_proof, good_root], "ROOT": good_root}
    resolved = [substitutes.get(a, a) if isinstance(a, str) else a for a in args]
    assert verify_inclusion(*resolved) is False  # type: ignore[arg-type]


def test_verify_inclusion_accepts_bytearrays_and_tuples() -> None:
    leaves = [b"a", b"b", b"c"]
    proof = tuple(bytearray(p) for p in inclusion_proof(leaves, 2))
    root = bytearray(merkle_root(leaves))
    assert verify_inclusion(bytearray(b"c"), 2, 3, proof, root)  # type: ignore[arg-type]
