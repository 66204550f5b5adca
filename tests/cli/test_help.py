"""Every command's ``--help`` shows an example (walks the whole command tree, groups included)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import typer.main
from typer.testing import CliRunner

from evfabric.cli import app

pytestmark = pytest.mark.timeout(120)


def _paths(cmd: object, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    for name, sub in (getattr(cmd, "commands", None) or {}).items():
        yield from _paths(sub, (*path, name))


PATHS = list(_paths(typer.main.get_command(app)))


def test_the_tree_is_complete() -> None:
    names = {" ".join(p) for p in PATHS}
    assert {"sub", "pub", "request", "reply", "topic view", "context add", "bench", "trigger create",
            "user create", "status", "top", "serve"} <= names
    assert len(PATHS) > 50


@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p) or "evfabric")
def test_help_shows_an_example(path: tuple[str, ...]) -> None:
    r = CliRunner().invoke(app, [*path, "--help"], terminal_width=120)
    assert r.exit_code == 0, r.output
    assert "Example" in r.output, f"`evfabric {' '.join(path)} --help` shows no example:\n{r.output}"
    assert "evfabric " in r.output.split("Example", 1)[1]  # the example is a command line
