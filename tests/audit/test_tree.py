"""The Merkle tree's hashing and proofs agree with RFC 9162's own definitions."""

from __future__ import annotations

import pytest

from app.audit import tree
from tests.audit import rfc9162


def _build(n: int) -> tuple[list[bytes], dict[tuple[int, int], bytes], list[tree.Frontier]]:
    data = [f'{{"seq":{i + 1}}}'.encode() for i in range(n)]
    nodes: dict[tuple[int, int], bytes] = {}
    frontier = tree.Frontier.empty()
    snapshots = [frontier.copy()]
    for d in data:
        for level, idx, h in frontier.append(tree.leaf_hash(d)):
            nodes[(level, idx)] = h
        snapshots.append(frontier.copy())
    return data, nodes, snapshots


SIZES = [*range(1, 34), 63, 64, 65, 100, 127, 128, 129, 255, 256, 257, 1000]


def test_roots_match_the_rfc_definition() -> None:
    data, nodes, snapshots = _build(1000)
    for n in [0, *SIZES]:
        assert snapshots[n].root() == rfc9162.mth(data[:n]), n
        if n:
            assert tree.fold_ranges([(0, n)], nodes)[0] == rfc9162.mth(data[:n])


def test_frontier_rows_are_read_back_as_the_frontier() -> None:
    _, nodes, snapshots = _build(300)
    for n in SIZES[:-1]:
        keys = tree.frontier_keys(n)
        assert [nodes[k] for k in keys] == snapshots[n].hashes


def test_inclusion_proofs_match_and_verify() -> None:
    data, nodes, _ = _build(300)
    for n in [s for s in SIZES if s <= 300]:
        root = rfc9162.mth(data[:n])
        for m in {0, n // 3, n // 2, n - 1}:
            ours = tree.fold_ranges(tree.inclusion_ranges(m, n), nodes)
            assert ours == rfc9162.path(m, data[:n]), (m, n)
            leaf = tree.leaf_hash(data[m])
            assert tree.verify_inclusion(leaf, m, n, ours, root)
            assert not tree.verify_inclusion(leaf, m, n, ours, b"\x00" * 32)
            if ours:
                bad = [ours[0][:-1] + bytes([ours[0][-1] ^ 1]), *ours[1:]]
                assert not tree.verify_inclusion(leaf, m, n, bad, root)
            if n > 1:
                other = (m + 1) % n
                assert not tree.verify_inclusion(leaf, other, n, ours, root)


def test_consistency_proofs_match_and_verify() -> None:
    data, nodes, _ = _build(300)
    sizes = [s for s in SIZES if s <= 300]
    for new in sizes:
        for old in [*[s for s in sizes if s < new][:: max(1, len(sizes) // 12)], new - 1]:
            if old <= 0:
                continue
            ours = tree.fold_ranges(tree.consistency_ranges(old, new), nodes)
            assert ours == rfc9162.proof(old, data[:new]), (old, new)
            old_root, new_root = rfc9162.mth(data[:old]), rfc9162.mth(data[:new])
            assert tree.verify_consistency(old, new, old_root, new_root, ours)
            assert not tree.verify_consistency(old, new, new_root, old_root, ours)
            forked = rfc9162.mth([*data[: old - 1], b"forged", *data[old:new]])
            assert not tree.verify_consistency(old, new, old_root, forked, ours)


def test_trivial_consistency() -> None:
    root = rfc9162.mth([b"a"])
    assert tree.verify_consistency(1, 1, root, root, [])
    assert not tree.verify_consistency(1, 1, root, tree.EMPTY_ROOT, [])
    assert tree.verify_consistency(0, 1, tree.EMPTY_ROOT, root, [])
    assert not tree.verify_consistency(2, 1, root, root, [])


def test_out_of_range_requests_are_refused() -> None:
    with pytest.raises(tree.ProofError):
        tree.inclusion_ranges(5, 5)
    with pytest.raises(tree.ProofError):
        tree.consistency_ranges(6, 5)
    assert not tree.verify_inclusion(b"x" * 32, 5, 5, [], b"x" * 32)
