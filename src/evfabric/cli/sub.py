"""``evfabric sub PATTERN [--filter CEL]``: tail events from the fabric (like ``nats sub`` / ``kcat -C``).

One JSON event per line by default (``--json``), or bodies only (``--raw``). ``--count N`` stops
after N events, ``--until-end`` at the end of the stored stream (like ``kcat -e``), ``--last N``
shows the last N stored events first, ``--timeout S`` after S idle seconds. A pattern the caller
may not read ends in one ``AccessDenied`` line and exit code 1.
"""

from __future__ import annotations

import json
import queue
import sys
import time
from collections import deque
from typing import Any

import typer

from evfabric.cli._common import CONTEXT, TOKEN, URL, connected, die, resolve

HELP = """Print events matching PATTERN (and FILTER), one per line, until Ctrl-C, COUNT, the end or TIMEOUT.

Examples:

    evfabric sub 'jobs.*.status' --filter 'body.state == "failed"'
    evfabric sub 'runs.*' --start earliest --until-end --raw     # dump what is stored, bodies only
    evfabric sub 'runs.*' --last 10 --count 10                  # the last ten stored events
    evfabric sub 'runs.*' --start 12:3 --until-end              # from event 3 of message 12 on
"""


def _write(ev: Any, raw: bool) -> None:
    from evfabric.core.codec import to_json

    if not raw:
        line = to_json(ev).decode()
        if ev.packed_position:  # its position as people read it ('12:3'), not packed
            from msgspec.structs import replace

            line = f'{{"position":"{ev.position}",' + to_json(replace(ev, packed_position=0)).decode()[1:]
        sys.stdout.write(line + "\n")
    elif isinstance(ev.body, bytes):
        sys.stdout.flush()
        sys.stdout.buffer.write(ev.body + b"\n")
    elif isinstance(ev.body, str):
        sys.stdout.write(ev.body + "\n")
    else:
        sys.stdout.write(json.dumps(ev.body, default=str) + "\n")
    sys.stdout.flush()


def _last_start(client: Any, pattern: str, n: int) -> str | int:
    """A start that covers the last ``n`` stored events: a sequence when one topic holds them."""
    from evfabric.core.topics import Pattern
    from evfabric.fabric.subjects import pattern_reaches

    pat = Pattern(pattern)
    topics = [t for t in client.list_topics() if pattern_reaches(pat, t.config.name)]
    if len(topics) == 1 and topics[0].config.partitions == 1 and not topics[0].shared:  # shared: sequences interleave
        return max(topics[0].first_seq, topics[0].last_seq - n + 1, 1)  # n messages hold >= n events
    return "earliest"


def register(app: typer.Typer) -> None:
    @app.command(help=HELP)
    def sub(
        pattern: str = typer.Argument(..., help="topic pattern (? one segment, * one or more)"),
        filter: str = typer.Option(None, "--filter", "-f", help="CEL filter, e.g. 'body.x > 3'"),
        start: str = typer.Option(None, "--start", "-s",
                                  help="replay from: earliest, last, a sequence number, an event position "
                                       "SEQ:INDEX (reliable)"),
        reliable: bool = typer.Option(False, "--reliable", "-r", help="acknowledged delivery (JetStream)"),
        group: str = typer.Option(None, "--group", "-g", help="share events with other members"),
        count: int = typer.Option(0, "--count", "-n", help="stop after this many events (0: never)"),
        timeout: float = typer.Option(0, "--timeout", help="stop after this many idle seconds (0: never)"),
        until_end: bool = typer.Option(False, "--until-end", "-e",
                                       help="exit at the end of the stored events (implies --start earliest)"),
        last: int = typer.Option(0, "--last", help="first show the last N stored events"),
        raw: bool = typer.Option(False, "--raw", help="print bodies only (strings as they are)"),
        as_json: bool = typer.Option(True, "--json", help="one JSON event per line (the default)"),
        url: str = URL, token: str = TOKEN, context: str = CONTEXT,
    ) -> None:
        target = resolve(url, token, context)
        if last < 0 or count < 0:
            raise die("--last and --count take a positive number")
        begin: str | int | None = int(start) if start and start.isdigit() else start
        if until_end and begin is None and not last:
            begin = "earliest"
        with connected(target, "evfabric-cli-sub", mode="sync") as client:  # sync: printed in arrival order
            if last:
                begin = _last_start(client, pattern, last) if begin is None else begin
            tail(client, pattern, filter, start=begin, durable=reliable or begin is not None or until_end,
                 group=group, count=count, timeout=timeout, until_end=until_end, last=last, raw=raw)


def tail(client: Any, pattern: str, filter: str | None, *, start: str | int | None, durable: bool,
         group: str | None, count: int, timeout: float, until_end: bool, last: int, raw: bool) -> int:
    """Subscribe and print events (see module doc); returns how many were printed. ``client`` is
    best a ``mode="sync"`` one: events then print in the order they arrive."""
    events: queue.SimpleQueue[Any] = queue.SimpleQueue()
    s = client.subscribe(pattern, filter, listener=events.put, start=start, group=group,
                         delivery="reliable" if durable else None)
    backlog: deque[Any] | None = deque(maxlen=last) if last else None
    seen = 0
    idle_since = time.monotonic()
    while count == 0 or seen < count:
        try:
            client.process_events()  # a ``sync`` client calls the listener here, in arrival order
            ev = events.get(timeout=0.05) if events.empty() else events.get_nowait()
        except queue.Empty:
            at_end = durable and (until_end or backlog is not None) and client.lag(s) == 0 and events.empty()
            if at_end and backlog is not None:
                for old in backlog:  # the stored tail, then live events (or the end)
                    _write(old, raw)
                    seen += 1
                    if count and seen >= count:
                        break
                backlog = None
                idle_since = time.monotonic()
                continue
            if at_end and until_end:
                break
            if timeout and time.monotonic() - idle_since > timeout:
                break
            continue
        idle_since = time.monotonic()
        if backlog is not None:
            backlog.append(ev)
            continue
        _write(ev, raw)
        seen += 1
    return seen
