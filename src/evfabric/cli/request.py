"""``evfabric request TOPIC [BODY]`` and ``evfabric reply PATTERN [BODY]``: request/reply from the shell
(like ``nats request`` / ``nats reply``); see :mod:`evfabric.fabric.request`."""

from __future__ import annotations

import json
import queue
from typing import Any

import typer

from evfabric.cli._bodies import bodies
from evfabric.cli._common import CONTEXT, TOKEN, URL, connected, die, resolve

REQUEST_HELP = """Send a request event on TOPIC and print the first reply (one JSON event; --raw: its body).

Example:

    evfabric reply 'math.square' --echo &          # a responder that answers with the request's body
    evfabric request math.square '{"x": 7}' --timeout 2
"""

REPLY_HELP = """Answer requests on PATTERN with BODY ({{i}}: the request's number) or, with --echo, the request's body.

Example:

    evfabric reply 'svc.ping' '{"pong": {{i}}}' --count 1
    evfabric request svc.ping                       # prints the reply event
"""


def _one_body(body: str | None) -> Any:
    try:
        return next(bodies(body, 1))
    except ValueError as exc:
        raise die(exc, 2) from None


def _nth_body(body: str | None, n: int) -> Any:
    """The body of the ``n``-th reply (``{{i}}`` becomes ``n``)."""
    if body is None or "{{" not in body:
        return _one_body(body)
    return _one_body(body.replace("{{i}}", str(n)).replace("{{Count}}", str(n)))


def register(app: typer.Typer) -> None:
    @app.command(help=REQUEST_HELP)
    def request(
        topic: str = typer.Argument(..., help="topic of the request"),
        body: str = typer.Argument(None, help="request body as a JSON object (default {})"),
        timeout: float = typer.Option(5.0, "--timeout", help="seconds to wait for a reply"),
        raw: bool = typer.Option(False, "--raw", help="print the reply's body only"),
        url: str = URL, token: str = TOKEN, context: str = CONTEXT,
    ) -> None:
        from evfabric.core.codec import to_json

        data = _one_body(body)
        with connected(resolve(url, token, context), "evfabric-cli-request") as client:
            answer = client.request(topic, data, timeout=timeout)
            typer.echo(json.dumps(answer.body) if raw else to_json(answer).decode())

    @app.command(help=REPLY_HELP)
    def reply(
        pattern: str = typer.Argument(..., help="topic pattern to answer requests on"),
        body: str = typer.Argument(None, help="reply body as a JSON object ({{i}}: the request's number)"),
        echo: bool = typer.Option(False, "--echo", help="reply with the request's own body"),
        count: int = typer.Option(0, "--count", "-n", help="stop after this many replies (0: never)"),
        group: str = typer.Option(None, "--group", "-g", help="share requests with other responders"),
        url: str = URL, token: str = TOKEN, context: str = CONTEXT,
    ) -> None:
        from evfabric.fabric.request import REPLY_TO

        if body is not None and "{{" not in body:
            _one_body(body)  # refuse a bad BODY before waiting for requests
        requests: queue.SimpleQueue[Any] = queue.SimpleQueue()
        with connected(resolve(url, token, context), "evfabric-cli-reply") as client:
            client.subscribe(pattern, listener=requests.put, group=group, delivery="best_effort")
            typer.echo(f"answering requests on {pattern!r}", err=True)
            answered = 0
            while count == 0 or answered < count:
                ev = requests.get()
                if not (ev.extra or {}).get(REPLY_TO):
                    continue  # an ordinary event, not a request
                answered += 1
                client.reply(ev, ev.body if echo else _nth_body(body, answered))
