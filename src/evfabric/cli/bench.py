"""``evfabric bench NAME [--json]``: run a benchmark from ``bench/`` and print its figures."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

import evfabric


def bench_dirs() -> list[Path]:
    """Where benchmark modules are looked for: the wheel's copy, then a source checkout's."""
    pkg = Path(evfabric.__file__).resolve().parent
    return [d for d in (pkg / "_bench", pkg.parents[1] / "bench") if d.is_dir()]


def available() -> list[str]:
    """Names of the benchmarks that can be run."""
    names: set[str] = set()
    for d in bench_dirs():
        names.update(p.stem for p in d.glob("*.py") if not p.stem.startswith("_"))
    return sorted(names)


def load(name: str) -> ModuleType:
    """Import ``bench/NAME.py`` by path; raise typer.BadParameter for an unknown name."""
    for d in bench_dirs():
        path = d / f"{name}.py"
        if path.is_file():
            spec = importlib.util.spec_from_file_location(f"evfabric_bench_{name}", path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module
    raise typer.BadParameter(f"no benchmark named {name!r}; available: {', '.join(available())}")


def run_one(name: str, quick: bool) -> dict:
    """Run one benchmark and return DESIGN.md's JSON object for it."""
    figures = load(name).run(quick=quick)
    return {"bench": name, "figures": [f.as_dict() for f in figures]}


def _print_table(result: dict, console: Console) -> None:
    table = Table(title=f"bench {result['bench']}")
    for col in ("figure", "unit", "value", "peer", "peer value", "ratio"):
        table.add_column(col, justify="right" if col in ("value", "peer value", "ratio") else "left")
    for f in result["figures"]:
        table.add_row(
            f["name"], f["unit"], f"{f['value']:,.4g}", f["peer"], f"{f['peer_value']:,.4g}", f"{f['ratio']:.3f}"
        )
    console.print(table)


HELP = """Run a benchmark: every figure with its peer, measured in the same run, and the ratio.

NAME 'pub' or 'sub' measures a running broker instead (like `nats bench`).

Examples:

    evfabric bench inproc --quick
    evfabric bench sub --msgs 100000 --size 128 &       # waits for the events
    evfabric bench pub --msgs 100000 --size 128 --url nats://127.0.0.1:4222
    evfabric bench sub --with-pub --msgs 100000 --reliable   # both sides in one process
"""


def _live(name: str, topic: str, msgs: int, size: int, reliable: bool, with_pub: bool, timeout: float,
          as_json: bool, target: Any) -> None:
    from evfabric.cli._common import connected
    from evfabric.cli._livebench import bench_pub, bench_sub

    if msgs < 1 or size < 1:
        raise typer.BadParameter("--msgs and --size must be positive")
    with connected(target, f"evfabric-bench-{name}") as client:
        if name == "pub":
            result = bench_pub(client, topic, msgs, size, reliable)
        elif with_pub:
            with connected(target, "evfabric-bench-pub") as pub:
                result = bench_sub(client, topic, msgs, size, reliable, timeout, with_pub=pub)
        else:
            typer.echo(f"waiting for {msgs:,} events on {topic!r} (run `evfabric bench pub` now)", err=True)
            result = bench_sub(client, topic, msgs, size, reliable, timeout)
    print(json.dumps(result.as_dict()) if as_json else result.line())


def register(app: typer.Typer) -> None:
    from evfabric.cli._common import CONTEXT, TOKEN, URL, resolve

    @app.command(help=HELP)
    def bench(
        name: str = typer.Argument(..., help="benchmark name (a file in bench/), 'all', or pub / sub (live)"),
        as_json: bool = typer.Option(False, "--json", help="print one JSON object per benchmark"),
        quick: bool = typer.Option(False, "--quick", help="small sizes, for a smoke test"),
        msgs: int = typer.Option(100_000, "--msgs", help="pub/sub: events to send or wait for"),
        size: int = typer.Option(128, "--size", help="pub/sub: body bytes per event"),
        topic: str = typer.Option("bench.evf", "--topic", help="pub/sub: the topic"),
        reliable: bool = typer.Option(False, "--reliable", help="pub/sub: reliable delivery"),
        with_pub: bool = typer.Option(False, "--with-pub", help="sub: also publish, from this process"),
        timeout: float = typer.Option(30.0, "--timeout", help="sub: give up after this many idle seconds"),
        url: str = URL, token: str = TOKEN, context: str = CONTEXT,
    ) -> None:
        if name in ("pub", "sub"):
            try:
                _live(name, topic, msgs, size, reliable, with_pub, timeout, as_json, resolve(url, token, context))
            except TimeoutError as exc:
                typer.echo(f"error: {exc}", err=True)
                raise typer.Exit(1) from None
            return
        names = available() if name == "all" else [name]
        console = Console()
        for n in names:
            result = run_one(n, quick)
            if as_json:
                print(json.dumps(result))
            else:
                _print_table(result, console)
