"""The shipped models by name, and one entry point to run one from a command line.

``python -m evfabric.sim MODEL [options]`` runs a model and prints its results (JSON with
``--json``). Under ``mpiexec -n N python -m evfabric.sim MODEL --placement mpi`` every rank
runs it and rank 0 prints.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from typing import Any

from evfabric.coord.execute import MODES, PLACEMENTS
from evfabric.core.errors import ConfigError, EvfabricError
from evfabric.sim.lp import Model
from evfabric.sim.models import CarWash, Epidemic, Phold
from evfabric.sim.run import Result, run

__all__ = ["MODELS", "build", "main", "result_json"]

MODELS: dict[str, type[Model]] = {"carwash": CarWash, "phold": Phold, "epidemic": Epidemic}
DEFAULT_UNTIL = {"carwash": 1000.0, "phold": 100.0, "epidemic": 100.0}


def build(name: str, params: dict[str, str]) -> Model:
    """Model ``name`` with ``params`` (strings, converted to each field's type)."""
    if name not in MODELS:
        raise SystemExit(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
    cls = MODELS[name]
    types = {f.name: f.type for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    kw: dict[str, Any] = {}
    for key, text in params.items():
        if key not in types:
            raise SystemExit(f"{name} has no parameter {key!r}; parameters: {', '.join(types)}")
        kind = str(types[key])
        try:
            kw[key] = int(text) if kind == "int" else float(text) if kind == "float" else text
        except ValueError:
            raise ConfigError(f"{name} parameter {key}={text!r}: not {'an int' if kind == 'int' else 'a float'}") from None
    return cls(**kw)


def result_json(name: str, result: Result) -> str:
    """One JSON object: model, results, statistics (with the derived figures)."""
    stats = result.stats.as_row()
    return json.dumps({"model": name, "results": result.results, "stats": stats}, default=str)


def main(argv: list[str] | None = None, prog: str = "python -m evfabric.sim") -> int:
    """Parse ``argv``, run the model, print on rank 0 (or the only process). A user's mistake (a
    parameter of the wrong type, workers < 1, a negative end) is one line on stderr and exit 1."""
    try:
        return _main(argv, prog)
    except (EvfabricError, ValueError, TypeError) as exc:
        print(f"error: {type(exc).__name__}: {exc}" if isinstance(exc, EvfabricError) else f"error: {exc}",
              file=sys.stderr)
        return 1


def _main(argv: list[str] | None, prog: str) -> int:
    ap = argparse.ArgumentParser(prog=prog, description="run a shipped model")
    ap.add_argument("model", choices=sorted(MODELS))
    ap.add_argument("--until", type=float, default=None, help="end of simulated time (inclusive)")
    ap.add_argument("--mode", choices=MODES, default="sequential")
    ap.add_argument("--sync", choices=("windows", "null"), default="windows")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--placement", choices=PLACEMENTS, default="threads")
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--window", type=float, default=None)
    ap.add_argument("--fixed", action="store_true", help="optimistic: use --batch/--window as given, no adaptive throttling")
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE", help="model parameter")
    ap.add_argument("--fabric", metavar="URL", help="broker URL (placement fabric)")
    ap.add_argument("--run", default="evfabric-sim", help="run name shared by the participants (fabric)")
    ap.add_argument("--rank", type=int, default=0, help="this participant's PE number (fabric)")
    ap.add_argument("--size", type=int, default=1, help="number of participants (fabric)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--csv", action="store_true", help="print the statistics as CSV (header and row)")
    args = ap.parse_args(argv)
    params = dict(p.split("=", 1) for p in args.param)
    model = build(args.model, params)
    until = args.until if args.until is not None else DEFAULT_UNTIL[args.model]
    if not until > 0:
        raise ConfigError(f"--until must be a positive simulated time, not {until}")
    options: dict[str, Any] = {"sync": args.sync, "batch": args.batch, "window": args.window, "timeout": args.timeout,
                               "adaptive": not args.fixed}
    if args.placement == "fabric":
        return _run_on_fabric(args, model, until, options)
    result = run(model, until if math.isfinite(until) else math.inf, args.mode, args.workers, args.placement, **options)
    if args.placement == "mpi":
        from evfabric.coord.transport_mpi import mpi_world

        if mpi_world()[0] != 0:
            return 0
    _print(args, result)
    return 0


def _run_on_fabric(args: argparse.Namespace, model: Model, until: float, options: dict[str, Any]) -> int:
    import evfabric
    from evfabric.coord.transport_fabric import FabricTransport

    if not args.fabric:
        raise SystemExit("placement fabric needs --fabric URL (and --run, --rank, --size)")
    with evfabric.connect(args.fabric, source=f"{args.run}-pe{args.rank}") as client:
        transport = FabricTransport(client, args.run, args.rank, args.size)
        result = run(model, until, args.mode, args.size, "fabric", transport=transport, **options)
    if args.rank == 0:
        _print(args, result)
    return 0


def _print(args: argparse.Namespace, result: Result) -> None:
    if args.json:
        print(result_json(args.model, result))
    elif args.csv:
        print(result.stats.csv_header())
        print(result.stats.csv_row())
    else:
        for k, v in result.results.items():
            print(f"{k:24} {v}")
        print(result.stats.summary())
