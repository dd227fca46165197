"""The Merkle tree over the ledger (RFC 6962 / RFC 9162), stored as tiles, and its proofs.

The hash chain says the entries follow one another; it proves nothing to someone
who can rewrite the database, since they can re-hash every later entry. The tree
is what a signed checkpoint (``lineage.checkpoint``) pins: a root hash over the
first N entries. Anyone who kept a checkpoint can then check that today's log
still begins with exactly those N entries (a consistency proof), and that an
entry is one of them (an inclusion proof), without trusting the store.

Hashing (RFC 9162 section 2.1.1): a leaf is ``SHA-256(0x00 || data)``, an
interior node ``SHA-256(0x01 || left || right)``; a tree of n leaves splits at
the largest power of two below n. Entry ``seq`` is leaf ``seq - 1``, and its
data is the 32 bytes of the entry's ``hash`` (which covers every header field
and the payload digest, ``lineage.ledger``).

Storage (the C2SP tlog-tiles layout): a tile at level L, index N holds, as
concatenated 32-byte hashes, the hashes of up to 256 consecutive tree nodes of
height 8L, from node N*256 on; a tile with fewer than 256 is the right edge and
grows as entries arrive. Any complete subtree's hash is computed from at most
one tile (``node_key``/``subtree_from_tile``). Backends store tiles as opaque
bytes (``WriteTx.read_tiles``/``write_tiles``); everything here is pure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from lineage.canonical import sha256

HASH_SIZE = 32
TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
EMPTY_ROOT = sha256(b"")

Key = tuple[int, int]  # (level, index) of a complete subtree: leaves [index << level, (index + 1) << level)
TileKey = tuple[int, int]  # (tile level, tile index)


def leaf_hash(data: bytes) -> bytes:
    return sha256(b"\x00" + data)


def node_hash(left: bytes, right: bytes) -> bytes:
    return sha256(b"\x01" + left + right)


def entry_leaf(entry_hash: str) -> bytes:
    """The leaf hash of a ledger entry, from its 64-hex-digit ``hash``."""
    return leaf_hash(bytes.fromhex(entry_hash))


def _split(n: int) -> int:
    """The largest power of two smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_of(leaves: Sequence[bytes]) -> bytes:
    """MTH(D[n]) of these leaf hashes, by the definition (for tests and small trees)."""
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return node_hash(root_of(leaves[:k]), root_of(leaves[k:]))


def perfect(level_hashes: Sequence[bytes]) -> bytes:
    """The hash of a complete subtree from its 2**k bottom nodes, left to right."""
    row = list(level_hashes)
    while len(row) > 1:
        row = [node_hash(row[i], row[i + 1]) for i in range(0, len(row), 2)]
    return row[0]


class Compact:
    """The right edge of a tree being built leaf by leaf: the roots of its complete subtrees.

    ``add`` is amortised O(1); ``root`` folds at most log2(n) hashes. This is what
    recomputes the tree from the ledger while ``audit verify`` reads it.
    """

    __slots__ = ("size", "_edge")

    def __init__(self) -> None:
        self.size = 0
        self._edge: list[bytes] = []  # one hash per set bit of size, largest subtree first

    @classmethod
    def resume(cls, size: int, read: TileReader) -> Compact:
        """The right edge of the stored tree of ``size`` leaves (trusted only once its root is checked)."""
        tree = cls()
        tree.size = size
        tree._edge = [subtrees([k], read)[k] for k in decompose(0, size)]
        return tree

    def add(self, leaf: bytes) -> None:
        h, n = leaf, self.size
        while n & 1:
            h = node_hash(self._edge.pop(), h)
            n >>= 1
        self._edge.append(h)
        self.size += 1

    def root(self) -> bytes:
        return fold(self._edge) if self._edge else EMPTY_ROOT


# --- which complete subtrees a root or a proof is made of ----------------------------------------


