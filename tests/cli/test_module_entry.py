"""``python -m evfabric`` is the ``evfabric`` command."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import SRC


def test_python_dash_m_evfabric_runs_the_command_line() -> None:
    env = {**os.environ, "PYTHONPATH": SRC}
    done = subprocess.run([sys.executable, "-m", "evfabric", "demo", "--help"], capture_output=True, text=True,
                          timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    assert "Usage: python -m evfabric demo" in done.stdout
