"""``evfabric pub TOPIC [BODY]``: publish events to the fabric from the shell."""

from __future__ import annotations

import typer

from evfabric.cli._bodies import bodies
from evfabric.cli._common import CONTEXT, TOKEN, URL, connected, die, resolve

HELP = """Publish COUNT events with BODY on TOPIC (or one per stdin line); print the id of the last one.

Exits 1 with a one-line error when the broker refused (or did not confirm) the events.

Examples:

    evfabric pub jobs.42.status '{"state": "done"}' --reliable
    evfabric pub runs.a '{"i": {{i}}}' --count 100          # {"i": 1} ... {"i": 100}
    cat bodies.jsonl | evfabric pub runs.a -                # one event per line
"""


def register(app: typer.Typer) -> None:
    @app.command(help=HELP)
    def pub(
        topic: str = typer.Argument(..., help="topic to publish on (dot-separated)"),
        body: str = typer.Argument(None, help="event body as JSON ({{i}}: the event's number); '-': stdin lines"),
        reliable: bool = typer.Option(False, "--reliable", "-r", help="wait until the broker stored it"),
        count: int = typer.Option(1, "--count", "-n", help="publish the event this many times"),
        text: bool = typer.Option(False, "--text", help="send each body as {\"text\": BODY} (no JSON needed)"),
        key: str = typer.Option(None, "--key", "-k", help="partitioning key"),
        type_: str = typer.Option(None, "--type", "-t", help="event type"),
        source: str = typer.Option("evfabric-cli", "--source", help="publisher id"),
        auto_topics: bool = typer.Option(True, "--auto-topics/--no-auto-topics",
                                         help="create a durable topic on the first reliable use of an unknown one"),
        url: str = URL, token: str = TOKEN, context: str = CONTEXT,
    ) -> None:
        header = {k: v for k, v in (("key", key), ("type", type_)) if v is not None}
        target = resolve(url, token, context)
        last = None
        try:
            with connected(target, source, auto_topics=auto_topics) as client:
                for data in bodies(body, count, text):
                    last = client.publish(topic, data, delivery="reliable" if reliable else "best_effort",
                                          wait=False, **header)
                client.flush(30)
        except ValueError as exc:
            raise die(exc, 2) from None
        typer.echo(last.id if last else "")
