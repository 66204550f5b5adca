"""Helpers for the HTC tests: run a small job in-process on a LocalHub."""

from __future__ import annotations

import asyncio

from evfabric.htc import JobConfig, LocalHub, RunResult, WorkerHost, run_job


def run_local(approach: str, cfg: JobConfig) -> RunResult:
    """Run ``cfg`` with ``approach`` on an in-process fabric; return the result."""

    async def main() -> RunResult:
        fabric = LocalHub()
        host = WorkerHost(cfg, fabric.link("host"), approach=approach)
        try:
            return await run_job(approach, cfg, fabric.link("coordinator"), host)
        finally:
            fabric.close()

    return asyncio.run(main())
