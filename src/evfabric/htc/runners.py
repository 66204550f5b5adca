"""How a worker runs one task: a simulated duration, or a real subprocess.

A runner is an async callable ``run(task) -> bool`` (True: done, False: failed). The simulated
runner sleeps a random duration (exponential around ``mean`` seconds, already time-compressed)
and fails with probability ``fail_rate``, both drawn from its own seeded generator, so 100
workers with 1,000 tasks each fit in one process. The subprocess runner executes a command (with
``{task}`` replaced by the task number) and calls exit status 0 done.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence

from evfabric.core.errors import ConfigError

__all__ = ["SimulatedRunner", "SubprocessRunner"]


class SimulatedRunner:
    """Sleep ``Exp(mean)`` seconds (capped at 10x mean); fail with probability ``fail_rate``."""

    def __init__(self, mean: float = 0.1, fail_rate: float = 0.0, seed: int = 0) -> None:
        if mean < 0 or not 0.0 <= fail_rate <= 1.0:
            raise ConfigError(f"need mean >= 0 and 0 <= fail_rate <= 1 (got {mean}, {fail_rate})")
        self.mean = mean
        self.fail_rate = fail_rate
        self._rng = random.Random(seed)

    async def __call__(self, task: int) -> bool:
        rng = self._rng
        if self.mean > 0:
            await asyncio.sleep(min(rng.expovariate(1.0 / self.mean), 10 * self.mean))
        else:
            await asyncio.sleep(0)
        return rng.random() >= self.fail_rate


class SubprocessRunner:
    """Run ``command`` (argv; ``{task}`` in any argument becomes the task number) as a subprocess."""

    def __init__(self, command: Sequence[str]) -> None:
        if not command:
            raise ConfigError("command must not be empty")
        self.command = list(command)

    async def __call__(self, task: int) -> bool:
        argv = [arg.replace("{task}", str(task)) for arg in self.command]
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
        )
        return await proc.wait() == 0
