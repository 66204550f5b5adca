"""``evfabric pub TOPIC [BODY]``: publish events to the fabric from the shell."""

from __future__ import annotations

import json
import os

import typer

DEFAULT_URL = os.environ.get("EVFABRIC_URL", "nats://127.0.0.1:4222")


def register(app: typer.Typer) -> None:
    @app.command()
    def pub(
        topic: str = typer.Argument(..., help="topic to publish on (dot-separated)"),
        body: str = typer.Argument("{}", help="event body as a JSON object"),
        url: str = typer.Option(DEFAULT_URL, "--url", "-u", help="broker URL (env EVFABRIC_URL)"),
        reliable: bool = typer.Option(False, "--reliable", "-r", help="wait until the broker stored it"),
        count: int = typer.Option(1, "--count", "-n", help="publish the event this many times"),
        key: str = typer.Option(None, "--key", "-k", help="partitioning key"),
        type_: str = typer.Option(None, "--type", "-t", help="event type"),
        source: str = typer.Option("evfabric-cli", "--source", help="publisher id"),
    ) -> None:
        """Publish COUNT events with BODY on TOPIC; print the id of the last one."""
        from evfabric.core.errors import EvfabricError
        from evfabric.fabric.client import connect

        try:
            data = json.loads(body)
        except ValueError as exc:
            raise typer.BadParameter(f"BODY is not JSON: {exc}") from None
        header = {k: v for k, v in (("key", key), ("type", type_)) if v is not None}
        try:
            with connect(url, source=source) as client:
                last = None
                for _ in range(count):
                    last = client.publish(topic, data, delivery="reliable" if reliable else "best_effort",
                                          wait=False, **header)
                client.flush(30)
        except EvfabricError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        typer.echo(last.id if last else "")
