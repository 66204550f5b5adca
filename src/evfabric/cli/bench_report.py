"""``evfabric bench-report``: run every benchmark and write ``bench/README.md`` with the plots.

One command refreshes the published numbers: it runs each module in ``bench/`` (as ``evfabric
bench NAME`` does), writes the table of all figures (figure, value, peer, peer value, ratio, and
the command that reproduces it) to ``bench/README.md``, draws the ratios of every figure as a bar
chart (``bench/plots/ratios.png``), and lets each benchmark that defines ``plots(directory)`` add
its own (``bench/htc.py`` adds the HTC staleness plot). A benchmark that fails is reported in the
README with its error instead of stopping the others.
"""

from __future__ import annotations

import json
import platform
import time
import traceback
from pathlib import Path
from typing import Any

import psutil
import typer
from rich.console import Console

import evfabric
from evfabric.cli.bench import available, load


def default_bench_dir() -> Path:
    """The source checkout's ``bench/`` (where README.md belongs), else ``./bench``."""
    checkout = Path(evfabric.__file__).resolve().parents[2] / "bench"
    return checkout if checkout.is_dir() else Path.cwd() / "bench"


def run_all(names: list[str], quick: bool, plots_dir: Path, console: Console) -> tuple[list[dict[str, Any]], list[Path]]:
    """Run ``names``; return their results (``error`` set for failures) and the plot files written."""
    results: list[dict[str, Any]] = []
    plots: list[Path] = []
    for name in names:
        console.print(f"running bench [bold]{name}[/bold] ...")
        began = time.time()
        try:
            module = load(name)
            figures = module.run(quick=quick)
            result: dict[str, Any] = {"bench": name, "figures": [f.as_dict() for f in figures]}
            draw = getattr(module, "plots", None)
            if draw is not None:
                plots.extend(draw(plots_dir))
        except Exception as exc:  # one broken benchmark must not hide the others' numbers
            result = {"bench": name, "figures": [], "error": f"{type(exc).__name__}: {exc}"}
            console.print(f"[red]{name} failed[/red]: {exc}\n{traceback.format_exc(limit=3)}")
        result["seconds"] = round(time.time() - began, 1)
        results.append(result)
    return results, plots


def ratio_limits(ratios: list[float]) -> tuple[float, float]:
    """X limits ``(1/m, m)`` of the ratio chart: centred at 1 on a log axis, ``m`` just beyond the
    ratio farthest from 1 (at least 2)."""
    far = max((max(r, 1.0 / r) for r in ratios if r > 0), default=2.0)
    m = max(2.0, far * 1.25)
    return 1.0 / m, m


def plot_ratios(results: list[dict[str, Any]], path: Path) -> Path | None:
    """A horizontal bar per figure: its ratio to the peer (log scale; right of 1 is better)."""
    rows = [(r["bench"], f["name"], f["ratio"]) for r in results for f in r["figures"] if f.get("ratio", 0) > 0]
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    benches = sorted({b for b, _, _ in rows})
    palette = plt.get_cmap("tab10")
    colour = {b: palette(i % 10) for i, b in enumerate(benches)}
    fig, ax = plt.subplots(figsize=(9, max(2.5, 0.32 * len(rows) + 1)))
    labels = [f"{b}: {n}" for b, n, _ in rows]
    # bars grow from 1 (as good as the peer) to the ratio, on a log axis centred at 1
    ax.barh(range(len(rows)), [v - 1.0 for _, _, v in rows], left=1.0, color=[colour[b] for b, _, _ in rows])
    ax.set_yticks(range(len(rows)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlim(*ratio_limits([v for _, _, v in rows]))
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xlabel("ratio to the peer (above 1: better than the peer)")
    ax.set_title("evfabric benchmarks: every figure against its peer, same run")
    ax.grid(axis="x", alpha=0.3, which="both")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _num(v: float) -> str:
    return f"{v:,.4g}"


def render_readme(results: list[dict[str, Any]], plots: list[Path], out_dir: Path, quick: bool) -> str:
    """The text of ``bench/README.md``."""
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    cpu = platform.processor() or platform.machine()
    lines = [
        "# evfabric benchmarks: latest results",
        "",
        f"Written by `evfabric bench-report{' --quick' if quick else ''}` on {when}: Python "
        f"{platform.python_version()}, {psutil.cpu_count()} CPUs ({cpu}), {platform.system()}. Machines are shared "
        "and noisy: read the ratios (value against its peer, measured in the same run; above 1 is better than the "
        "peer), not the absolute numbers.",
        "",
        "| bench | figure | value | unit | peer | peer value | ratio | command |",
        "| --- | --- | ---: | --- | --- | ---: | ---: | --- |",
    ]
    for r in results:
        cmd = f"`evfabric bench {r['bench']} --json{' --quick' if quick else ''}`"
        if r.get("error"):
            lines.append(f"| {r['bench']} | **failed**: {r['error'].replace('|', '/')} | | | | | | {cmd} |")
            continue
        for f in r["figures"]:
            lines.append(f"| {r['bench']} | {f['name']} | {_num(f['value'])} | {f['unit']} | {f['peer']} | "
                         f"{_num(f['peer_value'])} | {f['ratio']:.3f} | {cmd} |")
    lines += ["", "Time taken: " + ", ".join(f"{r['bench']} {r['seconds']} s" for r in results) + ".", ""]
    for p in plots:
        rel = p.resolve().relative_to(out_dir.resolve()) if p.resolve().is_relative_to(out_dir.resolve()) else p
        lines += [f"![{p.stem}]({rel.as_posix()})", ""]
    lines += ["Regenerate everything with `evfabric bench-report` (add `--quick` for a smoke run).", ""]
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    @app.command("bench-report")
    def bench_report(
        only: list[str] = typer.Option([], "--only", help="run only these benchmarks (repeatable)"),
        quick: bool = typer.Option(False, "--quick", help="small sizes, for a smoke test"),
        out: Path = typer.Option(None, "--out", help="directory for README.md and plots/ (default: bench/)"),
        as_json: bool = typer.Option(False, "--json", help="also print all results as one JSON object"),
    ) -> None:
        """Run all benchmarks; write bench/README.md (the table) and bench/plots/*.png."""
        names = list(only) or available()
        unknown = sorted(set(names) - set(available()))
        if unknown:
            raise typer.BadParameter(f"no benchmark named {', '.join(unknown)}; available: {', '.join(available())}")
        out_dir = out or default_bench_dir()
        plots_dir = out_dir / "plots"
        console = Console(stderr=True)
        results, plots = run_all(names, quick, plots_dir, console)
        ratios = plot_ratios(results, plots_dir / "ratios.png")
        all_plots = ([ratios] if ratios else []) + plots
        readme = out_dir / "README.md"
        readme.write_text(render_readme(results, all_plots, out_dir, quick))
        console.print(f"wrote {readme} and {len(all_plots)} plot(s) in {plots_dir}")
        if as_json:
            print(json.dumps({"results": results, "plots": [str(p) for p in all_plots]}))