def decompose(lo: int, hi: int) -> list[Key]:
    """The complete subtrees that make up leaves [lo, hi), largest first, where lo is a multiple of a
    power of two at least hi - lo (every range RFC 6962 hashes is). MTH of the range is their right fold."""
    keys = []
    while lo < hi:
        level = (hi - lo).bit_length() - 1
        while lo & ((1 << level) - 1):
            level -= 1
        keys.append((level, lo >> level))
        lo += 1 << level
    return keys


def fold(hashes: Sequence[bytes]) -> bytes:
    """The root of complete subtrees side by side, largest first: each joins the fold of those after it."""
    h = hashes[-1]
    for left in reversed(hashes[:-1]):
        h = node_hash(left, h)
    return h


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges whose hashes make up the inclusion proof of leaf ``index`` in a tree of ``size``
    (RFC 6962 PATH), in proof order (nearest the leaf first)."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size}")
    out: list[tuple[int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index - lo < k:
            out.append((lo + k, hi))
            hi = lo + k
        else:
            out.append((lo, lo + k))
            lo += k
    return out[::-1]


def consistency_ranges(old: int, new: int) -> list[tuple[int, int]]:
    """The leaf ranges of the consistency proof from a tree of ``old`` leaves to one of ``new``
    (RFC 6962 SUBPROOF), in proof order."""
    if not 0 < old <= new:
        raise ValueError(f"no consistency proof from a tree of {old} to one of {new}")
    out: list[tuple[int, int]] = []
    lo, hi, whole = 0, new, True
    m = old
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            out.append((lo + k, hi))
            hi = lo + k
        else:
            out.append((lo, lo + k))
            m -= k
            lo += k
            whole = False
    if not whole:
        out.append((lo, hi))
    return out[::-1]


# --- tiles ------------------------------------------------------------------------------------------


def node_key(key: Key) -> tuple[TileKey, int, int]:
    """Where a complete subtree's bottom nodes are: (tile, first slot, count)."""
    level, index = key
    tile_level, k = divmod(level, TILE_HEIGHT)
    first = index << k  # in units of tile-level nodes
    return (tile_level, first // TILE_WIDTH), first % TILE_WIDTH, 1 << k


def subtree_from_tile(key: Key, tiles: Mapping[TileKey, bytes]) -> bytes:
    tile, first, count = node_key(key)
    data = tiles.get(tile)
    if data is None or len(data) < (first + count) * HASH_SIZE:
        raise KeyError(f"tile {tile} does not hold node {key}")
    return perfect([data[i * HASH_SIZE : (i + 1) * HASH_SIZE] for i in range(first, first + count)])


def tile_keys(keys: Iterable[Key]) -> set[TileKey]:
    return {node_key(k)[0] for k in keys}


def right_edge(size: int) -> list[TileKey]:
    """The tiles still growing in a tree of ``size`` leaves (one per level that has a partial tile)."""
    out, level, count = [], 0, size
    while count:
        if count % TILE_WIDTH:
            out.append((level, count // TILE_WIDTH))
        level, count = level + 1, count // TILE_WIDTH
    return out


def grow(size: int, edge: Mapping[TileKey, bytes], leaves: Iterable[bytes]) -> dict[TileKey, bytes]:
    """Append leaf hashes to a tree of ``size`` whose right-edge tiles are ``edge``; return every tile
    that changed (complete tiles and the new right edge), ready to be upserted."""
    counts: list[int] = []
    buffers: list[bytearray] = []
    level, count = 0, size
    while count or level == 0:
        counts.append(count)
        partial = edge.get((level, count // TILE_WIDTH), b"") if count % TILE_WIDTH else b""
        if len(partial) != (count % TILE_WIDTH) * HASH_SIZE:
            raise ValueError(
                f"tile {(level, count // TILE_WIDTH)} holds {len(partial) // HASH_SIZE} hashes, expected {count % TILE_WIDTH}"
            )
        buffers.append(bytearray(partial))
        level, count = level + 1, count // TILE_WIDTH
    before = list(counts)
    changed: dict[TileKey, bytes] = {}

    def push(level: int, h: bytes) -> None:
        if level == len(counts):
            counts.append(0)
            buffers.append(bytearray())
        buffers[level] += h
        counts[level] += 1
        index = (counts[level] - 1) // TILE_WIDTH
        if counts[level] % TILE_WIDTH == 0:
            full = bytes(buffers[level])
            changed[(level, index)] = full
            buffers[level] = bytearray()
            push(level + 1, perfect([full[i : i + HASH_SIZE] for i in range(0, len(full), HASH_SIZE)]))

    for leaf in leaves:
        push(0, leaf)
    for level, count in enumerate(counts):  # each right-edge tile that received a hash, as it stands now
        if count % TILE_WIDTH and count != (before[level] if level < len(before) else 0):
            changed[(level, count // TILE_WIDTH)] = bytes(buffers[level])
    return changed


def size_of_tiles(tiles: Mapping[TileKey, bytes]) -> int:
    """The number of leaves the level-0 tiles hold (for checks)."""
    return sum(len(v) // HASH_SIZE for (level, _), v in tiles.items() if level == 0)


# --- reading the stored tree -------------------------------------------------------------------------

TileReader = Callable[[Sequence[TileKey]], Mapping[TileKey, bytes]]


def subtrees(keys: Iterable[Key], read: TileReader) -> dict[Key, bytes]:
    """The hashes of these complete subtrees, from the tiles (one read for all)."""
    keys = list(dict.fromkeys(keys))
    tiles = read(sorted(tile_keys(keys)))
    return {k: subtree_from_tile(k, tiles) for k in keys}


def range_hashes(ranges: Sequence[tuple[int, int]], read: TileReader) -> list[bytes]:
    parts = [decompose(lo, hi) for lo, hi in ranges]
    known = subtrees([k for p in parts for k in p], read)
    return [fold([known[k] for k in p]) for p in parts]


def stored_root(size: int, read: TileReader) -> bytes:
    return range_hashes([(0, size)], read)[0] if size else EMPTY_ROOT


def inclusion_proof(index: int, size: int, read: TileReader) -> list[bytes]:
    return range_hashes(inclusion_ranges(index, size), read)


def consistency_proof(old: int, new: int, read: TileReader) -> list[bytes]:
    return range_hashes(consistency_ranges(old, new), read) if old < new else []


# --- verifying proofs (RFC 9162 sections 2.1.3.2 and 2.1.4.2) -----------------------------------------


class ProofError(ValueError):
    """A proof that does not verify."""


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is not in a tree of {size}")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not (fn & 1 or fn == 0):
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("inclusion proof is too short")
    return r


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes) -> None:
    if root_from_inclusion(index, size, leaf, proof) != root:
        raise ProofError(f"leaf {index} is not in the tree of {size} with root {root.hex()}")


def verify_consistency(old: int, new: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> None:
    """Raise ``ProofError`` unless the tree of ``old`` leaves with ``old_root`` is a prefix of the tree of
    ``new`` leaves with ``new_root``."""
    if old > new:
        raise ProofError(f"a tree of {old} cannot be a prefix of one of {new}")
    if old == new:
        if proof or old_root != new_root:
            raise ProofError(f"two trees of {old} leaves with different roots")
        return
    if old == 0:
        if proof:
            raise ProofError("a proof from the empty tree must be empty")
        return
    path = list(proof)
    if old & (old - 1) == 0:  # old is a power of two: its root is the first node of the path
        path.insert(0, old_root)
    if not path:
        raise ProofError("consistency proof is empty")
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            if not fn & 1:
                while not (fn & 1 or fn == 0):
                    fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("consistency proof is too short")
    if fr != old_root:
        raise ProofError(f"the tree of {old} in the proof has root {fr.hex()}, not {old_root.hex()}")
    if sr != new_root:
        raise ProofError(f"the tree of {new} in the proof has root {sr.hex()}, not {new_root.hex()}")
