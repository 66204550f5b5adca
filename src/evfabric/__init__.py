"""evfabric: an event fabric for HPC, HTC and scientific computing."""

from __future__ import annotations

__version__ = "0.1.0"
