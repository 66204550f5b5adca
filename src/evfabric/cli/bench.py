"""``evfabric bench NAME [--json]``: run a benchmark from ``bench/`` and print its figures."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

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


def register(app: typer.Typer) -> None:
    @app.command()
    def bench(
        name: str = typer.Argument(..., help="benchmark name (a file in bench/), or 'all'"),
        as_json: bool = typer.Option(False, "--json", help="print one JSON object per benchmark"),
        quick: bool = typer.Option(False, "--quick", help="small sizes, for a smoke test"),
    ) -> None:
        """Run a benchmark: every figure with its peer, measured in the same run, and the ratio."""
        names = available() if name == "all" else [name]
        console = Console()
        for n in names:
            result = run_one(n, quick)
            if as_json:
                print(json.dumps(result))
            else:
                _print_table(result, console)
