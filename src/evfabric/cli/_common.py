"""What every networked ``evfabric`` command shares: where the broker is, which token, errors.

The broker URL, token and TLS files come from, in order: the command's options (``--url``,
``--token``, ``--context``), the environment (``EVFABRIC_URL``, ``EVFABRIC_TOKEN``,
``EVFABRIC_CONTEXT``), the selected context (``evfabric context select``), then the default
``nats://127.0.0.1:4222``. Errors end the command with one line on stderr (``error: ...``) and
exit code 1, never a traceback.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import typer

from evfabric.cli._contexts import Context, load_context

__all__ = ["CONTEXT", "TOKEN", "URL", "Target", "apply_globals", "connected", "die", "resolve"]

DEFAULT_URL = "nats://127.0.0.1:4222"

URL = typer.Option(None, "--url", "-u", help="broker URL (env EVFABRIC_URL, else the context's, else "
                   f"{DEFAULT_URL})")
TOKEN = typer.Option(None, "--token", help="access token (env EVFABRIC_TOKEN, else the context's)")
CONTEXT = typer.Option(None, "--context", help="a saved context (evfabric context ls; env EVFABRIC_CONTEXT)")


@dataclass(frozen=True)
class Target:
    """A resolved broker: URL, token (or None), TLS files (or None)."""

    url: str
    token: str | None = None
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None

    def nats_options(self) -> dict[str, Any]:
        """Keywords for ``evfabric.connect`` / ``nats.connect`` (token and TLS)."""
        opts: dict[str, Any] = {}
        if self.token:
            opts["token"] = self.token
        if self.tls_ca or self.tls_cert:
            ctx = ssl.create_default_context(cafile=self.tls_ca)
            if self.tls_cert:
                ctx.load_cert_chain(self.tls_cert, self.tls_key)
            opts["tls"] = ctx
        return opts

    def raw_nats_options(self) -> dict[str, Any]:
        """Keywords for plain ``nats.connect`` (the token as user, password and inbox prefix)."""
        opts = self.nats_options()
        token = opts.pop("token", None)
        if token:
            from evfabric.access.client import nats_options

            opts.update(nats_options(token))
        return opts

    def url_with_token(self) -> str:
        """The URL with the token as credentials (``nats://<id>:<token>@host:port``), for
        connections that take only a URL."""
        if not self.token or "@" in self.url:
            return self.url
        from evfabric.access.tokens import parse_token

        scheme, _, rest = self.url.partition("://")
        return f"{scheme}://{parse_token(self.token.strip())}:{self.token.strip()}@{rest}"


def die(message: object, code: int = 1) -> typer.Exit:
    """Print ``error: message`` on stderr (an evfabric error as ``error: AccessDenied: ...``);
    return the Exit to raise."""
    from evfabric.core.errors import EvfabricError

    text = f"{type(message).__name__}: {message}" if isinstance(message, EvfabricError) else str(message)
    typer.echo(f"error: {text}", err=True)
    return typer.Exit(code)


def resolve(url: str | None = None, token: str | None = None, context: str | None = None) -> Target:
    """Flags, then environment, then the selected context, then the default (see module doc)."""
    try:
        ctx: Context | None = load_context(context or os.environ.get("EVFABRIC_CONTEXT"))
    except LookupError as exc:
        raise die(exc.args[0] if exc.args else exc) from None
    return Target(
        url=url or os.environ.get("EVFABRIC_URL") or (ctx.url if ctx else None) or DEFAULT_URL,
        token=token or os.environ.get("EVFABRIC_TOKEN") or (ctx.token if ctx else None) or None,
        tls_ca=ctx.tls_ca if ctx else None,
        tls_cert=ctx.tls_cert if ctx else None,
        tls_key=ctx.tls_key if ctx else None,
    )


def apply_globals(token: str | None, context: str | None) -> None:
    """``evfabric --token T --context C CMD``: export them (``EVFABRIC_TOKEN``, ``EVFABRIC_CONTEXT``
    and the context's URL as ``EVFABRIC_URL`` unless set), so that every command uses them."""
    if context:
        os.environ["EVFABRIC_CONTEXT"] = context
        target = resolve(None, token, context)
        os.environ.setdefault("EVFABRIC_URL", target.url)
        if target.token:
            os.environ["EVFABRIC_TOKEN"] = target.token
    if token:
        os.environ["EVFABRIC_TOKEN"] = token


@contextmanager
def connected(target: Target, source: str, **options: Any) -> Iterator[Any]:
    """``with connected(target, "evfabric-cli-x") as client:``; evfabric errors end the command
    with one line; Ctrl-C ends it quietly."""
    from evfabric.core.errors import EvfabricError
    from evfabric.fabric.client import connect

    try:
        with connect(target.url, source=source, **target.nats_options(), **options) as client:
            yield client
    except KeyboardInterrupt:
        return
    except EvfabricError as exc:
        raise die(exc) from None
    except (TimeoutError, OSError) as exc:
        raise die(f"{type(exc).__name__}: {exc or 'no answer in time'} (broker {target.url})") from None
