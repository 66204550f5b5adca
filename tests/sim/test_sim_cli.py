"""The command-line entry points, the examples and the benchmark's smoke run."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from evfabric.cli import app

ROOT = Path(__file__).resolve().parents[2]


def test_python_m_evfabric_sim_prints_json():
    out = subprocess.run(
        [sys.executable, "-m", "evfabric.sim", "carwash", "--until", "500", "--json", "-p", "seed=2"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout
    got = json.loads(out)
    assert got["model"] == "carwash" and got["results"]["departed"] > 400
    assert got["stats"]["committed"] > 0 and "efficiency" in got["stats"]


def test_evfabric_sim_command_runs_a_model_in_parallel():
    res = CliRunner().invoke(app, ["sim", "phold", "--mode", "conservative", "--workers", "2", "--until", "5", "--csv"])
    assert res.exit_code == 0, res.output
    header, row = res.output.strip().splitlines()[-2:]
    stats = dict(zip(header.split(","), row.split(",")))
    assert stats["mode"] == "conservative" and stats["workers"] == "2" and int(stats["committed"]) > 0


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem + "_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_examples_are_importable_and_runnable(capsys):
    carwash = _load(ROOT / "examples" / "carwash.py")
    res = carwash.main(["--until", "2000", "--mode", "conservative", "--workers", "2"])
    assert res["departed"] > 1800
    assert "M/M/2 theory" in capsys.readouterr().out
    assert _load(ROOT / "examples" / "phold.py").main(["--n", "16", "--until", "5"])["events"] > 0
    assert _load(ROOT / "examples" / "epidemic.py").main(["--people", "300", "--mode", "optimistic", "--workers", "2"])["infected"] >= 10


def test_bench_phold_quick_has_the_named_positive_figures():
    bench = _load(ROOT / "bench" / "phold.py")
    figures = {f.name: f for f in bench.run(quick=True)}
    names = {"sequential", "sequential_vs_simpy", "conservative_2w", "conservative_null_2w", "optimistic_2w",
             "optimistic_efficiency", "optimistic_worst_efficiency"}
    assert names <= set(figures)
    for f in figures.values():
        assert f.value > 0 and f.peer_value > 0, f
        assert f.as_dict()["ratio"] > 0
    assert figures["conservative_2w"].notes["same_results"] is True
    assert figures["optimistic_2w"].notes["same_results"] is True
    assert figures["optimistic_worst_efficiency"].value >= 0.5, figures["optimistic_worst_efficiency"].notes


def test_evfabric_sim_refuses_user_mistakes_in_one_line():
    for args, words in ((["-p", "machines=abc"], "carwash parameter machines='abc': not an int"),
                        (["--workers", "0", "--mode", "optimistic"], "workers must be >= 1"),
                        (["--until", "-5"], "--until must be a positive simulated time")):
        r = subprocess.run([sys.executable, "-m", "evfabric.cli", "sim", "carwash", *args],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 1, (args, r.stdout, r.stderr)
        assert r.stderr.strip().count("\n") == 0 and words in r.stderr and "Traceback" not in r.stderr, r.stderr
