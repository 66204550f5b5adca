"""Actions the trigger tests run (imported by name, also from runner subprocesses).

Each appends what it saw to the file named by $EVF_TEST_OUT (one JSON line per event), so a test
can count, across processes, which events were acted on and how often.
"""

from __future__ import annotations

import json
import os
import time


def _write(lines: list[str]) -> None:
    with open(os.environ["EVF_TEST_OUT"], "a") as f:
        f.write("".join(line + "\n" for line in lines))


def record(event) -> None:
    _write([json.dumps({"id": event.id, "i": event.body.get("i"), "topic": event.topic, "pid": os.getpid()})])


def record_batch(events) -> None:
    _write([json.dumps({"id": e.id, "i": e.body.get("i"), "batch": len(events)}) for e in events])


def slow(event) -> None:
    time.sleep(float(os.environ.get("EVF_TEST_SLEEP", "0.2")))
    record(event)


def always_fails(event) -> None:
    raise RuntimeError(f"cannot handle {event.body}")


NOT_CALLABLE = 42


def interrupt(event) -> None:
    raise KeyboardInterrupt


async def async_exit(event) -> None:
    raise SystemExit(3)
