"""Conservative timestamp order: an event is handled only once it is known to be safe.

Two ways to learn safety, both relying on the program's lookahead L > 0 (every event sent to
another PE is at least L later than the event that sent it):

* **windows** (synchronous, YAWNS-like): all PEs exchange their batches and their earliest
  pending time stamp in one all-to-all; the global minimum ``m`` makes ``[m, m + L)`` safe
  everywhere, so each PE handles its events below ``m + L`` and the round repeats.
* **null messages** (Chandy-Misra-Bryant): each PE tells each peer, with every batch or alone
  as a null message, a promise "nothing from me will be earlier than p". A PE handles events
  below the least promise of its peers. Promises grow by at least L per round, so this cannot
  deadlock; a PE that waits longer than ``timeout`` reports who it waits on.
"""

from __future__ import annotations

import time

from evfabric.coord.kernel import INF, Kernel, PEResult, after
from evfabric.coord.program import Program
from evfabric.coord.transport import Transport
from evfabric.core.errors import ConfigError, DeadlockDetected

__all__ = ["run_null_messages", "run_windows"]

_BYE = "bye"


def _check_lookahead(program: Program, size: int) -> float:
    lookahead = float(program.lookahead)
    if size > 1 and not lookahead > 0:
        raise ConfigError(
            f"conservative mode on {size} PEs needs a lookahead > 0 (program declares {lookahead}); "
            "use one worker, the optimistic mode, or group tasks that talk without delay"
        )
    return lookahead


def run_windows(program: Program, owner: list[int], transport: Transport, until: float) -> PEResult:
    """One PE's share of a conservative run with synchronous windows."""
    me, size = transport.rank, transport.size
    lookahead = _check_lookahead(program, size)
    kernel = Kernel(program, owner, me, size)
    kernel.init_tasks()
    kernel.bind(lookahead)
    window = lookahead if size > 1 else INF  # alone, every pending event is safe
    stats, end = kernel.stats, after(until)
    safe_from = -INF
    while True:
        # Send batches and the earliest time stamp this PE can still cause; receive the same.
        batches = [kernel.take_outbox(p) for p in range(size)]
        sent_min = min((ev[0] for b in batches for ev in b), default=INF)
        stats.remote += sum(len(b) for b in batches)
        mine = min(kernel.next_time(), sent_min)
        t0 = time.perf_counter()
        got = transport.exchange([(b, mine) for b in batches])
        stats.sync_seconds += time.perf_counter() - t0
        for p, (events, _) in enumerate(got):
            if p != me:
                kernel.deliver(events, safe_from)
        lbts = min(m for _, m in got)
        if lbts >= end:
            break
        safe_from = lbts + window  # the window [lbts, lbts + L) is safe on every PE
        kernel.process(min(safe_from, end))
        stats.rounds += 1
    return kernel.finish(until)


def run_null_messages(
    program: Program, owner: list[int], transport: Transport, until: float, timeout: float | None = 60.0
) -> PEResult:
    """One PE's share of a conservative run with null messages (no global synchronisation)."""
    me, size = transport.rank, transport.size
    lookahead = _check_lookahead(program, size)
    kernel = Kernel(program, owner, me, size)
    kernel.init_tasks()
    kernel.bind(lookahead)
    stats, end = kernel.stats, after(until)
    peers = [p for p in range(size) if p != me]
    promised_in = {p: 0.0 for p in peers}  # nothing from p will be earlier than this
    promised_out = {p: -INF for p in peers}
    safe_from = -INF  # everything below this has been handled (or is beyond the end)
    finished: set[int] = set()  # peers whose 'bye' already came

    def flush(safe: float) -> bool:
        """Send each peer its batch and/or a higher promise; True once nothing is left to do."""
        horizon = min(kernel.next_time(), safe)
        done = horizon >= end
        promise = INF if done else horizon + lookahead
        for p in peers:
            batch = kernel.take_outbox(p)
            if batch or promise > promised_out[p]:
                transport.send(p, (batch, promise))
                stats.remote += len(batch)
                stats.null_messages += not batch
                promised_out[p] = promise
        return done

    while True:
        safe = min(promised_in.values(), default=INF)
        limit = min(safe, end)
        if limit > safe_from:
            # Promise first: every event this PE handles now is at or after its next time stamp,
            # so the peers may go on while it works (instead of taking turns with it).
            flush(safe)
            kernel.process(limit)
            safe_from = limit
        stats.rounds += 1
        if flush(safe):
            break
        # Wait for at least one message, then take whatever else is already there.
        t0 = time.perf_counter()
        got = transport.recv(timeout)
        if got is None:
            waits = ", ".join(f"{me} -> {p} (promised {promised_in[p]:g})" for p in peers if promised_in[p] <= safe)
            raise DeadlockDetected(f"PE {me} got no event or null message for {timeout}s; waits on: {waits}")
        while got is not None:
            p, msg = got
            if msg == _BYE:  # p is done: it promised inf already, and sends nothing more
                finished.add(p)
            else:
                kernel.deliver(msg[0], safe_from)
                promised_in[p] = max(promised_in[p], msg[1])
            got = transport.recv(0)
        stats.sync_seconds += time.perf_counter() - t0
    _drain(transport, peers, finished, timeout)
    return kernel.finish(until)


def _drain(transport: Transport, peers: list[int], finished: set[int], timeout: float | None) -> None:
    """Final handshake: after 'bye' from every peer nothing more can arrive, so queues are empty."""
    for p in peers:
        transport.send(p, _BYE)
    waiting = set(peers) - finished
    while waiting:
        got = transport.recv(timeout)
        if got is None:
            raise DeadlockDetected(f"PE {transport.rank} waits for the end of PEs {sorted(waiting)}")
        if got[1] == _BYE:
            waiting.discard(got[0])

