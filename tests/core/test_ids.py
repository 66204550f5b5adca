"""Ids are unique across threads and forked processes by construction (issue 11 point 1)."""

from __future__ import annotations

import multiprocessing
import os
import threading

import pytest

from evfabric.core import event
from evfabric.core.event import new_id, new_ids, node, stamp

N_PER_WORKER = 3000


def _ids_in_child(n: int) -> tuple[str, list[str]]:
    ids = [stamp()[0] for _ in range(n // 3)]
    ids += [new_id() for _ in range(n // 3)]
    ids += new_ids(n - 2 * (n // 3), event.now_us())
    return node(), ids


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_workers_never_collide_with_each_other_or_the_parent() -> None:
    parent_ids = [new_id() for _ in range(100)]  # the parent has drawn ids (and a prefix) before forking
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(4) as pool:
        results = pool.map(_ids_in_child, [N_PER_WORKER] * 8)
    nodes = {n for n, _ in results}
    assert node() not in nodes
    assert len(nodes) >= 2  # pool workers are reused, but 4 processes give 4 nodes
    all_ids = parent_ids + [i for _, ids in results for i in ids]
    assert len(all_ids) == 100 + 8 * N_PER_WORKER
    assert len(set(all_ids)) == len(all_ids), "ids collided across forks"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_raw_fork_child_has_its_own_node_and_counter() -> None:
    before = node()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report its node and first id, then leave without running pytest's teardown
        try:
            os.write(w, f"{node()} {new_id()}".encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        child_node, child_id = f.read().split()
    os.waitpid(pid, 0)
    assert child_node != before
    assert len(child_node) == 12
    assert child_id[11:23] == child_node
    assert child_id.endswith(hex(event.COUNTER_BASE)[2:])  # the counter restarted in the child


def test_threads_never_collide() -> None:
    out: list[list[str]] = [[] for _ in range(4)]

    def work(k: int) -> None:
        out[k] = [stamp()[0] for _ in range(5000)]

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    ids = [i for chunk in out for i in chunk]
    assert len(ids) == 20000
    assert len(set(ids)) == len(ids)


def test_ids_are_fixed_width_and_sort_by_time() -> None:
    a = new_id(1_700_000_000.0)
    b = new_id(1_700_000_000.5)
    c = new_id()
    assert len(a) == len(b) == len(c) == 33
    assert a < b < c
    assert a[11:23] == node()


def test_stamp_ids_cross_the_suffix_table_boundary_unique_and_ordered() -> None:
    ids = [stamp()[0] for _ in range(10_000)]  # more than 4,096: the prefix's counter part moves on
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 33 for i in ids)
    assert ids == sorted(ids)
    mixed = [stamp()[0] if k % 2 else new_id() for k in range(10_000)]
    assert len(set(mixed)) == len(mixed)


def test_counter_restarts_each_millisecond_and_blocks_roll_over_within_one(monkeypatch: pytest.MonkeyPatch) -> None:
    from evfabric.core import ids

    clock = [1_800_000_000_000_000_000]  # ns, on a millisecond boundary
    monkeypatch.setattr(ids, "_time_ns", lambda: clock[0])
    monkeypatch.setattr(ids, "_state", ids._INITIAL)
    first = [stamp()[0] for _ in range(5000)]  # more than one block of 4,096 in one millisecond
    assert first[0].endswith(hex(ids.COUNTER_BASE)[2:])
    assert {i[:11] for i in first} == {f"{1_800_000_000_000:011x}"}
    assert first == sorted(first) and len(set(first)) == 5000
    assert first[4096][23:] == hex(ids.COUNTER_BASE + 4096)[2:]  # the next block, same millisecond
    clock[0] += 999_000  # 999 us later: still the same millisecond
    same = stamp()[0]
    assert same[:11] == first[0][:11] and same > first[-1]
    clock[0] += 1_000  # the next millisecond: the counter starts again, ids still ascend
    nxt = stamp()[0]
    assert nxt[:11] == f"{1_800_000_000_001:011x}" and nxt.endswith(hex(ids.COUNTER_BASE)[2:]) and nxt > same
    clock[0] -= 5_000_000  # the wall clock steps back 5 ms: ids keep the latest millisecond
    back = [stamp()[0] for _ in range(10)] + new_ids(5000, clock[0] / 1e9) + [new_id()]
    assert back == sorted(back) and len(set(back)) == len(back) and back[0] > nxt
