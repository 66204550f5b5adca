"""Run a timed program: pick the mode (ordering) and the placement (threads, processes, MPI).

The same :class:`~evfabric.coord.program.Program` runs unchanged in every combination:

========================  ===========================================================
``mode``                  ``"sequential"``, ``"conservative"`` (``sync="windows"`` or
                          ``"null"``), ``"optimistic"``
``placement``             ``"threads"`` (one process), ``"processes"`` (one node,
                          multiprocessing *spawn*), ``"mpi"`` (every rank of an
                          ``mpiexec`` launch calls :func:`execute`), ``"fabric"``
                          (every participant calls :func:`execute` with its
                          ``FabricTransport``: PEs meet through the broker)
``workers``               number of processing elements (PEs); tasks are spread over
                          them by weight (:func:`~evfabric.coord.placement.balance`)
========================  ===========================================================
"""

from __future__ import annotations

import multiprocessing
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from evfabric.coord.conservative import run_null_messages, run_windows
from evfabric.coord.kernel import INF, PEResult, run_sequential
from evfabric.coord.optimistic import run_optimistic
from evfabric.coord.placement import balance
from evfabric.coord.program import Program
from evfabric.coord.stats import Stats
from evfabric.coord.transport import ThreadTransport, Transport
from evfabric.core.errors import ConfigError, EvfabricError, WorkerFailed

__all__ = ["MODES", "PLACEMENTS", "Execution", "execute"]

MODES = ("sequential", "conservative", "optimistic")
PLACEMENTS = ("threads", "processes", "mpi", "fabric")


@dataclass
class Execution:
    """The committed outcome of a run, identical across modes and placements for one program.

    ``reports[i]`` is task i's :meth:`~evfabric.coord.task.Task.finish` report; ``outputs``
    are the committed ``emit`` records in event-key order; ``stats`` are the run's counters.
    """

    reports: list[dict[str, Any]]
    outputs: list[Any]
    stats: Stats
    owner: list[int] = field(default_factory=list)


def _pe_main(program: Program, owner: list[int], transport: Transport, until: float, mode: str, opts: dict[str, Any]) -> PEResult:
    """What each PE runs: a start barrier, then its share of the engine."""
    transport.timeout = opts.get("timeout")
    transport.exchange([None] * transport.size)  # start together: spawn skew is not run time
    t0 = time.perf_counter()
    if mode == "conservative":
        if opts.get("sync", "windows") == "null":
            result = run_null_messages(program, owner, transport, until, opts.get("timeout"))
        else:
            result = run_windows(program, owner, transport, until)
    else:
        kw = {k: opts[k] for k in ("batch", "window", "adaptive") if opts.get(k) is not None}
        result = run_optimistic(program, owner, transport, until, **kw)
    result.stats.wall_seconds = time.perf_counter() - t0
    return result


def _process_entry(rank: int, inboxes: list[Any], results: Any, args: tuple[Any, ...]) -> None:
    """A PE process of a timed run: its share of the engine, the result (or error) to the parent."""
    from evfabric.coord.transport_mp import ProcessTransport

    transport = ProcessTransport(rank, inboxes)
    try:
        results.put((rank, _pe_main(args[0], args[1], transport, *args[2:]), None))
    except BaseException as exc:
        results.put((rank, None, _portable(exc)))
    finally:
        transport.close()


def _portable(exc: BaseException) -> BaseException:
    """The exception itself if it survives pickling, else a WorkerFailed with its traceback."""
    import pickle

    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return WorkerFailed("".join(traceback.format_exception(exc)))


def _raise_first(errors: dict[int, BaseException]) -> None:
    rank = min(errors)
    exc = errors[rank]
    if isinstance(exc, EvfabricError):
        exc.add_note(f"(raised on PE {rank})")
        raise exc
    raise WorkerFailed(f"PE {rank} failed: {exc!r}") from exc


