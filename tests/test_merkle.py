"""The Merkle tree (lineage.merkle) against RFC 6962's published reference vectors, and its proofs as the
stores serve them.

The vectors (eight leaf inputs, every node hash, the root of every size 0..8, and known inclusion and
consistency proofs) are the ones the RFC 6962 reference implementations test with (C++ Certificate
Transparency, and transparency-dev/merkle's testonly/constants.go and proof/verify_test.go, whose probes
of corrupted proofs are repeated here). Then, on a real SQLite store and on tiles grown past the 256-leaf
and 65536-leaf tile boundaries: every proof the tiles give verifies, and altering any one of its hashes,
its leaf index or its tree size makes it fail.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lineage import merkle
from lineage.ledger import Pending
from lineage.store import open_store

# --- RFC 6962 reference vectors ----------------------------------------------------------------------

LEAF_INPUTS = [
    bytes.fromhex(h)
    for h in ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
]
NODE_HASHES = [  # by level (0: the leaves), then left to right: every complete subtree of the 8 leaves
    [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    ],
    [
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    ],
    [
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    ["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"],
]
ROOTS = [  # the root of the tree of the first n leaves, n = 0..8
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
INCLUSION_PROOFS = [  # (leaf index, tree size, proof)
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
CONSISTENCY_PROOFS = [  # (old size, new size, proof)
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]
SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")
LEAVES = [merkle.leaf_hash(d) for d in LEAF_INPUTS]


def hexes(proof: list[str]) -> list[bytes]:
    return [bytes.fromhex(h) for h in proof]


def root(n: int) -> bytes:
    return bytes.fromhex(ROOTS[n])


def tiles_of(leaves: list[bytes], batches: list[int] | None = None) -> dict[merkle.TileKey, bytes]:
    """The tiles of a tree of these leaves, grown batch by batch as the stores grow them."""
    tiles: dict[merkle.TileKey, bytes] = {}
    size = 0
    for count in batches or [len(leaves)]:
        edge = {k: tiles[k] for k in merkle.right_edge(size) if k in tiles}
        tiles.update(merkle.grow(size, edge, leaves[size : size + count]))
        size += count
    return tiles


def reader(tiles: dict[merkle.TileKey, bytes]) -> merkle.TileReader:
    return lambda keys: {k: tiles[k] for k in keys if k in tiles}


def test_leaf_and_node_hashes_are_rfc_6962s():
    assert [h.hex() for h in LEAVES] == NODE_HASHES[0]
    for level, row in enumerate(NODE_HASHES):
        width = 1 << level
        assert [merkle.root_of(LEAVES[i : i + width]).hex() for i in range(0, 8, width)] == row
        assert [merkle.perfect(LEAVES[i : i + width]).hex() for i in range(0, 8, width)] == row


@pytest.mark.parametrize("size", range(9))
def test_the_root_of_every_size_is_rfc_6962s_by_definition_compact_range_and_tiles(size):
    compact = merkle.Compact()
    for leaf in LEAVES[:size]:
        compact.add(leaf)
    stored = merkle.stored_root(size, reader(tiles_of(LEAVES[:size])))
    assert merkle.root_of(LEAVES[:size]).hex() == compact.root().hex() == stored.hex() == ROOTS[size]


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION_PROOFS)
def test_the_tiles_give_rfc_6962s_inclusion_proofs_and_they_verify(index, size, proof):
    assert merkle.inclusion_proof(index, size, reader(tiles_of(LEAVES))) == hexes(proof)
    merkle.verify_inclusion(index, size, LEAVES[index], hexes(proof), root(size))


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY_PROOFS)
def test_the_tiles_give_rfc_6962s_consistency_proofs_and_they_verify(old, new, proof):
    assert merkle.consistency_proof(old, new, reader(tiles_of(LEAVES))) == hexes(proof)
    merkle.verify_consistency(old, new, root(old), root(new), hexes(proof))


def rejects_inclusion(index, size, leaf, proof, root_hash):
    with pytest.raises(merkle.ProofError):
        merkle.verify_inclusion(index, size, leaf, proof, root_hash)


def rejects_consistency(old, new, old_root, new_root, proof):
    with pytest.raises(merkle.ProofError):
        merkle.verify_consistency(old, new, old_root, new_root, proof)


def flipped(proof: list[bytes], i: int, bit: int) -> list[bytes]:
    out = list(proof)
    out[i] = bytes([out[i][0] ^ bit]) + out[i][1:]
    return out


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION_PROOFS)
def test_every_corruption_of_a_reference_inclusion_proof_is_rejected(index, size, proof):
    """transparency-dev/merkle's corruptInclusionProof probes."""
    p, r, leaf = hexes(proof), root(size), LEAVES[index]
    for wrong_index in (index - 1, index + 1, index ^ 2):
        rejects_inclusion(wrong_index, size, leaf, p, r)
    for wrong_size in (size * 2, size // 2):
        rejects_inclusion(index, wrong_size, leaf, p, r)
    rejects_inclusion(index, size, b"WrongLeaf", p, r)
    rejects_inclusion(index, size, leaf, p, merkle.EMPTY_ROOT)
    rejects_inclusion(index, size, leaf, p, SOME_HASH)
    for extra in (b"", r):
        rejects_inclusion(index, size, leaf, [*p, extra], r)  # trailing garbage
        rejects_inclusion(index, size, leaf, [extra, *p], r)  # preceding garbage
    for i in range(len(p)):
        rejects_inclusion(index, size, leaf, flipped(p, i, 8), r)
    rejects_inclusion(index, size, leaf, p[:-1], r)  # a component removed
    if len(p) > 1:
        rejects_inclusion(index, size, leaf, [p[0], SOME_HASH, *p[1:]], r)  # one inserted


@pytest.mark.parametrize(("old", "new", "proof"), [v for v in CONSISTENCY_PROOFS if v[2]])
def test_every_corruption_of_a_reference_consistency_proof_is_rejected(old, new, proof):
    """transparency-dev/merkle's corruptConsistencyProof probes."""
    p, r1, r2 = hexes(proof), root(old), root(new)
    for wrong_old in (old - 1, old + 1, old ^ 2):
        rejects_consistency(wrong_old, new, r1, r2, p)
    for wrong_new in (new * 2, new // 2):
        rejects_consistency(old, wrong_new, r1, r2, p)
    rejects_consistency(old, new, b"WrongRoot", r2, p)
    rejects_consistency(old, new, r1, b"WrongRoot", p)
    rejects_consistency(old, new, r2, r1, p)  # swapped roots
    rejects_consistency(old, new, r1, r2, [])
    for extra in (b"", r1, r2):
        rejects_consistency(old, new, r1, r2, [*p, extra])
        rejects_consistency(old, new, r1, r2, [extra, *p])
    rejects_consistency(old, new, r1, r2, [p[0], *p])
    rejects_consistency(old, new, r1, r2, p[:-1])
    for i in range(len(p)):
        rejects_consistency(old, new, r1, r2, flipped(p, i, 16))


def test_a_one_leaf_tree_is_its_leaf_and_an_empty_proof_proves_nothing_else():
    leaf = merkle.leaf_hash(b"data")
    merkle.verify_inclusion(0, 1, leaf, [], leaf)
    rejects_inclusion(0, 1, b"", [], leaf)
    rejects_inclusion(0, 1, leaf, [], b"")
    for index, size in [(0, 0), (1, 0), (1, 1), (2, 1)]:  # no such leaf
        rejects_inclusion(index, size, SOME_HASH, [], merkle.EMPTY_ROOT)
        rejects_inclusion(index, size, b"", [], merkle.EMPTY_ROOT)


@pytest.mark.parametrize(
    ("old", "new", "old_root", "new_root", "proof", "ok"),
    [
        (0, 0, b"don't care 1", b"don't care 2", [], False),
        (1, 1, b"don't care 1", b"don't care 2", [], False),
        (0, 0, b"don't care 1", b"don't care 1", [], True),  # sizes that are always consistent
        (0, 1, b"don't care 1", b"don't care 2", [], True),
        (1, 1, b"don't care 2", b"don't care 2", [], True),
        (1, 0, b"don't care 1", b"don't care 2", [], False),  # time travel to the past
        (2, 1, b"don't care 1", b"don't care 2", [], False),
        (1, 2, b"don't care 1", b"don't care 2", [], False),  # an empty proof
        (0, 0, merkle.EMPTY_ROOT, b"don't care 2", [], False),  # roots differ
        (1, 1, merkle.EMPTY_ROOT, b"don't care 2", [], False),
        (0, 0, merkle.EMPTY_ROOT, merkle.EMPTY_ROOT, [merkle.EMPTY_ROOT], False),  # roots match, proof is not empty
        (0, 1, merkle.EMPTY_ROOT, merkle.EMPTY_ROOT, [merkle.EMPTY_ROOT], False),
        (1, 1, merkle.EMPTY_ROOT, merkle.EMPTY_ROOT, [merkle.EMPTY_ROOT], False),
    ],
)
def test_the_trivial_consistency_cases_are_decided_as_the_reference_decides_them(
    old, new, old_root, new_root, proof, ok
):
    if ok:
        merkle.verify_consistency(old, new, old_root, new_root, proof)
    else:
        rejects_consistency(old, new, old_root, new_root, proof)


# --- proofs from a real SQLite store ----------------------------------------------------------------------

BATCHES = [1, 6, 249, 1, 2, 255, 300, 100]  # writes of different sizes; 914 entries cross tiles 0..3


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    """A real SQLite store whose tree was kept by its writes, and its leaves as the ledger gives them."""
    store = open_store(f"sqlite:///{tmp_path_factory.mktemp('merkle')}/store.db")
    written = 0
    for count in BATCHES:
        store.append_many([Pending("note", {"n": written + i}, "test") for i in range(count)], atomic=True)
        written += count
    leaves = [merkle.entry_leaf(e.hash) for e in store.entries(limit=None)]
    assert store.tree_size() == len(leaves) == written
    yield store, leaves, roots_by_size(leaves)
    store.close()


def roots_by_size(leaves: list[bytes]) -> list[bytes]:
    """The root of the first n leaves for every n, by the compact range (checked against the definition
    by ``test_the_compact_range_is_the_root_by_definition``)."""
    compact, roots = merkle.Compact(), [merkle.EMPTY_ROOT]
    for leaf in leaves:
        compact.add(leaf)
        roots.append(compact.root())
    return roots


def check_inclusion(filled, index: int, size: int) -> None:
    """The store's proof of leaf ``index`` in the tree of ``size`` verifies, and nothing altered does."""
    store, leaves, roots = filled
    proof, root_hash = store.inclusion_proof(index + 1, size), roots[size]
    merkle.verify_inclusion(index, size, leaves[index], proof, root_hash)
    for i in range(len(proof)):
        rejects_inclusion(index, size, leaves[index], flipped(proof, i, 1), root_hash)
    for wrong in {index - 1, index + 1, index ^ 2} - {index}:
        rejects_inclusion(wrong, size, leaves[index], proof, root_hash)
    for wrong in (size - 1, size + 1):  # another size, with that tree's own root
        if wrong > index and wrong <= len(leaves):
            rejects_inclusion(index, wrong, leaves[index], proof, roots[wrong])
    if size > 1:
        rejects_inclusion(index, size, leaves[(index + 1) % size], proof, root_hash)
        rejects_inclusion(index, size, leaves[index], proof[:-1], root_hash)
        rejects_inclusion(index, size, leaves[index], [*proof, proof[-1]], root_hash)


def check_consistency(filled, old: int, new: int) -> None:
    """The store's proof that the tree of ``old`` is a prefix of the tree of ``new`` verifies, and nothing
    altered does."""
    store, leaves, roots = filled
    proof, r1, r2 = store.consistency_proof(old, new), roots[old], roots[new]
    merkle.verify_consistency(old, new, r1, r2, proof)
    if old in (0, new):
        assert proof == []
        return
    for i in range(len(proof)):
        rejects_consistency(old, new, r1, r2, flipped(proof, i, 1))
    for wrong in (old - 1, old + 1):  # another old size, with that tree's own root
        if 0 < wrong < new:
            rejects_consistency(wrong, new, roots[wrong], r2, proof)
    for wrong in (new - 1, new + 1):
        if old < wrong <= len(leaves):
            rejects_consistency(old, wrong, r1, roots[wrong], proof)
    rejects_consistency(old, new, r2, r1, proof)
    rejects_consistency(old, new, r1, r2, proof[:-1])
    rejects_consistency(old, new, r1, r2, [*proof, proof[-1]])


def test_the_stores_root_of_every_size_is_the_tree_by_definition(filled):
    store, leaves, roots = filled
    for size in range(len(leaves) + 1):
        assert store.tree_root(size) == roots[size], size
    assert roots[-1] == merkle.root_of(leaves)


@pytest.mark.parametrize("size", [1, 2, 7, 255, 256, 257, 511, 512, 513, 914])
def test_every_inclusion_proof_at_a_tile_boundary_verifies_and_no_altered_one_does(filled, size):
    for index in range(size):
        check_inclusion(filled, index, size)


@pytest.mark.parametrize("new", [2, 255, 256, 257, 512, 513, 914])
def test_every_consistency_proof_into_a_tile_boundary_verifies_and_no_altered_one_does(filled, new):
    for old in range(new + 1):
        check_consistency(filled, old, new)


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_any_inclusion_and_consistency_proof_the_store_serves_verifies(filled, data):
    size = data.draw(st.integers(1, len(filled[1])), label="size")
    check_inclusion(filled, data.draw(st.integers(0, size - 1), label="index"), size)
    check_consistency(filled, data.draw(st.integers(0, size), label="old"), size)


def test_a_store_refuses_proofs_beyond_its_tree(filled):
    from lineage.errors import LedgerError

    store, leaves, _ = filled
    with pytest.raises(LedgerError, match=f"holds {len(leaves)} entries, not {len(leaves) + 1}"):
        store.inclusion_proof(1, len(leaves) + 1)
    with pytest.raises(LedgerError, match="entry 0 is not in a tree of 5 entries"):
        store.inclusion_proof(0, 5)
    with pytest.raises(LedgerError, match="no consistency proof from 6 entries to 5"):
        store.consistency_proof(6, 5)


# --- tiles past the 256- and 65536-leaf boundaries --------------------------------------------------------

BIG = (1 << 16) + 300  # level-2 tiles begin at 65536 leaves


def synthetic(n: int) -> list[bytes]:
    return [merkle.leaf_hash(hashlib.sha256(i.to_bytes(8, "big")).digest()) for i in range(n)]


@pytest.fixture(scope="module")
def big():
    leaves = synthetic(BIG)
    batches = [1, 255, 1, 65279, 1, 299]  # lands on 256, 65536 and one past each
    assert sum(batches) == BIG
    return leaves, tiles_of(leaves, batches), roots_by_size(leaves)


def test_tiles_grown_in_batches_are_the_tiles_grown_at_once_past_65536_leaves(big):
    leaves, tiles, _ = big
    assert tiles == tiles_of(leaves)
    assert merkle.size_of_tiles(tiles) == BIG
    assert len(tiles[(1, 0)]) == merkle.TILE_WIDTH * merkle.HASH_SIZE  # a full level-1 tile...
    assert tiles[(2, 0)] == merkle.root_of(leaves[: 1 << 16])  # ...whose subtree is level 2's first node
    assert tiles[(0, 256)] == b"".join(leaves[1 << 16 : (1 << 16) + 256])


@pytest.mark.parametrize("size", [255, 256, 257, 65535, 65536, 65537, 65536 + 256, BIG])
def test_roots_and_proofs_from_tiles_past_65536_leaves_verify(big, size):
    leaves, tiles, roots = big
    read = reader(tiles)
    assert merkle.stored_root(size, read) == roots[size]
    for index in sorted({0, 1, 254, 255, 256, 257, 65535, 65536, 65537, size - 2, size - 1} & set(range(size))):
        proof = merkle.inclusion_proof(index, size, read)
        merkle.verify_inclusion(index, size, leaves[index], proof, roots[size])
        for i in range(len(proof)):
            rejects_inclusion(index, size, leaves[index], flipped(proof, i, 1), roots[size])
    for old in sorted({1, 255, 256, 257, 65535, 65536, 65537, size - 1, size} & set(range(1, size + 1))):
        proof = merkle.consistency_proof(old, size, read)
        merkle.verify_consistency(old, size, roots[old], roots[size], proof)
        for i in range(len(proof)):
            rejects_consistency(old, size, roots[old], roots[size], flipped(proof, i, 1))


def test_the_compact_range_at_65536_leaves_is_the_root_by_definition(big):
    leaves, _, roots = big
    assert roots[1 << 16] == merkle.root_of(leaves[: 1 << 16])
    assert roots[BIG] == merkle.root_of(leaves)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 300), min_size=1, max_size=8))
def test_growing_in_batches_of_any_sizes_gives_the_same_tiles_as_one_batch(batches):
    leaves = synthetic(sum(batches))
    tiles = tiles_of(leaves, batches)
    assert tiles == tiles_of(leaves)
    assert merkle.stored_root(len(leaves), reader(tiles)) == merkle.root_of(leaves)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 1100))
def test_the_compact_range_is_the_root_by_definition(n):
    leaves = synthetic(n)
    compact = merkle.Compact()
    for leaf in leaves:
        compact.add(leaf)
    assert compact.size == n
    assert compact.root() == merkle.root_of(leaves)


def test_growing_from_a_right_edge_of_the_wrong_length_is_refused():
    tiles = tiles_of(synthetic(10))
    with pytest.raises(ValueError, match=r"tile \(0, 0\) holds 10 hashes, expected 11"):
        merkle.grow(11, {(0, 0): tiles[(0, 0)]}, synthetic(1))
