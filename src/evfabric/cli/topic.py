"""``evfabric topic create|list|describe|update|delete``: durable topics (on their namespace's stream)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import typer

from evfabric.cli._common import CONTEXT, TOKEN, URL, Target, connected, resolve

HELP = """Durable topics: create, list, describe, view, update, delete.

The topics of a namespace (a topic's first segment; users.<x>.*: its first two) share one
stream: partitions and the description are a topic's own; retention (--max-age, --max-bytes,
--max-msgs), --replicas and --storage are its namespace's, the same for all its topics.
A --raw topic stores what foreign clients (MQTT devices, plain NATS) publish on its own
subjects, in a stream of its own with its own settings.

Example:

    evfabric topic create runs --max-age 3600 --partitions 2
    evfabric topic view runs --last 5
"""


def _with_client(target: Target, fn: Callable[[Any], Any]) -> Any:
    with connected(target, "evfabric-cli-topic") as client:
        return fn(client)


def register(app: typer.Typer) -> None:
    topic_app = typer.Typer(help=HELP, no_args_is_help=True)
    app.add_typer(topic_app, name="topic")

    @topic_app.command("create")
    def create(
        name: str = typer.Argument(..., help="topic (stores NAME and everything below it)"),
        max_age: float = typer.Option(None, "--max-age", help="seconds an event is kept (TTL)"),
        max_bytes: int = typer.Option(None, "--max-bytes", help="bytes kept at most"),
        max_msgs: int = typer.Option(None, "--max-msgs", help="messages (batches) kept at most"),
        max_events: int = typer.Option(None, "--max-events", help="events kept at most (trimmed by evfabric serve)"),
        replicas: int = typer.Option(1, "--replicas", help="copies in a cluster (JetStream R)"),
        partitions: int = typer.Option(1, "--partitions", help="partitions (keyed order, group parallelism)"),
        storage: str = typer.Option("file", "--storage", help="file or memory"),
        raw: bool = typer.Option(False, "--raw", help="store what foreign clients (MQTT, plain NATS) publish on "
                                 "NAME's own subjects, one event per message"),
        url: str = URL, token: str = TOKEN, context: str = CONTEXT,
    ) -> None:
        """Create a durable topic.

        Example: evfabric topic create runs --max-age 3600 --partitions 2
                 evfabric topic create lab.probe --raw --max-events 100000
        """
        info = _with_client(resolve(url, token, context), lambda c: c.create_topic(
            name, max_age=max_age, max_bytes=max_bytes, max_msgs=max_msgs, max_events=max_events, replicas=replicas,
            partitions=partitions, storage=storage, raw=raw))
        typer.echo(json.dumps(info.as_dict()))

    @topic_app.command("list")
    def list_(url: str = URL, as_json: bool = typer.Option(False, "--json", help="one JSON object per line"),
              token: str = TOKEN, context: str = CONTEXT) -> None:
        """List durable topics.

        Example: evfabric topic list --json
        """
        infos = _with_client(resolve(url, token, context), lambda c: c.list_topics())
        for i in infos:
            d = i.as_dict()
            typer.echo(json.dumps(d) if as_json else
                       f"{d['topic']:<30} partitions={d['partitions']} replicas={d['replicas']} "
                       f"messages={d['messages']} bytes={d['bytes']} stream={d['stream']}"
                       + (" (shared)" if d["shared"] else ""))

    @topic_app.command("describe")
    def describe(name: str = typer.Argument(...), url: str = URL, token: str = TOKEN, context: str = CONTEXT) -> None:
        """Show a topic's settings and state as JSON.

        Example: evfabric topic describe runs
        """
        info = _with_client(resolve(url, token, context), lambda c: c.describe_topic(name))
        typer.echo(json.dumps(info.as_dict(), indent=2))

    @topic_app.command("view")
    def view(
        name: str = typer.Argument(..., help="a durable topic"),
        last: int = typer.Option(0, "--last", help="only the last N stored events"),
        count: int = typer.Option(0, "--count", "-n", help="at most N events"),
        raw: bool = typer.Option(False, "--raw", help="bodies only"),
        url: str = URL, token: str = TOKEN, context: str = CONTEXT,
    ) -> None:
        """Print the events a topic stores below NAME (one JSON event per line) and exit.

        Example: evfabric topic view runs --last 10
        """
        from evfabric.cli.sub import _last_start, tail

        with connected(resolve(url, token, context), "evfabric-cli-topic", mode="sync") as client:
            client.describe_topic(name)  # NotFound: one line, and nothing is created
            pattern = f"{name}.*"
            begin = _last_start(client, pattern, last) if last else "earliest"
            tail(client, pattern, None, start=begin, durable=True, group=None, count=count, timeout=0,
                 until_end=True, last=last, raw=raw)

    @topic_app.command("update")
    def update(
        name: str = typer.Argument(...),
        max_age: float = typer.Option(None, "--max-age"),
        max_bytes: int = typer.Option(None, "--max-bytes"),
        max_msgs: int = typer.Option(None, "--max-msgs"),
        max_events: int = typer.Option(None, "--max-events"),
        replicas: int = typer.Option(None, "--replicas"),
        partitions: int = typer.Option(None, "--partitions"),
        url: str = URL, token: str = TOKEN, context: str = CONTEXT,
    ) -> None:
        """Change a topic's partitions, or its namespace's retention and replicas (only while the
        topic is alone in its namespace).

        Example: evfabric topic update runs --max-age 86400
        """
        changes = {k: v for k, v in dict(max_age=max_age, max_bytes=max_bytes, max_msgs=max_msgs,
                                          max_events=max_events, replicas=replicas, partitions=partitions).items() if v is not None}
        typer.echo(json.dumps(_with_client(resolve(url, token, context), lambda c: c.update_topic(name, **changes)).as_dict()))

    @topic_app.command("delete")
    def delete(name: str = typer.Argument(...), url: str = URL, token: str = TOKEN, context: str = CONTEXT) -> None:
        """Delete a topic and its stored events.

        Example: evfabric topic delete runs
        """
        _with_client(resolve(url, token, context), lambda c: c.delete_topic(name))
        typer.echo(f"deleted {name}")
