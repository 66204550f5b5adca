"""``evfabric context add|select|ls|show|rm``: saved brokers (URL, token, TLS), like ``nats context``."""

from __future__ import annotations

import json

import typer

from evfabric.cli._common import die
from evfabric.cli._contexts import Context, read_all, write_all

EXAMPLES = """

Example:

    evfabric context add lab --url nats://lab1:4222 --token "$ALICE_TOKEN" --select
    evfabric context ls
    evfabric sub 'experiments.?' --context lab
"""


def _mask(token: str | None) -> str:
    return "-" if not token else token[:21] + "..."


def register(app: typer.Typer) -> None:
    ctx_app = typer.Typer(help="Saved brokers: URL, token and TLS files (~/.config/evfabric/contexts.json, 0600)."
                          + EXAMPLES, no_args_is_help=True)
    app.add_typer(ctx_app, name="context")

    @ctx_app.command("add")
    def add(
        name: str = typer.Argument(..., help="the context's name"),
        url: str = typer.Option(..., "--url", "-u", help="broker URL, e.g. nats://host:4222 or tls://host:4222"),
        token: str = typer.Option(None, "--token", help="access token used with this broker"),
        tls_ca: str = typer.Option(None, "--tls-ca", help="CA certificate (PEM) that signed the broker's"),
        tls_cert: str = typer.Option(None, "--tls-cert", help="client certificate (PEM)"),
        tls_key: str = typer.Option(None, "--tls-key", help="client key (PEM)"),
        description: str = typer.Option("", "--description"),
        select: bool = typer.Option(False, "--select", help="also make it the selected context"),
    ) -> None:
        """Save (or replace) a context.

        Example: evfabric context add lab --url nats://lab1:4222 --token "$TOKEN" --select
        """
        selected, contexts = read_all()
        contexts[name] = Context(name, url, token, tls_ca, tls_cert, tls_key, description)
        path = write_all(name if select or not selected else selected, contexts)
        typer.echo(f"saved context {name} in {path}" + (" (selected)" if select or not selected else ""))

    @ctx_app.command("select")
    def select_(name: str = typer.Argument(..., help="a saved context")) -> None:
        """Make NAME the context commands use by default.

        Example: evfabric context select lab
        """
        _, contexts = read_all()
        if name not in contexts:
            raise die(f"no context named {name!r} (saved: {', '.join(sorted(contexts)) or 'none'})")
        write_all(name, contexts)
        typer.echo(f"selected {name}")

    @ctx_app.command("ls")
    def ls(as_json: bool = typer.Option(False, "--json", help="one JSON object (tokens masked)")) -> None:
        """List saved contexts; '*' marks the selected one.

        Example: evfabric context ls
        """
        selected, contexts = read_all()
        if as_json:
            typer.echo(json.dumps({"selected": selected, "contexts": {
                n: {**c.as_dict(), "token": _mask(c.token)} for n, c in contexts.items()}}))
            return
        for n, c in sorted(contexts.items()):
            typer.echo(f"{'*' if n == selected else ' '} {n:16} {c.url:32} token {_mask(c.token)}"
                       + (f"  tls-ca {c.tls_ca}" if c.tls_ca else "") + (f"  {c.description}" if c.description else ""))

    @ctx_app.command("show")
    def show(name: str = typer.Argument(None, help="a saved context (default: the selected one)")) -> None:
        """Print one context as JSON (token masked).

        Example: evfabric context show lab
        """
        selected, contexts = read_all()
        wanted = name or selected
        if not wanted or wanted not in contexts:
            raise die(f"no context named {wanted!r}" if wanted else "no context is selected")
        c = contexts[wanted]
        typer.echo(json.dumps({"name": wanted, **c.as_dict(), "token": _mask(c.token)}, indent=2))

    @ctx_app.command("rm")
    def rm(name: str = typer.Argument(..., help="a saved context")) -> None:
        """Forget a context.

        Example: evfabric context rm lab
        """
        selected, contexts = read_all()
        if contexts.pop(name, None) is None:
            raise die(f"no context named {name!r}")
        write_all(None if selected == name else selected, contexts)
        typer.echo(f"removed {name}")
