"""The ``evfabric`` command. Thin: it parses arguments and calls the layers.

Sub-commands live in sibling modules (``demo.py``, ``bench.py``, ``serve.py``...); each defines
``register(app: typer.Typer) -> None`` and is discovered here, so a new command is a new file.
"""

from __future__ import annotations

import importlib
import pkgutil

import typer

app = typer.Typer(
    name="evfabric",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    token: str = typer.Option(None, "--token", help="access token for every command (sets EVFABRIC_TOKEN)"),
    context: str = typer.Option(None, "--context", help="a saved context (see `evfabric context`)"),
) -> None:
    """evfabric: an event fabric for HPC, HTC and scientific computing.

    Example:

        evfabric serve &
        evfabric sub 'jobs.*' --count 1 &
        evfabric pub jobs.42 '{"state": "done"}'
        evfabric --context lab trigger list      # a saved broker and token, for any command
    """
    from evfabric.cli._common import apply_globals

    apply_globals(token, context)


def _register_commands() -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(app)


_register_commands()

from evfabric.cli._examples import apply as _apply_examples  # noqa: E402 - after the commands exist

_apply_examples(app)


def main() -> None:
    """Entry point of the ``evfabric`` console script."""
    app()
