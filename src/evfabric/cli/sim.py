"""``evfabric sim MODEL ...``: run a shipped model (car wash, PHOLD, epidemic) in any mode."""

from __future__ import annotations

import typer

from evfabric.coord.execute import MODES, PLACEMENTS


def register(app: typer.Typer) -> None:
    @app.command(context_settings={"allow_extra_args": False})
    def sim(
        model: str = typer.Argument(..., help="carwash, phold or epidemic"),
        until: float = typer.Option(None, help="end of simulated time (default: the model's)"),
        mode: str = typer.Option("sequential", help=" | ".join(MODES)),
        sync: str = typer.Option("windows", help="conservative synchronisation: windows | null"),
        workers: int = typer.Option(1, help="processing elements"),
        placement: str = typer.Option("threads", help=" | ".join(PLACEMENTS)),
        param: list[str] = typer.Option([], "--param", "-p", help="model parameter KEY=VALUE (repeatable)"),
        as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
        csv: bool = typer.Option(False, "--csv", help="print the statistics as a CSV header and row"),
    ) -> None:
        """Simulate a model and print its results and ROSS-like statistics."""
        from evfabric.sim.catalog import main

        argv = [model, "--mode", mode, "--sync", sync, "--workers", str(workers), "--placement", placement]
        if until is not None:
            argv += ["--until", str(until)]
        for p in param:
            argv += ["--param", p]
        argv += ["--json"] if as_json else ["--csv"] if csv else []
        raise typer.Exit(main(argv, prog="evfabric sim"))
