"""``evfabric sub PATTERN [--filter CEL]``: tail events from the fabric, one JSON line each."""

from __future__ import annotations

import os
import queue
import sys
import time

import typer

DEFAULT_URL = os.environ.get("EVFABRIC_URL", "nats://127.0.0.1:4222")


def register(app: typer.Typer) -> None:
    @app.command()
    def sub(
        pattern: str = typer.Argument(..., help="topic pattern (? one segment, * one or more)"),
        filter: str = typer.Option(None, "--filter", "-f", help="CEL filter, e.g. 'body.x > 3'"),
        url: str = typer.Option(DEFAULT_URL, "--url", "-u", help="broker URL (env EVFABRIC_URL)"),
        start: str = typer.Option(None, "--start", "-s",
                                  help="replay from: earliest, last, a sequence number (reliable)"),
        reliable: bool = typer.Option(False, "--reliable", "-r", help="acknowledged delivery (JetStream)"),
        group: str = typer.Option(None, "--group", "-g", help="share events with other members"),
        count: int = typer.Option(0, "--count", "-n", help="stop after this many events (0: never)"),
        timeout: float = typer.Option(0, "--timeout", help="stop after this many idle seconds (0: never)"),
    ) -> None:
        """Print events matching PATTERN (and FILTER) as JSON lines until Ctrl-C, COUNT or TIMEOUT."""
        from evfabric.core.codec import to_json
        from evfabric.core.errors import EvfabricError
        from evfabric.fabric.client import connect

        begin: str | int | None = int(start) if start and start.isdigit() else start
        events: queue.SimpleQueue = queue.SimpleQueue()
        try:
            with connect(url, source="evfabric-cli-sub") as client:
                client.subscribe(pattern, filter, listener=events.put, start=begin, group=group,
                                 delivery="reliable" if (reliable or begin is not None) else None)
                seen = 0
                last = time.monotonic()
                while count == 0 or seen < count:
                    try:
                        ev = events.get(timeout=0.2)
                    except queue.Empty:
                        if timeout and time.monotonic() - last > timeout:
                            break
                        continue
                    sys.stdout.write(to_json(ev).decode() + "\n")
                    sys.stdout.flush()
                    seen += 1
                    last = time.monotonic()
        except KeyboardInterrupt:
            pass
        except EvfabricError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
