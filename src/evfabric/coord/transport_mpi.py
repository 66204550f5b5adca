"""MPI ranks across nodes, through mpi4py (pickled messages, non-blocking sends)."""

from __future__ import annotations

import os
import time
from typing import Any

from evfabric.coord.transport import Transport
from evfabric.core.errors import ConfigError

__all__ = ["MpiTransport", "launched_by_mpiexec", "mpi_world", "require_mpi"]

_TAG = 77
# Set in every rank by the launchers: MPICH/Hydra and Intel MPI (PMI_*), Open MPI (OMPI_*),
# PMIx-based launchers and Slurm's srun (PMIX_*, SLURM_*).
_LAUNCH_VARS = ("PMI_RANK", "PMI_SIZE", "PMIX_RANK", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALNRANKS")


def launched_by_mpiexec() -> bool:
    """True if this process is a rank started by an MPI launcher (mpiexec, mpirun, srun)."""
    return any(v in os.environ for v in _LAUNCH_VARS)


def require_mpi() -> None:
    """Raise a one-line :class:`ConfigError` naming what is missing for ``placement="mpi"``:
    mpi4py, or a launch by ``mpiexec`` (without it there is one rank, which would silently run
    the whole program on one worker)."""
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        raise ConfigError("placement 'mpi' needs mpi4py (pip install 'evfabric[mpi]')") from None
    if not launched_by_mpiexec():
        raise ConfigError("placement 'mpi' needs an MPI launch: run 'mpiexec -n N python ...' (no mpiexec environment found)")


def mpi_world() -> tuple[int, int]:
    """(rank, size) of ``MPI.COMM_WORLD``; (0, 1) when mpi4py is not importable."""
    try:
        from mpi4py import MPI
    except ImportError:  # pragma: no cover - the mpi extra is not installed
        return 0, 1
    return MPI.COMM_WORLD.Get_rank(), MPI.COMM_WORLD.Get_size()


class MpiTransport(Transport):
    """PEs as MPI ranks of a communicator (default ``COMM_WORLD``).

    Sends are ``isend`` (MPI keeps them FIFO per pair on one tag); completed requests are
    pruned as new ones are posted. Receives poll ``iprobe`` so that waits can time out.
    """

    def __init__(self, comm: Any = None) -> None:
        from mpi4py import MPI

        self._MPI = MPI
        self.comm = comm if comm is not None else MPI.COMM_WORLD
        super().__init__(self.comm.Get_rank(), self.comm.Get_size())
        self._requests: list[Any] = []
        self._status = MPI.Status()

    def send(self, peer: int, msg: Any) -> None:
        self._requests.append(self.comm.isend(msg, dest=peer, tag=_TAG))
        if len(self._requests) > 64:
            self._requests = [r for r in self._requests if not r.Test()]

    def _recv(self, timeout: float | None) -> tuple[int, Any] | None:
        comm, status = self.comm, self._status
        deadline = None if timeout is None else time.monotonic() + timeout
        spins = 0
        while not comm.iprobe(source=self._MPI.ANY_SOURCE, tag=_TAG, status=status):
            if deadline is not None and time.monotonic() >= deadline:
                return None
            spins += 1
            if spins > 200:  # stop burning a core shared with the other ranks
                time.sleep(0.0002)
        source = status.Get_source()
        return source, comm.recv(source=source, tag=_TAG)

    def close(self) -> None:
        if self._requests:
            self._MPI.Request.Waitall(self._requests)
        self._requests = []