def _on_threads(workers: int, args: tuple[Any, ...], deadline: float | None) -> list[PEResult]:
    transports = ThreadTransport.group(workers)
    results: dict[int, PEResult] = {}
    errors: dict[int, BaseException] = {}

    def body(rank: int) -> None:
        try:
            results[rank] = _pe_main(args[0], args[1], transports[rank], *args[2:])
        except BaseException as exc:
            errors[rank] = exc

    threads = [threading.Thread(target=body, args=(r,), daemon=True, name=f"evfabric-pe{r}") for r in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        while t.is_alive() and not errors:
            t.join(0.05)
            if deadline is not None and time.monotonic() > deadline:
                raise WorkerFailed(f"threads still running after the run's time limit: {[t.name for t in threads if t.is_alive()]}")
    if errors:
        _raise_first(errors)
    return [results[r] for r in range(workers)]


def _on_processes(workers: int, args: tuple[Any, ...], deadline: float | None, entry: Callable[..., None] = _process_entry) -> list[Any]:
    """Start ``workers`` spawned processes running ``entry(rank, inboxes, results, args)``, each
    of which puts ``(rank, result, error)`` on ``results``; return the results in rank order or
    raise the first PE's error (the others are then terminated)."""
    ctx = multiprocessing.get_context("spawn")  # safe with threads in the parent
    inboxes = [ctx.Queue() for _ in range(workers)]
    results_q = ctx.Queue()
    procs = [ctx.Process(target=entry, args=(r, inboxes, results_q, args), daemon=True) for r in range(workers)]
    for p in procs:
        p.start()
    results: dict[int, Any] = {}
    errors: dict[int, BaseException] = {}
    try:
        while len(results) + len(errors) < workers:
            if deadline is not None and time.monotonic() > deadline:
                raise WorkerFailed(f"processes still running after the run's time limit ({len(results)} of {workers} done)")
            try:
                rank, res, exc = results_q.get(timeout=0.2)
            except Exception:  # queue.Empty: check the children are alive
                dead = [r for r, p in enumerate(procs) if p.exitcode not in (None, 0) and r not in results and r not in errors]
                if dead:
                    raise WorkerFailed(
                        f"PE process(es) {dead} died (exit codes {[procs[r].exitcode for r in dead]}); "
                        "a script that runs with placement='processes' needs its run under "
                        "`if __name__ == '__main__':` (spawned workers import it)"
                    ) from None
                continue
            if exc is not None:
                errors[rank] = exc
                break
            results[rank] = res
        if errors:
            _raise_first(errors)
    finally:
        for p in procs:
            p.join(timeout=5 if not errors else 0.1)
            if p.is_alive():
                p.terminate()
                p.join()
    return [results[r] for r in range(workers)]


def _as_participant(program: Program, args: tuple[Any, ...], transport: Transport, placement: str) -> Execution:
    """This process is one PE (MPI rank, fabric participant): run, gather at 0, share the merge."""
    result = _pe_main(args[0], args[1], transport, *args[2:])
    gathered = transport.gather(result)
    merged = _merge(program, gathered, args[1], args[3], placement) if gathered is not None else None
    if transport.rank == 0:
        for p in range(1, transport.size):
            transport.send(p, merged)
    else:
        got = transport.recv(args[4].get("timeout"))
        if got is None:
            raise WorkerFailed(f"PE {transport.rank} never received the results from PE 0")
        merged = got[1]
    transport.close()
    assert merged is not None
    return merged


def _merge(program: Program, parts: list[PEResult], owner: list[int], mode: str, placement: str) -> Execution:
    stats = Stats(mode=mode, placement=placement, workers=len(parts))
    counts = [0] * program.size
    reports: list[dict[str, Any]] = [{} for _ in range(program.size)]
    outputs: list[tuple[Any, ...]] = []
    for part in parts:
        stats.merge(part.stats)
        stats.wall_seconds = max(stats.wall_seconds, part.stats.wall_seconds)
        for i, n in part.counts.items():
            counts[i] = n
        for i, rep in part.reports.items():
            reports[i] = rep
        outputs.extend(part.outputs)
    outputs.sort(key=lambda o: o[0])  # stable: one event's records keep their order
    stats.events_per_task = counts
    return Execution(reports, [o[1] for o in outputs], stats, owner)


def execute(
    program: Program,
    until: float = INF,
    mode: str = "sequential",
    workers: int = 1,
    placement: str = "threads",
    *,
    sync: str = "windows",
    owner: list[int] | None = None,
    timeout: float | None = 60.0,
    batch: int | None = None,
    window: float | None = None,
    adaptive: bool = True,
    transport: Transport | None = None,
) -> Execution:
    """Run ``program`` until simulated time ``until`` (inclusive) and return its outcome.

    ``owner`` fixes the placement of tasks on PEs (default: balanced by declared weight and
    group). ``timeout`` bounds every wait for another PE: a PE that waits longer raises
    :class:`~evfabric.core.errors.DeadlockDetected` naming whom it waits on (None = forever).
    ``batch`` and ``window`` bound the optimistic mode (events per GVT round, default 1024;
    optimism in simulated time beyond GVT, default unbounded); with ``adaptive`` (default) each
    PE throttles below those caps from the rollbacks it observes, as ROSS does
    (:mod:`evfabric.coord.throttle`); ``adaptive=False`` uses them as given. With ``placement="mpi"`` the number of workers is the MPI world size and
    every rank returns the same :class:`Execution`; ``placement="fabric"`` is the same with the
    ``transport`` given (a :class:`~evfabric.coord.transport_fabric.FabricTransport`).
    """
    if mode not in MODES:
        raise ConfigError(f"mode must be one of {MODES}, not {mode!r}")
    if placement not in PLACEMENTS:
        raise ConfigError(f"placement must be one of {PLACEMENTS}, not {placement!r}")
    if sync not in ("windows", "null"):
        raise ConfigError(f"sync must be 'windows' or 'null', not {sync!r}")
    if placement == "mpi":
        from evfabric.coord.transport_mpi import MpiTransport, require_mpi

        require_mpi()
        transport = MpiTransport()
    if placement in ("mpi", "fabric"):
        if transport is None:
            raise ConfigError("placement 'fabric' needs transport=FabricTransport(client, run, rank, size)")
        workers = transport.size
    if workers < 1:
        raise ConfigError(f"workers must be >= 1, not {workers}")
    if mode == "sequential":
        if workers != 1:
            raise ConfigError("the sequential mode runs on one worker")
        t0 = time.perf_counter()
        part = run_sequential(program, until)
        part.stats.wall_seconds = time.perf_counter() - t0
        return _merge(program, [part], [0] * program.size, mode, "inline")
    if mode == "conservative" and workers > 1 and not program.lookahead > 0:
        raise ConfigError(f"conservative mode on {workers} workers needs a lookahead > 0 (program declares {program.lookahead})")
    if mode == "conservative" and sync == "null" and workers > 1 and until == INF:
        raise ConfigError("null messages need a finite 'until' (promises grow by the lookahead, never to infinity)")
    if owner is None:
        owner = balance([program.weight(i) for i in range(program.size)], workers, [program.group(i) for i in range(program.size)])
    elif len(owner) != program.size or any(not 0 <= pe < workers for pe in owner):
        raise ConfigError(f"owner must give a PE in [0, {workers}) for each of the {program.size} tasks")
    opts = {"sync": sync, "timeout": timeout, "batch": batch, "window": window, "adaptive": adaptive}
    args = (program, owner, until, mode, opts)
    deadline = None if timeout is None else time.monotonic() + 10 * timeout
    if placement == "threads":
        parts = _on_threads(workers, args, deadline)
    elif placement == "processes":
        parts = _on_processes(workers, args, deadline)
    else:
        assert transport is not None
        return _as_participant(program, args, transport, placement)
    return _merge(program, parts, owner, mode, placement)
