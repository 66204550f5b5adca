"""``evfabric topic create|list|describe|update|delete``: durable topics (JetStream streams)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import typer

DEFAULT_URL = os.environ.get("EVFABRIC_URL", "nats://127.0.0.1:4222")
URL = typer.Option(DEFAULT_URL, "--url", "-u", help="broker URL (env EVFABRIC_URL)")


def _with_client(url: str, fn: Callable[[Any], Any]) -> Any:
    from evfabric.core.errors import EvfabricError
    from evfabric.fabric.client import connect

    try:
        with connect(url, source="evfabric-cli-topic") as client:
            return fn(client)
    except EvfabricError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


def register(app: typer.Typer) -> None:
    topic_app = typer.Typer(help="Durable topics: create, list, describe, update, delete.", no_args_is_help=True)
    app.add_typer(topic_app, name="topic")

    @topic_app.command("create")
    def create(
        name: str = typer.Argument(..., help="topic root (stores NAME and everything below it)"),
        max_age: float = typer.Option(None, "--max-age", help="seconds an event is kept (TTL)"),
        max_bytes: int = typer.Option(None, "--max-bytes", help="bytes kept at most"),
        max_msgs: int = typer.Option(None, "--max-msgs", help="messages (batches) kept at most"),
        replicas: int = typer.Option(1, "--replicas", help="copies in a cluster (JetStream R)"),
        partitions: int = typer.Option(1, "--partitions", help="partitions (keyed order, group parallelism)"),
        storage: str = typer.Option("file", "--storage", help="file or memory"),
        url: str = URL,
    ) -> None:
        """Create a durable topic."""
        info = _with_client(url, lambda c: c.create_topic(
            name, max_age=max_age, max_bytes=max_bytes, max_msgs=max_msgs, replicas=replicas,
            partitions=partitions, storage=storage))
        typer.echo(json.dumps(info.as_dict()))

    @topic_app.command("list")
    def list_(url: str = URL, as_json: bool = typer.Option(False, "--json", help="one JSON object per line")) -> None:
        """List durable topics."""
        infos = _with_client(url, lambda c: c.list_topics())
        for i in infos:
            d = i.as_dict()
            typer.echo(json.dumps(d) if as_json else
                       f"{d['topic']:<30} partitions={d['partitions']} replicas={d['replicas']} "
                       f"messages={d['messages']} bytes={d['bytes']}")

    @topic_app.command("describe")
    def describe(name: str = typer.Argument(...), url: str = URL) -> None:
        """Show a topic's settings and state as JSON."""
        typer.echo(json.dumps(_with_client(url, lambda c: c.describe_topic(name)).as_dict(), indent=2))

    @topic_app.command("update")
    def update(
        name: str = typer.Argument(...),
        max_age: float = typer.Option(None, "--max-age"),
        max_bytes: int = typer.Option(None, "--max-bytes"),
        max_msgs: int = typer.Option(None, "--max-msgs"),
        replicas: int = typer.Option(None, "--replicas"),
        partitions: int = typer.Option(None, "--partitions"),
        url: str = URL,
    ) -> None:
        """Change a topic's retention, replicas or partitions."""
        changes = {k: v for k, v in dict(max_age=max_age, max_bytes=max_bytes, max_msgs=max_msgs,
                                          replicas=replicas, partitions=partitions).items() if v is not None}
        typer.echo(json.dumps(_with_client(url, lambda c: c.update_topic(name, **changes)).as_dict()))

    @topic_app.command("delete")
    def delete(name: str = typer.Argument(...), url: str = URL) -> None:
        """Delete a topic and its stored events."""
        _with_client(url, lambda c: c.delete_topic(name))
        typer.echo(f"deleted {name}")
